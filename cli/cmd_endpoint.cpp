// azlb endpoint add|list|show|set|remove and endpoint acl add|list|remove.
#include <iostream>
#include <memory>

#include "cli/commands.hpp"
#include "cli/flags.hpp"
#include "cli/render.hpp"
#include "cli/table.hpp"
#include "store/state_store.hpp"

namespace azlb::cli {

using namespace azlb::model;

// Named, not anonymous: the CLI's files are compiled together (a unity build).
namespace endpoint_cmd {

struct AddFlags {
  std::string vm;
  Flag name, protocol, public_port, private_port, idle_timeout, lbset, weight;
  SetFlags set;
};

Status add_cmd(const Context& ctx, const AddFlags& f) {
  EndpointRequest r;
  r.vm = f.vm;
  r.spec.name = f.name.value;
  AZLB_ASSIGN(proto, parse_protocol(f.protocol.value));
  r.spec.protocol = proto;
  AZLB_ASSIGN(pub, parse_u16("public port", f.public_port.value));
  AZLB_ASSIGN(priv, parse_u16("private port", f.private_port.value));
  r.spec.public_port = pub;
  r.spec.private_port = priv;
  AZLB_TRY(parse_if(f.idle_timeout, r.idle_timeout_min,
                    [](auto& v) { return parse_u32("idle timeout (minutes)", v); }));
  r.lbset = f.lbset.value;
  AZLB_TRY(parse_if(f.weight, r.weight, [](auto& v) { return parse_uint("weight", v, kWeightMin, kWeightMax); }));
  AZLB_ASSIGN(opts, f.set.parse());
  r.set_options = opts;
  EndpointAdded added;
  State after;
  AZLB_TRY(ctx.change([&](State& s) -> Status {
    AZLB_ASSIGN(a, add_endpoint(s, r));
    added = a;
    after = s;
    return ok();
  }));
  Vm& vm = *find_vm(after, r.vm);
  auto& ep = *find_endpoint(vm, r.spec.name);
  std::string msg = "Endpoint " + q(ep.name) + " (" + port_mapping(ep) + ") added to VM " + q(vm.name);
  if (!r.lbset.empty())
    msg += " in " + std::string(added.set_created ? "new " : "") + "load-balanced set " + q(r.lbset);
  ctx.confirm(msg, {{"vm", vm.name}, {"endpoint", to_json(after, vm, ep)}, {"lbset_created", added.set_created}});
  return ok();
}

Status list(const Context& ctx, const std::string& vm_name) {
  AZLB_ASSIGN(s, store::load(ctx.location()));
  AZLB_ASSIGN(vm, vm_or_error(s, vm_name));
  if (ctx.json()) {
    Json eps = Json::array();
    for (auto& e : vm->endpoints) eps.push_back(to_json(s, *vm, e));
    ctx.print_json({{"vm", vm->name}, {"endpoints", eps}});
    return ok();
  }
  Table t({"NAME", "PROTOCOL", "PUBLIC PORT", "PRIVATE PORT", "IDLE TIMEOUT", "LOAD-BALANCED SET", "ACL RULES"});
  for (auto& e : vm->endpoints)
    t.add({e.name, std::string(to_string(e.protocol)), public_port_text(e), std::to_string(e.private_port),
           std::to_string(e.idle_timeout_min) + " min", e.lbset.empty() ? "-" : e.lbset,
           std::to_string(acl_of(s, *vm, e).size())});
  if (t.empty() && !ctx.quiet)
    std::cout << "VM " << vm->name << " has no endpoints.\n";
  else
    t.print(std::cout);
  return ok();
}

void print_acl(const std::vector<AclRule>& acl, const std::string& indent) {
  Table t({"ORDER", "ACTION", "REMOTE SUBNET", "DESCRIPTION"});
  for (auto& r : acl)
    t.add({std::to_string(r.order), std::string(to_string(r.action)), r.remote_subnet.to_string(), r.description});
  if (t.empty())
    std::cout << indent << "no ACL rules: every client is permitted\n";
  else
    t.print(std::cout, indent);
}

Status show(const Context& ctx, const std::string& vm_name, const std::string& name) {
  AZLB_ASSIGN(s, store::load(ctx.location()));
  AZLB_ASSIGN(vm, vm_or_error(s, vm_name));
  AZLB_ASSIGN(ep, endpoint_or_error(*vm, name));
  if (ctx.json()) {
    Json j = to_json(s, *vm, *ep);
    j["vm"] = vm->name;
    ctx.print_json(j);
    return ok();
  }
  std::cout << "Endpoint " << ep->name << " of VM " << vm->name << "\n"
            << "  protocol           " << to_string(ep->protocol) << "\n"
            << "  public port        "
            << (published(*ep) ? std::to_string(ep->public_port)
                               : "- (unpublished: 'azlb endpoint set " + vm->name + " " + ep->name +
                                     " --public-port P' publishes it)")
            << "\n"
            << "  private port       " << ep->private_port << " on " << vm->private_ip.to_string() << "\n"
            << "  idle timeout       " << ep->idle_timeout_min << " min\n"
            << "  load-balanced set  " << (ep->lbset.empty() ? "-" : ep->lbset) << "\n"
            << "  ACL\n";
  print_acl(acl_of(s, *vm, *ep), "    ");
  return ok();
}

struct EndpointSetFlags {
  std::string vm, name;
  Flag public_port, private_port, idle_timeout;
};

Status set_cmd(const Context& ctx, const EndpointSetFlags& f) {
  EndpointUpdate u;
  u.vm = f.vm;
  u.endpoint = f.name;
  AZLB_TRY(parse_if(f.public_port, u.public_port, [](auto& v) { return parse_u16("public port", v); }));
  AZLB_TRY(parse_if(f.private_port, u.private_port, [](auto& v) { return parse_u16("private port", v); }));
  AZLB_TRY(parse_if(f.idle_timeout, u.idle_timeout_min,
                    [](auto& v) { return parse_u32("idle timeout (minutes)", v); }));
  Endpoint before;
  State after;
  AZLB_TRY(ctx.change([&](State& s) -> Status {
    AZLB_ASSIGN(b, update_endpoint(s, u));
    before = b;
    after = s;
    return ok();
  }));
  Vm& vm = *find_vm(after, f.vm);
  auto& ep = *find_endpoint(vm, f.name);
  std::string msg = "Endpoint " + q(ep.name) + " of VM " + q(vm.name) + " is now " + port_mapping(ep) +
                    ", idle timeout " + std::to_string(ep.idle_timeout_min) + " min";
  if (!published(before) && published(ep)) msg += "; published (it was not)";
  else msg += " (was " + port_mapping(before) + ", " + std::to_string(before.idle_timeout_min) + " min)";
  ctx.confirm(msg, {{"vm", vm.name}, {"endpoint", to_json(after, vm, ep)}});
  return ok();
}

Status remove(const Context& ctx, const std::string& vm, const std::string& name) {
  std::vector<std::string> shrunk;
  AZLB_TRY(ctx.change([&](State& s) -> Status {
    const State before = s;
    AZLB_TRY(remove_endpoint(s, vm, name));
    shrunk = shrunk_sets(before, s);
    return ok();
  }));
  std::string msg = "Endpoint " + q(name) + " removed from VM " + q(vm);
  for (auto& line : shrunk) msg += "; " + line;
  ctx.confirm(msg, {{"vm", vm}, {"endpoint", name}, {"sets_shrunk", shrunk}});
  return ok();
}

struct AclFlags {
  std::string vm, endpoint;
  Flag order, action, remote_subnet, description;
};

std::string applied_to(const std::vector<std::string>& changed) {
  if (changed.size() <= 1) return "";
  std::string s;
  for (auto& c : changed) s += (s.empty() ? "" : ", ") + c;
  return " (a set's members share one ACL: applied to " + s + ")";
}

Status acl_add(const Context& ctx, const AclFlags& f) {
  AclRule rule;
  AZLB_ASSIGN(order, parse_u32("ACL order", f.order.value));
  rule.order = order;
  AZLB_ASSIGN(action, parse_acl_action(f.action.value));
  rule.action = action;
  AZLB_ASSIGN(subnet, parse_cidr("remote subnet", f.remote_subnet.value));
  rule.remote_subnet = subnet;
  rule.description = f.description.value;
  std::vector<std::string> changed;
  AZLB_TRY(ctx.change([&](State& s) -> Status {
    AZLB_ASSIGN(c, add_acl_rule(s, f.vm, f.endpoint, rule));
    changed = c;
    return ok();
  }));
  ctx.confirm("ACL rule " + std::to_string(rule.order) + " (" + std::string(to_string(rule.action)) + " " +
                  subnet.to_string() + ") added to endpoint " + q(f.endpoint) + " of VM " + q(f.vm) +
                  applied_to(changed),
              {{"rule", to_json(rule)}, {"endpoints", changed}});
  return ok();
}

Status acl_list(const Context& ctx, const std::string& vm_name, const std::string& name) {
  AZLB_ASSIGN(s, store::load(ctx.location()));
  AZLB_ASSIGN(vm, vm_or_error(s, vm_name));
  AZLB_ASSIGN(ep, endpoint_or_error(*vm, name));
  if (ctx.json()) {
    ctx.print_json({{"vm", vm->name}, {"endpoint", ep->name}, {"acl", to_json(s, *vm, *ep)["acl"]}});
    return ok();
  }
  print_acl(acl_of(s, *vm, *ep), "");
  return ok();
}

Status acl_remove(const Context& ctx, const AclFlags& f) {
  AZLB_ASSIGN(order, parse_u32("ACL order", f.order.value));
  std::vector<std::string> changed;
  AZLB_TRY(ctx.change([&](State& s) -> Status {
    AZLB_ASSIGN(c, remove_acl_rule(s, f.vm, f.endpoint, order));
    changed = c;
    return ok();
  }));
  ctx.confirm("ACL rule " + std::to_string(order) + " removed from endpoint " + q(f.endpoint) + " of VM " + q(f.vm) +
                  applied_to(changed),
              {{"order", order}, {"endpoints", changed}});
  return ok();
}

void register_acl(CLI::App& endpoint, Context& ctx) {
  using namespace endpoint_cmd;
  auto* acl = group(endpoint, ctx, "acl", "Network ACL of an endpoint: ordered permit/deny rules");

  auto a = std::make_shared<AclFlags>();
  auto* add_c = command(*acl, ctx, "add", "Add an ACL rule", [&ctx, a] { return acl_add(ctx, *a); });
  add_c->add_option("VM", a->vm, "VM name")->required();
  add_c->add_option("ENDPOINT", a->endpoint, "Endpoint name")->required();
  add(*add_c, a->order, "--order", "Rule order, 0..65535; lower is evaluated first").opt->required()->type_name("K");
  add(*add_c, a->action, "--action", "permit or deny").opt->required()->type_name("permit|deny");
  add(*add_c, a->remote_subnet, "--remote-subnet", "Client subnet, IPv4 or IPv6 CIDR").opt->required()->type_name("CIDR");
  add(*add_c, a->description, "--description", "Free text").opt->type_name("TEXT");

  auto l = std::make_shared<std::pair<std::string, std::string>>();
  auto* list_c = command(*acl, ctx, "list", "List an endpoint's ACL rules", [&ctx, l] { return acl_list(ctx, l->first, l->second); });
  list_c->add_option("VM", l->first, "VM name")->required();
  list_c->add_option("ENDPOINT", l->second, "Endpoint name")->required();

  auto r = std::make_shared<AclFlags>();
  auto* rm_c = command(*acl, ctx, "remove", "Remove an ACL rule", [&ctx, r] { return acl_remove(ctx, *r); });
  rm_c->add_option("VM", r->vm, "VM name")->required();
  rm_c->add_option("ENDPOINT", r->endpoint, "Endpoint name")->required();
  add(*rm_c, r->order, "--order", "Order of the rule to remove").opt->required()->type_name("K");
}

}  // namespace endpoint_cmd

void register_endpoint(CLI::App& app, Context& ctx) {
  using namespace endpoint_cmd;
  auto* ep = group(app, ctx, "endpoint", "Add, list, show, change and remove VM endpoints and their ACLs");

  auto f = std::make_shared<AddFlags>();
  auto* a = command(*ep, ctx, "add", "Add an endpoint (public port -> private port) to a VM",
                    [&ctx, f] { return add_cmd(ctx, *f); });
  a->add_option("VM", f->vm, "VM name")->required();
  add(*a, f->name, "--name", "Endpoint name").opt->required()->type_name("N");
  add(*a, f->protocol, "--protocol", "tcp or udp").opt->required()->type_name("tcp|udp");
  add(*a, f->public_port, "--public-port", "Port on the cloud service's VIP").opt->required()->type_name("P");
  add(*a, f->private_port, "--private-port", "Port on the VM's private IP").opt->required()->type_name("Q");
  add(*a, f->idle_timeout, "--idle-timeout", "Minutes before a silent connection is closed, 4..30 (default 4)")
      .opt->type_name("MIN");
  add(*a, f->lbset, "--lbset", "Load-balanced set to join (created if new, with the probe options)")
      .opt->type_name("SET");
  add(*a, f->weight, "--weight", "In the set: its share of the flows, 1..256 (default 1)").opt->type_name("N");
  f->set.add_to(*a);

  auto l = std::make_shared<std::string>();
  command(*ep, ctx, "list", "List a VM's endpoints", [&ctx, l] { return list(ctx, *l); })
      ->add_option("VM", *l, "VM name")
      ->required();

  auto s = std::make_shared<std::pair<std::string, std::string>>();
  auto* show_c = command(*ep, ctx, "show", "Show an endpoint", [&ctx, s] { return show(ctx, s->first, s->second); });
  show_c->add_option("VM", s->first, "VM name")->required();
  show_c->add_option("NAME", s->second, "Endpoint name")->required();

  auto u = std::make_shared<EndpointSetFlags>();
  auto* set_c = command(*ep, ctx, "set", "Change an endpoint's ports or idle timeout; publish an unpublished one",
                        [&ctx, u] { return set_cmd(ctx, *u); });
  set_c->add_option("VM", u->vm, "VM name")->required();
  set_c->add_option("NAME", u->name, "Endpoint name")->required();
  add(*set_c, u->public_port, "--public-port", "Port on the cloud service's VIP (not a set member's: the set's)")
      .opt->type_name("P");
  add(*set_c, u->private_port, "--private-port", "Port on the VM's private IP").opt->type_name("Q");
  add(*set_c, u->idle_timeout, "--idle-timeout", "Minutes before a silent connection is closed, 4..30")
      .opt->type_name("MIN");

  auto r = std::make_shared<std::pair<std::string, std::string>>();
  auto* rm = command(*ep, ctx, "remove", "Remove an endpoint", [&ctx, r] { return remove(ctx, r->first, r->second); });
  rm->add_option("VM", r->first, "VM name")->required();
  rm->add_option("NAME", r->second, "Endpoint name")->required();

  register_acl(*ep, ctx);
}

}  // namespace azlb::cli
