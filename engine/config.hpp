// The engine's immutable view of a state file: for each listening address,
// the route to its upstreams. Built once per (re)load from the model, then
// shared read-only by every worker.
#pragma once

#include <sys/socket.h>

#include <map>
#include <memory>
#include <set>
#include <optional>
#include <vector>

#include "engine/maglev.hpp"
#include "engine/runtime.hpp"
#include "model/state.hpp"

namespace azlb::engine {

struct Upstream {
  sockaddr_storage addr{};
  socklen_t addr_len = 0;
  std::uint32_t idle_timeout_ms = 0;
  std::uint32_t weight = model::kWeightDefault;
  // Drained by its operator: no new connections or flows; those it has carry on.
  bool drained = false;
  MemberState* state = nullptr;
};

struct Route {
  ListenKey key;
  std::string name;  // "web/webset" or "web/vm1/http", for logs
  std::string service, lbset;  // lbset empty: a plain endpoint's route
  model::Distribution distribution = model::Distribution::FiveTuple;
  model::WhenAllDown when_all_down = model::WhenAllDown::Refuse;
  model::ProxyProtocol proxy_protocol = model::ProxyProtocol::None;
  // NAT routes: members receive the packet unchanged and answer the client
  // themselves (nat_plane.hpp, "direct server return").
  bool dsr = false;
  std::vector<model::AclRule> acl;
  std::vector<Upstream> upstreams;
  // The consistent hash over the upstreams (in their order) by VM name and
  // weight; null with fewer than two. Shared by every route (and every
  // reload) with the same members, weights and seed.
  std::shared_ptr<const MaglevTable> table;
  std::uint64_t seed = 0;  // the state's hash_seed
  ListenerState* counters = nullptr;
};

struct ProbeTarget {
  std::shared_ptr<MemberState> member;
  model::Probe probe;
  model::IpAddress ip;
};

struct Config {
  std::uint64_t generation = 0;
  std::vector<Route> routes;  // one per listening address, sorted by key
  // Routes of `nat` cloud services: no socket of the engine's, compiled into
  // the kernel's packet path (nat_plane.hpp); their members are probed too.
  std::vector<Route> nat_routes;
  std::vector<ProbeTarget> probes;
  // Keep what routes point to alive for as long as this config is in use.
  std::vector<std::shared_ptr<MemberState>> members;
  std::vector<std::shared_ptr<ListenerState>> listeners;
  // Per route, each worker's listening socket (owned by the engine): its own,
  // one that all share, or -1 where another worker serves it (listener_set.hpp).
  std::vector<std::vector<int>> fds;
};

// Finds the live state of members and listeners across reloads.
class Registry {
 public:
  std::shared_ptr<MemberState> member(const MemberKey&);
  std::shared_ptr<ListenerState> listener(const ListenKey&);
  // The table of these members with this seed: built once, then shared (a
  // table is 65,537 slots; a reload that keeps a set's members rebuilds
  // nothing, and a tcp and a udp set of the same VMs share one).
  std::shared_ptr<const MaglevTable> table(const std::vector<MaglevMember>&, std::uint64_t seed,
                                          std::uint32_t size);
  // Forgets entries that no config holds any more.
  void prune();

 private:
  std::map<std::string, std::shared_ptr<const MaglevTable>> tables_;
  std::map<MemberKey, std::shared_ptr<MemberState>> members_;
  std::map<ListenKey, std::shared_ptr<ListenerState>> listeners_;
};

// The proxy plane's listening addresses of a state, as build_config makes
// them, without its work (member tables, probes).
std::set<ListenKey> proxy_listen_keys(const model::State&);

// Routes and probes for every endpoint and set of the state. Members without
// a probe (plain endpoints, --no-probe sets) are marked up.
std::shared_ptr<Config> build_config(const model::State&, Registry&, std::uint64_t generation,
                                     std::uint32_t idle_unit_ms);

}  // namespace azlb::engine
