#include "model/ops.hpp"

#include "model/text.hpp"

#include <algorithm>
#include <charconv>

namespace azlb::model {

namespace {

// Azure reserved the first addresses of a subnet; DIPs started at .4.
constexpr std::uint64_t kFirstDipOffset = 4;
// Where the portal took the public ports of a 2nd, 3rd... VM's default endpoints.
constexpr std::uint16_t kDefaultEndpointPortBase = 50000;

Result<Cidr> default_subnet(const State& s) {
  for (unsigned n = 1; n < 256; ++n) {
    Cidr c{};
    c.base.family = Family::V4;
    c.base.bytes = {127, 0, static_cast<std::uint8_t>(n), 0};
    c.prefix = 24;
    bool used = std::any_of(s.services.begin(), s.services.end(), [&](auto& svc) { return svc.subnet == c; });
    if (!used) return c;
  }
  return conflict("no free 127.0.N.0/24 subnet is left; give the cloud service a --subnet");
}

// The /24 (IPv4) or /64 (IPv6) that holds `ip`: the subnet a service gets when
// its first VM names its own private IP.
Cidr subnet_around(const IpAddress& ip) {
  Cidr c{ip, static_cast<std::uint8_t>(ip.family == Family::V4 ? 24 : 64)};
  for (std::size_t i = c.prefix / 8; i < c.base.size(); ++i) c.base.bytes[i] = 0;
  return c;
}

Result<IpAddress> free_private_ip(const State& s, const CloudService& svc) {
  for (std::uint64_t off = kFirstDipOffset; off < kFirstDipOffset + 65536; ++off) {
    auto ip = nth_address(svc.subnet, off);
    if (!ip) break;
    bool used = std::any_of(s.vms.begin(), s.vms.end(),
                            [&](auto& vm) { return vm.cloud_service == svc.name && vm.private_ip == *ip; });
    if (!used) return *ip;
  }
  return conflict("cloud service " + quote(svc.name) + "'s subnet " + svc.subnet.to_string() + " has no free address");
}

// `preferred` if free, else the lowest free port from `start` up, then from 1024.
Result<std::uint16_t> free_public_port(const State& s, const CloudService& svc, Protocol proto,
                                       std::uint16_t preferred, std::uint16_t start) {
  if (preferred && public_port_free(s, svc, proto, preferred)) return preferred;
  for (unsigned p = start; p <= 65535; ++p)
    if (public_port_free(s, svc, proto, static_cast<std::uint16_t>(p))) return static_cast<std::uint16_t>(p);
  for (unsigned p = 1024; p < start; ++p)
    if (public_port_free(s, svc, proto, static_cast<std::uint16_t>(p))) return static_cast<std::uint16_t>(p);
  return conflict("cloud service " + quote(svc.name) + " has no free public port");
}

std::string default_image(Os os) {
  return os == Os::Linux ? "Ubuntu Server 24.04 LTS" : "Windows Server 2022 Datacenter";
}

std::vector<EndpointSpec> default_endpoints(Os os) {
  if (os == Os::Linux) return {{"SSH", Protocol::Tcp, 22, 22}};
  return {{"RemoteDesktop", Protocol::Tcp, 3389, 3389}, {"PowerShell", Protocol::Tcp, 5986, 5986}};
}

Endpoint endpoint_from(const EndpointSpec& spec) {
  Endpoint e;
  e.name = spec.name;
  e.protocol = spec.protocol;
  e.public_port = spec.public_port;
  e.private_port = spec.private_port;
  return e;
}

// Takes an endpoint out of its VM so that it can be changed and put back
// through insert_endpoint, which checks every rule again.
struct Detached {
  Endpoint endpoint;
  std::size_t index;
};
Detached detach(Vm& vm, const Endpoint* ep) {
  auto it = vm.endpoints.begin() + (ep - vm.endpoints.data());
  Detached d{std::move(*it), static_cast<std::size_t>(it - vm.endpoints.begin())};
  vm.endpoints.erase(it);
  return d;
}

// Puts a changed endpoint back where it was, so the state file reads the same.
Status reattach(State& s, std::string_view vm_name, Detached d) {
  AZLB_TRY(insert_endpoint(s, vm_name, std::move(d.endpoint)));
  auto& eps = find_vm(s, vm_name)->endpoints;
  std::rotate(eps.begin() + static_cast<std::ptrdiff_t>(d.index), eps.end() - 1, eps.end());
  return ok();
}

// Puts an endpoint that has left its set back on a public port of its own:
// its old one if nobody holds it any more, else the next free one. It keeps
// the set's ACL as its own, so that leaving lets in nobody new, and the set's
// PROXY protocol, which its server expects.
Result<PortMove> settle_outside_set(State& s, std::string_view svc_name, std::string_view vm_name, Detached d,
                                    const std::vector<AclRule>& set_acl, ProxyProtocol set_proxy_protocol) {
  PortMove move{std::string(vm_name), d.endpoint.name, d.endpoint.public_port, 0};
  d.endpoint.lbset.clear();
  d.endpoint.acl = set_acl;
  d.endpoint.proxy_protocol = set_proxy_protocol;
  // Out of the set it takes its own traffic again: drained was about the set.
  d.endpoint.admin_state = AdminState::Up;
  auto start = static_cast<std::uint16_t>(std::min<unsigned>(d.endpoint.public_port + 1u, 65535u));
  AZLB_ASSIGN(port, free_public_port(s, *find_service(s, svc_name), d.endpoint.protocol, d.endpoint.public_port,
                                     start));
  move.to = d.endpoint.public_port = port;
  AZLB_TRY(reattach(s, vm_name, std::move(d)));
  return move;
}

}  // namespace

bool SetOptions::any() const {
  return probe_protocol || probe_port || probe_path || probe_interval_s || probe_timeout_s || no_probe ||
         when_all_down || distribution || proxy_protocol;
}

Result<std::optional<Probe>> resolve_probe(const std::optional<Probe>& current, const SetOptions& o,
                                           std::uint16_t default_port) {
  bool probe_given = o.probe_protocol || o.probe_port || o.probe_path || o.probe_interval_s || o.probe_timeout_s;
  if (o.no_probe && probe_given) return usage_error("--no-probe cannot be combined with --probe-* options");
  if (o.no_probe) return std::optional<Probe>{};
  Probe p = current.value_or(Probe{ProbeProtocol::Tcp, default_port, "", kProbeIntervalDefault,
                                   kProbeTimeoutDefault});
  if (o.probe_protocol && *o.probe_protocol != p.protocol) {
    p.protocol = *o.probe_protocol;
    // Switching kind: http starts at "/", and tcp has no path at all.
    p.path = p.protocol == ProbeProtocol::Http ? "/" : "";
  }
  if (o.probe_port) p.port = *o.probe_port;
  if (o.probe_path) p.path = *o.probe_path;
  if (o.probe_interval_s) p.interval_s = *o.probe_interval_s;
  if (o.probe_timeout_s) p.timeout_s = *o.probe_timeout_s;
  AZLB_TRY(check_probe(p));
  return std::optional<Probe>{p};
}

Status create_service(State& s, const ServiceRequest& r) {
  CloudService svc;
  svc.name = r.name;
  AZLB_TRY(check_name("cloud service name", svc.name));
  if (auto vip = r.vip) {
    svc.vip = *vip;
  } else {
    svc.vip.bytes = {127, 0, 0, 1};
  }
  svc.dataplane = r.dataplane;
  if (r.subnet) {
    svc.subnet = *r.subnet;
  } else {
    AZLB_ASSIGN(subnet, default_subnet(s));
    svc.subnet = subnet;
  }
  return insert_service(s, std::move(svc));
}

Result<Dataplane> set_dataplane(State& s, std::string_view name, Dataplane plane) {
  AZLB_ASSIGN(svc, service_or_error(s, name));
  const Dataplane before = svc->dataplane;
  svc->dataplane = plane;
  for (auto& set : svc->lbsets) AZLB_TRY(check_plane_fits(*svc, "load-balanced set " + quote(set.name), set.proxy_protocol));
  for (auto* vm : vms_of(s, *svc))
    for (auto& ep : vm->endpoints)
      AZLB_TRY(check_plane_fits(*svc, "endpoint " + quote(ep.name) + " of VM " + quote(vm->name), ep.proxy_protocol));
  return before;
}

Result<std::vector<std::string>> delete_service(State& s, std::string_view name, bool with_vms) {
  AZLB_ASSIGN(svc, service_or_error(s, name));
  std::vector<std::string> vms;
  for (auto* vm : vms_of(s, *svc)) vms.push_back(vm->name);
  if (!vms.empty() && !with_vms) {
    std::string list;
    for (auto& v : vms) list += (list.empty() ? "" : ", ") + v;
    return conflict("cloud service " + quote(name) + " still has VMs (" + list +
                    "); delete them first or pass --with-vms");
  }
  std::erase_if(s.vms, [&](auto& vm) { return vm.cloud_service == name; });
  std::erase_if(s.services, [&](auto& c) { return c.name == name; });
  return vms;
}

Result<EndpointSpec> parse_endpoint_spec(std::string_view text) {
  std::vector<std::string_view> parts;
  for (std::size_t start = 0;;) {
    auto colon = text.find(':', start);
    parts.push_back(text.substr(start, colon - start));
    if (colon == std::string_view::npos) break;
    start = colon + 1;
  }
  if (parts.size() != 4)
    return usage_error("invalid endpoint " + quote(text) + ": expected NAME:PROTOCOL:PUBLIC:PRIVATE");
  EndpointSpec e;
  e.name = parts[0];
  AZLB_TRY(check_name("endpoint name", e.name));
  AZLB_ASSIGN(proto, parse_protocol(parts[1]));
  AZLB_ASSIGN(pub, parse_u16("public port", parts[2]));
  AZLB_ASSIGN(priv, parse_u16("private port", parts[3]));
  AZLB_TRY(check_port("public port", pub));
  AZLB_TRY(check_port("private port", priv));
  e.protocol = proto;
  e.public_port = pub;
  e.private_port = priv;
  return e;
}

Result<VmCreated> create_vm(State& s, const VmRequest& r) {
  AZLB_TRY(check_name("VM name", r.name));
  if (find_vm(s, r.name)) return conflict("VM " + quote(r.name) + " already exists");
  VmCreated out;
  if (r.quick) {
    if (!r.cloud_service.empty()) return usage_error("--quick names its own cloud service; drop --cloud-service");
    // Quick Create named the service after the VM; a taken name gets a suffix.
    out.cloud_service = r.name;
    for (int n = 2; find_service(s, out.cloud_service); ++n) out.cloud_service = r.name + "-" + std::to_string(n);
  } else {
    if (r.cloud_service.empty()) return usage_error("--cloud-service is required (or use --quick)");
    out.cloud_service = r.cloud_service;
  }
  if (!find_service(s, out.cloud_service)) {
    ServiceRequest sr{out.cloud_service, std::nullopt, std::nullopt};
    if (r.private_ip) sr.subnet = subnet_around(*r.private_ip);
    AZLB_TRY(create_service(s, sr));
    out.service_created = true;
  }
  auto& svc = *find_service(s, out.cloud_service);

  Vm vm;
  vm.name = r.name;
  vm.cloud_service = svc.name;
  vm.os = r.os;
  vm.image = r.image.value_or(default_image(r.os));
  vm.created_by = r.quick ? CreatedBy::Quick : CreatedBy::Gallery;
  if (r.private_ip) {
    vm.private_ip = *r.private_ip;
  } else {
    AZLB_ASSIGN(ip, free_private_ip(s, svc));
    vm.private_ip = ip;
  }
  AZLB_TRY(insert_vm(s, std::move(vm)));

  for (auto& spec : r.endpoints) AZLB_TRY(insert_endpoint(s, r.name, endpoint_from(spec)));
  if (r.default_endpoints) {
    for (auto spec : default_endpoints(r.os)) {
      if (find_endpoint(*find_vm(s, r.name), spec.name)) continue;  // the user's own takes its place
      AZLB_ASSIGN(port, free_public_port(s, *find_service(s, out.cloud_service), spec.protocol, spec.public_port,
                                         kDefaultEndpointPortBase));
      spec.public_port = port;
      AZLB_TRY(insert_endpoint(s, r.name, endpoint_from(spec)));
    }
  }
  return out;
}

Status delete_vm(State& s, std::string_view name) {
  AZLB_TRY(vm_or_error(s, name));
  std::erase_if(s.vms, [&](auto& vm) { return vm.name == name; });
  return ok();
}

Result<EndpointAdded> add_endpoint(State& s, const EndpointRequest& r) {
  AZLB_ASSIGN(vm, vm_or_error(s, r.vm));
  Endpoint ep = endpoint_from(r.spec);
  if (r.idle_timeout_min) ep.idle_timeout_min = *r.idle_timeout_min;
  // The endpoint's own choice; in a set, insert_endpoint gives it to a new
  // set or checks it against an existing one's.
  ep.proxy_protocol = r.set_options.proxy_protocol.value_or(ProxyProtocol::None);
  SetOptions set_options = r.set_options;
  set_options.proxy_protocol.reset();
  EndpointAdded out;
  if (r.lbset.empty()) {
    if (set_options.any()) return usage_error("probe and distribution options need --lbset");
    AZLB_TRY(insert_endpoint(s, r.vm, std::move(ep)));
    return out;
  }
  AZLB_ASSIGN(svc, service_or_error(s, vm->cloud_service));
  if (find_lbset(*svc, r.lbset)) {
    if (set_options.any())
      return usage_error("load-balanced set " + quote(r.lbset) + " already exists; change it with 'azlb lbset set'");
  } else {
    LoadBalancedSet ns;
    ns.name = r.lbset;
    ns.protocol = ep.protocol;
    ns.public_port = ep.public_port;
    AZLB_ASSIGN(probe, resolve_probe(std::nullopt, set_options, ep.private_port));
    ns.probe = probe;
    ns.distribution = set_options.distribution.value_or(Distribution::FiveTuple);
    ns.when_all_down = set_options.when_all_down.value_or(WhenAllDown::Refuse);
    AZLB_TRY(insert_lbset(s, svc->name, std::move(ns)));
    out.set_created = true;
  }
  ep.lbset = r.lbset;
  AZLB_TRY(insert_endpoint(s, r.vm, std::move(ep)));
  return out;
}

Status remove_endpoint(State& s, std::string_view vm_name, std::string_view name) {
  AZLB_ASSIGN(vm, vm_or_error(s, vm_name));
  AZLB_ASSIGN(ep, endpoint_or_error(*vm, name));
  detach(*vm, ep);
  return ok();
}

namespace {

template <class Change>
Result<std::vector<std::string>> change_acl(State& s, std::string_view vm_name, std::string_view ep_name,
                                            Change change) {
  AZLB_ASSIGN(vm, vm_or_error(s, vm_name));
  AZLB_ASSIGN(ep, endpoint_or_error(*vm, ep_name));
  // A member's ACL is its set's: one list, which every member then reports.
  std::vector<AclRule>* acl = &ep->acl;
  std::vector<std::string> changed{vm->name + "/" + ep->name};
  if (!ep->lbset.empty()) {
    AZLB_ASSIGN(svc, service_or_error(s, vm->cloud_service));
    AZLB_ASSIGN(set, lbset_or_error(*svc, ep->lbset));
    acl = &set->acl;
    changed.clear();
    for (auto& m : members_of(s, *svc, *set)) changed.push_back(m.vm->name + "/" + m.endpoint->name);
  }
  auto next = *acl;  // a refused change leaves the list as it was
  AZLB_TRY(change(next));
  AZLB_TRY(check_acl(next));
  sort_acl(next);
  *acl = std::move(next);
  return changed;
}

}  // namespace

Result<std::vector<std::string>> add_acl_rule(State& s, std::string_view vm, std::string_view endpoint,
                                              AclRule rule) {
  return change_acl(s, vm, endpoint, [&](std::vector<AclRule>& acl) -> Status {
    acl.push_back(rule);
    return ok();
  });
}

Result<std::vector<std::string>> remove_acl_rule(State& s, std::string_view vm, std::string_view endpoint,
                                                 std::uint32_t order) {
  return change_acl(s, vm, endpoint, [&](std::vector<AclRule>& acl) -> Status {
    if (std::erase_if(acl, [&](auto& r) { return r.order == order; }) == 0)
      return not_found("no ACL rule with order " + std::to_string(order) + " on endpoint " + quote(endpoint));
    return ok();
  });
}

Result<LbsetCreated> create_lbset(State& s, const LbsetCreateRequest& r) {
  AZLB_ASSIGN(vm, vm_or_error(s, r.vm));
  AZLB_ASSIGN(svc, service_or_error(s, vm->cloud_service));
  AZLB_TRY(check_name("load-balanced set name", r.set));
  if (find_lbset(*svc, r.set))
    return conflict("load-balanced set " + quote(r.set) + " already exists in cloud service " + quote(svc->name));
  LbsetCreated out;
  bool make = r.protocol || r.public_port || r.private_port;
  if (make) {
    if (!r.public_port || !r.private_port)
      return usage_error("making endpoint " + quote(r.endpoint) + " for the set needs both --public-port and --private-port");
    if (find_endpoint(*vm, r.endpoint))
      return conflict("endpoint " + quote(r.endpoint) + " already exists on VM " + quote(vm->name) +
                      "; drop --protocol/--public-port/--private-port to use it");
    // Checked by insert_endpoint when it goes back in below, inside the set.
    vm->endpoints.push_back(endpoint_from({r.endpoint, r.protocol.value_or(Protocol::Tcp), *r.public_port,
                                           *r.private_port}));
    out.endpoint_created = true;
  }
  AZLB_ASSIGN(ep, endpoint_or_error(*vm, r.endpoint));
  if (!ep->lbset.empty())
    return conflict("endpoint " + quote(ep->name) + " of VM " + quote(vm->name) + " is already in load-balanced set " +
                    quote(ep->lbset));
  auto d = detach(*vm, ep);
  LoadBalancedSet set;
  set.name = r.set;
  set.protocol = d.endpoint.protocol;
  set.public_port = d.endpoint.public_port;
  AZLB_ASSIGN(probe, resolve_probe(std::nullopt, r.options, d.endpoint.private_port));
  set.probe = probe;
  set.distribution = r.options.distribution.value_or(Distribution::FiveTuple);
  set.when_all_down = r.options.when_all_down.value_or(WhenAllDown::Refuse);
  // Given here, it is the set's; else the first member brings its own (insert_endpoint).
  if (r.options.proxy_protocol) {
    set.proxy_protocol = *r.options.proxy_protocol;
    d.endpoint.proxy_protocol = ProxyProtocol::None;
  }
  AZLB_TRY(insert_lbset(s, svc->name, std::move(set)));
  d.endpoint.lbset = r.set;
  AZLB_TRY(reattach(s, r.vm, std::move(d)));
  return out;
}

Result<Joined> join_lbset(State& s, const LbsetJoinRequest& r) {
  AZLB_ASSIGN(vm, vm_or_error(s, r.vm));
  AZLB_ASSIGN(svc, service_or_error(s, vm->cloud_service));
  AZLB_ASSIGN(set, lbset_or_error(*svc, r.set));
  auto members = members_of(s, *svc, *set);
  const Endpoint* first = members.empty() ? nullptr : members.front().endpoint;
  Joined out;
  if (r.endpoint) {
    out.endpoint = *r.endpoint;
  } else if (first) {
    out.endpoint = first->name;
  } else {
    return usage_error("load-balanced set " + quote(r.set) + " has no members to take the endpoint name from; give --endpoint");
  }
  for (auto& m : members)
    if (m.vm == vm)
      return conflict("VM " + quote(vm->name) + " is already in load-balanced set " + quote(set->name) +
                      " with endpoint " + quote(m.endpoint->name));

  if (auto* existing = find_endpoint(*vm, out.endpoint)) {
    if (!existing->lbset.empty())
      return conflict("endpoint " + quote(existing->name) + " of VM " + quote(vm->name) +
                      " is already in load-balanced set " + quote(existing->lbset));
    if (existing->protocol != set->protocol)
      return conflict("endpoint " + quote(existing->name) + " is " + std::string(to_string(existing->protocol)) +
                      " but load-balanced set " + quote(set->name) + " is " + std::string(to_string(set->protocol)));
    // Its own ACL rules, if any, must be the set's (insert_endpoint checks).
    auto d = detach(*vm, existing);
    d.endpoint.lbset = set->name;
    d.endpoint.public_port = set->public_port;
    if (r.private_port) d.endpoint.private_port = *r.private_port;
    AZLB_TRY(reattach(s, r.vm, std::move(d)));
    out.existing = true;
    return out;
  }
  Endpoint ep;
  ep.name = out.endpoint;
  ep.protocol = set->protocol;
  ep.public_port = set->public_port;
  ep.private_port = r.private_port.value_or(first ? first->private_port : set->public_port);
  ep.idle_timeout_min = first ? first->idle_timeout_min : kIdleTimeoutDefault;
  ep.lbset = set->name;
  AZLB_TRY(insert_endpoint(s, r.vm, std::move(ep)));
  return out;
}

Result<PortMove> leave_lbset(State& s, std::string_view set_name, std::string_view vm_name) {
  AZLB_ASSIGN(vm, vm_or_error(s, vm_name));
  AZLB_ASSIGN(svc, service_or_error(s, vm->cloud_service));
  AZLB_ASSIGN(set, lbset_or_error(*svc, set_name));
  for (auto& m : members_of(s, *svc, *set))
    if (m.vm == vm)
      return settle_outside_set(s, svc->name, vm->name, detach(*vm, m.endpoint), set->acl, set->proxy_protocol);
  return not_found("VM " + quote(vm_name) + " is not in load-balanced set " + quote(set_name));
}

Status update_lbset(State& s, const SetRef& ref, const SetOptions& o) {
  AZLB_ASSIGN(loc, locate_set(s, ref));
  if (!o.any())
    return usage_error("nothing to change: give probe, --distribution, --when-all-down or --proxy-protocol options");
  auto members = members_of(s, *loc.service, *loc.set);
  std::uint16_t default_port = members.empty() ? loc.set->public_port : members.front().endpoint->private_port;
  // `set` changes only what it is given: a --no-probe set stays unprobed
  // when only its distribution or when-all-down changes.
  if (o.no_probe || o.probe_protocol || o.probe_port || o.probe_path || o.probe_interval_s || o.probe_timeout_s) {
    AZLB_ASSIGN(probe, resolve_probe(loc.set->probe, o, default_port));
    loc.set->probe = probe;
  }
  if (o.distribution) loc.set->distribution = *o.distribution;
  if (o.when_all_down) loc.set->when_all_down = *o.when_all_down;
  if (o.proxy_protocol) {
    AZLB_TRY(check_proxy_protocol("load-balanced set " + quote(loc.set->name), loc.set->protocol, *o.proxy_protocol));
    AZLB_TRY(check_plane_fits(*loc.service, "load-balanced set " + quote(loc.set->name), *o.proxy_protocol));
    loc.set->proxy_protocol = *o.proxy_protocol;
  }
  return ok();
}

Result<AdminChange> set_admin_state(State& s, std::string_view set_name, std::string_view vm_name,
                                    AdminState state) {
  AZLB_ASSIGN(vm, vm_or_error(s, vm_name));
  AZLB_ASSIGN(svc, service_or_error(s, vm->cloud_service));
  AZLB_ASSIGN(set, lbset_or_error(*svc, set_name));
  for (auto& ep : vm->endpoints)
    if (ep.lbset == set->name) {
      AdminChange out{svc->name, ep.name, ep.admin_state};
      ep.admin_state = state;
      return out;
    }
  return not_found("VM " + quote(vm_name) + " is not in load-balanced set " + quote(set_name));
}

Result<std::vector<PortMove>> delete_lbset(State& s, const SetRef& ref) {
  AZLB_ASSIGN(loc, locate_set(s, ref));
  std::string svc_name = loc.service->name, set_name = loc.set->name;
  std::vector<std::pair<std::string, Detached>> detached;
  for (auto& m : members_of(s, *loc.service, *loc.set)) detached.emplace_back(m.vm->name, Detached{});
  // Take every member out before any goes back, so that the first finds the
  // set's port free and keeps it.
  for (auto& [vm_name, d] : detached) {
    Vm& vm = *find_vm(s, vm_name);
    auto it = std::find_if(vm.endpoints.begin(), vm.endpoints.end(), [&](auto& e) { return e.lbset == set_name; });
    d = detach(vm, &*it);
  }
  const std::vector<AclRule> acl = std::move(loc.set->acl);
  const ProxyProtocol proxy_protocol = loc.set->proxy_protocol;
  std::erase_if(loc.service->lbsets, [&](auto& x) { return x.name == set_name; });
  std::vector<PortMove> moves;
  for (auto& [vm_name, d] : detached) {
    AZLB_ASSIGN(move, settle_outside_set(s, svc_name, vm_name, std::move(d), acl, proxy_protocol));
    moves.push_back(std::move(move));
  }
  return moves;
}

}  // namespace azlb::model
