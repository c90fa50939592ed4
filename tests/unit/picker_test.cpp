#include "engine/picker.hpp"

#include <netinet/in.h>

#include <map>

#include "fixtures.hpp"
#include "route_farm.hpp"

using namespace azlb::engine;
using azlb::test::make_vm;

namespace {

using Farm = azlb::test::RouteFarm;

std::uint64_t client(std::uint32_t n) {
  sockaddr_storage ss{};
  auto& sa = reinterpret_cast<sockaddr_in&>(ss);
  sa.sin_family = AF_INET;
  sa.sin_addr.s_addr = htonl(0x0A000000u + n);
  return client_hash(ss, azlb::model::Distribution::SourceIp, azlb::model::Protocol::Tcp);
}

}  // namespace

TEST_CASE("five-tuple picks every healthy member about equally often") {
  Farm f(3);
  Rng rng(42);
  std::map<int, int> counts;
  for (int i = 0; i < 30000; ++i) ++counts[pick(f.route, 0, {}, rng)];
  REQUIRE(counts.size() == 3);
  for (auto& [idx, n] : counts) CHECK(std::abs(n - 10000) < 500);
}

TEST_CASE("a member that is down or already tried is never picked") {
  Farm f(3);
  f.states[1]->health = Health::Down;
  Rng rng(7);
  std::uint8_t tried[] = {0};
  for (int i = 0; i < 1000; ++i) CHECK(pick(f.route, 0, tried, rng) == 2);
  std::uint8_t all[] = {0, 2};
  CHECK(pick(f.route, 0, all, rng) == kNoUpstream);
}

TEST_CASE("a member not probed yet counts as up") {
  Farm f(1);
  f.states[0]->health = Health::Unknown;
  Rng rng(1);
  CHECK(pick(f.route, 0, {}, rng) == 0);
}

TEST_CASE("with every member down the set refuses, unless it serves all") {
  Farm f(2);
  for (auto& s : f.states) s->health = Health::Down;
  Rng rng(3);
  CHECK(pick(f.route, 0, {}, rng) == kNoUpstream);
  f.route.when_all_down = azlb::model::WhenAllDown::ServeAll;
  CHECK(pick(f.route, 0, {}, rng) != kNoUpstream);
}

TEST_CASE("source-ip keeps a client on one member and moves only the clients of a member that goes down") {
  Farm f(4, azlb::model::Distribution::SourceIp);
  Rng rng(5);
  std::vector<int> before;
  for (std::uint32_t c = 0; c < 400; ++c) {
    int first = pick(f.route, client(c), {}, rng);
    CHECK(pick(f.route, client(c), {}, rng) == first);
    before.push_back(first);
  }
  std::map<int, int> spread;
  for (int b : before) ++spread[b];
  CHECK(spread.size() == 4);
  f.states[2]->health = Health::Down;
  for (std::uint32_t c = 0; c < 400; ++c) {
    int now = pick(f.route, client(c), {}, rng);
    if (before[c] != 2) CHECK(now == before[c]);
    else CHECK(now != 2);
  }
}

TEST_CASE("source-ip hashes the client's address alone; source-ip-protocol adds the protocol") {
  using azlb::model::Distribution;
  using azlb::model::Protocol;
  for (std::uint32_t n = 0; n < 100; ++n) {
    sockaddr_storage ss{};
    auto& sa = reinterpret_cast<sockaddr_in&>(ss);
    sa.sin_family = AF_INET;
    sa.sin_addr.s_addr = htonl(0x0A000000u + n);
    CHECK(client_hash(ss, Distribution::SourceIp, Protocol::Tcp) == client_hash(ss, Distribution::SourceIp, Protocol::Udp));
    CHECK(client_hash(ss, Distribution::SourceIpProtocol, Protocol::Tcp) !=
          client_hash(ss, Distribution::SourceIpProtocol, Protocol::Udp));
  }
}

TEST_CASE("source-ip sends a client to one VM across a tcp set and a udp set of the same VMs") {
  Farm tcp(4, azlb::model::Distribution::SourceIp), udp(4, azlb::model::Distribution::SourceIp);
  // The members' identity is their VM's; the sets list them in other orders.
  for (std::size_t i = 0; i < 4; ++i) {
    tcp.route.upstreams[i].id_hash = 1000 + i;
    udp.route.upstreams[3 - i].id_hash = 1000 + i;
  }
  Rng rng(5);
  for (std::uint32_t c = 0; c < 400; ++c)
    CHECK(tcp.route.upstreams[pick(tcp.route, client(c), {}, rng)].id_hash ==
          udp.route.upstreams[pick(udp.route, client(c), {}, rng)].id_hash);
}

TEST_CASE("a drained member gets no new connection, whatever the distribution or its health") {
  for (auto d : {azlb::model::Distribution::FiveTuple, azlb::model::Distribution::SourceIp}) {
    Farm f(3, d);
    f.route.upstreams[1].drained = true;
    Rng rng(3);
    for (std::uint32_t i = 0; i < 2000; ++i) CHECK(pick(f.route, client(i), {}, rng) != 1);
  }
}

TEST_CASE("serve-all with every other member down still leaves a drained member out") {
  Farm f(2);
  f.route.when_all_down = azlb::model::WhenAllDown::ServeAll;
  f.states[0]->health = Health::Down;
  f.states[1]->health = Health::Down;
  f.route.upstreams[1].drained = true;
  Rng rng(5);
  for (int i = 0; i < 100; ++i) CHECK(pick(f.route, 0, {}, rng) == 0);
  f.route.upstreams[0].drained = true;
  CHECK(pick(f.route, 0, {}, rng) == kNoUpstream);
}
