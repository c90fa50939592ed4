// azlb lbset create|join|leave|list|show|set|delete: steps 3 and 4 of the
// portal and what surrounds them.
#include <chrono>
#include <iostream>
#include <memory>
#include <thread>

#include "cli/commands.hpp"
#include "cli/engine_view.hpp"
#include "cli/flags.hpp"
#include "cli/render.hpp"
#include "cli/table.hpp"
#include "engine/control/control.hpp"
#include "store/state_store.hpp"

namespace azlb::cli {

using namespace azlb::model;

// Named, not anonymous: the CLI's files are compiled together (a unity build).
namespace lbset_cmd {

struct CreateFlags {
  std::string set;
  Flag vm, endpoint, protocol, public_port, private_port, weight;
  SetFlags options;
};

std::string percent(double share) {
  char buf[16];
  std::snprintf(buf, sizeof buf, "%.1f%%", share * 100);
  return buf;
}

Result<std::optional<std::uint32_t>> weight_of(const Flag& f) {
  std::optional<std::uint32_t> w;
  AZLB_TRY(parse_if(f, w, [](auto& v) { return parse_uint("weight", v, kWeightMin, kWeightMax); }));
  return w;
}

Status create(const Context& ctx, const CreateFlags& f) {
  LbsetCreateRequest r;
  r.set = f.set;
  r.vm = f.vm.value;
  r.endpoint = f.endpoint.value;
  AZLB_TRY(parse_if(f.protocol, r.protocol, parse_protocol));
  AZLB_TRY(parse_if(f.public_port, r.public_port, [](auto& v) { return parse_u16("public port", v); }));
  AZLB_TRY(parse_if(f.private_port, r.private_port, [](auto& v) { return parse_u16("private port", v); }));
  AZLB_ASSIGN(opts, f.options.parse());
  r.options = opts;
  AZLB_ASSIGN(weight, weight_of(f.weight));
  r.weight = weight;
  LbsetCreated created;
  State after;
  AZLB_TRY(ctx.change([&](State& s) -> Status {
    AZLB_ASSIGN(c, create_lbset(s, r));
    created = c;
    after = s;
    return ok();
  }));
  auto& vm = *find_vm(after, r.vm);
  auto& svc = *find_service(after, vm.cloud_service);
  auto& set = *find_lbset(svc, r.set);
  std::string msg = "Load-balanced set " + q(set.name) + " created in cloud service " + q(svc.name) + " on " +
                    std::string(to_string(set.protocol)) + "/" + std::to_string(set.public_port) + " with " +
                    (created.endpoint_created ? "new " : "") + "endpoint " + q(r.endpoint) + " of VM " +
                    q(vm.name) + " as first member; probe " + describe(set.probe) + "; distribution " +
                    std::string(to_string(set.distribution));
  ctx.confirm(msg, {{"lbset", to_json(after, svc, set, no_engine)}});
  return ok();
}

struct JoinFlags {
  std::string set;
  Flag vm, endpoint, private_port, weight;
};

Status join(const Context& ctx, const JoinFlags& f) {
  LbsetJoinRequest r;
  r.set = f.set;
  r.vm = f.vm.value;
  if (f.endpoint.given()) r.endpoint = f.endpoint.value;
  AZLB_TRY(parse_if(f.private_port, r.private_port, [](auto& v) { return parse_u16("private port", v); }));
  AZLB_ASSIGN(weight, weight_of(f.weight));
  r.weight = weight;
  Joined joined;
  State after;
  AZLB_TRY(ctx.change([&](State& s) -> Status {
    AZLB_ASSIGN(j, join_lbset(s, r));
    joined = j;
    after = s;
    return ok();
  }));
  auto& vm = *find_vm(after, r.vm);
  auto& ep = *find_endpoint(vm, joined.endpoint);
  auto& svc = *find_service(after, vm.cloud_service);
  std::string msg = joined.existing ? "Endpoint " + q(ep.name) + " of VM " + q(vm.name) +
                                          " moved into load-balanced set " + q(r.set) + " (" + port_mapping(ep) + ")"
                                    : "Endpoint " + q(ep.name) + " (" + port_mapping(ep) + ") added to VM " +
                                          q(vm.name) + " in load-balanced set " + q(r.set);
  ctx.confirm(msg, {{"vm", vm.name}, {"endpoint", to_json(after, vm, ep)},
                    {"lbset", to_json(after, svc, *find_lbset(svc, r.set), no_engine)}});
  return ok();
}

struct LeaveFlags {
  std::string set, vm;
  Flag public_port;
};

Status leave(const Context& ctx, const LeaveFlags& f) {
  std::optional<std::uint16_t> port;
  if (f.public_port.given()) {
    AZLB_ASSIGN(p, parse_u16("public port", f.public_port.value));
    port = p;
  }
  PortMove move;
  AZLB_TRY(ctx.change([&](State& s) -> Status {
    AZLB_ASSIGN(m, leave_lbset(s, f.set, f.vm, port));
    move = m;
    return ok();
  }));
  const std::string left = "VM " + q(f.vm) + " left load-balanced set " + q(f.set);
  if (move.to)
    ctx.confirm(left + "; as asked, its endpoint " + q(move.endpoint) + " stays on the VM, published on public port " +
                    std::to_string(move.to) + " (the set's ACL and PROXY protocol go with it)",
                {{"vm", f.vm}, {"endpoint", move.endpoint}, {"removed", false}, {"public_port", move.to}});
  else
    ctx.confirm(left + "; its endpoint " + q(move.endpoint) +
                    " was removed with it (give --public-port N to keep it on a port of its own)",
                {{"vm", f.vm}, {"endpoint", move.endpoint}, {"removed", true}, {"public_port", nullptr}});
  return ok();
}

Status list(const Context& ctx) {
  AZLB_ASSIGN(s, store::load(ctx.location()));
  if (ctx.json()) {
    Json out = Json::array();
    for (auto& svc : s.services)
      for (auto& set : svc.lbsets) out.push_back(to_json(s, svc, set, no_engine));
    ctx.print_json({{"lbsets", out}});
    return ok();
  }
  Table t({"NAME", "CLOUD SERVICE", "PUBLIC PORT", "MEMBERS", "DISTRIBUTION", "PROBE"});
  for (auto& svc : s.services)
    for (auto& set : svc.lbsets)
      t.add({set.name, svc.name, std::string(to_string(set.protocol)) + "/" + std::to_string(set.public_port),
             std::to_string(members_of(s, svc, set).size()), std::string(to_string(set.distribution)),
             describe(set.probe)});
  if (t.empty() && !ctx.quiet)
    std::cout << "No load-balanced sets yet. Make one with: azlb lbset create SET --vm VM --endpoint N\n";
  else
    t.print(std::cout);
  return ok();
}

Status show(const Context& ctx, const SetRef& ref) {
  AZLB_ASSIGN(s, store::load(ctx.location()));
  AZLB_ASSIGN(loc, locate_set(s, ref));
  // The engine's live view of each member, as status shows it.
  const EngineView engine = query_engine(ctx.location());
  LiveOf live = [&](auto& svc, auto& set, auto& vm, auto& ep) { return engine.member(svc, set, vm, ep); };
  if (ctx.json()) {
    ctx.print_json(to_json(s, *loc.service, *loc.set, live));
    return ok();
  }
  auto& set = *loc.set;
  std::cout << "Load-balanced set " << set.name << "\n"
            << "  cloud service  " << loc.service->name << " (VIP " << loc.service->vip.to_string() << ")\n"
            << "  public port    " << to_string(set.protocol) << "/" << set.public_port << "\n"
            << "  distribution   " << to_string(set.distribution) << "\n"
            << "  probe          " << describe(set.probe) << "\n"
            << "  when all down  " << to_string(set.when_all_down) << "\n"
            << "  PROXY protocol " << to_string(set.proxy_protocol) << "\n"
            << "  direct return  " << (set.direct_server_return ? "on (members answer clients directly)" : "off")
            << "\n"
            << "  ACL rules      " << set.acl.size() << (set.acl.empty() ? " (every client is permitted)" : "")
            << "\n\n";
  Table t({"VM", "ENDPOINT", "PRIVATE IP", "PRIVATE PORT", "WEIGHT", "SHARE", "HEALTH", "ADMIN", "ACTIVE"});
  for (auto& m : members_of(s, *loc.service, set)) {
    const auto l = live(loc.service->name, set.name, m.vm->name, m.endpoint->name);
    t.add({m.vm->name, m.endpoint->name, m.vm->private_ip.to_string(), std::to_string(m.endpoint->private_port),
           std::to_string(m.endpoint->weight), l.share ? percent(*l.share) : "-", l.health, std::string(to_string(m.endpoint->admin_state)),
           l.active ? std::to_string(*l.active) : "-"});
  }
  if (t.empty())
    std::cout << "  no members: add one with 'azlb lbset join " << set.name << " --vm VM'\n";
  else
    t.print(std::cout, "  ");
  return ok();
}

struct SetCmdFlags {
  SetRef ref;
  SetFlags options;
};

Status update(const Context& ctx, const SetCmdFlags& f) {
  AZLB_ASSIGN(opts, f.options.parse());
  State after;
  AZLB_TRY(ctx.change([&](State& s) -> Status {
    AZLB_TRY(update_lbset(s, f.ref, opts));
    after = s;
    return ok();
  }));
  auto loc = locate_set(after, f.ref);
  auto& set = *loc->set;
  ctx.confirm("Load-balanced set " + q(set.name) + " updated: probe " + describe(set.probe) + "; distribution " +
                  std::string(to_string(set.distribution)) + "; when all down " +
                  std::string(to_string(set.when_all_down)) + "; PROXY protocol " +
                  std::string(to_string(set.proxy_protocol)) + "; direct server return " +
                  (set.direct_server_return ? "on" : "off"),
              {{"lbset", to_json(after, *loc->service, set, no_engine)}});
  return ok();
}

struct DeleteFlags {
  SetRef ref;
  bool publish = false, remove_endpoints = false;
};

Status remove(const Context& ctx, const DeleteFlags& f) {
  const SetRef& ref = f.ref;
  std::vector<PortMove> moves;
  const auto after = f.remove_endpoints ? SetMembersAfterDelete::Remove
                     : f.publish        ? SetMembersAfterDelete::Publish
                                        : SetMembersAfterDelete::Unpublish;
  AZLB_TRY(ctx.change([&](State& s) -> Status {
    AZLB_ASSIGN(m, delete_lbset(s, ref, after));
    moves = m;
    return ok();
  }));
  std::string msg = "Load-balanced set " + q(ref.name) + " deleted";
  if (moves.empty())
    msg += "; it had no members";
  else if (after == SetMembersAfterDelete::Remove)
    msg += "; as asked, its members' endpoints were removed with it: " + describe(moves);
  else if (after == SetMembersAfterDelete::Publish)
    msg += "; as asked, its endpoints stay on their VMs, each published on a public port of its own: " +
           describe(moves);
  else
    msg += "; its endpoints stay on their VMs, unpublished (no public port: nothing reaches them through the VIP): " +
           describe(moves) + ". 'azlb endpoint set VM NAME --public-port P' publishes one";
  Json jm = Json::array();
  for (auto& m : moves)
    jm.push_back({{"vm", m.vm}, {"endpoint", m.endpoint}, {"from_public_port", m.from}, {"removed", !m.kept},
                  {"published", m.to != 0}, {"public_port", m.to ? Json(m.to) : Json(nullptr)}});
  ctx.confirm(msg, {{"lbset", ref.name}, {"endpoints", jm}});
  return ok();
}

struct WeightFlags {
  std::string set, vm;
  Flag weight;
};

Status weight(const Context& ctx, const WeightFlags& f) {
  AZLB_ASSIGN(w, weight_of(f.weight));
  WeightChange change;
  AZLB_TRY(ctx.change([&](State& s) -> Status {
    AZLB_ASSIGN(c, set_weight(s, f.set, f.vm, *w));
    change = c;
    return ok();
  }));
  const std::string who = "VM " + q(f.vm) + " (endpoint " + q(change.endpoint) + ") in load-balanced set " + q(f.set);
  ctx.confirm(who + (change.before == *w ? " already had weight " + std::to_string(*w) + "; nothing changed"
                                          : " now has weight " + std::to_string(*w) + " (was " +
                                                std::to_string(change.before) + ")"),
              {{"lbset", f.set}, {"vm", f.vm}, {"endpoint", change.endpoint}, {"weight", *w},
               {"previous_weight", change.before}});
  return ok();
}

struct DrainFlags {
  std::string set, vm;
  Flag wait;
};

// What the engine reports of one member: whether the drain is in force there
// (its generation has it) and how many connections and flows remain.
struct MemberAtEngine {
  bool drained = false;
  std::uint64_t active = 0;
};

Result<MemberAtEngine> ask_engine(const store::Location& state, const AdminChange& m, const std::string& set,
                                  const std::string& vm) {
  AZLB_ASSIGN(r, engine::admin_request(state, "GET", "/v1/status"));
  auto j = Json::parse(r.body, nullptr, false);
  if (r.status != 200 || !j.is_object()) return runtime_error("the engine's admin socket answered " + std::to_string(r.status));
  for (auto& e : j["members"])
    if (e.value("service", "") == m.service && e["lbset"].is_string() && e["lbset"] == set && e.value("vm", "") == vm &&
        e.value("endpoint", "") == m.endpoint)
    {
      // null: the engine cannot count them now (conntrack unreadable), so
      // the member is not known to be empty.
      const auto& active = e["active"];
      if (e.value("direct_server_return", false))
        return runtime_error("a member of a direct-server-return set has flows this host cannot count (it sees "
                             "one direction and no end): its packets_in in 'azlb status -o json' stop growing "
                             "when they are over");
      if (!active.is_number_unsigned()) return runtime_error("the engine cannot count the member's flows now");
      return MemberAtEngine{e.value("admin_state", "up") == "drain", active.get<std::uint64_t>()};
    }
  return MemberAtEngine{};  // not in the engine's configuration yet
}

// Waits until the engine has the drain in force and the member has no
// connections left: the moment an operator may take the VM down.
Result<std::uint64_t> wait_drained(const store::Location& state, const AdminChange& m, const std::string& set,
                                   const std::string& vm, std::uint32_t wait_s) {
  using Clock = std::chrono::steady_clock;
  const auto deadline = Clock::now() + std::chrono::seconds(wait_s);
  // The engine applies a changed file within a second by itself; asking
  // spares the wait.
  (void)engine::admin_request(state, "POST", "/v1/reload");
  for (;;) {
    auto at = ask_engine(state, m, set, vm);
    if (!at && !engine::running_pid(state)) return std::uint64_t{0};  // it stopped: nothing is left
    // A busy admin socket is asked again until the deadline.
    if (at && at->drained && at->active == 0) return std::uint64_t{0};
    if (Clock::now() >= deadline) {
      if (!at) return at.error();
      return at->drained ? at->active : std::max<std::uint64_t>(at->active, 1);
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
}

Status drain(const Context& ctx, const DrainFlags& f, AdminState to) {
  std::optional<std::uint32_t> wait_s;
  if (f.wait.given()) {
    AZLB_ASSIGN(w, parse_uint("drain wait (seconds)", f.wait.value, 0, 86400));
    wait_s = w;
  }
  AdminChange change;
  AZLB_TRY(ctx.change([&](State& s) -> Status {
    AZLB_ASSIGN(c, set_admin_state(s, f.set, f.vm, to));
    change = c;
    return ok();
  }));
  const std::string who = "VM " + q(f.vm) + " (endpoint " + q(change.endpoint) + ") in load-balanced set " + q(f.set);
  Json details = {{"lbset", f.set}, {"vm", f.vm}, {"endpoint", change.endpoint}, {"admin_state", to_string(to)}};
  if (to == AdminState::Up) {
    ctx.confirm(who + (change.before == AdminState::Up ? " was not drained; nothing changed" : " takes new connections again"),
                details);
    return ok();
  }
  std::string msg = who + (change.before == AdminState::Drain ? " was already drained" : " drained") +
                    ": it gets no new connections or flows; established ones carry on";
  const auto state = ctx.location().absolute();
  if (wait_s && !ctx.dry_run && engine::running_pid(state)) {
    AZLB_ASSIGN(left, wait_drained(state, change, f.set, f.vm, *wait_s));
    details["active_connections"] = left;
    if (left > 0)
      return runtime_error(who + " is drained, but " + std::to_string(left) + " active connection" +
                           (left == 1 ? " remains" : "s remain") + " after " + std::to_string(*wait_s) +
                           " s (UDP flows count as connections)");
    msg += "; it has no active connections left";
  } else if (wait_s) {
    details["active_connections"] = 0;
    msg += "; no engine runs, so it has no active connections";
  }
  ctx.confirm(msg, details);
  return ok();
}

void add_set_ref(CLI::App& c, SetRef& ref) {
  c.add_option("SET", ref.name, "Load-balanced set name")->required();
  c.add_option("--cloud-service", ref.cloud_service, "Cloud service of the set, where the name is in several")
      ->type_name("CS");
}

}  // namespace lbset_cmd

void register_lbset(CLI::App& app, Context& ctx) {
  using namespace lbset_cmd;
  auto* lb = group(app, ctx, "lbset", "Load-balanced sets: create, join, leave, list, show, set, delete");

  auto f = std::make_shared<CreateFlags>();
  auto* c = command(*lb, ctx, "create", "Make a VM's endpoint the first member of a new set (step 3)",
                    [&ctx, f] { return create(ctx, *f); });
  c->add_option("SET", f->set, "Load-balanced set name")->required();
  add(*c, f->vm, "--vm", "VM whose endpoint becomes the first member").opt->required()->type_name("VM");
  add(*c, f->endpoint, "--endpoint", "The VM's endpoint (made first when --public-port/--private-port are given)")
      .opt->required()
      ->type_name("N");
  add(*c, f->protocol, "--protocol", "Protocol of an endpoint made here: tcp (default) or udp").opt->type_name("tcp|udp");
  add(*c, f->public_port, "--public-port", "Public port of an endpoint made here").opt->type_name("P");
  add(*c, f->private_port, "--private-port", "Private port of an endpoint made here").opt->type_name("Q");
  add(*c, f->weight, "--weight", "The first member's share of the flows, 1..256 (default 1)").opt->type_name("N");
  f->options.add_to(*c);

  auto j = std::make_shared<JoinFlags>();
  auto* jc = command(*lb, ctx, "join", "Add a VM to a set with an endpoint (step 4)", [&ctx, j] { return join(ctx, *j); });
  jc->add_option("SET", j->set, "Load-balanced set name")->required();
  add(*jc, j->vm, "--vm", "VM to add").opt->required()->type_name("VM");
  add(*jc, j->endpoint, "--endpoint", "Endpoint name (default: the set's)").opt->type_name("N");
  add(*jc, j->private_port, "--private-port", "Private port (default: the first member's)").opt->type_name("Q");
  add(*jc, j->weight, "--weight", "Its share of the set's flows, 1..256 (default 1)").opt->type_name("N");

  auto lv = std::make_shared<LeaveFlags>();
  auto* lc = command(*lb, ctx, "leave", "Take a VM out of a set; its member endpoint goes with it",
                     [&ctx, lv] { return leave(ctx, *lv); });
  lc->add_option("SET", lv->set, "Load-balanced set name")->required();
  lc->add_option("--vm", lv->vm, "VM to take out")->required()->type_name("VM");
  add(*lc, lv->public_port, "--public-port", "Keep its endpoint, published on this public port of its own")
      .opt->type_name("P");

  command(*lb, ctx, "list", "List load-balanced sets", [&ctx] { return list(ctx); });

  auto sr = std::make_shared<SetRef>();
  add_set_ref(*command(*lb, ctx, "show", "Show a set and its members", [&ctx, sr] { return show(ctx, *sr); }), *sr);

  auto u = std::make_shared<SetCmdFlags>();
  auto* uc = command(*lb, ctx, "set", "Change a set's probe, distribution, fail-open choice or PROXY protocol",
                     [&ctx, u] { return update(ctx, *u); });
  add_set_ref(*uc, u->ref);
  u->options.add_to(*uc);

  auto w = std::make_shared<WeightFlags>();
  auto* wc = command(*lb, ctx, "weight", "Change a member's share of its set's flows",
                     [&ctx, w] { return weight(ctx, *w); });
  wc->add_option("SET", w->set, "Load-balanced set name")->required();
  wc->add_option("--vm", w->vm, "VM whose member gets the weight")->required()->type_name("VM");
  add(*wc, w->weight, "--weight", "1..256").opt->required()->type_name("N");

  auto dr = std::make_shared<DrainFlags>();
  auto* drc = command(*lb, ctx, "drain", "Send a member no new connections or flows; established ones carry on",
                      [&ctx, dr] { return drain(ctx, *dr, AdminState::Drain); });
  drc->add_option("SET", dr->set, "Load-balanced set name")->required();
  drc->add_option("--vm", dr->vm, "VM whose member is drained")->required()->type_name("VM");
  add(*drc, dr->wait, "--wait", "Return once it has no connections (exit 0), or after SEC seconds (exit 1)")
      .opt->type_name("SEC");
  auto ud = std::make_shared<DrainFlags>();
  auto* udc = command(*lb, ctx, "undrain", "Let a drained member take new connections again",
                      [&ctx, ud] { return drain(ctx, *ud, AdminState::Up); });
  udc->add_option("SET", ud->set, "Load-balanced set name")->required();
  udc->add_option("--vm", ud->vm, "VM whose member takes connections again")->required()->type_name("VM");

  auto d = std::make_shared<DeleteFlags>();
  auto* dc = command(*lb, ctx, "delete", "Delete a set; its endpoints stay on their VMs, unpublished",
                     [&ctx, d] { return remove(ctx, *d); });
  add_set_ref(*dc, d->ref);
  auto* publish = dc->add_flag("--publish", d->publish,
                               "Publish each member's endpoint on a public port of its own (the set's for the first)");
  dc->add_flag("--remove-endpoints", d->remove_endpoints, "Remove the members' endpoints with the set")
      ->excludes(publish);
}

}  // namespace azlb::cli
