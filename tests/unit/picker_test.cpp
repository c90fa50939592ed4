#include "engine/picker.hpp"

#include <netinet/in.h>

#include <map>

#include "fixtures.hpp"
#include "route_farm.hpp"

using namespace azlb::engine;
using azlb::model::Distribution;
using azlb::model::Protocol;

namespace {

using Farm = azlb::test::RouteFarm;

sockaddr_storage address(std::uint32_t n, std::uint16_t port = 40000) {
  sockaddr_storage ss{};
  auto& sa = reinterpret_cast<sockaddr_in&>(ss);
  sa.sin_family = AF_INET;
  sa.sin_addr.s_addr = htonl(0x0A000000u + n);
  sa.sin_port = htons(port);
  return ss;
}

// Client n's flow through the route: n picks the address and the port.
std::uint64_t flow(const Farm& f, std::uint32_t n) { return flow_hash(address(n / 16, 1024 + n % 16), f.route); }

}  // namespace

TEST_CASE("five-tuple spreads flows over the healthy members as their weights say") {
  Farm f(3);
  std::map<int, int> counts;
  for (std::uint32_t i = 0; i < 30000; ++i) ++counts[pick(f.route, flow(f, i))];
  REQUIRE(counts.size() == 3);
  for (auto& [idx, n] : counts) CHECK(std::abs(n - 10000) < 500);
  f.route.upstreams[2].weight = 2;
  f.build_table();
  counts.clear();
  for (std::uint32_t i = 0; i < 40000; ++i) ++counts[pick(f.route, flow(f, i))];
  CHECK(std::abs(counts[0] - 10000) < 500);
  CHECK(std::abs(counts[2] - 20000) < 700);
}

TEST_CASE("five-tuple hashes the port too; source-ip the address alone; source-ip-protocol adds the protocol") {
  Farm f(2);
  CHECK(flow_hash(address(1, 1000), f.route) != flow_hash(address(1, 1001), f.route));
  f.route.distribution = Distribution::SourceIp;
  CHECK(flow_hash(address(1, 1000), f.route) == flow_hash(address(1, 1001), f.route));
  Farm udp(2, Distribution::SourceIp);
  udp.route.key.protocol = Protocol::Udp;
  for (std::uint32_t n = 0; n < 100; ++n) CHECK(flow_hash(address(n), f.route) == flow_hash(address(n), udp.route));
  f.route.distribution = udp.route.distribution = Distribution::SourceIpProtocol;
  for (std::uint32_t n = 0; n < 100; ++n) CHECK(flow_hash(address(n), f.route) != flow_hash(address(n), udp.route));
}

TEST_CASE("every host picks the same member for a flow; another seed is another table") {
  Farm a(5), b(5);
  for (std::uint32_t i = 0; i < 5000; ++i) CHECK(pick(a.route, flow(a, i)) == pick(b.route, flow(b, i)));
  b.route.seed = 12345;
  b.build_table();
  int same = 0;
  for (std::uint32_t i = 0; i < 5000; ++i) same += pick(a.route, flow(a, i)) == pick(b.route, flow(b, i));
  CHECK(same < 1500);  // chance alone: 1 in 5
}

TEST_CASE("a member that is down or already tried is never picked") {
  Farm f(3);
  f.states[1]->health = Health::Down;
  std::uint8_t tried[] = {0};
  for (std::uint32_t i = 0; i < 1000; ++i) CHECK(pick(f.route, flow(f, i), tried) == 2);
  std::uint8_t all[] = {0, 2};
  CHECK(pick(f.route, 0, all) == kNoUpstream);
}

TEST_CASE("a member not probed yet counts as up") {
  Farm f(1);
  f.states[0]->health = Health::Unknown;
  CHECK(pick(f.route, 0) == 0);
}

TEST_CASE("with every member down the set refuses, unless it serves all") {
  Farm f(2);
  for (auto& s : f.states) s->health = Health::Down;
  CHECK(pick(f.route, 0) == kNoUpstream);
  f.route.when_all_down = azlb::model::WhenAllDown::ServeAll;
  CHECK(pick(f.route, 0) != kNoUpstream);
}

TEST_CASE("a member that goes down moves only its own flows, spread over the others") {
  for (auto d : {Distribution::FiveTuple, Distribution::SourceIp}) {
    Farm f(4, d);
    std::vector<int> before;
    for (std::uint32_t c = 0; c < 4000; ++c) {
      int first = pick(f.route, flow(f, c));
      CHECK(pick(f.route, flow(f, c)) == first);
      before.push_back(first);
    }
    f.states[2]->health = Health::Down;
    std::map<int, int> moved_to;
    for (std::uint32_t c = 0; c < 4000; ++c) {
      int now = pick(f.route, flow(f, c));
      if (before[c] != 2) CHECK(now == before[c]);
      else ++moved_to[now];
    }
    CHECK(moved_to.size() == 3);
    CHECK_FALSE(moved_to.contains(2));
  }
}

TEST_CASE("removing one of ten members moves its flows and few others (100,000 five-tuples)") {
  Farm ten(10), nine(10);
  nine.route.upstreams.erase(nine.route.upstreams.begin() + 3);
  nine.build_table();
  int others = 0, moved = 0;
  for (std::uint32_t i = 0; i < 100000; ++i) {
    const auto before = ten.route.upstreams[pick(ten.route, flow(ten, i))].state->key.vm;
    const auto after = nine.route.upstreams[pick(nine.route, flow(nine, i))].state->key.vm;
    if (before == "vm3") continue;
    ++others;
    moved += before != after;
  }
  const double share = 100.0 * moved / others;
  MESSAGE("flows of the nine others that moved: " << moved << " of " << others << " (" << share << "%)");
  CHECK(share < 2.0);
}

TEST_CASE("source-ip sends a client to one VM across a tcp set and a udp set of the same VMs") {
  Farm tcp(4, Distribution::SourceIp), udp(0, Distribution::SourceIp);
  udp.route.key.protocol = Protocol::Udp;
  // The same VMs, listed in another order.
  for (int i = 3; i >= 0; --i) udp.add("vm" + std::to_string(i), "127.0.1." + std::to_string(4 + i), 53);
  for (std::uint32_t c = 0; c < 400; ++c)
    CHECK(tcp.route.upstreams[pick(tcp.route, flow_hash(address(c), tcp.route))].state->key.vm ==
          udp.route.upstreams[pick(udp.route, flow_hash(address(c), udp.route))].state->key.vm);
}

TEST_CASE("a drained member gets no new connection, whatever the distribution or its health") {
  for (auto d : {Distribution::FiveTuple, Distribution::SourceIp}) {
    Farm f(3, d);
    f.route.upstreams[1].drained = true;
    for (std::uint32_t i = 0; i < 2000; ++i) CHECK(pick(f.route, flow(f, i)) != 1);
  }
}

TEST_CASE("serve-all with every other member down still leaves a drained member out") {
  Farm f(2);
  f.route.when_all_down = azlb::model::WhenAllDown::ServeAll;
  f.states[0]->health = Health::Down;
  f.states[1]->health = Health::Down;
  f.route.upstreams[1].drained = true;
  for (std::uint32_t i = 0; i < 100; ++i) CHECK(pick(f.route, flow(f, i)) == 0);
  f.route.upstreams[0].drained = true;
  CHECK(pick(f.route, 0) == kNoUpstream);
}
