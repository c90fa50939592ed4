// azlb vm create|list|show|delete: steps 1 and 2 of the portal.
#include <iostream>
#include <memory>

#include "cli/commands.hpp"
#include "cli/flags.hpp"
#include "cli/render.hpp"
#include "cli/table.hpp"
#include "engine/nat/dsr_member.hpp"
#include "store/state_store.hpp"

namespace azlb::cli {

using namespace azlb::model;

// Named, not anonymous: the CLI's files are compiled together (a unity build).
namespace vm_cmd {

struct CreateFlags {
  std::string name;
  Flag cloud_service, os, image, private_ip;
  std::vector<std::string> endpoints;
  bool quick = false, no_default_endpoints = false, new_service = false;
};

Status create(const Context& ctx, const CreateFlags& f) {
  VmRequest r;
  r.name = f.name;
  r.cloud_service = f.cloud_service.value;
  r.quick = f.quick;
  r.new_service = f.new_service;
  r.default_endpoints = !f.no_default_endpoints;
  if (f.os.given()) {
    AZLB_ASSIGN(os, parse_os(f.os.value));
    r.os = os;
  }
  if (f.image.given()) r.image = f.image.value;
  AZLB_TRY(parse_if(f.private_ip, r.private_ip, [](auto& v) { return parse_ip("private IP", v); }));
  for (auto& text : f.endpoints) {
    AZLB_ASSIGN(spec, parse_endpoint_spec(text));
    r.endpoints.push_back(spec);
  }
  VmCreated created;
  State after;
  AZLB_TRY(ctx.change([&](State& s) -> Status {
    AZLB_ASSIGN(c, create_vm(s, r));
    created = c;
    after = s;
    return ok();
  }));
  const Vm& vm = *find_vm(after, r.name);
  const CloudService& svc = *find_service(after, created.cloud_service);
  std::string msg = "VM " + q(vm.name) + " created in " + (created.service_created ? "new " : "") +
                    "cloud service " + q(svc.name) + " (" + svc.dns() + ", VIP " + svc.vip.to_string() +
                    ") with private IP " + vm.private_ip.to_string();
  std::string eps;
  for (auto& e : vm.endpoints) eps += (eps.empty() ? "" : ", ") + e.name + " " + port_mapping(e);
  msg += eps.empty() ? " and no endpoints" : "; endpoints: " + eps;
  Json details = to_json(after, vm);
  details["cloud_service_created"] = created.service_created;
  ctx.confirm(msg, {{"vm", details}});
  return ok();
}

Status list(const Context& ctx) {
  AZLB_ASSIGN(s, store::load(ctx.location()));
  if (ctx.json()) {
    Json vms = Json::array();
    for (auto& vm : s.vms) vms.push_back(to_json(s, vm));
    ctx.print_json({{"vms", vms}});
    return ok();
  }
  Table t({"NAME", "CLOUD SERVICE", "PRIVATE IP", "OS", "IMAGE", "CREATED BY", "ENDPOINTS"});
  for (auto& vm : s.vms)
    t.add({vm.name, vm.cloud_service, vm.private_ip.to_string(), std::string(to_string(vm.os)), vm.image,
           std::string(to_string(vm.created_by)), std::to_string(vm.endpoints.size())});
  if (t.empty() && !ctx.quiet)
    std::cout << "No VMs yet. Create one with: azlb vm create NAME --cloud-service CS\n";
  else
    t.print(std::cout);
  return ok();
}

Status show(const Context& ctx, const std::string& name) {
  AZLB_ASSIGN(s, store::load(ctx.location()));
  AZLB_ASSIGN(vm, vm_or_error(s, name));
  if (ctx.json()) {
    ctx.print_json(to_json(s, *vm));
    return ok();
  }
  const CloudService& svc = *find_service(s, vm->cloud_service);
  std::cout << "VM " << vm->name << "\n"
            << "  cloud service  " << svc.name << " (" << svc.dns() << ", VIP " << svc.vip.to_string() << ")\n"
            << "  private IP     " << vm->private_ip.to_string() << "\n"
            << "  os             " << to_string(vm->os) << "\n"
            << "  image          " << vm->image << "\n"
            << "  created by     " << to_string(vm->created_by) << "\n\n";
  Table t({"ENDPOINT", "PROTOCOL", "PUBLIC PORT", "PRIVATE PORT", "IDLE TIMEOUT", "LOAD-BALANCED SET", "ACL RULES"});
  for (auto& e : vm->endpoints)
    t.add({e.name, std::string(to_string(e.protocol)), public_port_text(e), std::to_string(e.private_port),
           std::to_string(e.idle_timeout_min) + " min", e.lbset.empty() ? "-" : e.lbset,
           std::to_string(acl_of(s, *vm, e).size())});
  if (t.empty())
    std::cout << "  no endpoints\n";
  else
    t.print(std::cout, "  ");
  return ok();
}

Status remove(const Context& ctx, const std::string& name) {
  std::vector<std::string> shrunk;
  AZLB_TRY(ctx.change([&](State& s) -> Status {
    const State before = s;
    AZLB_TRY(delete_vm(s, name));
    shrunk = shrunk_sets(before, s);
    return ok();
  }));
  std::string msg = "VM " + q(name) + " deleted";
  for (auto& line : shrunk) msg += "; " + line;
  ctx.confirm(msg, {{"vm", name}, {"sets_shrunk", shrunk}});
  return ok();
}

struct DsrSetupFlags {
  std::string vm;
  bool apply = false;
};

// What a member of a direct-server-return set needs on its host: printed,
// or done there with --apply.
Status dsr_setup(const Context& ctx, const DsrSetupFlags& f) {
  AZLB_ASSIGN(s, store::load(ctx.location()));
  AZLB_ASSIGN(vm, vm_or_error(s, f.vm));
  const auto& svc = *find_service(s, vm->cloud_service);
  std::vector<std::string> sets;
  for (auto& set : svc.lbsets)
    if (set.direct_server_return)
      for (auto& m : members_of(s, svc, set))
        if (m.vm == vm) sets.push_back(set.name);
  if (sets.empty())
    return usage_error("VM " + q(vm->name) + " is in no direct-server-return set of cloud service " + q(svc.name) +
                       ": its replies go back through the balancer, and it needs no setup (lbset set SET "
                       "--direct-server-return, for a nat service)");
  std::string list;
  for (auto& n : sets) list += (list.empty() ? "" : ", ") + q(n);
  const auto commands = engine::dsr_member_commands(svc.vip);
  if (f.apply && !ctx.dry_run) {
    AZLB_TRY(engine::apply_dsr_member(svc.vip));
    ctx.confirm("VM " + q(vm->name) + " is set up for direct server return (" + list + "): VIP " +
                    svc.vip.to_string() + " on lo" + (svc.vip.family == Family::V4 ? ", ARP for it off" : ""),
                {{"vm", vm->name}, {"vip", svc.vip.to_string()}, {"lbsets", sets}, {"applied", true},
                 {"commands", commands}});
    return ok();
  }
  if (ctx.json()) {
    ctx.print_json({{"vm", vm->name}, {"vip", svc.vip.to_string()}, {"lbsets", sets}, {"applied", false},
                    {"commands", commands}});
    return ok();
  }
  std::cout << "# On VM " << vm->name << " (" << vm->private_ip.to_string() << "), a member of " << list
            << ", which return directly:\n# it receives the clients' packets addressed to VIP " << svc.vip.to_string()
            << " and answers them itself.\n";
  for (auto& c : commands) std::cout << c << "\n";
  return ok();
}

}  // namespace vm_cmd

void register_vm(CLI::App& app, Context& ctx) {
  using namespace vm_cmd;
  auto* vm = group(app, ctx, "vm", "Create, list, show and delete virtual machines");

  auto f = std::make_shared<CreateFlags>();
  auto* c = command(*vm, ctx, "create", "Create a VM (From Gallery, or --quick); makes its cloud service if new",
                    [&ctx, f] { return create(ctx, *f); });
  c->add_option("NAME", f->name, "VM name")->required();
  add(*c, f->cloud_service, "--cloud-service", "Cloud service to put the VM in (created if new)")
      .opt->type_name("CS");
  c->add_flag("--quick", f->quick, "Quick Create: the cloud service gets a default name (the VM's)");
  c->add_flag("--new-service", f->new_service,
              "The cloud service is new, though its name is close to an existing one's (a typo is refused otherwise)");
  add(*c, f->os, "--os", "Operating system: linux (default) or windows").opt->type_name("linux|windows");
  add(*c, f->image, "--image", "Image label, shown only").opt->type_name("LABEL");
  add(*c, f->private_ip, "--private-ip", "Private IP (DIP); default: next free in the service's subnet")
      .opt->type_name("ADDR");
  c->add_option("--endpoint", f->endpoints, "Endpoint to add, NAME:PROTO:PUBLIC:PRIVATE (repeatable)")
      ->type_name("SPEC");
  c->add_flag("--no-default-endpoints", f->no_default_endpoints,
              "Skip the default endpoints (linux: SSH; windows: RemoteDesktop, PowerShell)");

  command(*vm, ctx, "list", "List VMs", [&ctx] { return list(ctx); });

  auto show_name = std::make_shared<std::string>();
  command(*vm, ctx, "show", "Show a VM and its endpoints", [&ctx, show_name] { return show(ctx, *show_name); })
      ->add_option("NAME", *show_name, "VM name")
      ->required();

  auto del_name = std::make_shared<std::string>();
  command(*vm, ctx, "delete", "Delete a VM and its endpoints", [&ctx, del_name] { return remove(ctx, *del_name); })
      ->add_option("NAME", *del_name, "VM name")
      ->required();

  auto dsr = std::make_shared<DsrSetupFlags>();
  auto* d = command(*vm, ctx, "dsr-setup", "What a member of a direct-server-return set needs on its host (VIP on lo, ARP)",
                    [&ctx, dsr] { return dsr_setup(ctx, *dsr); });
  d->add_option("VM", dsr->vm, "VM name")->required();
  d->add_flag("--apply", dsr->apply, "Do it on this host (run there, as root) instead of printing it");

  register_serve(*vm, ctx);
}

}  // namespace azlb::cli
