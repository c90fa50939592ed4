#include "engine/nat_plane.hpp"

#include <doctest/doctest.h>

#include "engine/sockets.hpp"

using namespace azlb::engine;
using azlb::model::parse_ip;

namespace {

// A set's route on VIP 127.0.0.1:8080 with members on .4, .5 and .6.
struct NatFarm {
  std::vector<std::shared_ptr<MemberState>> states;
  Route route;
  explicit NatFarm(int n = 3) {
    route.key = {azlb::model::Protocol::Tcp, *parse_ip("VIP", "127.0.0.1"), 8080};
    for (int i = 0; i < n; ++i) {
      states.push_back(std::make_shared<MemberState>(MemberKey{"web", "set", "vm" + std::to_string(i), "http"}));
      states.back()->health = Health::Up;
      Upstream u;
      socklen_t len;
      fill_sockaddr(*parse_ip("DIP", "127.0.1." + std::to_string(4 + i)), 80, u.addr, len);
      u.addr_len = len;
      u.idle_timeout_ms = 240000;
      u.state = states.back().get();
      route.upstreams.push_back(u);
    }
  }
  std::string script(bool draining = false) { return nat_script("azlb_t", {&route}, draining); }
};

bool has(const std::string& text, const std::string& what) { return text.find(what) != std::string::npos; }

}  // namespace

TEST_CASE("the table is replaced in one transaction, and five-tuple picks at random over the members") {
  NatFarm f;
  auto s = f.script();
  CHECK(s.rfind("add table inet azlb_t\ndelete table inet azlb_t\ntable inet azlb_t {", 0) == 0);
  CHECK(has(s, "ip daddr 127.0.0.1 tcp dport 8080 counter dnat ip to numgen random mod 3 map { 0 : 127.0.1.4 . 80, "
               "1 : 127.0.1.5 . 80, 2 : 127.0.1.6 . 80 }"));
  CHECK(has(s, "hook prerouting priority dstnat"));
  CHECK(has(s, "hook output priority -100"));
  CHECK(has(s, "policy = { established: 240,"));
}

TEST_CASE("a member that is down or drained is not in the map; affinity hashes the client's address") {
  NatFarm f;
  f.states[1]->health = Health::Down;
  f.route.upstreams[2].drained = true;
  f.route.distribution = azlb::model::Distribution::SourceIp;
  auto s = f.script();
  CHECK(has(s, "dnat ip to jhash ip saddr mod 1 seed 0x"));
  CHECK(has(s, "map { 0 : 127.0.1.4 . 80 }"));
  CHECK_FALSE(has(s, ": 127.0.1.5 . 80"));  // its counters stay; the map leaves it out
}

TEST_CASE("with every member down, refuse resets new TCP flows and serve-all uses every member") {
  NatFarm f(2);
  for (auto& st : f.states) st->health = Health::Down;
  auto refuse = f.script();
  CHECK(has(refuse, "ct state new ip daddr 127.0.0.1 tcp dport 8080 counter reject with tcp reset"));
  CHECK_FALSE(has(refuse, "dnat"));
  f.route.when_all_down = azlb::model::WhenAllDown::ServeAll;
  CHECK(has(f.script(), "numgen random mod 2"));
}

TEST_CASE("the ACL comes first, in order, for new flows; permit rules deny whoever they do not match") {
  NatFarm f(1);
  f.route.acl = {{10, azlb::model::AclAction::Deny, *azlb::model::parse_cidr("s", "10.1.0.0/16"), ""},
                 {20, azlb::model::AclAction::Permit, *azlb::model::parse_cidr("s", "10.0.0.0/8"), ""},
                 {30, azlb::model::AclAction::Permit, *azlb::model::parse_cidr("s", "2001:db8::/32"), ""}};
  auto s = f.script();
  auto deny = s.find("ip saddr 10.1.0.0/16 counter drop");
  auto permit = s.find("ip saddr 10.0.0.0/8 counter accept");
  auto rest = s.find("ct state new ip daddr 127.0.0.1 tcp dport 8080 counter drop");
  REQUIRE(deny != std::string::npos);
  REQUIRE(permit != std::string::npos);
  REQUIRE(rest != std::string::npos);
  CHECK(deny < permit);
  CHECK(permit < rest);
  CHECK_FALSE(has(s, "2001:db8"));  // another family's rule never matches an IPv4 VIP
}

TEST_CASE("draining keeps the NAT chains and refuses every new flow") {
  NatFarm f;
  auto s = f.script(true);
  CHECK(has(s, "reject with tcp reset"));
  CHECK_FALSE(has(s, "dnat"));
  CHECK(has(s, "chain nat_output"));
}

TEST_CASE("each state file's engine has a table of its own") {
  CHECK(nat_table_name("/a/state.toml") != nat_table_name("/b/state.toml"));
  CHECK(nat_table_name("/a/state.toml").rfind("azlb_", 0) == 0);
}
