#include "engine/nat/nat_plane.hpp"

#include <doctest/doctest.h>

#include <algorithm>
#include <cstdio>
#include <set>

#include "engine/nat/conntrack.hpp"
#include "fixtures.hpp"
#include "route_farm.hpp"

using namespace azlb::engine;
using azlb::test::has;
using azlb::model::parse_ip;

namespace {

struct NatFarm : azlb::test::RouteFarm {
  explicit NatFarm(int n = 3) : RouteFarm(n, azlb::model::Distribution::FiveTuple, true) {}
  std::string script(bool draining = false) { return nat_script("azlb_t", {&route}, draining); }
};

std::string mark_text(std::uint32_t mark) {
  char buf[16];
  std::snprintf(buf, sizeof buf, "0x%08x", mark);
  return buf;
}

// The slot map of route 0 in a script: slot -> mark.
std::vector<std::string> slots_of(const std::string& s) {
  std::vector<std::string> out;
  auto at = s.find("map slots0 {");
  if (at == std::string::npos) return out;
  at = s.find("elements = { ", at) + 13;
  const auto end = s.find(" }", at);
  for (std::size_t pos = at; pos < end;) {
    auto colon = s.find(" : ", pos);
    auto comma = std::min(s.find(", ", colon), end);
    out.push_back(s.substr(colon + 3, comma - colon - 3));
    pos = comma + 2;
  }
  return out;
}

}  // namespace

TEST_CASE("the table is replaced in one transaction, and five-tuple hashes the five-tuple into the Maglev slots") {
  NatFarm f;
  auto s = f.script();
  CHECK(s.rfind("add table inet azlb_t\ndelete table inet azlb_t\ntable inet azlb_t {", 0) == 0);
  const auto marks = nat_marks("azlb_t", {&f.route});
  REQUIRE(marks.size() == 3);
  std::string m[3];
  for (int i = 0; i < 3; ++i) {
    char buf[16];
    std::snprintf(buf, sizeof buf, "0x%08x", marks.at(f.states[i].get()));
    m[i] = buf;
    CHECK((marks.at(f.states[i].get()) & kNatMarkMask) == kNatMarkTag);
  }
  CHECK(has(s, "ct mark set jhash ip saddr . tcp sport . ip daddr . tcp dport mod 1031 seed 0x"));
  CHECK(has(s, " map @slots0\n"));
  CHECK(has(s, "map slots0 {\n    typeof numgen random mod 1031 : ct mark\n"));
  // Every slot names a member; the three share them out evenly (Maglev's turns).
  const auto slots = slots_of(s);
  REQUIRE(slots.size() == 1031);
  for (auto& mark : m) CHECK(std::abs(std::count(slots.begin(), slots.end(), mark) - 1031 / 3) <= 1);
  CHECK(has(s, "meta l4proto tcp counter dnat ip to ct mark map { " + m[0] + " : 127.0.1.4 . 80, " + m[1] +
                   " : 127.0.1.5 . 80, " + m[2] + " : 127.0.1.6 . 80 }"));
  // One lookup finds the route, for new flows and for the DNAT.
  CHECK(has(s, "map new_v4 {\n    type ipv4_addr . inet_proto . inet_service : verdict\n"
               "    elements = { 127.0.0.1 . tcp . 8080 : jump new0 }"));
  CHECK(has(s, "elements = { 127.0.0.1 . tcp . 8080 : jump pick0 }"));
  CHECK(has(s, "hook prerouting priority dstnat"));
  CHECK(has(s, "hook output priority -100"));
  CHECK(has(s, "policy = { established: 240,"));
  // Every packet of a marked flow is counted for its member, by direction.
  CHECK(has(s, m[1] + " . original : \"" + nat_counter_name(f.states[1]->key, true) + "\""));
  CHECK(has(s, m[1] + " . reply : \"" + nat_counter_name(f.states[1]->key, false) + "\""));
  CHECK(has(s, "ct mark and 0xff000000 == 0xa2000000 counter name ct mark . ct direction map @count"));
}

TEST_CASE("a member's mark is stable for its table and key, whatever else is routed") {
  NatFarm a, b(2);
  CHECK(nat_marks("azlb_t", {&a.route}).at(a.states[1].get()) == nat_marks("azlb_t", {&b.route}).at(b.states[1].get()));
  // Another engine (another state file) with members of the same names.
  CHECK(nat_marks("azlb_u", {&a.route}).at(a.states[1].get()) != nat_marks("azlb_t", {&a.route}).at(a.states[1].get()));
  std::set<std::uint32_t> seen;
  for (auto& [member, mark] : nat_marks("azlb_t", {&a.route})) seen.insert(mark);
  CHECK(seen.size() == 3);
}

