// The objects of a classic Azure deployment as plain data. Members of a
// load-balanced set are not stored twice: an endpoint names its set, and the
// set's members are derived (see rules.hpp).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "model/address.hpp"
#include "model/values.hpp"

namespace azlb::model {

// Schema 2 keeps a set's facts on the set (protocol, public port, probe,
// distribution, ACL); schema 1 repeated protocol, public port and ACL on every
// member endpoint. Both load; a write saves schema 2.
inline constexpr int kSchemaVersion = 2;
inline constexpr int kOldestSchemaVersion = 1;

struct AclRule {
  std::uint32_t order = 0;  // rules are evaluated in ascending order
  AclAction action = AclAction::Permit;
  Cidr remote_subnet;
  std::string description;
  friend bool operator==(const AclRule&, const AclRule&) = default;
};

// An endpoint in a set (lbset not empty) has the set's protocol and public
// port (the model keeps them equal) and no ACL or PROXY protocol of its own:
// the set's apply (acl_of, proxy_protocol_of in rules.hpp). Its admin state
// is its own: a member is drained, not a set.
struct Endpoint {
  std::string name;
  Protocol protocol = Protocol::Tcp;
  std::uint16_t public_port = 0;
  std::uint16_t private_port = 0;
  std::uint32_t idle_timeout_min = kIdleTimeoutDefault;
  std::string lbset;             // empty: not load-balanced
  std::vector<AclRule> acl;      // outside a set only; kept sorted by order
  ProxyProtocol proxy_protocol = ProxyProtocol::None;  // outside a set only
  AdminState admin_state = AdminState::Up;             // in a set only
  std::uint32_t weight = kWeightDefault;               // in a set only: its share of the set's flows
};

// An endpoint outside a set with no public port (0) is kept on its VM but
// unpublished: nothing listens for it on the VIP. That is what a deleted
// set leaves of its members, so that deleting a set never exposes a backend
// on a port nobody chose; `endpoint set --public-port` publishes it.
inline bool published(const Endpoint& e) { return !e.lbset.empty() || e.public_port != 0; }

struct Vm {
  std::string name;
  std::string cloud_service;
  IpAddress private_ip;
  Os os = Os::Linux;
  std::string image;
  CreatedBy created_by = CreatedBy::Gallery;
  std::vector<Endpoint> endpoints;
};

struct Probe {
  ProbeProtocol protocol = ProbeProtocol::Tcp;
  std::uint16_t port = 0;
  std::string path;  // http only
  std::uint32_t interval_s = kProbeIntervalDefault;
  std::uint32_t timeout_s = kProbeTimeoutDefault;
  friend bool operator==(const Probe&, const Probe&) = default;
};

struct LoadBalancedSet {
  std::string name;
  Protocol protocol = Protocol::Tcp;
  std::uint16_t public_port = 0;
  std::optional<Probe> probe;  // nullopt: Azure's -NoProbe, every member is up
  Distribution distribution = Distribution::FiveTuple;
  WhenAllDown when_all_down = WhenAllDown::Refuse;
  std::vector<AclRule> acl;  // applies to every member, as Azure applied it; sorted by order
  ProxyProtocol proxy_protocol = ProxyProtocol::None;  // tcp only
  // Azure's -DirectServerReturn ("floating IP"), nat services only: the
  // member receives the packet unchanged, addressed to the VIP and public
  // port (so every member's private port is the public port), and answers
  // the client itself.
  bool direct_server_return = false;
};

struct CloudService {
  std::string name;
  IpAddress vip;
  Cidr subnet;  // where private IPs of its VMs come from
  Dataplane dataplane = Dataplane::Proxy;
  std::vector<LoadBalancedSet> lbsets;

  std::string dns() const { return name + ".cloudapp.net"; }
};

// The seed of the consistent hash that picks a set's member (a Maglev
// table, and a flow's hash into it): every engine of a state picks with the
// same one, so a flow that the routers move between hosts keeps its member.
// At most 2^63 - 1, a TOML integer.
inline constexpr std::uint64_t kHashSeedMax = 0x7fffffffffffffffull;

struct State {
  std::vector<CloudService> services;
  std::vector<Vm> vms;
  // Absent in a state written before it existed: 0 then, the same on every
  // host. A state gets one at random when it is first changed.
  std::optional<std::uint64_t> hash_seed;
};

// A member of a set, as derived from the endpoints that name it.
struct Member {
  const Vm* vm;
  const Endpoint* endpoint;
};

}  // namespace azlb::model
