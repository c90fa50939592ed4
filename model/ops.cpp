#include "model/ops.hpp"
#include "model/ops_support.hpp"

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
    // Another service's VM may hold it too, where the subnets overlap.
    bool used = std::any_of(s.vms.begin(), s.vms.end(), [&](auto& vm) { return vm.private_ip == *ip; });
    if (!used) return *ip;
  }
  return conflict("cloud service " + quote(svc.name) + "'s subnet " + svc.subnet.to_string() + " has no free address");
}

std::string default_image(Os os) {
  return os == Os::Linux ? "Ubuntu Server 24.04 LTS" : "Windows Server 2022 Datacenter";
}

std::vector<EndpointSpec> default_endpoints(Os os) {
  if (os == Os::Linux) return {{"SSH", Protocol::Tcp, 22, 22}};
  return {{"RemoteDesktop", Protocol::Tcp, 3389, 3389}, {"PowerShell", Protocol::Tcp, 5986, 5986}};
}

}  // namespace

bool SetOptions::any() const {
  return probe_protocol || probe_port || probe_path || probe_interval_s || probe_timeout_s || no_probe ||
         when_all_down || distribution || proxy_protocol || direct_server_return;
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

Result<IpAddress> set_vip(State& s, std::string_view name, const IpAddress& vip) {
  AZLB_ASSIGN(svc, service_or_error(s, name));
  const IpAddress before = svc->vip;
  svc->vip = vip;
  AZLB_TRY(check_nat_family(*svc));
  AZLB_TRY(validate(s));
  return before;
}

Result<Dataplane> set_dataplane(State& s, std::string_view name, Dataplane plane) {
  AZLB_ASSIGN(svc, service_or_error(s, name));
  const Dataplane before = svc->dataplane;
  svc->dataplane = plane;
  AZLB_TRY(check_nat_family(*svc));
  for (auto& set : svc->lbsets) {
    AZLB_TRY(check_plane_fits(*svc, "load-balanced set " + quote(set.name), set.proxy_protocol));
    AZLB_TRY(check_dsr_plane(*svc, set));
  }
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
    if (!r.quick && !r.new_service) {
      std::vector<std::string> names;
      for (auto& svc : s.services) names.push_back(svc.name);
      if (auto near = closest_name(out.cloud_service, names))
        return not_found("no cloud service " + quote(out.cloud_service) + "; did you mean '" + *near +
                         "'? (--new-service makes a new one, as does 'azlb service create')");
    }
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
  // 0 would make it unpublished, which only a deleted set's members are.
  AZLB_TRY(check_port("public port", r.spec.public_port));
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
    if (r.weight) return usage_error("--weight is a member's share of its set's flows: it needs --lbset");
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
    ns.direct_server_return = set_options.direct_server_return.value_or(false);
    AZLB_TRY(insert_lbset(s, svc->name, std::move(ns)));
    out.set_created = true;
  }
  ep.lbset = r.lbset;
  ep.weight = r.weight.value_or(kWeightDefault);
  AZLB_TRY(insert_endpoint(s, r.vm, std::move(ep)));
  return out;
}

Status remove_endpoint(State& s, std::string_view vm_name, std::string_view name) {
  AZLB_ASSIGN(vm, vm_or_error(s, vm_name));
  AZLB_ASSIGN(ep, endpoint_or_error(*vm, name));
  detach(*vm, ep);
  return ok();
}

Result<Endpoint> update_endpoint(State& s, const EndpointUpdate& u) {
  AZLB_ASSIGN(vm, vm_or_error(s, u.vm));
  AZLB_ASSIGN(ep, endpoint_or_error(*vm, u.endpoint));
  if (!u.any()) return usage_error("nothing to change: give --public-port, --private-port or --idle-timeout");
  if (u.public_port && !ep->lbset.empty())
    return usage_error("endpoint " + quote(ep->name) + " of VM " + quote(vm->name) + " is in load-balanced set " +
                       quote(ep->lbset) + ", whose public port it has; change the set's members or leave it first");
  if (u.public_port) AZLB_TRY(check_port("public port", *u.public_port));
  const Endpoint before = *ep;
  auto d = detach(*vm, ep);
  if (u.public_port) d.endpoint.public_port = *u.public_port;
  if (u.private_port) d.endpoint.private_port = *u.private_port;
  if (u.idle_timeout_min) d.endpoint.idle_timeout_min = *u.idle_timeout_min;
  if (!d.endpoint.lbset.empty()) {
    AZLB_ASSIGN(svc, service_or_error(s, vm->cloud_service));
    AZLB_ASSIGN(set, lbset_or_error(*svc, d.endpoint.lbset));
    AZLB_TRY(check_dsr_port(*set, vm->name, d.endpoint));
  }
  AZLB_TRY(reattach(s, u.vm, std::move(d)));
  return before;
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

}  // namespace azlb::model
