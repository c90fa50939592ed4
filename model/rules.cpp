#include "model/rules.hpp"
#include "model/text.hpp"

#include <algorithm>

namespace azlb::model {

namespace {

template <class C, class N>
auto find_named(C& items, N name) -> decltype(&items.front()) {
  for (auto& i : items)
    if (i.name == name) return &i;
  return nullptr;
}

template <class C>
std::vector<std::string> names_of(const C& items) {
  std::vector<std::string> out;
  for (auto& i : items) out.push_back(i.name);
  return out;
}
}  // namespace

const CloudService* find_service(const State& s, std::string_view n) { return find_named(s.services, n); }
CloudService* find_service(State& s, std::string_view n) { return find_named(s.services, n); }
// The last VM first: a state is built VM by VM, each followed by its endpoints.
const Vm* find_vm(const State& s, std::string_view n) {
  return !s.vms.empty() && s.vms.back().name == n ? &s.vms.back() : find_named(s.vms, n);
}
Vm* find_vm(State& s, std::string_view n) {
  return !s.vms.empty() && s.vms.back().name == n ? &s.vms.back() : find_named(s.vms, n);
}
const Endpoint* find_endpoint(const Vm& v, std::string_view n) { return find_named(v.endpoints, n); }
Endpoint* find_endpoint(Vm& v, std::string_view n) { return find_named(v.endpoints, n); }
const LoadBalancedSet* find_lbset(const CloudService& c, std::string_view n) { return find_named(c.lbsets, n); }
LoadBalancedSet* find_lbset(CloudService& c, std::string_view n) { return find_named(c.lbsets, n); }

Result<CloudService*> service_or_error(State& s, std::string_view n) {
  if (auto* c = find_service(s, n)) return c;
  return not_found_with_hint("cloud service", n, names_of(s.services));
}

Result<Vm*> vm_or_error(State& s, std::string_view n) {
  if (auto* v = find_vm(s, n)) return v;
  return not_found_with_hint("VM", n, names_of(s.vms));
}

Result<Endpoint*> endpoint_or_error(Vm& v, std::string_view n) {
  if (auto* e = find_endpoint(v, n)) return e;
  return not_found_with_hint("endpoint", n, names_of(v.endpoints), " on VM " + quote(v.name));
}

Result<LoadBalancedSet*> lbset_or_error(CloudService& c, std::string_view n) {
  if (auto* l = find_lbset(c, n)) return l;
  return not_found_with_hint("load-balanced set", n, names_of(c.lbsets), " in cloud service " + quote(c.name));
}

Result<SetLocation> locate_set(State& s, const SetRef& ref) {
  if (!ref.cloud_service.empty()) {
    AZLB_ASSIGN(svc, service_or_error(s, ref.cloud_service));
    AZLB_ASSIGN(set, lbset_or_error(*svc, ref.name));
    return SetLocation{svc, set};
  }
  std::vector<SetLocation> found;
  std::vector<std::string> all;
  for (auto& svc : s.services)
    for (auto& set : svc.lbsets) {
      all.push_back(set.name);
      if (set.name == ref.name) found.push_back({&svc, &set});
    }
  if (found.size() == 1) return found.front();
  if (found.empty()) return not_found_with_hint("load-balanced set", ref.name, all);
  std::string where;
  for (auto& f : found) where += (where.empty() ? "" : ", ") + f.service->name;
  return usage_error("load-balanced set " + quote(ref.name) + " exists in several cloud services (" + where +
                     "); name one with --cloud-service");
}

std::vector<Member> members_of(const State& s, const CloudService& svc, const LoadBalancedSet& set) {
  std::vector<Member> out;
  for (auto& vm : s.vms) {
    if (vm.cloud_service != svc.name) continue;
    for (auto& ep : vm.endpoints)
      if (ep.lbset == set.name) out.push_back({&vm, &ep});
  }
  return out;
}

const std::vector<AclRule>& acl_of(const State& s, const Vm& vm, const Endpoint& ep) {
  if (ep.lbset.empty()) return ep.acl;
  if (auto* svc = find_service(s, vm.cloud_service))
    if (auto* set = find_lbset(*svc, ep.lbset)) return set->acl;
  return ep.acl;  // not reached in a valid state
}

ProxyProtocol proxy_protocol_of(const State& s, const Vm& vm, const Endpoint& ep) {
  if (ep.lbset.empty()) return ep.proxy_protocol;
  if (auto* svc = find_service(s, vm.cloud_service))
    if (auto* set = find_lbset(*svc, ep.lbset)) return set->proxy_protocol;
  return ep.proxy_protocol;  // not reached in a valid state
}

std::vector<const Vm*> vms_of(const State& s, const CloudService& svc) {
  std::vector<const Vm*> out;
  for (auto& vm : s.vms)
    if (vm.cloud_service == svc.name) out.push_back(&vm);
  return out;
}

Status check_text(std::string_view what, std::string_view value, std::size_t max_bytes) {
  if (value.size() > max_bytes)
    return usage_error("invalid " + std::string(what) + ": " + std::to_string(value.size()) + " bytes, at most " +
                       std::to_string(max_bytes));
  if (!is_valid_utf8(value)) return usage_error("invalid " + std::string(what) + " " + quote(value) + ": not UTF-8");
  for (char c : value)
    if (static_cast<unsigned char>(c) < 0x20 || c == 0x7f)
      return usage_error("invalid " + std::string(what) + " " + quote(value) + ": control characters are not allowed");
  return ok();
}

Status check_probe(const Probe& p) {
  AZLB_TRY(check_port("probe port", p.port));
  AZLB_TRY(check_text("probe path", p.path, 1024));
  if (p.protocol == ProbeProtocol::Tcp && !p.path.empty())
    return usage_error("invalid probe path " + quote(p.path) + ": a path is only used by http probes");
  if (p.protocol == ProbeProtocol::Http && (p.path.empty() || p.path.front() != '/'))
    return usage_error("invalid probe path " + quote(p.path) + ": must start with '/'");
  for (char c : p.path)
    if (static_cast<unsigned char>(c) <= ' ' || c == 0x7f)
      return usage_error("invalid probe path " + quote(p.path) + ": spaces and control characters are not allowed");
  AZLB_TRY(check_range("probe interval", p.interval_s, kProbeIntervalMin, kProbeIntervalMax));
  if (p.timeout_s <= p.interval_s || p.timeout_s > kProbeTimeoutMax)
    return usage_error("invalid probe timeout " + std::to_string(p.timeout_s) +
                       ": must be more than the interval (" + std::to_string(p.interval_s) + ") and at most " +
                       std::to_string(kProbeTimeoutMax));
  return ok();
}

Status check_acl(const std::vector<AclRule>& acl) {
  if (acl.size() > kAclRulesMax)
    return conflict("an endpoint holds at most " + std::to_string(kAclRulesMax) + " ACL rules");
  for (std::size_t i = 0; i < acl.size(); ++i) {
    AZLB_TRY(check_range("ACL order", acl[i].order, 0, kAclOrderMax));
    AZLB_TRY(check_text("ACL description", acl[i].description, 256));
    for (std::size_t j = 0; j < i; ++j)
      if (acl[j].order == acl[i].order)
        return conflict("ACL rule with order " + std::to_string(acl[i].order) + " already exists");
  }
  return ok();
}

void sort_acl(std::vector<AclRule>& acl) {
  std::stable_sort(acl.begin(), acl.end(), [](auto& a, auto& b) { return a.order < b.order; });
}

Status check_proxy_protocol(std::string_view what, Protocol proto, ProxyProtocol pp) {
  // The header's addresses describe a stream's two ends; a datagram has no
  // "before the first byte" to put it in.
  if (proto == Protocol::Udp && pp != ProxyProtocol::None)
    return usage_error("invalid PROXY protocol " + std::string(to_string(pp)) + " for " + std::string(what) +
                       ": it is sent on tcp connections only; this one is udp");
  return ok();
}

Status check_plane_fits(const CloudService& svc, std::string_view what, ProxyProtocol pp) {
  // With NAT the member sees the client's own address: there is no
  // connection of the engine's to put a header on.
  if (svc.dataplane == Dataplane::Nat && pp != ProxyProtocol::None)
    return usage_error(std::string(what) + " sends PROXY protocol " + std::string(to_string(pp)) +
                       ", but cloud service " + quote(svc.name) +
                       " forwards with NAT, where members see each client's own address; use --proxy-protocol none");
  return ok();
}

Status check_dsr_plane(const CloudService& svc, const LoadBalancedSet& set) {
  if (set.direct_server_return && svc.dataplane != Dataplane::Nat)
    return usage_error("load-balanced set " + quote(set.name) + " returns directly (direct server return), which needs a "
                       "nat cloud service; " + quote(svc.name) + " forwards with the proxy (azlb service set " +
                       svc.name + " --dataplane nat, or --no-direct-server-return)");
  // The members own the VIP and take the client's packet unchanged: a
  // wildcard is no address they could own, and no route could lead to it.
  if (set.direct_server_return && svc.vip.is_unspecified())
    return usage_error("load-balanced set " + quote(set.name) + " returns directly (direct server return), which needs "
                       "a VIP of its own that the members answer from; cloud service " + quote(svc.name) +
                       " listens on the wildcard " + svc.vip.to_string() + " (azlb service set " + svc.name +
                       " --vip ADDR, or --no-direct-server-return)");
  return ok();
}

Status check_dsr_port(const LoadBalancedSet& set, std::string_view vm, const Endpoint& ep) {
  if (set.direct_server_return && ep.private_port != set.public_port)
    return usage_error("endpoint " + quote(ep.name) + " of VM " + quote(vm) + " has private port " +
                       std::to_string(ep.private_port) + ", but load-balanced set " + quote(set.name) +
                       " returns directly: its members receive the client's packet unchanged, so their private port "
                       "is the public port " + std::to_string(set.public_port));
  return ok();
}

Status check_endpoint_fields(const Endpoint& e) {
  AZLB_TRY(check_name("endpoint name", e.name));
  AZLB_TRY(check_proxy_protocol("endpoint " + quote(e.name), e.protocol, e.proxy_protocol));
  if (e.lbset.empty() && e.admin_state != AdminState::Up)
    return usage_error("endpoint " + quote(e.name) + " is drained but in no load-balanced set; only a set's member can be drained");
  if (published(e)) AZLB_TRY(check_port("public port", e.public_port));
  AZLB_TRY(check_port("private port", e.private_port));
  AZLB_TRY(check_range("idle timeout (minutes)", e.idle_timeout_min, kIdleTimeoutMin, kIdleTimeoutMax));
  AZLB_TRY(check_range("weight", e.weight, kWeightMin, kWeightMax));
  if (e.lbset.empty() && e.weight != kWeightDefault)
    return usage_error("endpoint " + quote(e.name) + " has weight " + std::to_string(e.weight) +
                       " but is in no load-balanced set; a weight is a member's share of its set's flows");
  return check_acl(e.acl);
}

namespace {

std::string port_text(Protocol p, std::uint16_t port) {
  return std::string(to_string(p)) + "/" + std::to_string(port);
}

}  // namespace

const std::vector<BuildIndex::Holder>* BuildIndex::holders_of(Protocol p, std::uint16_t port) const {
  auto it = holders.find(port_key(p, port));
  return it == holders.end() ? nullptr : &it->second;
}

void BuildIndex::hold(Protocol p, std::uint16_t port, Holder h) {
  auto& list = holders[port_key(p, port)];
  // A set's members share its entry: the list grows with owners, not members.
  for (auto& x : list)
    if (!h.lbset.empty() && x.service == h.service && x.lbset == h.lbset) return;
  list.push_back(std::move(h));
}

Status check_public_port_free(const State& s, const CloudService& svc, Protocol proto, std::uint16_t port,
                              std::string_view lbset, const BuildIndex* index) {
  if (port == 0) return ok();  // an unpublished endpoint's: it holds no port
  auto where = [&](const CloudService& other) {
    return other.name == svc.name ? std::string()
                                  : " of cloud service " + quote(other.name) + " on the same VIP " + other.vip.to_string();
  };
  if (index) {
    const auto* holders = index->holders_of(proto, port);
    if (!holders) return ok();
    for (auto& h : *holders) {
      if (h.service == svc.name && !lbset.empty() && h.lbset == lbset) continue;
      const auto* other = find_service(s, h.service);
      if (!other || !listen_overlaps(other->vip, svc.vip)) continue;
      if (h.vm.empty())
        return conflict("public port " + port_text(proto, port) + " is already used by load-balanced set " +
                        quote(h.lbset) + where(*other));
      return conflict("public port " + port_text(proto, port) + " is already used by endpoint " + quote(h.endpoint) +
                      " of VM " + quote(h.vm) + where(*other));
    }
    return ok();
  }
  for (auto& other : s.services) {
    if (!listen_overlaps(other.vip, svc.vip)) continue;
    for (auto& set : other.lbsets)
      if (set.public_port == port && set.protocol == proto && !(other.name == svc.name && set.name == lbset))
        return conflict("public port " + port_text(proto, port) + " is already used by load-balanced set " +
                        quote(set.name) + where(other));
  }
  for (auto& vm : s.vms)
    for (auto& ep : vm.endpoints) {
      if (ep.public_port != port || ep.protocol != proto) continue;
      if (vm.cloud_service == svc.name && !lbset.empty() && ep.lbset == lbset) continue;
      auto* other = find_service(s, vm.cloud_service);
      if (other && listen_overlaps(other->vip, svc.vip))
        return conflict("public port " + port_text(proto, port) + " is already used by endpoint " + quote(ep.name) +
                        " of VM " + quote(vm.name) + where(*other));
    }
  return ok();
}

bool public_port_free(const State& s, const CloudService& svc, Protocol proto, std::uint16_t port) {
  return check_public_port_free(s, svc, proto, port, "").ok();
}

Status check_nat_family(const CloudService& svc) {
  // The kernel rewrites a packet's destination within its own family: an
  // IPv4 VIP cannot be DNATed to an IPv6 VM (the proxy plane connects anew,
  // so it can).
  if (svc.dataplane == Dataplane::Nat && svc.vip.family != svc.subnet.base.family)
    return usage_error("cloud service " + quote(svc.name) + " forwards with NAT, so its VIP " + svc.vip.to_string() +
                       " and its subnet " + svc.subnet.to_string() +
                       " must be of one IP family; give a --subnet of the VIP's family, or use --dataplane proxy");
  return ok();
}

Status insert_service(State& s, CloudService svc) {
  AZLB_TRY(check_name("cloud service name", svc.name));
  AZLB_TRY(check_nat_family(svc));
  if (find_service(s, svc.name)) return conflict("cloud service " + quote(svc.name) + " already exists");
  svc.lbsets.clear();
  s.services.push_back(std::move(svc));
  return ok();
}

Status insert_lbset(State& s, std::string_view service, LoadBalancedSet set, BuildIndex* index) {
  AZLB_TRY(check_name("load-balanced set name", set.name));
  AZLB_ASSIGN(svc, service_or_error(s, service));
  if (find_lbset(*svc, set.name))
    return conflict("load-balanced set " + quote(set.name) + " already exists in cloud service " + quote(svc->name));
  AZLB_TRY(check_port("public port", set.public_port));
  if (set.probe) AZLB_TRY(check_probe(*set.probe));
  AZLB_TRY(check_acl(set.acl));
  AZLB_TRY(check_proxy_protocol("load-balanced set " + quote(set.name), set.protocol, set.proxy_protocol));
  AZLB_TRY(check_plane_fits(*svc, "load-balanced set " + quote(set.name), set.proxy_protocol));
  AZLB_TRY(check_dsr_plane(*svc, set));
  AZLB_TRY(check_public_port_free(s, *svc, set.protocol, set.public_port, set.name, index));
  sort_acl(set.acl);
  if (index) index->hold(set.protocol, set.public_port, {svc->name, set.name, "", ""});
  svc->lbsets.push_back(std::move(set));
  return ok();
}

std::vector<const CloudService*> overlapping_services(const State& s, const CloudService& svc) {
  std::vector<const CloudService*> out;
  for (auto& other : s.services)
    if (other.name != svc.name && other.subnet.base.family == svc.subnet.base.family &&
        (other.subnet.contains(svc.subnet.base) || svc.subnet.contains(other.subnet.base)))
      out.push_back(&other);
  return out;
}

Status insert_vm(State& s, Vm vm, BuildIndex* index) {
  AZLB_TRY(check_name("VM name", vm.name));
  AZLB_TRY(check_text("image label", vm.image, 256));
  if (index ? index->vm_names.contains(vm.name) : find_vm(s, vm.name) != nullptr)
    return conflict("VM " + quote(vm.name) + " already exists");
  AZLB_ASSIGN(svc, service_or_error(s, vm.cloud_service));
  if (!svc->subnet.contains(vm.private_ip))
    return usage_error("invalid private IP " + vm.private_ip.to_string() + ": outside cloud service " +
                       quote(svc->name) + "'s subnet " + svc->subnet.to_string());
  // On one host a private address is a real address: two VMs cannot share
  // it, whatever their cloud services (their subnets may overlap).
  const std::string ip_key = vm.private_ip.to_string();
  if (!index || index->private_ips.contains(ip_key))  // the scan only to name the VM that has it
    for (auto& other : s.vms)
      if (other.private_ip == vm.private_ip)
        return conflict("private IP " + vm.private_ip.to_string() + " is already used by VM " + quote(other.name) +
                        " in cloud service " + quote(other.cloud_service));
  if (index) {
    index->vm_names.insert(vm.name);
    index->private_ips.insert(ip_key);
  }
  vm.endpoints.clear();
  s.vms.push_back(std::move(vm));
  return ok();
}

Status insert_endpoint(State& s, std::string_view vm_name, Endpoint ep, BuildIndex* index) {
  AZLB_ASSIGN(vm, vm_or_error(s, vm_name));
  AZLB_TRY(check_endpoint_fields(ep));
  if (find_endpoint(*vm, ep.name))
    return conflict("endpoint " + quote(ep.name) + " already exists on VM " + quote(vm->name));
  AZLB_ASSIGN(svc, service_or_error(s, vm->cloud_service));
  AZLB_TRY(check_plane_fits(*svc, "endpoint " + quote(ep.name), ep.proxy_protocol));
  sort_acl(ep.acl);
  if (!ep.lbset.empty()) {
    AZLB_ASSIGN(set, lbset_or_error(*svc, ep.lbset));
    if (set->protocol != ep.protocol || set->public_port != ep.public_port)
      return conflict("endpoint " + quote(ep.name) + " is " + port_text(ep.protocol, ep.public_port) +
                      " but load-balanced set " + quote(set->name) + " is " +
                      port_text(set->protocol, set->public_port));
    AZLB_TRY(check_dsr_port(*set, vm->name, ep));
    bool first;
    if (index) {
      auto& seen = index->sets[svc->name + "\n" + set->name];
      if (seen.vms.contains(vm->name))
        return conflict("VM " + quote(vm->name) + " already has an endpoint in load-balanced set " + quote(set->name));
      first = seen.vms.empty();
      seen.vms.insert(vm->name);
    } else {
      auto members = members_of(s, *svc, *set);
      for (auto& m : members)
        if (m.vm == vm)
          return conflict("VM " + quote(vm->name) + " already has endpoint " + quote(m.endpoint->name) +
                          " in load-balanced set " + quote(set->name));
      first = members.empty();
    }
    // Azure applies a set's ACL to every VM in it: the rules live on the set.
    // An endpoint that brings rules of its own (one moving into a set, or a
    // member in a schema 1 file) gives them to a set that has none and no
    // members yet, and otherwise must bring the set's own.
    if (!ep.acl.empty()) {
      if (first && set->acl.empty())
        set->acl = std::move(ep.acl);
      else if (ep.acl != set->acl)
        return conflict("endpoint " + quote(ep.name) + " has other ACL rules than load-balanced set " +
                        quote(set->name) + "; a set's members share the set's ACL");
      ep.acl.clear();
    }
    // The PROXY protocol is the set's too, by the same rule.
    if (ep.proxy_protocol != ProxyProtocol::None) {
      if (first && set->proxy_protocol == ProxyProtocol::None)
        set->proxy_protocol = ep.proxy_protocol;
      else if (ep.proxy_protocol != set->proxy_protocol)
        return conflict("endpoint " + quote(ep.name) + " sends PROXY protocol " +
                        std::string(to_string(ep.proxy_protocol)) + " but load-balanced set " + quote(set->name) +
                        " sends " + std::string(to_string(set->proxy_protocol)) +
                        "; a set's members share the set's choice");
      ep.proxy_protocol = ProxyProtocol::None;
    }
  }
  if (!published(ep)) {  // holds no port
    vm->endpoints.push_back(std::move(ep));
    return ok();
  }
  AZLB_TRY(check_public_port_free(s, *svc, ep.protocol, ep.public_port, ep.lbset, index));
  if (index) index->hold(ep.protocol, ep.public_port, {svc->name, ep.lbset, ep.lbset.empty() ? vm->name : "", ep.name});
  vm->endpoints.push_back(std::move(ep));
  return ok();
}

Status validate(const State& s) {
  State rebuilt;
  BuildIndex index;
  for (auto& svc : s.services) AZLB_TRY(insert_service(rebuilt, svc));
  for (auto& svc : s.services)
    for (auto& set : svc.lbsets) AZLB_TRY(insert_lbset(rebuilt, svc.name, set, &index));
  for (auto& vm : s.vms) {
    AZLB_TRY(insert_vm(rebuilt, vm, &index));
    for (auto& ep : vm.endpoints) AZLB_TRY(insert_endpoint(rebuilt, vm.name, ep, &index));
  }
  return ok();
}

}  // namespace azlb::model