TEST_CASE("a member that is down or drained gives its slots to the next slots' members; no other slot moves") {
  NatFarm f;
  f.route.distribution = azlb::model::Distribution::SourceIp;
  const auto marks = nat_marks("azlb_t", {&f.route});
  const auto all_up = slots_of(f.script());
  CHECK(has(f.script(), "ct mark set jhash ip saddr mod 1031 seed 0x"));
  f.states[1]->health = Health::Down;
  auto s = f.script();
  const auto one_down = slots_of(s);
  REQUIRE(one_down.size() == all_up.size());
  const auto down = mark_text(marks.at(f.states[1].get()));
  for (std::size_t i = 0; i < all_up.size(); ++i) {
    CHECK(one_down[i] != down);
    if (all_up[i] != down) CHECK(one_down[i] == all_up[i]);
  }
  CHECK_FALSE(has(s, ": 127.0.1.5 . 80"));
  CHECK(has(s, nat_counter_name(f.states[1]->key, true)));  // its established flows are still counted
  // One member left: its mark, no map.
  f.route.upstreams[2].drained = true;
  s = f.script();
  CHECK(has(s, "ct mark set " + mark_text(marks.at(f.states[0].get())) + "\n"));
  CHECK_FALSE(has(s, "map slots0"));
  CHECK(has(s, " : 127.0.1.4 . 80 }"));
  f.route.upstreams[2].drained = false;
  f.route.distribution = azlb::model::Distribution::SourceIpProtocol;
  CHECK(has(f.script(), "ct mark set jhash ip saddr . meta l4proto mod 1031 seed 0x"));
}

TEST_CASE("with every member down, refuse resets new TCP flows and serve-all uses every member") {
  NatFarm f(2);
  for (auto& st : f.states) st->health = Health::Down;
  auto refuse = f.script();
  CHECK(has(refuse, "chain new0 {\n    ct timeout set \"t0\"\n    counter reject with tcp reset\n  }"));
  CHECK_FALSE(has(refuse, "dnat"));
  CHECK_FALSE(has(refuse, "jump pick0"));
  f.route.when_all_down = azlb::model::WhenAllDown::ServeAll;
  CHECK(has(f.script(), "map @slots0"));
}

TEST_CASE("the ACL comes first, in order, for new flows; permit rules deny whoever they do not match") {
  NatFarm f(1);
  f.route.acl = {{10, azlb::model::AclAction::Deny, *azlb::model::parse_cidr("s", "10.1.0.0/16"), ""},
                 {20, azlb::model::AclAction::Permit, *azlb::model::parse_cidr("s", "10.0.0.0/8"), ""},
                 {30, azlb::model::AclAction::Permit, *azlb::model::parse_cidr("s", "2001:db8::/32"), ""}};
  auto s = f.script();
  CHECK(has(s, "chain new0 {\n    ct timeout set \"t0\"\n    ip saddr 10.1.0.0/16 counter drop\n"
               "    ip saddr 10.0.0.0/8 counter accept\n    counter drop\n  }"));
  CHECK(has(s, "ct state new jump new_flow"));
  CHECK_FALSE(has(s, "2001:db8"));  // another family's rule never matches an IPv4 VIP
}

TEST_CASE("a wildcard VIP takes this host's own addresses only; IPv6 has maps of its own") {
  NatFarm f(1);
  f.route.key.address = *parse_ip("VIP", "0.0.0.0");
  auto s = f.script();
  CHECK(has(s, "meta nfproto ipv4 fib daddr type local meta l4proto . th dport vmap @pick_any4"));
  CHECK(has(s, "elements = { tcp . 8080 : jump pick0 }"));
  CHECK_FALSE(has(s, "@pick_v4"));

  NatFarm v6(0);
  v6.route.key = {azlb::model::Protocol::Udp, *parse_ip("VIP", "2001:db8::1"), 53};
  v6.add("vm1", "2001:db8::4", 5353, 60000);
  auto& r6 = v6.route;
  auto s6 = nat_script("azlb_t", {&r6});
  CHECK(has(s6, "elements = { 2001:db8::1 . udp . 53 : jump pick0 }"));
  CHECK(has(s6, "meta l4proto udp counter dnat ip6 to ct mark map { "));
  CHECK(has(s6, " : [2001:db8::4] . 5353 }"));
  CHECK(has(s6, "protocol udp; l3proto ip6\n    policy = { unreplied: 30, replied: 60 }"));
}

TEST_CASE("draining keeps the NAT chains and refuses every new flow") {
  NatFarm f;
  auto s = f.script(true);
  CHECK(has(s, "reject with tcp reset"));
  CHECK_FALSE(has(s, "dnat"));
  CHECK(has(s, "chain nat_output"));
  CHECK(has(s, "map @count"));  // established flows still counted
}

TEST_CASE("each state file's engine has a table of its own") {
  CHECK(nat_table_name("/a/state.toml") != nat_table_name("/b/state.toml"));
  CHECK(nat_table_name("/a/state.toml").rfind("azlb_", 0) == 0);
}

