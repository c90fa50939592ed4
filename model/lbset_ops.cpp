// Steps 3 and 4 of the portal and what surrounds them: making, joining,
// leaving, changing, draining and deleting load-balanced sets.
#include <algorithm>

#include "model/ops.hpp"
#include "model/ops_support.hpp"
#include "model/text.hpp"

namespace azlb::model {

namespace {

// Puts an endpoint that has left its set back on its VM, as the user asked:
// unpublished (`port_asked` 0), on `port_asked` (it must be free), else on
// its old port if nobody holds it any more, else the next free one. It keeps the set's ACL
// as its own, so that leaving lets in nobody new, and the set's PROXY
// protocol, which its server expects.
Result<PortMove> settle_outside_set(State& s, std::string_view svc_name, std::string_view vm_name, Detached d,
                                    const std::vector<AclRule>& set_acl, ProxyProtocol set_proxy_protocol,
                                    std::optional<std::uint16_t> port_asked = std::nullopt) {
  PortMove move{std::string(vm_name), d.endpoint.name, d.endpoint.public_port, 0, true};
  const bool unpublish = port_asked == 0;
  d.endpoint.lbset.clear();
  d.endpoint.weight = kWeightDefault;  // a member's share; alone it has all it gets
  d.endpoint.acl = set_acl;
  d.endpoint.proxy_protocol = set_proxy_protocol;
  // Out of the set it takes its own traffic again: drained was about the set.
  d.endpoint.admin_state = AdminState::Up;
  if (unpublish) {
    d.endpoint.public_port = 0;
  } else if (port_asked) {
    AZLB_TRY(check_port("public port", *port_asked));
    AZLB_TRY(check_public_port_free(s, *find_service(s, svc_name), d.endpoint.protocol, *port_asked, ""));
    move.to = d.endpoint.public_port = *port_asked;
  } else {
    auto start = static_cast<std::uint16_t>(std::min<unsigned>(d.endpoint.public_port + 1u, 65535u));
    AZLB_ASSIGN(port, free_public_port(s, *find_service(s, svc_name), d.endpoint.protocol, d.endpoint.public_port,
                                       start));
    move.to = d.endpoint.public_port = port;
  }
  AZLB_TRY(reattach(s, vm_name, std::move(d)));
  return move;
}

}  // namespace

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
  if (!published(*ep))
    return conflict("endpoint " + quote(ep->name) + " of VM " + quote(vm->name) +
                    " is unpublished (no public port) and a set takes its port from it; publish it first: "
                    "azlb endpoint set " + vm->name + " " + ep->name + " --public-port P");
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
  set.direct_server_return = r.options.direct_server_return.value_or(false);
  AZLB_TRY(insert_lbset(s, svc->name, std::move(set)));
  d.endpoint.lbset = r.set;
  if (r.weight) d.endpoint.weight = *r.weight;
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
    if (r.weight) d.endpoint.weight = *r.weight;
    AZLB_TRY(reattach(s, r.vm, std::move(d)));
    out.existing = true;
    return out;
  }
  Endpoint ep;
  ep.name = out.endpoint;
  ep.protocol = set->protocol;
  ep.public_port = set->public_port;
  ep.private_port = r.private_port.value_or(first && !set->direct_server_return ? first->private_port
                                                                              : set->public_port);
  ep.idle_timeout_min = first ? first->idle_timeout_min : kIdleTimeoutDefault;
  ep.lbset = set->name;
  ep.weight = r.weight.value_or(kWeightDefault);
  AZLB_TRY(insert_endpoint(s, r.vm, std::move(ep)));
  return out;
}

