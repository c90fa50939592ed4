// The commands of the portal as operations on a State. Each one either
// applies completely or returns an error and leaves the State as it was
// (callers work on a copy and save only on success). What they return is what
// the user is told.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "model/rules.hpp"

namespace azlb::model {

// Probe, distribution, fail-open and PROXY protocol options as given; unset ones keep the
// current value (or the default on a new set).
struct SetOptions {
  std::optional<ProbeProtocol> probe_protocol;
  std::optional<std::uint16_t> probe_port;
  std::optional<std::string> probe_path;
  std::optional<std::uint32_t> probe_interval_s;
  std::optional<std::uint32_t> probe_timeout_s;
  bool no_probe = false;
  std::optional<WhenAllDown> when_all_down;
  std::optional<Distribution> distribution;
  std::optional<ProxyProtocol> proxy_protocol;
  std::optional<bool> direct_server_return;

  bool any() const;
};

// The probe a set gets from `options` over `current`; a set without a probe
// starts from the defaults (tcp on `default_port`, 15 s / 31 s).
Result<std::optional<Probe>> resolve_probe(const std::optional<Probe>& current, const SetOptions& options,
                                           std::uint16_t default_port);

// --- cloud services ---------------------------------------------------------
struct ServiceRequest {
  std::string name;
  std::optional<IpAddress> vip;  // default 127.0.0.1
  std::optional<Cidr> subnet;    // default: a free 127.0.N.0/24
  Dataplane dataplane = Dataplane::Proxy;
};
Status create_service(State&, const ServiceRequest&);
// Every endpoint and set of the service moves to `plane`; returns the one it had.
Result<Dataplane> set_dataplane(State&, std::string_view service, Dataplane plane);
// The service answers on `vip` from now on: every endpoint and set moves with
// it. Returns the VIP it had. Every rule of the whole state holds after (a
// public port another service already serves on that VIP is a conflict).
Result<IpAddress> set_vip(State&, std::string_view service, const IpAddress& vip);
// Refuses a service that still has VMs unless `with_vms`.
Result<std::vector<std::string>> delete_service(State&, std::string_view name, bool with_vms);

// --- VMs --------------------------------------------------------------------
struct EndpointSpec {
  std::string name;
  Protocol protocol = Protocol::Tcp;
  std::uint16_t public_port = 0;
  std::uint16_t private_port = 0;
};
// NAME:PROTO:PUBLIC:PRIVATE, as typed after --endpoint.
Result<EndpointSpec> parse_endpoint_spec(std::string_view text);

struct VmRequest {
  std::string name;
  std::string cloud_service;  // From Gallery; empty with quick
  bool quick = false;         // Quick Create: the service is named after the VM
  Os os = Os::Linux;
  std::optional<std::string> image;
  std::optional<IpAddress> private_ip;
  std::vector<EndpointSpec> endpoints;
  bool default_endpoints = true;
  // A missing cloud service whose name is close to an existing one's is a
  // typo (`--cloud-service wbe`), refused with a did-you-mean, unless the
  // user says it is new.
  bool new_service = false;
};
struct VmCreated {
  std::string cloud_service;
  bool service_created = false;
};
Result<VmCreated> create_vm(State&, const VmRequest&);
Status delete_vm(State&, std::string_view name);

// --- endpoints --------------------------------------------------------------
struct EndpointRequest {
  std::string vm;
  EndpointSpec spec;
  std::optional<std::uint32_t> idle_timeout_min;
  std::string lbset;  // join (or create) this set
  SetOptions set_options;
  std::optional<std::uint32_t> weight;  // in the set
};
struct EndpointAdded {
  bool set_created = false;
};
Result<EndpointAdded> add_endpoint(State&, const EndpointRequest&);
Status remove_endpoint(State&, std::string_view vm, std::string_view endpoint);

// `endpoint set`: what is given changes, every rule checked again. A
// member's public port is its set's (refused here); an unpublished
// endpoint is published by giving it one.
struct EndpointUpdate {
  std::string vm, endpoint;
  std::optional<std::uint16_t> public_port, private_port;
  std::optional<std::uint32_t> idle_timeout_min;
  bool any() const { return public_port || private_port || idle_timeout_min; }
};
// The endpoint as it was.
Result<Endpoint> update_endpoint(State&, const EndpointUpdate&);

// The endpoints ("vm/endpoint") whose ACL changed: every member of the set
// when the endpoint is in one, since a set's members share one ACL.
Result<std::vector<std::string>> add_acl_rule(State&, std::string_view vm, std::string_view endpoint, AclRule);
Result<std::vector<std::string>> remove_acl_rule(State&, std::string_view vm, std::string_view endpoint,
                                                 std::uint32_t order);

// --- load-balanced sets -----------------------------------------------------
// What became of a member endpoint when it left its set: removed with it
// (not kept), kept unpublished (to 0), or kept as the VM's own endpoint on a
// public port of its own (`to`).
struct PortMove {
  std::string vm, endpoint;
  std::uint16_t from = 0, to = 0;
  bool kept = false;
};

struct LbsetCreateRequest {
  std::string set, vm, endpoint;
  // Given together, they make the endpoint first.
  std::optional<Protocol> protocol;
  std::optional<std::uint16_t> public_port, private_port;
  SetOptions options;
  std::optional<std::uint32_t> weight;  // the first member's
};
struct LbsetCreated {
  bool endpoint_created = false;
};
Result<LbsetCreated> create_lbset(State&, const LbsetCreateRequest&);

struct LbsetJoinRequest {
  std::string set, vm;
  std::optional<std::string> endpoint;  // default: the set's endpoint name
  std::optional<std::uint16_t> private_port;
  std::optional<std::uint32_t> weight;
};
struct Joined {
  std::string endpoint;
  bool existing = false;  // an endpoint the VM had was moved into the set
};
Result<Joined> join_lbset(State&, const LbsetJoinRequest&);

// The VM's endpoint stays, out of the set, on a free public port.
// A member that leaves is never published on a port of its own unless asked:
// without `public_port` its endpoint goes with it; with one, it stays on that
// port (which must be free), keeping the set's ACL and PROXY protocol.
Result<PortMove> leave_lbset(State&, std::string_view set, std::string_view vm,
                             std::optional<std::uint16_t> public_port = std::nullopt);
Status update_lbset(State&, const SetRef&, const SetOptions&);

// The VM's member of a set gets `weight` (kWeightMin..kWeightMax); returns
// the one it had.
struct WeightChange {
  std::string service, endpoint;
  std::uint32_t before = kWeightDefault;
};
Result<WeightChange> set_weight(State&, std::string_view set, std::string_view vm, std::uint32_t weight);

// Drain (or undrain) the VM's member of a set, found in the VM's cloud service.
struct AdminChange {
  std::string service, endpoint;
  AdminState before = AdminState::Up;
};
Result<AdminChange> set_admin_state(State&, std::string_view set, std::string_view vm, AdminState);
// What becomes of a deleted set's members. The contract (v1) keeps their
// endpoints on their VMs, no longer in a set: by default unpublished (no
// public port: deleting a set exposes no backend); Publish puts each on a
// public port of its own (the set's for the first, the next free ones for
// the others); Remove takes them away with the set.
enum class SetMembersAfterDelete { Unpublish, Publish, Remove };
Result<std::vector<PortMove>> delete_lbset(State&, const SetRef&,
                                           SetMembersAfterDelete = SetMembersAfterDelete::Unpublish);

}  // namespace azlb::model