TEST_CASE("a failure of libnftables says what is missing and how to get it, in one line") {
  // What libnftables writes when the kernel lacks nf_tables, or NAT in it,
  // or when the process lacks the privilege (the first line names the cause).
  const auto no_nftables = nft_failure("Error: Could not process rule: Protocol not supported\nadd table inet x\n^^^\n");
  CHECK(has(no_nftables.message, "needs nf_tables with NAT and conntrack in the kernel (modprobe nf_tables"));
  CHECK(has(no_nftables.message, "Protocol not supported"));
  CHECK_FALSE(has(no_nftables.message, "\n"));
  CHECK(has(nft_failure("Error: Could not process rule: No such file or directory\n").message, "modprobe"));
  CHECK(has(nft_failure("Error: Could not process rule: Operation not supported\n").message, "modprobe"));
  CHECK(has(nft_failure("Error: Could not process rule: Operation not permitted\n").message, "CAP_NET_ADMIN"));
  const auto other = nft_failure("Error: syntax error, unexpected junk\nline\n");
  CHECK(other.message == "cannot program the NAT data plane: Error: syntax error, unexpected junk");
}

TEST_CASE("conntrack from 80% full gets a warning that says how full and what to raise") {
  CHECK(ConntrackUse{79, 100}.warning().empty());
  CHECK(ConntrackUse{10, -1}.warning().empty());  // the kernel did not say
  const auto w = ConntrackUse{209716, 262144}.warning();
  CHECK(has(w, "conntrack is 80% full (209716 of nf_conntrack_max 262144)"));
  CHECK(has(w, "raise net.netfilter.nf_conntrack_max"));
}

TEST_CASE("direct server return: no conntrack, the slot's member as a packet mark, pinned flows kept, no DNAT") {
  NatFarm f;
  f.route.dsr = true;
  const auto marks = nat_marks("azlb_t", {&f.route});
  auto s = f.script();
  CHECK(has(s, "chain dsr_raw {\n    type filter hook prerouting priority raw; policy accept;\n"
               "    meta nfproto ipv4 ip daddr . meta l4proto . th dport @dsr_dests_v4 notrack\n"));
  CHECK(has(s, "set dsr_dests_v4 {\n    type ipv4_addr . inet_proto . inet_service\n    elements = { 127.0.0.1 . tcp . 8080 }"));
  CHECK(has(s, "hook prerouting priority -150; policy accept;\n    meta nfproto ipv4 ip daddr . meta l4proto . th dport vmap @dsr_v4"));
  // A flow the pins gave one of the route's members keeps it.
  CHECK(has(s, "    meta mark { " + mark_text(marks.at(f.states[0].get())) + ", " + mark_text(marks.at(f.states[1].get())) +
                   ", " + mark_text(marks.at(f.states[2].get())) + " } counter name meta mark map {"));
  CHECK(has(s, "meta mark set jhash ip saddr . tcp sport . ip daddr . tcp dport mod 1031 seed 0x"));
  CHECK(has(s, "typeof numgen random mod 1031 : meta mark"));
  CHECK_FALSE(has(s, "dnat"));
  CHECK_FALSE(has(s, "jump pick0"));
  // The pins live in a table of their own that a new main table leaves alone.
  auto pins = nat_pins_script("azlb_t", {&f.route});
  CHECK(has(pins, "add table inet azlb_t_pins\n"));
  CHECK(has(pins, "add map inet azlb_t_pins pins4_tcp { typeof ip saddr . tcp sport . tcp dport : meta mark;"));
  CHECK(has(pins, "priority -151"));
  CHECK(has(pins, "meta l4proto tcp meta mark set ip saddr . tcp sport . tcp dport map @pins4_tcp\n"));
  CHECK(has(pins, "update @pins4_udp { ip saddr . udp sport . udp dport timeout 240s : meta mark }"));
  // IPv6: the address's low 64 bits (nft 1.0.6 overwrites a key of more than 16 bytes).
  CHECK(has(pins, "add map inet azlb_t_pins pins6_tcp { typeof @nh,128,64 . tcp sport . tcp dport : meta mark;"));
  CHECK(has(pins, "meta nfproto ipv6 meta l4proto udp update @pins6_udp { @nh,128,64 . udp sport . udp dport timeout"));
  CHECK_FALSE(has(pins, "delete table"));
  f.route.dsr = false;
  CHECK(nat_pins_script("azlb_t", {&f.route}) == "add table inet azlb_t_pins\ndelete table inet azlb_t_pins\n");
  // ACL: a deny drops, permit rules let only their subnets on to the pick.
  f.route.dsr = true;
  f.route.acl = {{10, azlb::model::AclAction::Permit, *azlb::model::parse_cidr("s", "10.0.0.0/8"), ""}};
  s = f.script();
  CHECK(has(s, "    ip saddr 10.0.0.0/8 goto dsr_pick0\n    counter drop\n  }\n  chain dsr_pick0 {\n    meta mark set "));
  // No member may take a new flow: new flows are dropped, pinned ones go on.
  for (auto& st : f.states) st->health = Health::Down;
  CHECK(has(f.script(), "  chain dsr_pick0 {\n    counter drop\n"));
}