Result<PortMove> leave_lbset(State& s, std::string_view set_name, std::string_view vm_name,
                             std::optional<std::uint16_t> public_port) {
  AZLB_ASSIGN(vm, vm_or_error(s, vm_name));
  AZLB_ASSIGN(svc, service_or_error(s, vm->cloud_service));
  AZLB_ASSIGN(set, lbset_or_error(*svc, set_name));
  for (auto& m : members_of(s, *svc, *set))
    if (m.vm == vm) {
      if (!public_port) {  // it goes with the set: never published by surprise
        PortMove gone{vm->name, m.endpoint->name, m.endpoint->public_port, 0};
        (void)detach(*vm, m.endpoint);
        return gone;
      }
      AZLB_TRY(check_port("public port", *public_port));  // 0 is not "unpublished" here
      // A refused port leaves the member where it was.
      const std::string svc_name = svc->name, name = vm->name;
      const auto acl = set->acl;
      const auto proxy_protocol = set->proxy_protocol;
      Detached d = detach(*vm, m.endpoint);
      Detached original = d;
      auto settled = settle_outside_set(s, svc_name, name, std::move(d), acl, proxy_protocol, public_port);
      if (!settled) AZLB_TRY(reattach(s, name, std::move(original)));
      return settled;
    }
  return not_found("VM " + quote(vm_name) + " is not in load-balanced set " + quote(set_name));
}

Status update_lbset(State& s, const SetRef& ref, const SetOptions& o) {
  AZLB_ASSIGN(loc, locate_set(s, ref));
  if (!o.any())
    return usage_error("nothing to change: give probe, --distribution, --when-all-down, --proxy-protocol or "
                       "--direct-server-return options");
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
  if (o.direct_server_return) {
    LoadBalancedSet after = *loc.set;
    after.direct_server_return = *o.direct_server_return;
    AZLB_TRY(check_dsr_plane(*loc.service, after));
    for (auto& m : members) AZLB_TRY(check_dsr_port(after, m.vm->name, *m.endpoint));
    loc.set->direct_server_return = after.direct_server_return;
  }
  return ok();
}

namespace {

// The VM's endpoint in a set of its cloud service (the set found there).
struct MemberRef {
  CloudService* service;
  Endpoint* endpoint;
};

Result<MemberRef> member_endpoint(State& s, std::string_view set_name, std::string_view vm_name) {
  AZLB_ASSIGN(vm, vm_or_error(s, vm_name));
  AZLB_ASSIGN(svc, service_or_error(s, vm->cloud_service));
  AZLB_ASSIGN(set, lbset_or_error(*svc, set_name));
  for (auto& ep : vm->endpoints)
    if (ep.lbset == set->name) return MemberRef{svc, &ep};
  return not_found("VM " + quote(vm_name) + " is not in load-balanced set " + quote(set_name));
}

}  // namespace

Result<WeightChange> set_weight(State& s, std::string_view set_name, std::string_view vm_name, std::uint32_t weight) {
  AZLB_TRY(check_range("weight", weight, kWeightMin, kWeightMax));
  AZLB_ASSIGN(m, member_endpoint(s, set_name, vm_name));
  WeightChange out{m.service->name, m.endpoint->name, m.endpoint->weight};
  m.endpoint->weight = weight;
  return out;
}

Result<AdminChange> set_admin_state(State& s, std::string_view set_name, std::string_view vm_name,
                                    AdminState state) {
  AZLB_ASSIGN(m, member_endpoint(s, set_name, vm_name));
  AdminChange out{m.service->name, m.endpoint->name, m.endpoint->admin_state};
  m.endpoint->admin_state = state;
  return out;
}

Result<std::vector<PortMove>> delete_lbset(State& s, const SetRef& ref, SetMembersAfterDelete after) {
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
    if (after == SetMembersAfterDelete::Remove) {
      moves.push_back({vm_name, d.endpoint.name, d.endpoint.public_port, 0, false});
      continue;
    }
    const auto port = after == SetMembersAfterDelete::Unpublish ? std::optional<std::uint16_t>(0) : std::nullopt;
    AZLB_ASSIGN(move, settle_outside_set(s, svc_name, vm_name, std::move(d), acl, proxy_protocol, port));
    moves.push_back(std::move(move));
  }
  return moves;
}

}  // namespace azlb::model
