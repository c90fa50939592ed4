#include "engine/config.hpp"

#include <netinet/in.h>

#include <algorithm>
#include <cstring>
#include <functional>

#include "engine/hash.hpp"

#include "engine/proxy/sockets.hpp"
#include "model/rules.hpp"

namespace azlb::engine {

using namespace azlb::model;

std::shared_ptr<MemberState> Registry::member(const MemberKey& k) {
  auto& slot = members_[k];
  if (!slot) slot = std::make_shared<MemberState>(k);
  return slot;
}

std::shared_ptr<ListenerState> Registry::listener(const ListenKey& k) {
  auto& slot = listeners_[k];
  if (!slot) slot = std::make_shared<ListenerState>(k);
  return slot;
}

std::shared_ptr<const MaglevTable> Registry::table(const std::vector<MaglevMember>& members, std::uint64_t seed,
                                                   std::uint32_t size) {
  std::string key = std::to_string(seed) + "/" + std::to_string(size);
  for (auto& m : members) key += "\n" + m.id + "\t" + std::to_string(m.weight);
  auto& slot = tables_[key];
  if (!slot) slot = std::make_shared<const MaglevTable>(MaglevTable::build(members, seed, size));
  return slot;
}

void Registry::prune() {
  std::erase_if(tables_, [](auto& kv) { return kv.second.use_count() == 1; });
  std::erase_if(members_, [](auto& kv) { return kv.second.use_count() == 1; });
  std::erase_if(listeners_, [](auto& kv) { return kv.second.use_count() == 1; });
}

namespace {

Upstream upstream_for(Registry& reg, Config& cfg, MemberKey key, const Vm& vm, const Endpoint& ep,
                      std::uint32_t idle_unit_ms) {
  Upstream u;
  fill_sockaddr(vm.private_ip, ep.private_port, u.addr, u.addr_len);
  u.idle_timeout_ms = ep.idle_timeout_min * idle_unit_ms;
  u.weight = ep.weight;
  u.drained = ep.admin_state == AdminState::Drain;
  auto state = reg.member(key);
  u.state = state.get();
  cfg.members.push_back(std::move(state));
  return u;
}

// An endpoint of no set has a listener of its own once published.
bool routed_alone(const model::Endpoint& ep) { return ep.lbset.empty() && published(ep); }

}  // namespace

std::set<ListenKey> proxy_listen_keys(const State& s) {
  std::set<ListenKey> out;
  for (auto& svc : s.services) {
    if (svc.dataplane == Dataplane::Nat) continue;
    for (auto* vm : vms_of(s, svc))
      for (auto& ep : vm->endpoints)
        if (routed_alone(ep)) out.insert({ep.protocol, svc.vip, ep.public_port});
    for (auto& set : svc.lbsets) out.insert({set.protocol, svc.vip, set.public_port});
  }
  return out;
}

std::shared_ptr<Config> build_config(const State& s, Registry& reg, std::uint64_t generation,
                                     std::uint32_t idle_unit_ms) {
  auto cfg = std::make_shared<Config>();
  cfg->generation = generation;
  for (auto& svc : s.services) {
    auto& routes = svc.dataplane == Dataplane::Nat ? cfg->nat_routes : cfg->routes;
    for (auto* vm : vms_of(s, svc))
      for (auto& ep : vm->endpoints) {
        if (!routed_alone(ep)) continue;
        Route r;
        r.key = {ep.protocol, svc.vip, ep.public_port};
        r.name = svc.name + "/" + vm->name + "/" + ep.name;
        r.service = svc.name;
        r.acl = ep.acl;
        r.proxy_protocol = ep.proxy_protocol;
        r.upstreams.push_back(upstream_for(reg, *cfg, {svc.name, "", vm->name, ep.name}, *vm, ep, idle_unit_ms));
        r.upstreams.back().state->health.store(Health::Up);
        routes.push_back(std::move(r));
      }
    for (auto& set : svc.lbsets) {
      Route r;
      r.key = {set.protocol, svc.vip, set.public_port};
      r.name = svc.name + "/" + set.name;
      r.service = svc.name;
      r.lbset = set.name;
      r.distribution = set.distribution;
      r.when_all_down = set.when_all_down;
      r.dsr = set.direct_server_return && svc.dataplane == Dataplane::Nat;
      auto members = members_of(s, svc, set);
      r.acl = set.acl;
      r.proxy_protocol = set.proxy_protocol;
      std::vector<MaglevMember> by_vm;
      for (auto& m : members) {
        MemberKey key{svc.name, set.name, m.vm->name, m.endpoint->name};
        r.upstreams.push_back(upstream_for(reg, *cfg, key, *m.vm, *m.endpoint, idle_unit_ms));
        if (set.probe)
          cfg->probes.push_back({cfg->members.back(), *set.probe, m.vm->private_ip});
        else
          r.upstreams.back().state->health.store(Health::Up);  // Azure's -NoProbe
        // A member's identity is its VM, as Azure's source-IP modes send a
        // client to a VM whichever set (tcp or udp) it reaches.
        by_vm.push_back({m.vm->name, m.endpoint->weight});
      }
      r.seed = s.hash_seed.value_or(0);
      if (by_vm.size() > 1)
        r.table = reg.table(by_vm, r.seed,
                            svc.dataplane == Dataplane::Nat ? nat_table_size(by_vm.size()) : kMaglevSize);
      routes.push_back(std::move(r));
    }
  }
  for (auto* routes : {&cfg->routes, &cfg->nat_routes}) {
    std::sort(routes->begin(), routes->end(), [](auto& a, auto& b) { return a.key < b.key; });
    for (auto& r : *routes) {
      auto ls = reg.listener(r.key);
      r.counters = ls.get();
      cfg->listeners.push_back(std::move(ls));
    }
  }
  return cfg;
}

}  // namespace azlb::engine
