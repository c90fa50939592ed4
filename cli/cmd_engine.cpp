// azlb engine start|stop|reload|check.
#include <chrono>
#include <cstdlib>
#include <thread>
#include "engine/control/announcer.hpp"
#include <iostream>
#include <memory>
#include <nlohmann/json.hpp>

#include "cli/commands.hpp"
#include "cli/flags.hpp"
#include "cli/table.hpp"
#include "engine/config.hpp"
#include "engine/control/control.hpp"
#include "model/text.hpp"
#include "engine/runtime.hpp"
#include "engine/proxy/sockets.hpp"
#include "store/state_store.hpp"

namespace azlb::cli {

using namespace azlb::model;

// Named, not anonymous: the CLI's files are compiled together (a unity build).
namespace engine_cmd {

struct StartFlags {
  bool foreground = false, announce = false;
  Flag threads, drain_timeout, udp_flows, buffers, pipes, fd_reserve, access_log, metrics_listen, route_table,
      handoff_address;
};

Status start(const Context& ctx, const StartFlags& f) {
  engine::EngineOptions o;
  o.state = ctx.location().absolute();
  if (f.threads.given()) {
    AZLB_ASSIGN(n, parse_uint("thread count", f.threads.value, 1, engine::kMaxThreads));
    o.threads = n;
  }
  if (f.drain_timeout.given()) {
    AZLB_ASSIGN(s, parse_uint("drain timeout (seconds)", f.drain_timeout.value, 0, 3600));
    o.drain_timeout_ms = s * 1000;
  }
  if (f.udp_flows.given()) {
    AZLB_ASSIGN(n, parse_uint("UDP flow bound", f.udp_flows.value, 1, 16'000'000));
    o.udp_flows = n;
  }
  if (f.buffers.given()) {
    AZLB_ASSIGN(n, parse_uint("buffer count", f.buffers.value, 16, 32768));
    if ((n & (n - 1)) != 0) return usage_error("buffer count " + f.buffers.value + " is not a power of two (16, 32, ... 32768)");
    o.buffers = n;
  }
  if (f.pipes.given()) {
    AZLB_ASSIGN(n, parse_uint("pipe count", f.pipes.value, 0, 32767));
    o.pipes = n;
  }
  if (f.fd_reserve.given()) {
    AZLB_ASSIGN(n, parse_uint("descriptor reserve", f.fd_reserve.value, 16, 100000));
    o.fd_reserve = n;
  }
  if (f.access_log.given()) {
    if (f.access_log.value.empty()) return usage_error("--access-log needs a file path");
    // Absolute: the daemon does not keep the caller's working directory.
    o.access_log = std::filesystem::absolute(f.access_log.value);
  }
  if (f.metrics_listen.given()) {
    // ADDR:PORT, or [ADDR]:PORT for IPv6.
    const std::string& v = f.metrics_listen.value;
    const auto colon = v.rfind(':');
    if (colon == std::string::npos || colon == 0)
      return usage_error("invalid metrics address " + model::quote(v) + ": give ADDR:PORT (or [ADDR]:PORT)");
    std::string addr = v.substr(0, colon);
    if (addr.size() > 2 && addr.front() == '[' && addr.back() == ']') addr = addr.substr(1, addr.size() - 2);
    AZLB_ASSIGN(ip, parse_ip("metrics address", addr));
    AZLB_ASSIGN(port, parse_u16("metrics port", v.substr(colon + 1)));
    if (port == 0) return usage_error("invalid metrics port 0: give 1 to 65535");
    o.metrics_listen = std::make_pair(ip, port);
  }
  if (f.route_table.given() && !f.announce)
    return usage_error("--route-table " + model::quote(f.route_table.value) + " needs --announce");
  if (f.handoff_address.given() && !f.announce)
    return usage_error("--handoff-address " + model::quote(f.handoff_address.value) + " needs --announce");
  if (f.handoff_address.given()) {
    // One address per family: a peer sends each packet once to each.
    for (auto piece : model::split(f.handoff_address.value, ',')) {
      AZLB_ASSIGN(ip, parse_ip("hand-off address", piece));
      if (ip.is_unspecified())
        return usage_error("invalid hand-off address " + ip.to_string() + ": give this host's address that the other hosts reach");
      for (auto& other : o.handoff_addresses)
        if (other.family == ip.family)
          return usage_error("--handoff-address " + model::quote(f.handoff_address.value) + " gives two " +
                             (ip.family == Family::V4 ? "IPv4" : "IPv6") + " addresses: give one per family");
      o.handoff_addresses.push_back(ip);
    }
  }
  if (f.announce) {
    std::uint32_t table = engine::kAnnounceTableDefault;
    if (f.route_table.given()) {
      // 0 and 253..255 are the kernel's own (unspec, default, main, local).
      AZLB_ASSIGN(n, parse_uint("route table", f.route_table.value, 1, 0xfffffffeu));
      if (n >= 253 && n <= 255)
        return usage_error("invalid route table " + f.route_table.value +
                           ": 253, 254 and 255 are the kernel's default, main and local tables; give one of azlb's own");
      table = n;
    }
    o.announce_table = table;
  }
  // Tests shorten the idle-timeout minute; nobody else should need to.
  if (const char* unit = std::getenv("AZLB_IDLE_TIMEOUT_UNIT_MS")) {
    AZLB_ASSIGN(ms, parse_uint("AZLB_IDLE_TIMEOUT_UNIT_MS", unit, 1, 60000));
    o.idle_unit_ms = ms;
  }
  // The state must load before anything starts: a broken file is a usage error.
  AZLB_TRY(store::load(o.state));
  auto files = store::companions_of(o.state);
  if (f.foreground) {
    Status result = ok();
    int rc = engine::run_engine(o, [&](const Status& st) { result = st; });
    if (!result) return result;
    if (rc != 0) return runtime_error("the engine stopped with status " + std::to_string(rc));
    return ok();
  }
  AZLB_ASSIGN(pid, engine::start_daemon(o));
  std::string listeners = "? listeners";
  nlohmann::json unbound = nlohmann::json::array();
  if (auto r = engine::admin_request(o.state, "GET", "/v1/status"); r && r->status == 200) {
    auto j = nlohmann::json::parse(r->body, nullptr, false);
    if (j.is_object()) {
      listeners = model::count(j.value("listeners", nlohmann::json::array()).size(), "listener", "listeners");
      unbound = j.value("unbound", nlohmann::json::array());
    }
  }
  // A port another program holds does not stop the engine: it serves the
  // rest and tries again. Said here, where the operator looks.
  for (auto& u : unbound)
    ctx.warn(u.value("error", std::string()) + "; serving the rest, retrying every 5 s");
  if (!unbound.empty()) listeners += ", " + std::to_string(unbound.size()) + " not bound";
  ctx.confirm("Engine started (pid " + std::to_string(pid) + ", " + listeners + "); log: " +
                  files.engine_log.string(),
              {{"pid", pid},
               {"log", files.engine_log.string()},
               {"admin_socket", files.engine_sock.string()},
               {"unbound", unbound}});
  return ok();
}

Status stop(const Context& ctx) {
  std::string waited;
  AZLB_ASSIGN(pid, engine::stop_engine(ctx.location().absolute(), 30000, [&](const std::string& w) {
    waited = w;
    // A drain can take its whole timeout: say at once what it waits for.
    if (!ctx.json() && !ctx.quiet) std::cout << "Draining: waiting for " << w << std::endl;
  }));
  ctx.confirm("Engine stopped (pid " + std::to_string(pid) + ")",
              {{"pid", pid}, {"waited_for", waited.empty() ? Json(nullptr) : Json(waited)}});
  return ok();
}

Status reload(const Context& ctx) {
  auto state = ctx.location().absolute();
  if (!engine::running_pid(state)) return runtime_error("no engine runs for " + state.display());
  AZLB_ASSIGN(r, engine::admin_request(state, "POST", "/v1/reload"));
  auto j = nlohmann::json::parse(r.body, nullptr, false);
  if (r.status != 200) {
    // The engine keeps its configuration when the file does not load.
    return usage_error(j.is_object() ? j.value("error", r.body) : r.body);
  }
  auto gen = j.value("generation", 0);
  ctx.confirm(j.value("changed", false) ? "Engine reloaded: configuration generation " + std::to_string(gen)
                                        : "Engine already runs the current state (generation " + std::to_string(gen) + ")",
              {{"generation", gen}, {"changed", j.value("changed", false)}});
  return ok();
}

// engine withdraw|announce: the routes of this host's VIPs out of (or back
// into) the table a BGP daemon exports; a withdraw with --wait returns once
// this host's connections and NAT flows are gone.
Status announce(const Context& ctx, bool withdraw, const Flag& wait) {
  auto state = ctx.location().absolute();
  std::optional<std::uint32_t> wait_s;
  if (wait.given()) {
    AZLB_ASSIGN(w, parse_uint("withdraw wait (seconds)", wait.value, 0, 86400));
    wait_s = w;
  }
  if (!engine::running_pid(state)) return runtime_error("no engine runs for " + state.display());
  AZLB_ASSIGN(r, engine::admin_request(state, "POST", withdraw ? "/v1/withdraw" : "/v1/announce"));
  auto j = nlohmann::json::parse(r.body, nullptr, false);
  if (!j.is_object()) return runtime_error("the engine's admin socket answered " + std::to_string(r.status));
  if (r.status == 409) return usage_error(j.value("error", r.body));
  if (r.status != 200) return runtime_error(j.value("error", r.body));
  std::vector<std::string> vips = j.value("announcing", std::vector<std::string>{});
  std::string list;
  for (auto& v : vips) list += (list.empty() ? "" : ", ") + v;
  if (!withdraw) {
    ctx.confirm(vips.empty() ? "Announcing again, but no VIP of this host can be served now (see azlb status)"
                             : "Announcing " + list + " again (table " + std::to_string(j.value("table", 0)) + ")",
                {{"announcing", vips}, {"withdrawn", false}});
    return ok();
  }
  std::uint64_t left = 0;
  if (wait_s) {
    // What still arrives is served; the routers move new flows within
    // their BGP (and BFD) times. Done when nothing of this host's is left.
    // Direct server return's flows have no end this host sees: they are
    // over when their packets stopped coming (kDsrQuiet).
    constexpr auto kDsrQuiet = std::chrono::seconds(2);
    const auto now = [] { return std::chrono::steady_clock::now(); };
    const auto deadline = now() + std::chrono::seconds(*wait_s);
    std::uint64_t dsr_packets = 0;
    auto dsr_moved = now();
    for (bool first = true;; first = false) {
      auto d = engine::admin_request(state, "GET", "/v1/drain");
      if (!d && !engine::running_pid(state)) break;  // it stopped: nothing is left
      if (d && d->status == 200) {
        auto dj = nlohmann::json::parse(d->body, nullptr, false);
        if (dj.is_object()) {
          left = dj.value("connections", 0ull) + dj.value("nat_tcp_flows", 0ull);
          const auto packets = dj.value("dsr_packets", 0ull);
          if (first || packets != dsr_packets) dsr_moved = now();
          dsr_packets = packets;
          if (dsr_packets > 0 && now() - dsr_moved < kDsrQuiet) left = std::max<std::uint64_t>(left, 1);
        }
        if (left == 0) break;
      }
      if (std::chrono::steady_clock::now() >= deadline) {
        return runtime_error("withdrawn, but " + std::to_string(left) + " connection" + (left == 1 ? "" : "s") +
                             " of this host remain after " + std::to_string(*wait_s) + " s (engine announce takes it back)");
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
  }
  ctx.confirm("Withdrawn: this host announces no VIP now; it still serves what arrives" +
                  std::string(wait_s ? ", and has no connections left" : "") + " (engine announce takes it back)",
              {{"announcing", vips}, {"withdrawn", true}, {"connections", left}});
  return ok();
}

// What `haproxy -c` and `nginx -t` give their users: the state loaded and
// checked as the engine loads it, its listeners built as the engine builds
// them, and each address (and port, unless this state's engine already holds
// it) tried as `engine start` would bind it.
Status check(const Context& ctx) {
  auto state = ctx.location().absolute();
  AZLB_ASSIGN(s, store::load(state));
  engine::Registry registry;
  const auto cfg = engine::build_config(s, registry, 1, 60000);
  const bool running = engine::running_pid(state).has_value();
  // As `engine start`: a port another program holds, or an address not yet
  // this host's, is named (the engine would serve the rest and retry); any
  // other failure (a missing privilege) fails the check.
  std::vector<std::pair<const engine::Route*, std::string>> unbound;
  for (auto& r : cfg->routes) {
    int bind_errno = 0;
    auto st = engine::check_bindable(r.key, !running, &bind_errno);
    if (st) continue;
    if (!engine::bind_may_succeed_later(bind_errno)) return st;
    unbound.emplace_back(&r, st.error().message);
  }
  for (auto& [r, why] : unbound) ctx.warn(why + "; engine start would serve the rest and retry");
  std::size_t members = 0;
  for (auto& r : cfg->routes) members += r.upstreams.size();
  for (auto& r : cfg->nat_routes) members += r.upstreams.size();
  using model::count;
  const std::string summary = "State " + state.display() + " is valid: " + count(cfg->routes.size(), "listener", "listeners") +
                              (cfg->nat_routes.empty() ? "" : ", " + count(cfg->nat_routes.size(), "NAT route", "NAT routes")) +
                              ", " + count(members, "member", "members") + ", " + std::to_string(cfg->probes.size()) +
                              " probed" + (running ? " (its engine runs: ports not tried)" : "");
  if (ctx.json()) {
    Json listeners = Json::array();  // ordered: fields as written, as every other command prints them
    auto add = [&](const engine::Route& r, const char* plane) {
      listeners.push_back({{"protocol", to_string(r.key.protocol)},
                           {"address", r.key.address.to_string()},
                           {"port", r.key.port},
                           {"route", r.name},
                           {"members", r.upstreams.size()},
                           {"distribution", to_string(r.distribution)},
                           {"acl_rules", r.acl.size()},
                           {"dataplane", plane}});
    };
    for (auto& r : cfg->routes) add(r, "proxy");
    for (auto& r : cfg->nat_routes) add(r, "nat");
    Json not_bindable = Json::array();
    for (auto& [r, why] : unbound) not_bindable.push_back({{"address", r->key.to_string()}, {"error", why}});
    ctx.print_json({{"state", state.display()}, {"valid", true}, {"engine_running", running},
                    {"listeners", listeners}, {"probes", cfg->probes.size()}, {"unbound", not_bindable}});
    return ok();
  }
  if (ctx.quiet) return ok();
  std::cout << summary << "\n";
  Table t({"LISTENER", "ROUTE", "MEMBERS", "DISTRIBUTION", "ACL RULES", "DATA PLANE"});
  auto row = [&](const engine::Route& r, const char* plane) {
    t.add({r.key.to_string(), r.name, std::to_string(r.upstreams.size()), std::string(to_string(r.distribution)),
           std::to_string(r.acl.size()), plane});
  };
  for (auto& r : cfg->routes) row(r, "proxy");
  // A NAT route binds nothing: the kernel rewrites its packets (needs CAP_NET_ADMIN at start).
  for (auto& r : cfg->nat_routes) row(r, "nat");
  if (!t.empty()) t.print(std::cout);
  return ok();
}

}  // namespace engine_cmd

void register_engine(CLI::App& app, Context& ctx) {
  using namespace engine_cmd;
  auto* eng = group(app, ctx, "engine", "Start, stop and reload the io_uring forwarding engine");
  auto f = std::make_shared<StartFlags>();
  auto* s = command(*eng, ctx, "start", "Start the engine; returns once every listener is bound",
                    [&ctx, f] { return start(ctx, *f); });
  s->add_flag("--foreground", f->foreground, "Stay in the foreground, log to stderr (for systemd and debugging)");
  add(*s, f->threads, "--threads", "Worker threads, one io_uring each (default: one per core)").opt->type_name("N");
  add(*s, f->drain_timeout, "--drain-timeout", "Seconds 'engine stop' lets connections finish (default 10)")
      .opt->type_name("SEC");
  add(*s, f->udp_flows, "--udp-flows", "UDP flows in all, split between the workers (default 8192 per worker)")
      .opt->type_name("N");
  add(*s, f->buffers, "--buffers", "64 KiB receive buffers per worker, a power of two (default 256)").opt->type_name("N");
  add(*s, f->pipes, "--pipes", "Splice pipes per worker for bulk transfers (default 64)").opt->type_name("N");
  add(*s, f->fd_reserve, "--fd-reserve", "Descriptors kept for probes and the admin socket, besides one per probed member (default 192: 128 admin clients, 64 more)")
      .opt->type_name("N");
  add(*s, f->access_log, "--access-log",
      "Write one JSON line per finished TCP connection and ended UDP flow to PATH (SIGUSR1 reopens it)")
      .opt->type_name("PATH");
  add(*s, f->metrics_listen, "--metrics-listen",
      "Serve /metrics (Prometheus text, read-only, nothing else) over TCP on ADDR:PORT")
      .opt->type_name("ADDR:PORT");
  s->add_flag("--announce", f->announce,
              "Install a host route per servable VIP in azlb's routing table, for a BGP daemon to announce");
  add(*s, f->route_table, "--route-table", "The routing table --announce uses (default 201)").opt->type_name("N");
  add(*s, f->handoff_address, "--handoff-address",
      "With --announce: this host's address (one per family) where the other hosts hand it the packets of its "
      "proxied connections (default: the address its traffic leaves from)")
      .opt->type_name("ADDR[,ADDR]");
  auto wf = std::make_shared<Flag>();
  auto* w = command(*eng, ctx, "withdraw", "Withdraw this host's VIP routes; keep serving what arrives",
                    [&ctx, wf] { return announce(ctx, true, *wf); });
  add(*w, *wf, "--wait", "Return once this host has no connections left (exit 0), or after SEC (exit 1)")
      .opt->type_name("SEC");
  command(*eng, ctx, "announce", "Announce this host's servable VIPs again after a withdraw",
          [&ctx] { return announce(ctx, false, Flag{}); });
  command(*eng, ctx, "stop", "Stop the engine: stop accepting, drain connections, exit", [&ctx] { return stop(ctx); });
  command(*eng, ctx, "reload", "Apply the state file now (the engine also applies changes by itself)",
          [&ctx] { return reload(ctx); });
  command(*eng, ctx, "check", "Check the state as the engine would load it and list what it would listen on",
          [&ctx] { return check(ctx); });
}

}  // namespace azlb::cli
