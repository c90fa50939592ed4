// A route and its members, as the engine's config builds them, for the
// tests of what reads a route (the picker, the NAT table).
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "engine/config.hpp"
#include "engine/proxy/sockets.hpp"

namespace azlb::test {

struct RouteFarm {
  std::vector<std::shared_ptr<engine::MemberState>> states;
  engine::Route route;

  // A set's route on VIP 127.0.0.1:8080, protocol tcp, with `n` healthy
  // members vm0.. on 127.0.1.4.. port 80, idle timeout 4 minutes.
  explicit RouteFarm(int n = 3, model::Distribution d = model::Distribution::FiveTuple, bool nat_route = false)
      : nat(nat_route) {
    route.key = {model::Protocol::Tcp, *model::parse_ip("VIP", "127.0.0.1"), 8080};
    route.distribution = d;
    for (int i = 0; i < n; ++i) add("vm" + std::to_string(i), "127.0.1." + std::to_string(4 + i), 80);
  }

  engine::Upstream& add(const std::string& vm, const std::string& ip, std::uint16_t port,
                        std::uint32_t idle_timeout_ms = 240000) {
    states.push_back(std::make_shared<engine::MemberState>(engine::MemberKey{"web", "set", vm, "http"}));
    states.back()->health = engine::Health::Up;
    engine::Upstream u;
    socklen_t len;
    engine::fill_sockaddr(*model::parse_ip("DIP", ip), port, u.addr, len);
    u.addr_len = len;
    u.idle_timeout_ms = idle_timeout_ms;
    u.state = states.back().get();
    route.upstreams.push_back(u);
    build_table();
    return route.upstreams.back();
  }

  // The route's Maglev table by the members' VMs and weights, as
  // build_config makes it (none for one member).
  void build_table() {
    std::vector<engine::MaglevMember> members;
    for (auto& u : route.upstreams) members.push_back({u.state->key.vm, u.weight});
    const auto size = nat ? engine::nat_table_size(members.size()) : engine::kMaglevSize;
    route.table = members.size() > 1
                      ? std::make_shared<const engine::MaglevTable>(engine::MaglevTable::build(members, route.seed, size))
                      : nullptr;
  }
  bool nat = false;  // a NAT route's table size
};

}  // namespace azlb::test
