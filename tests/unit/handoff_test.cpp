#include "engine/nat/handoff.hpp"

#include <doctest/doctest.h>

#include <string>

#include "fixtures.hpp"

using namespace azlb::engine;
using azlb::test::has;
using azlb::model::parse_ip;

namespace {

std::size_t count(const std::string& text, const std::string& what) {
  std::size_t n = 0;
  for (auto at = text.find(what); at != std::string::npos; at = text.find(what, at + 1)) ++n;
  return n;
}

HandoffPlan plan(std::vector<const char*> vips, std::vector<const char*> peers) {
  HandoffPlan p;
  std::uint16_t port = 80;
  for (auto v : vips) p.vips.emplace_back(*parse_ip("vip", v), port++);
  for (auto a : peers) p.peers.push_back(*parse_ip("peer", a));
  return p;
}

}  // namespace

TEST_CASE("hand-off: unknown non-SYN packets of proxied VIPs are copied to each peer of their family") {
  const auto s = handoff_script("azlb_t_handoff", plan({"198.18.3.1", "2001:db8::5"}, {"198.18.1.3", "198.18.1.4", "fd00::3"}));
  // Each family's table is replaced whole.
  CHECK(has(s, "add table ip azlb_t_handoff\ndelete table ip azlb_t_handoff\ntable ip azlb_t_handoff {"));
  CHECK(has(s, "add table ip6 azlb_t_handoff\ndelete table ip6 azlb_t_handoff\ntable ip6 azlb_t_handoff {"));
  CHECK(has(s, "elements = { 198.18.3.1 . 80 }"));
  CHECK(has(s, "elements = { 2001:db8::5 . 81 }"));
  // Only what no connection of this host holds: the lookup finds the marked listener.
  CHECK(has(s, "ip daddr . tcp dport @proxied tcp flags & syn == 0 socket mark 0xa3000001 jump unknown"));
  CHECK(has(s, "ip6 daddr . tcp dport @proxied tcp flags & syn == 0 socket mark 0xa3000001 jump unknown"));
  // A copy arrives with TTL 1 and is never handed on; the original goes on.
  CHECK(has(s, "ip ttl 1 counter drop\n    ip ttl set 2\n"));
  CHECK(has(s, "ip6 hoplimit 1 counter drop\n    ip6 hoplimit set 2\n"));
  CHECK(count(s, "dup to ") == 3);
  CHECK(has(s, "dup to 198.18.1.3\n    dup to 198.18.1.4\n  }"));
  CHECK(has(s, "dup to fd00::3\n  }"));
  CHECK_FALSE(has(s, "drop\n  }\n  chain output"));  // the local copy is not dropped: a SYN cookie's ACK is one
  // The listener's reset to a packet it does not know is not sent.
  CHECK(has(s, "meta mark 0xa3000001 ip saddr . tcp sport @proxied tcp flags rst drop"));
}

TEST_CASE("hand-off: a family without a VIP or a peer has no table; an empty plan removes both") {
  const auto v4_only = handoff_script("t", plan({"198.18.3.1", "2001:db8::5"}, {"198.18.1.3"}));
  CHECK(has(v4_only, "table ip t {"));
  CHECK_FALSE(has(v4_only, "table ip6 t {"));
  CHECK(has(v4_only, "delete table ip6 t\n"));  // one left by an earlier plan goes
  const auto none = handoff_script("t", HandoffPlan{});
  CHECK(none == "add table ip t\ndelete table ip t\nadd table ip6 t\ndelete table ip6 t\n");
}
