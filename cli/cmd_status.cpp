// azlb status: the portal's Endpoints page for every cloud service, with the
// engine's live view of each member's health.
#include <iostream>
#include <memory>

#include "cli/commands.hpp"
#include "cli/engine_view.hpp"
#include "cli/render.hpp"
#include "cli/status_watch.hpp"
#include "cli/table.hpp"
#include "engine/control/control.hpp"
#include "store/state_store.hpp"

namespace azlb::cli {

using namespace azlb::model;

// Named, not anonymous: the CLI's files are compiled together (a unity build).
namespace status_cmd {

// A state file that does not load (a hand edit gone wrong) must not hide
// what the running engine serves, which is its last good configuration:
// its own view is shown, then the file's error is returned (exit 2).
Status engine_view_of_broken_file(const Context& ctx, const Error& broken) {
  const auto state = ctx.location().absolute();
  if (!engine::running_pid(state)) return broken;
  auto r = engine::admin_request(state, "GET", "/v1/status", 3000);
  if (!r || r->status != 200) return broken;
  const auto j = Json::parse(r->body, nullptr, false);
  if (!j.is_object()) return broken;
  if (ctx.json()) {
    ctx.print_json({{"cloud_services", nullptr},
                    {"engine", {{"running", true}, {"pid", j.value("pid", 0)}, {"listeners", j["listeners"]},
                                {"members", j["members"]}, {"generation", j.value("generation", 0)},
                                {"store", j.value("store", Json::object())}}}});
    return broken;
  }
  std::cout << (ctx.location().is_etcd() ? "The state cannot be read" : "The state file does not load")
            << "; the engine (pid " << j.value("pid", 0)
            << ") serves its last good configuration, generation " << j.value("generation", 0) << ":\n";
  if (j.contains("store") && j["store"].is_object() && !j["store"].value("reachable", true))
    std::cout << "The engine finds the state out of reach too, since " << j["store"].value("since", std::string())
              << ": " << j["store"].value("error", std::string()) << "\n";
  Table t({"SERVICE", "LOAD-BALANCED SET", "VM", "ENDPOINT", "ADDRESS", "HEALTH", "ADMIN", "ACTIVE"});
  for (auto& m : j["members"]) {
    auto text = [&](const char* key) { return m.contains(key) && m[key].is_string() ? m[key].get<std::string>() : "-"; };
    t.add({text("service"), text("lbset"), text("vm"), text("endpoint"), text("address"), text("health"),
           text("admin_state"), m.contains("active") && m["active"].is_number() ? m["active"].dump() : "-"});
  }
  t.print(std::cout, "  ");
  return broken;
}

// Over etcd: every engine that follows the state, on any host, and what
// each sees of the members' health.
void print_engines(const EngineList& list) {
  if (!list.error.empty()) {
    std::cout << "Engines of this state: cannot list them: " << list.error << "\n";
    return;
  }
  if (list.engines.empty()) {
    std::cout << "Engines of this state: none runs (start one on each host with 'azlb engine start')\n";
    return;
  }
  std::cout << "Engines of this state (" << list.engines.size() << "):\n";
  Table t({"HOST", "PID", "VERSION", "STARTED", "LISTENING", "ANNOUNCING", "MEMBERS UP", "DOWN IN ITS VIEW"});
  for (auto& e : list.engines) {
    std::size_t members = 0, up = 0;
    std::string down;
    if (e.contains("members") && e["members"].is_array())
      for (auto& m : e["members"]) {
        ++members;
        if (m.value("health", "") == "up") {
          ++up;
        } else if (m["lbset"].is_string()) {
          down += (down.empty() ? "" : ", ") + m.value("service", "") + "/" + m["lbset"].get<std::string>() + "/" +
                  m.value("vm", "");
        }
      }
    auto text = [&](const char* key) { return e.contains(key) && e[key].is_string() ? e[key].get<std::string>() : "-"; };
    // What it tells the routers: its VIPs, "withdrawn", or "-" (no --announce).
    std::string announcing = "-";
    if (e.contains("announce") && e["announce"].is_object() && e["announce"].value("enabled", false)) {
      announcing.clear();
      for (auto& v : e["announce"].value("announcing", Json::array()))
        announcing += (announcing.empty() ? "" : ",") + v.get<std::string>();
      if (e["announce"].value("withdrawn", false)) announcing = "withdrawn";
      if (announcing.empty()) announcing = "none";
    }
    t.add({text("host"), e.contains("pid") ? e["pid"].dump() : "-", text("version"), text("started"),
           e.contains("listening") ? std::to_string(e["listening"].size()) : "-", announcing,
           std::to_string(up) + "/" + std::to_string(members), down.empty() ? "-" : down});
  }
  t.print(std::cout, "  ");
}

Status status(const Context& ctx, const std::string& only) {
  auto loaded = store::load(ctx.location());
  if (!loaded) return engine_view_of_broken_file(ctx, loaded.error());
  auto& s = *loaded;
  if (!only.empty()) AZLB_TRY(service_or_error(s, only));
  EngineView engine = query_engine(ctx.location());
  LiveOf live = [&](auto& svc, auto& set, auto& vm, auto& ep) { return engine.member(svc, set, vm, ep); };

  if (ctx.json()) {
    Json services = Json::array();
    for (auto& svc : s.services)
      if (only.empty() || svc.name == only) services.push_back(to_json(s, svc, live));
    const auto engines = engines_of(ctx.location(), engine);
    Json out = {{"cloud_services", services}, {"engine", engine.to_json()}, {"engines", engines.engines}};
    if (!engines.error.empty()) out["engines_error"] = engines.error;
    ctx.print_json(out);
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
               public_port_text(ep), std::to_string(ep.private_port), member ? ep.lbset : "-",
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
  if (ctx.location().is_etcd()) print_engines(engines_of(ctx.location(), engine));
  return ok();
}

}  // namespace status_cmd

void register_status(CLI::App& app, Context& ctx) {
  using namespace status_cmd;
  struct Flags {
    std::string only, watch, count;
    CLI::Option* watch_opt = nullptr;
  };
  auto f = std::make_shared<Flags>();
  auto* c = command(app, ctx, "status", "Every VM's endpoints, their load-balanced sets and live health",
                    [&ctx, f]() -> Status {
                      if (!f->watch_opt->count() && f->count.empty()) return status(ctx, f->only);
                      WatchOptions o;
                      o.only_service = f->only;
                      if (!f->watch.empty()) {
                        AZLB_ASSIGN(sec, parse_uint("--watch interval (seconds)", f->watch, 1, 3600));
                        o.interval_s = sec;
                      }
                      if (!f->count.empty()) {
                        AZLB_ASSIGN(n, parse_uint("--count", f->count, 1, 1000000));
                        o.rounds = n;
                      }
                      return watch_status(ctx, o);
                    });
  c->add_option("--cloud-service", f->only, "Only this cloud service")->type_name("CS");
  f->watch_opt = c->add_option("--watch", f->watch,
                               "A live view, redrawn every SEC seconds (default 2): rates, totals, last probes")
                     ->expected(0, 1)
                     ->type_name("SEC");
  c->add_option("--count", f->count, "With --watch: stop after N views")->type_name("N");
}

}  // namespace azlb::cli
