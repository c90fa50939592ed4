// The platform's rules as pure functions over State. Every object enters a
// State through one of the insert_* functions, which check every rule that
// involves it; the TOML loader and the commands in ops.hpp both go through
// them, so a rule is written exactly once.
#pragma once

#include <bitset>
#include <string_view>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "model/state.hpp"

namespace azlb::model {

// Lookups. The *_or_error forms give the user a "did you mean" hint.
const CloudService* find_service(const State&, std::string_view name);
CloudService* find_service(State&, std::string_view name);
const Vm* find_vm(const State&, std::string_view name);
Vm* find_vm(State&, std::string_view name);
const Endpoint* find_endpoint(const Vm&, std::string_view name);
Endpoint* find_endpoint(Vm&, std::string_view name);
const LoadBalancedSet* find_lbset(const CloudService&, std::string_view name);
LoadBalancedSet* find_lbset(CloudService&, std::string_view name);

Result<CloudService*> service_or_error(State&, std::string_view name);
Result<Vm*> vm_or_error(State&, std::string_view name);
Result<Endpoint*> endpoint_or_error(Vm&, std::string_view name);
Result<LoadBalancedSet*> lbset_or_error(CloudService&, std::string_view name);

// A set named by the user: in `cloud_service` if given, else the one set of
// that name anywhere (ambiguity is a usage error naming the services).
struct SetRef {
  std::string name;
  std::string cloud_service;  // empty: search every service
};
struct SetLocation {
  CloudService* service;
  LoadBalancedSet* set;
};
Result<SetLocation> locate_set(State&, const SetRef&);

// The ACL that applies to an endpoint: its set's when it is in one.
const std::vector<AclRule>& acl_of(const State&, const Vm&, const Endpoint&);

// The PROXY protocol an endpoint's connections get: its set's when it is in one.
ProxyProtocol proxy_protocol_of(const State&, const Vm&, const Endpoint&);

// The set's members in state order (VM order, then endpoint order).
std::vector<Member> members_of(const State&, const CloudService&, const LoadBalancedSet&);
std::vector<const Vm*> vms_of(const State&, const CloudService&);

// Single-object rules.
Status check_probe(const Probe&);
// Text a user gives (an image label, an ACL description, a probe path): valid
// UTF-8, no control characters (CR, LF, NUL...), at most `max_bytes`.
Status check_text(std::string_view what, std::string_view value, std::size_t max_bytes);
Status check_acl(const std::vector<AclRule>&);
// Rules are kept in the order they are evaluated: ascending `order`.
void sort_acl(std::vector<AclRule>&);
Status check_endpoint_fields(const Endpoint&);
// A PROXY protocol header is sent on tcp only. `what` names the endpoint or set.
Status check_proxy_protocol(std::string_view what, Protocol, ProxyProtocol);
// A NAT cloud service sends no PROXY protocol (its members see the client).
Status check_plane_fits(const CloudService&, std::string_view what, ProxyProtocol);
// Direct server return needs a nat service: there is no connection of the
// engine's that a member could answer past.
Status check_dsr_plane(const CloudService&, const LoadBalancedSet&);
// A member of a direct-server-return set receives the packet as the client
// sent it: its private port is the set's public port.
Status check_dsr_port(const LoadBalancedSet&, std::string_view vm, const Endpoint&);
// A NAT cloud service's VIP and subnet (so its VMs' private IPs) are of one family.
Status check_nat_family(const CloudService&);

// What a whole state being built (loaded or validated) holds so far, so that
// each insertion checks its rules against an index instead of scanning every
// VM: names and private IPs taken, each set's members, and who holds each
// public port. Building a state is then linear (as ninja resolves each name
// once); without it 40,000 VMs took 8.7 s to load.
struct BuildIndex {
  // Who holds a public port: a set (its members share it) or one endpoint.
  struct Holder {
    std::string service, lbset, vm, endpoint;
  };
  struct SetSeen {
    std::unordered_set<std::string> vms;
  };
  std::unordered_set<std::string> vm_names;
  std::unordered_set<std::string> private_ips;        // every VM's address: unique on the host
  std::unordered_map<std::string, SetSeen> sets;       // service '\n' set
  std::unordered_map<std::uint32_t, std::vector<Holder>> holders;  // protocol << 16 | port

  static std::uint32_t port_key(Protocol p, std::uint16_t port) { return std::uint32_t(p) << 16 | port; }
  const std::vector<Holder>* holders_of(Protocol p, std::uint16_t port) const;
  void hold(Protocol, std::uint16_t port, Holder);
};

// A public port (with its protocol) is used once per listening address, except
// by the endpoints of one set. `lbset` names the set that may share it.
Status check_public_port_free(const State&, const CloudService&, Protocol, std::uint16_t port,
                              std::string_view lbset, const BuildIndex* index = nullptr);
bool public_port_free(const State&, const CloudService&, Protocol, std::uint16_t port);

// Checked insertions.
Status insert_service(State&, CloudService);  // without sets
// `index`, when building a whole state: see BuildIndex.
Status insert_lbset(State&, std::string_view service, LoadBalancedSet, BuildIndex* index = nullptr);
// The other cloud services whose subnet overlaps `svc`'s: allowed (no
// private address is given twice), but worth a warning.
std::vector<const CloudService*> overlapping_services(const State&, const CloudService& svc);
Status insert_vm(State&, Vm, BuildIndex* index = nullptr);  // without endpoints
Status insert_endpoint(State&, std::string_view vm, Endpoint, BuildIndex* index = nullptr);

// Every rule over a whole state, e.g. one built by hand.
Status validate(const State&);

}  // namespace azlb::model
