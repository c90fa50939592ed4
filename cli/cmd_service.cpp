// azlb service create|list|show|delete: the cloud service that holds VMs and
// owns the public VIP.
#include <iostream>
#include <memory>

#include "cli/commands.hpp"
#include "model/text.hpp"
#include "cli/flags.hpp"
#include "cli/render.hpp"
#include "cli/table.hpp"
#include "store/state_store.hpp"

namespace azlb::cli {

using namespace azlb::model;

// Named, not anonymous: the CLI's files are compiled together (a unity build).
namespace service_cmd {

struct CreateFlags {
  std::string name;
  Flag vip, subnet, dataplane;
};

Status create(const Context& ctx, const CreateFlags& f) {
  ServiceRequest r{f.name, std::nullopt, std::nullopt};
  AZLB_TRY(parse_if(f.vip, r.vip, [](auto& v) { return parse_ip("VIP", v); }));
  AZLB_TRY(parse_if(f.subnet, r.subnet, [](auto& v) { return parse_cidr("subnet", v); }));
  if (f.dataplane.given()) {
    AZLB_ASSIGN(plane, parse_dataplane(f.dataplane.value));
    r.dataplane = plane;
  }
  State after;
  AZLB_TRY(ctx.change([&](State& s) -> Status {
    AZLB_TRY(create_service(s, r));
    after = s;
    return ok();
  }));
  auto& svc = *find_service(after, f.name);
  for (auto* other : overlapping_services(after, svc))
    ctx.warn("subnet " + svc.subnet.to_string() + " overlaps cloud service " + q(other->name) + "'s " +
             other->subnet.to_string() + ": their VMs share one address space (no address is given twice)");
  ctx.confirm("Cloud service " + q(svc.name) + " created (" + svc.dns() + ", VIP " + svc.vip.to_string() +
                  ", subnet " + svc.subnet.to_string() + ", data plane " + std::string(to_string(svc.dataplane)) + ")",
              {{"cloud_service", to_json(after, svc, no_engine)}});
  return ok();
}

Status list(const Context& ctx) {
  AZLB_ASSIGN(s, store::load(ctx.location()));
  if (ctx.json()) {
    Json out = Json::array();
    for (auto& svc : s.services) out.push_back(to_json(s, svc, no_engine));
    ctx.print_json({{"cloud_services", out}});
    return ok();
  }
  Table t({"NAME", "DNS", "VIP", "SUBNET", "DATA PLANE", "VMS", "LOAD-BALANCED SETS"});
  for (auto& svc : s.services)
    t.add({svc.name, svc.dns(), svc.vip.to_string(), svc.subnet.to_string(), std::string(to_string(svc.dataplane)),
           std::to_string(vms_of(s, svc).size()), std::to_string(svc.lbsets.size())});
  if (t.empty() && !ctx.quiet)
    std::cout << "No cloud services yet. 'azlb vm create NAME --cloud-service CS' makes one.\n";
  else
    t.print(std::cout);
  return ok();
}

Status show(const Context& ctx, const std::string& name) {
  AZLB_ASSIGN(s, store::load(ctx.location()));
  AZLB_ASSIGN(svc, service_or_error(s, name));
  if (ctx.json()) {
    ctx.print_json(to_json(s, *svc, no_engine));
    return ok();
  }
  std::cout << "Cloud service " << svc->name << "\n"
            << "  DNS         " << svc->dns() << "\n"
            << "  VIP         " << svc->vip.to_string() << "\n"
            << "  subnet      " << svc->subnet.to_string() << "\n"
            << "  data plane  " << to_string(svc->dataplane) << "\n\n";
  Table vms({"VM", "PRIVATE IP", "OS", "ENDPOINTS"});
  for (auto* vm : vms_of(s, *svc))
    vms.add({vm->name, vm->private_ip.to_string(), std::string(to_string(vm->os)), std::to_string(vm->endpoints.size())});
  if (vms.empty())
    std::cout << "  no VMs\n";
  else
    vms.print(std::cout, "  ");
  if (!svc->lbsets.empty()) {
    std::cout << "\n";
    Table sets({"LOAD-BALANCED SET", "PUBLIC PORT", "MEMBERS", "PROBE"});
    for (auto& set : svc->lbsets)
      sets.add({set.name, std::string(to_string(set.protocol)) + "/" + std::to_string(set.public_port),
                std::to_string(members_of(s, *svc, set).size()), describe(set.probe)});
    sets.print(std::cout, "  ");
  }
  return ok();
}

struct ServiceSetFlags {
  std::string name;
  Flag dataplane, vip;
};

Status update(const Context& ctx, const ServiceSetFlags& f) {
  if (!f.dataplane.given() && !f.vip.given())
    return usage_error("nothing to change: give --dataplane proxy|nat or --vip ADDR");
  std::optional<Dataplane> plane;
  if (f.dataplane.given()) {
    AZLB_ASSIGN(p, parse_dataplane(f.dataplane.value));
    plane = p;
  }
  std::optional<IpAddress> vip;
  AZLB_TRY(parse_if(f.vip, vip, [](auto& v) { return parse_ip("VIP", v); }));
  Dataplane plane_before{};
  IpAddress vip_before;
  State after;
  AZLB_TRY(ctx.change([&](State& s) -> Status {
    if (vip) {
      AZLB_ASSIGN(b, set_vip(s, f.name, *vip));
      vip_before = b;
    }
    if (plane) {
      AZLB_ASSIGN(b, set_dataplane(s, f.name, *plane));
      plane_before = b;
    }
    after = s;
    return ok();
  }));
  auto& svc = *find_service(after, f.name);
  std::vector<std::string> said;
  if (vip) {
    // What moves: every public port of the service, its sets' included.
    std::size_t endpoints = 0;
    for (auto* v : vms_of(after, svc))
      for (auto& ep : v->endpoints) endpoints += ep.lbset.empty() && published(ep);
    said.push_back(vip_before == *vip ? "already answers on VIP " + vip->to_string()
                                      : "now answers on VIP " + vip->to_string() + " (was " + vip_before.to_string() +
                                            "): " + model::count(endpoints, "endpoint", "endpoints") + " and " +
                                            model::count(svc.lbsets.size(), "load-balanced set", "load-balanced sets") +
                                            " moved");
  }
  if (plane)
    said.push_back(plane_before == *plane ? "already forwards with " + std::string(to_string(*plane))
                                          : "now forwards with " + std::string(to_string(*plane)) + " (was " +
                                                std::string(to_string(plane_before)) + ")");
  std::string msg = "Cloud service " + q(svc.name) + " " + said[0];
  if (said.size() > 1) msg += "; " + said[1];
  ctx.confirm(msg, {{"cloud_service", to_json(after, svc, no_engine)}});
  return ok();
}

Status remove(const Context& ctx, const std::string& name, bool with_vms) {
  std::vector<std::string> vms;
  AZLB_TRY(ctx.change([&](State& s) -> Status {
    AZLB_ASSIGN(deleted, delete_service(s, name, with_vms));
    vms = deleted;
    return ok();
  }));
  std::string msg = "Cloud service " + q(name) + " deleted";
  if (!vms.empty()) msg += " with its " + std::to_string(vms.size()) + " VM(s)";
  ctx.confirm(msg, {{"cloud_service", name}, {"deleted_vms", vms}});
  return ok();
}

}  // namespace service_cmd

void register_service(CLI::App& app, Context& ctx) {
  using namespace service_cmd;
  auto* svc = group(app, ctx, "service", "Create, list, show, set and delete cloud services");

  auto f = std::make_shared<CreateFlags>();
  auto* c = command(*svc, ctx, "create", "Create a cloud service", [&ctx, f] { return create(ctx, *f); });
  c->add_option("NAME", f->name, "Cloud service name (DNS label NAME.cloudapp.net)")->required();
  add(*c, f->vip, "--vip", "Public VIP the engine listens on (default 127.0.0.1)").opt->type_name("ADDR");
  add(*c, f->subnet, "--subnet", "Subnet for VMs' private IPs (default: a free 127.0.N.0/24)")
      .opt->type_name("CIDR");
  const std::string plane_help =
      "proxy (default): the engine's own connections; nat: the kernel rewrites each packet, members see the "
      "client's address (needs CAP_NET_ADMIN)";
  add(*c, f->dataplane, "--dataplane", plane_help).opt->type_name("proxy|nat");

  auto u = std::make_shared<ServiceSetFlags>();
  auto* uc = command(*svc, ctx, "set", "Change a cloud service's data plane or VIP", [&ctx, u] { return update(ctx, *u); });
  uc->add_option("NAME", u->name, "Cloud service name")->required();
  add(*uc, u->dataplane, "--dataplane", plane_help).opt->type_name("proxy|nat");
  add(*uc, u->vip, "--vip", "New VIP: every endpoint and set of the service moves to it").opt->type_name("ADDR");

  command(*svc, ctx, "list", "List cloud services", [&ctx] { return list(ctx); });

  auto show_name = std::make_shared<std::string>();
  command(*svc, ctx, "show", "Show a cloud service, its VMs and sets",
          [&ctx, show_name] { return show(ctx, *show_name); })
      ->add_option("NAME", *show_name, "Cloud service name")
      ->required();

  struct DeleteFlags {
    std::string name;
    bool with_vms = false;
  };
  auto d = std::make_shared<DeleteFlags>();
  auto* del = command(*svc, ctx, "delete", "Delete a cloud service", [&ctx, d] { return remove(ctx, d->name, d->with_vms); });
  del->add_option("NAME", d->name, "Cloud service name")->required();
  del->add_flag("--with-vms", d->with_vms, "Also delete the VMs in it");
}

}  // namespace azlb::cli
