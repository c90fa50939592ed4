// azlb status: the portal's Endpoints page for every cloud service, with the
// engine's live view of each member's health.
#include <iostream>
#include <memory>

#include "cli/commands.hpp"
#include "cli/engine_view.hpp"
#include "cli/render.hpp"
#include "cli/table.hpp"
#include "store/state_file.hpp"

namespace azlb::cli {

using namespace azlb::model;

// Named, not anonymous: the CLI's files are compiled together (a unity build).
namespace status_cmd {

Status status(const Context& ctx, const std::string& only) {
  AZLB_ASSIGN(s, store::load(ctx.state_path()));
  if (!only.empty()) AZLB_TRY(service_or_error(s, only));
  EngineView engine = query_engine(ctx.state_path());
  LiveOf live = [&](auto& svc, auto& set, auto& vm, auto& ep) { return engine.member(svc, set, vm, ep); };

  if (ctx.json()) {
    Json services = Json::array();
    for (auto& svc : s.services)
      if (only.empty() || svc.name == only) services.push_back(to_json(s, svc, live));
    ctx.print_json({{"cloud_services", services}, {"engine", engine.to_json()}});
    return ok();
  }
  bool first = true;
  for (auto& svc : s.services) {
    if (!only.empty() && svc.name != only) continue;
    std::cout << (first ? "" : "\n") << "Cloud service " << svc.name << " (" << svc.dns() << ")  VIP "
              << svc.vip.to_string() << "\n";
    first = false;
    Table t({"VM", "PRIVATE IP", "ENDPOINT", "PROTOCOL", "PUBLIC PORT", "PRIVATE PORT", "LOAD-BALANCED SET", "HEALTH",
             "ADMIN", "ACTIVE"});
    for (auto* vm : vms_of(s, svc))
      for (auto& ep : vm->endpoints) {
        const bool member = !ep.lbset.empty();
        const auto l = live(svc.name, ep.lbset, vm->name, ep.name);  // a plain endpoint's set is ""
        t.add({vm->name, vm->private_ip.to_string(), ep.name, std::string(to_string(ep.protocol)),
               std::to_string(ep.public_port), std::to_string(ep.private_port), member ? ep.lbset : "-",
               member ? l.health : "-", member ? std::string(to_string(ep.admin_state)) : "-",
               l.active ? std::to_string(*l.active) : "-"});
      }
    if (t.empty())
      std::cout << "  no endpoints\n";
    else
      t.print(std::cout, "  ");
  }
  if (first) std::cout << "No cloud services yet. Start with: azlb vm create NAME --cloud-service CS\n";
  std::cout << "\n" << engine.summary() << "\n";
  return ok();
}

}  // namespace status_cmd

void register_status(CLI::App& app, Context& ctx) {
  using namespace status_cmd;
  auto only = std::make_shared<std::string>();
  command(app, ctx, "status", "Every VM's endpoints, their load-balanced sets and live health",
          [&ctx, only] { return status(ctx, *only); })
      ->add_option("--cloud-service", *only, "Only this cloud service")
      ->type_name("CS");
}

}  // namespace azlb::cli
