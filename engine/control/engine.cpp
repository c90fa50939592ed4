// The control thread: it takes the process lock, builds configs from the
// state file, hands them to the workers, runs the prober, serves the admin
// socket and drains on SIGTERM. It reads the model and never writes it.
#include "engine/control/engine.hpp"

#include <poll.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/signalfd.h>
#include <unistd.h>

#include <chrono>
#include <cstring>
#include <filesystem>
#include <thread>

#include "engine/proxy/access_log.hpp"
#include "engine/control/admin.hpp"
#include "engine/control/admin_routes.hpp"
#include "engine/control/config_diff.hpp"
#include "engine/nat/conntrack.hpp"
#include "store/curl_api.hpp"
#include "engine/control/listener_set.hpp"
#include "engine/log.hpp"
#include "engine/nat/nat_plane.hpp"
#include "engine/nat/nft_netlink.hpp"
#include <linux/netfilter.h>
#include "engine/control/process_files.hpp"
#include "engine/control/prober.hpp"
#include "engine/control/report.hpp"
#include "engine/control/signals.hpp"
#include "engine/control/state_watcher.hpp"
#include "engine/proxy/worker.hpp"
#include "model/text.hpp"
#include "engine/control/etcd_relay_server.hpp"
#include "store/prefault.hpp"
#include "engine/control/registrar.hpp"
#include "engine/control/announcer.hpp"
#include "engine/nat/dsr_routes.hpp"
#include "engine/nat/handoff.hpp"
#include "engine/proxy/sockets.hpp"
#include <algorithm>
#include <fstream>
#include <nlohmann/json.hpp>
#include <set>
#include "engine/picker.hpp"
#include "store/state_store.hpp"

namespace azlb::engine {

namespace {

using model::Status;

// Why a reload reads the state: the watch saw a change (its copy is read)...
constexpr const char* kStateChanged = "state changed";
// ...at most this often: a change that comes after a quiet spell is applied
// at once, changes in a burst (a script, thirty writers, other hosts) are
// applied together at the end of this gap, as kube-proxy's min-sync-period
// does. Each apply reads, parses and rebuilds the whole configuration (7 ms
// of the control thread at 1,000 listeners, 0.6 s at 50,000 VMs), which must
// not grow with the rate of changes. A command on a file still gets its
// change applied before it returns (it asks for a reload).
constexpr std::int64_t kStateChangeGapMs = 100;

// This host's name in the state's etcd: AZLB_HOST_NAME, for hosts that share
// a name (or several "hosts" on one machine, as the tests run them).
std::string host_name() {
  if (const char* h = std::getenv("AZLB_HOST_NAME"); h && *h) return model::printable(h, 64);
  char buf[256] = {0};
  if (::gethostname(buf, sizeof buf - 1) != 0) return "localhost";
  return buf;
}
namespace fs = std::filesystem;

// Descriptors open in the process, counted once at start (standard streams,
// log, lock, signalfd, inotify, curl's, the workers' rings and eventfds).
std::int64_t open_descriptors() {
  std::error_code ec;
  std::int64_t n = 0;
  for (auto it = fs::directory_iterator("/proc/self/fd", ec); !ec && it != fs::directory_iterator(); it.increment(ec))
    ++n;
  return n;
}

class Engine {
 public:
  Engine(EngineOptions o, const store::CurlApi& c)
      : opt_(std::move(o)), files_(store::companions_of(opt_.state)), c_(c), watcher_(opt_.state), prober_(c) {}
  ~Engine();
  Status start();
  int loop();

 private:
  Status reload(const char* why, bool retry = false);
  void publish(std::shared_ptr<Config>);
  void update_fd_budget();
  bool wait_for_workers(std::uint64_t generation, int timeout_ms);
  void on_signal();
  void reopen_log();
  void begin_drain(const char* why);
  // Applies the NAT table when the config or a member's health changed.
  model::Status sync_nat(bool config_changed);
  // True when the drain is over.
  bool drain_step();
  std::uint64_t live() const;
  std::vector<const Route*> nat_routes() const;
  NatInfo nat_info();
  NatFlows nat_flows() const;  // this engine's NAT flows in conntrack, per member
  // Puts the table back when another program deleted or changed it.
  void restore_nat_if_changed();
  // etcd: this engine's key, with its health view, kept current.
  void register_engine();
  // --announce: the table holds a route for each VIP this host can serve
  // now (none while withdrawn or stopping).
  void sync_announce();
  AnnounceInfo announce_info() const;
  HttpResponse on_announce(bool withdraw);
  // The watch may not notice an etcd that stopped answering (or lost its
  // quorum) until something changes; the key's keepalive, every few
  // seconds, does.
  StoreHealth store_health() {
    auto h = watcher_.health();
    if (relay_) {
      h.relay_socket = relay_->socket().string();
      h.relayed = relay_->forwarded();
      h.relay_refused = relay_->refused();
      h.relay_copies = relay_->copies();
    }
    if (registrar_ && h.reachable)
      if (auto [e, since] = registrar_->error(); !e.empty()) {
        h.reachable = false;
        h.error = e;
        h.since = since;
      }
    return h;
  }
  EngineIdentity identity() const {
    return {host_, ::getpid(), AZLB_VERSION, started_unix_};
  }
  EngineSnapshot snapshot();
  // What a stop waits for; `fresh`: NAT flows from a conntrack dump of
  // their own, else from status's (at most 200 ms old).
  DrainInfo drain_info(bool fresh = false);

  EngineOptions opt_;
  store::Companions files_;
  const store::CurlApi& c_;
  std::unique_ptr<ProcessLock> lock_;
  StateWatcher watcher_;
  int signal_fd_ = -1;
  Registry registry_;
  std::unique_ptr<ListenerSet> listeners_;
  FdBudget fds_;
  std::int64_t fd_limit_ = 0, fd_base_ = 0;
  std::unique_ptr<AccessLog> access_log_;  // outlives the workers that write it
  NatTable nat_{nat_table_name(opt_.state.identity())};
  std::vector<bool> nat_applied_;  // which NAT members were usable when the table was last applied
  std::string nat_error_;
  std::int64_t nat_retry_ms_ = 0;
  std::int64_t next_nat_count_ms_ = 0;
  std::int64_t next_conntrack_check_ms_ = 0;
  std::int64_t next_nat_check_ms_ = 0;
  std::int64_t next_route_check_ms_ = 0;
  std::string route_check_error_;
  std::set<model::Family> forwarding_warned_;  // DSR families this host does not forward, said once
  // Announced routes and DSR's rules and routes another program removed
  // (ip route flush table, a network manager): put back within seconds.
  void recheck_routes();
  std::uint64_t nat_restores_ = 0;
  bool conntrack_warned_ = false;
  NatInfo nat_info_;  // the last one read, reused for 200 ms
  std::uint64_t nat_info_generation_ = 0;
  std::int64_t nat_info_until_ms_ = 0;
  std::uint64_t nat_flows_left_ = 1;
  WorkerOptions worker_opt_;  // the same for every worker but its id
  std::shared_ptr<Config> config_;
  std::vector<std::unique_ptr<Worker>> workers_;
  Prober prober_;
  std::unique_ptr<AdminServer> admin_;
  std::unique_ptr<AdminServer> metrics_;  // --metrics-listen: /metrics only
  std::optional<store::StateText> state_text_;
  std::unique_ptr<Registrar> registrar_;  // etcd: this engine's key
  std::unique_ptr<EtcdRelayServer> relay_;  // etcd: this host's commands' requests
  std::string host_;
  std::time_t started_unix_ = 0;
  std::int64_t next_registration_ms_ = 0;
  std::int64_t next_watch_restart_ms_ = 0;
  std::uint64_t registrar_failovers_ = 0;
  std::uint64_t generation_ = 0;
  ReloadInfo last_reload_;
  std::int64_t next_bind_retry_ms_ = 0;
  bool state_changed_ = false;              // a change the watch saw, not applied yet
  std::int64_t next_state_apply_ms_ = 0;    // kStateChangeGapMs after the last apply
  std::int64_t started_ms_ = 0;
  bool draining_ = false;
  std::int64_t drain_deadline_ms_ = 0;
  std::unique_ptr<Announcer> announcer_;
  DsrRoutes dsr_;  // direct server return's next hops, by mark
  // Makes dsr_ hold a rule and route for every member of a
  // direct-server-return route (down and drained ones too: their pinned
  // flows go on).
  void sync_dsr();
  // With --announce over etcd: the hand-off tables hold this host's proxied
  // VIPs and the peers the registrations name (nat/handoff.hpp).
  void sync_handoff();
  std::vector<model::IpAddress> handoff_addresses_;  // this host's, that peers send to
  HandoffPlan handoff_applied_;
  bool handoff_synced_ = false;  // applied once: what an engine killed before this one left is gone
  bool handoff_capped_ = false;  // more peers than kMaxHandoffPeers, said once
  // The ruleset's generation and the tables' make-up when last applied:
  // another program's change (nft flush ruleset) is put back.
  std::optional<std::uint32_t> handoff_generation_;
  std::uint64_t handoff_fingerprint_ = 0;
  std::uint64_t handoff_tables_fingerprint() const;
  std::string handoff_error_;
  std::int64_t next_handoff_retry_ms_ = 0;
  bool withdrawn_ = false;
  std::string announce_error_;
  std::vector<std::pair<std::string, std::string>> not_announced_;
};

Engine::~Engine() {
  // A start that failed after the workers began (the NAT plane, the admin
  // socket) has not drained them: they would wait for ever.
  if (!draining_)
    for (auto& w : workers_) w->post_drain();
  for (auto& w : workers_) w->join();
  workers_.clear();
  listeners_.reset();
  metrics_.reset();
  admin_.reset();
  if (signal_fd_ >= 0) ::close(signal_fd_);
  if (announcer_)
    if (auto st = announcer_->clear(); !st) log("%s", st.error().message.c_str());
  if (!dsr_.installed().empty())
    if (auto st = dsr_.clear(); !st) log("%s", st.error().message.c_str());
  if (!(handoff_applied_ == HandoffPlan{}))
    (void)nat_.run_script(handoff_script(handoff_table_name(nat_.name()), HandoffPlan{}));
  registrar_.reset();  // the key goes (its lease revoked) before `engine stop` returns
  lock_.reset();  // last: `engine stop` waits for the lock
}

bool Engine::wait_for_workers(std::uint64_t generation, int timeout_ms) {
  auto deadline = monotonic_ms() + timeout_ms;
  for (;;) {
    bool all = true;
    for (auto& w : workers_) all = all && w->applied_generation() >= generation;
    if (all) return true;
    if (monotonic_ms() > deadline) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
}

// Workers may hold what the limit leaves once the control thread's share is
// set aside: what was open at start, the listening sockets, and a reserve
// for the admin socket, a reload and one probe per probed member (and, over
// etcd, the relay's connections and its workers' connections to etcd).
// Under a tiny limit (a test's ulimit -n 64) the reserve is at most half of
// what is left, so that the engine still serves.
void Engine::update_fd_budget() {
  const auto left = fd_limit_ - fd_base_ - static_cast<std::int64_t>(listeners_->descriptors());
  auto wanted = static_cast<std::int64_t>(opt_.fd_reserve + (config_ ? config_->probes.size() : 0));
  if (opt_.state.is_etcd())
    wanted += static_cast<std::int64_t>(EtcdRelayServer::kMaxConnections +
                                        EtcdRelayServer::kWorkers * opt_.state.etcd().endpoints.size());
  fds_.set_limit(left - std::min(wanted, std::max<std::int64_t>(8, left / 2)));
}

void Engine::publish(std::shared_ptr<Config> cfg) {
  generation_ = cfg->generation;
  config_ = cfg;
  update_fd_budget();
  if (workers_.empty()) {
    for (unsigned i = 0; i < opt_.threads; ++i) {
      WorkerOptions wo = worker_opt_;
      wo.loop.id = i;
      workers_.push_back(std::make_unique<Worker>(wo, fds_));
    }
    for (auto& w : workers_) w->start(cfg);
  } else {
    for (auto& w : workers_) w->post(cfg);
  }
  // A listener dropped from the state is closed only once no worker uses it.
  if (!wait_for_workers(cfg->generation, 5000)) log("a worker is slow to take generation %lu", cfg->generation);
  listeners_->close_unused(*cfg);
  update_fd_budget();
  prober_.reconcile(*config_, monotonic_ms());
  registry_.prune();
}

Status Engine::reload(const char* why, bool retry) {
  auto fail = [&](const model::Error& e) {
    // A start that fails says so once, in run_engine.
    if (config_) log("reload (%s) failed, generation %lu stays in force: %s", why, generation_, e.message.c_str());
    last_reload_ = {false, std::time(nullptr), e.message};
    return Status(e);
  };
  // A retry binds again what the state in force could not; anything else
  // reads the file.
  std::optional<store::StateText> text = state_text_;
  if (!retry) {
    // The watch's copy when it woke us; a fresh read when asked to reload.
    auto read = watcher_.read(std::string_view(why) == "admin request" || std::string_view(why) == "SIGHUP");
    if (!read) return fail(read.error());
    text = std::move(*read);
  }
  const bool same = text == state_text_ && config_;
  if (same && !retry) {
    // The file is back to what is in force (say, a bad edit was undone).
    if (!last_reload_.ok) log("state file matches generation %lu again", generation_);
    last_reload_ = {true, std::time(nullptr), ""};
    return model::ok();
  }
  auto state = store::parse_text(*text);
  if (!state) return fail(state.error());
  const auto unbound_before = listeners_->unbound().size();
  auto cfg = build_config(*state, registry_, generation_ + 1, opt_.idle_unit_ms);
  if (auto st = listeners_->prepare(*cfg, !config_); !st) return fail(st.error());
  if (same && listeners_->unbound().size() == unbound_before) return model::ok();  // a retry that bound nothing new
  const auto before = config_;
  publish(cfg);
  state_text_ = text;
  // A NAT table that cannot be applied is logged and shown by status; the
  // proxy plane's part of the change is in force.
  (void)sync_nat(true);
  last_reload_ = {true, std::time(nullptr), ""};
  log("configuration generation %lu in force (%s): %s, %s", generation_, why,
      model::count(config_->routes.size(), "listener", "listeners").c_str(),
      model::count(config_->probes.size(), "probed member", "probed members").c_str());
  // What it changed, one line each (a start lists nothing: every route is new).
  if (before) {
    const auto changes = config_changes(*before, *config_);
    constexpr std::size_t kMaxLines = 50;
    for (std::size_t i = 0; i < changes.size() && i < kMaxLines; ++i) log("  %s", changes[i].c_str());
    if (changes.size() > kMaxLines) log("  ... and %zu more changes", changes.size() - kMaxLines);
  }
  return model::ok();
}

Status Engine::start() {
  started_ms_ = monotonic_ms();
  if (opt_.threads == 0) opt_.threads = std::max(1u, std::thread::hardware_concurrency());
  opt_.threads = std::min(opt_.threads, kMaxThreads);
  // A host that announces its VIPs with others (a state in etcd) may be
  // handed the packets of its proxied connections by them (nat/handoff.hpp):
  // its listeners carry the mark that tells a listener from a connection.
  const bool handoff = opt_.announce_table.has_value() && opt_.state.is_etcd();
  listeners_ = std::make_unique<ListenerSet>(opt_.threads, handoff ? kHandoffListenerMark : 0);
  worker_opt_.loop.reset_accepted_mark = handoff;
  if (handoff) {
    handoff_addresses_ = opt_.handoff_addresses.empty() ? default_handoff_addresses() : opt_.handoff_addresses;
    if (handoff_addresses_.empty())
      log("no route out of this host to take its address from: the other hosts cannot hand it the packets of its "
          "proxied connections (give --handoff-address)");
  }
  worker_opt_.loop.tcp_buffers = opt_.buffers;
  worker_opt_.loop.max_pipes = opt_.pipes;
  if (opt_.udp_flows) worker_opt_.max_flows = (opt_.udp_flows + opt_.threads - 1) / opt_.threads;
  AZLB_TRY(store::make_companion_dir(opt_.state));
  AZLB_ASSIGN(lock, ProcessLock::acquire(files_, opt_.state.display()));
  lock_ = std::move(lock);
  started_unix_ = std::time(nullptr);
  host_ = host_name();
  // Workers inherit this mask: only the control thread takes signals.
  take_signals();
  const sigset_t set = taken_signals();
  signal_fd_ = signalfd(-1, &set, SFD_CLOEXEC | SFD_NONBLOCK);
  // After the mask: the etcd follower's thread must not take SIGTERM's default action.
  AZLB_TRY(watcher_.start());
  // After the mask: its writer thread must not take SIGUSR1's default action.
  if (!opt_.access_log.empty()) {
    AZLB_ASSIGN(alog, AccessLog::open(opt_.access_log, opt_.threads));
    access_log_ = std::move(alog);
    worker_opt_.access_log = access_log_.get();
  }
  rlimit rl{};
  getrlimit(RLIMIT_NOFILE, &rl);
  fd_limit_ = rl.rlim_cur == RLIM_INFINITY ? (1 << 20) : static_cast<std::int64_t>(rl.rlim_cur);
  // The workers' rings, buffers and eventfds are made by the first publish:
  // count them in too (two descriptors each, and a margin).
  fd_base_ = open_descriptors() + 2 * static_cast<std::int64_t>(opt_.threads) + 8;
  listeners_->set_descriptor_limit(static_cast<std::size_t>(fd_limit_));
  AZLB_TRY(reload("start"));
  if (opt_.announce_table) {
    announcer_ = std::make_unique<Announcer>(*opt_.announce_table);
    sync_announce();
    // A start that cannot announce fails: the operator asked for it.
    if (!announce_error_.empty()) return model::runtime_error(announce_error_);
  }
  if (opt_.state.is_etcd()) {
    const auto& prefix = opt_.state.etcd().prefix;
    const auto me = host_ + "/" + std::to_string(::getpid());
    AZLB_ASSIGN(reg, Registrar::start(opt_.state.etcd(), store::etcd::engines_prefix(prefix) + me,
                                      store::etcd::handoff_prefix(prefix), store::etcd::handoff_prefix(prefix) + me));
    registrar_ = std::move(reg);
    std::string addresses;
    for (auto& a : handoff_addresses_) addresses += (addresses.empty() ? "" : ",") + a.to_string();
    registrar_->set_handoff(addresses);
    register_engine();
    // An accelerator: without it commands go to etcd themselves.
    if (auto relay = EtcdRelayServer::start(opt_.state.etcd(), files_.engine_relay, watcher_.followed_copy()))
      relay_ = std::move(*relay);
    else
      log("etcd relay off (commands on this host go to etcd themselves): %s", relay.error().message.c_str());
  }
  // A start that cannot program the NAT plane fails, with what is missing.
  if (!nat_error_.empty()) return model::runtime_error(nat_error_);
  auto admin = AdminServer::open(files_.engine_sock, [this](auto& m, auto& p) {
    return serve_admin(m, p, [this] { return snapshot(); }, [this] {
      auto before = generation_;
      auto st = reload("admin request");
      return ReloadOutcome{st ? "" : st.error().message, generation_ != before, generation_, listeners_->unbound()};
    }, [this] { return drain_info(true); }, [this](bool withdraw) { return on_announce(withdraw); });
  });
  if (!admin) return admin.error();
  admin_ = std::move(*admin);
  if (opt_.metrics_listen) {
    auto metrics = AdminServer::open_tcp(opt_.metrics_listen->first, opt_.metrics_listen->second,
                                         [this](auto& m, auto& p) -> HttpResponse {
                                           if (p != "/metrics") return {404, "text/plain", "only /metrics is served here\n"};
                                           if (m != "GET") return {405, "text/plain", "use GET\n"};
                                           return {200, "text/plain; version=0.0.4", metrics_text(snapshot())};
                                         });
    if (!metrics) return metrics.error();
    metrics_ = std::move(*metrics);
  }
  log("engine started: pid %d, %s, admin socket %s; descriptors: limit %ld, %ld for connections", ::getpid(),
      model::count(opt_.threads, "worker thread", "worker threads").c_str(), files_.engine_sock.c_str(),
      static_cast<long>(fd_limit_), static_cast<long>(fds_.limit()));
  return model::ok();
}

void Engine::register_engine() {
  const auto now = monotonic_ms();
  next_registration_ms_ = now + 1000;
  if (!registrar_) return;
  registrar_->set_value(registration_json(*config_, identity(), listeners_->unbound(), announce_info()));
  // etcd silent to the key's keepalive: the watch's connection may be to a
  // member cut off without a reset (a watch hears nothing either way, and
  // TCP's keepalive takes most of a minute), so it is made again, through
  // whichever member answers.
  // So is it when the key's requests had to leave a member for another: the
  // watch may be held by that member still.
  const auto failovers = registrar_->failovers();
  if ((!registrar_->error().first.empty() || failovers != registrar_failovers_) && now >= next_watch_restart_ms_) {
    next_watch_restart_ms_ = now + 10000;
    registrar_failovers_ = failovers;
    log("etcd: a member stopped answering this engine's key: watching the state again through whichever answers");
    watcher_.restart_watch();
  }
}

EngineSnapshot Engine::snapshot() {
  auto nat = nat_info();  // first: the drain's counts come from its dump
  auto drain = drain_info();
  std::uint64_t paused = 0;
  for (auto& w : workers_) paused += w->paused_listeners();
  return EngineSnapshot{*config_,
                        generation_,
                        opt_.threads,
                        ::getpid(),
                        last_reload_,
                        (monotonic_ms() - started_ms_) / 1000,
                        opt_.state.display(),
                        listeners_->unbound(),
                        Limits{fd_limit_, fds_.limit(), fds_.in_use(), paused, worker_opt_.loop.tcp_buffers,
                               worker_opt_.loop.tcp_buffer_size, worker_opt_.loop.max_pipes,
                               worker_opt_.max_flows * opt_.threads, fds_.udp_flows()},
                        access_log_ ? AccessLogInfo{access_log_->path().string(), access_log_->lines_written(),
                                                    access_log_->lines_lost()}
                                    : AccessLogInfo{},
                        std::move(nat),
                        drain,
                        identity(),
                        store_health(),
                        announce_info()};
}

void Engine::sync_announce() {
  if (!announcer_) return;
  // A VIP is servable when one of its routes has a member that may take a
  // new flow (and, for the proxy, a listener bound).
  std::set<model::IpAddress> servable_vips, seen;
  std::vector<std::pair<std::string, std::string>> not_announced;
  for (auto* routes : {&config_->routes, &config_->nat_routes})
    for (auto& r : *routes) {
      const auto& vip = r.key.address;
      if (vip.is_unspecified()) continue;  // a wildcard is no address to route
      seen.insert(vip);
      const bool bound = routes == &config_->nat_routes || !listeners_->unbound().contains(r.key);
      if (bound && servable(r)) servable_vips.insert(vip);
    }
  for (auto& vip : seen)
    if (!servable_vips.contains(vip))
      not_announced.push_back({vip.to_string(), "no member may take new flows (down, drained or none)"});
  if (withdrawn_ || draining_) {
    for (auto& vip : servable_vips) not_announced.push_back({vip.to_string(), draining_ ? "stopping" : "withdrawn"});
    servable_vips.clear();
  }
  std::sort(not_announced.begin(), not_announced.end());
  not_announced_ = std::move(not_announced);
  const auto before = announcer_->announced();
  auto st = announcer_->sync(servable_vips);
  std::string error = st ? "" : st.error().message;
  if (error != announce_error_ && !error.empty()) log("%s", error.c_str());
  announce_error_ = std::move(error);
  const auto& after = announcer_->announced();
  for (auto& v : after)
    if (!before.contains(v)) log("announcing VIP %s (table %u)", v.to_string().c_str(), announcer_->table());
  for (auto& v : before)
    if (!after.contains(v)) log("no longer announcing VIP %s", v.to_string().c_str());
}

AnnounceInfo Engine::announce_info() const {
  AnnounceInfo a;
  if (!announcer_) return a;
  a.enabled = true;
  a.table = announcer_->table();
  a.withdrawn = withdrawn_ || draining_;
  for (auto& v : announcer_->announced()) a.announcing.push_back(v.to_string());
  a.not_announced = not_announced_;
  a.error = announce_error_;
  for (auto& v : handoff_addresses_) a.handoff_addresses.push_back(v.to_string());
  for (auto& v : handoff_applied_.peers) a.handoff_peers.push_back(v.to_string());
  a.handoff_error = handoff_error_;
  return a;
}

HttpResponse Engine::on_announce(bool withdraw) {
  if (!announcer_)
    return {409, "application/json",
            "{\"error\": \"this engine announces nothing: it was started without --announce\"}\n"};
  if (draining_ && !withdraw) return {409, "application/json", "{\"error\": \"the engine is stopping\"}\n"};
  if (withdrawn_ != withdraw) log(withdraw ? "withdrawing this host's VIPs (engine withdraw): what still arrives is served"
                                           : "announcing this host's VIPs again (engine announce)");
  withdrawn_ = withdraw;
  sync_announce();
  if (registrar_) register_engine();
  auto a = announce_info();
  auto j = nlohmann::json::parse(announce_json(a));
  j["connections"] = live();
  if (!a.error.empty()) return {500, "application/json", j.dump(2) + "\n"};
  return {200, "application/json", j.dump(2) + "\n"};
}

std::vector<const Route*> Engine::nat_routes() const {
  std::vector<const Route*> out;
  for (auto& r : config_->nat_routes) out.push_back(&r);
  return out;
}

NatFlows Engine::nat_flows() const { return count_nat_flows(nat_marks(nat_.name(), nat_routes())); }

void Engine::restore_nat_if_changed() {
  if (nat_.check() != NatTable::Check::Changed) return;
  ++nat_restores_;
  log("NAT table %s was deleted or changed by another program (nft flush ruleset, a firewall reload?): restoring it",
      nat_.name().c_str());
  if (auto st = nat_.apply(nat_routes(), draining_); !st) {
    auto why = "the NAT table was deleted or changed by another program and cannot be restored: " + st.error().message;
    if (why != nat_error_) log("%s", why.c_str());
    nat_error_ = std::move(why);
    return;
  }
  nat_error_.clear();
  nat_info_until_ms_ = 0;  // status reads the new table's counters
}

NatInfo Engine::nat_info() {
  // What status says of the table is what the kernel holds now.
  restore_nat_if_changed();
  // A conntrack dump and a counter listing per status request would let a
  // poller (lbset drain --wait asks ten times a second) keep the control
  // thread busy on a host with many NAT flows: read at most every 200 ms,
  // and less often when a read takes longer than 20 ms.
  const auto now = monotonic_ms();
  if (nat_info_generation_ == generation_ && now < nat_info_until_ms_) {
    NatInfo cached = nat_info_;
    cached.error = nat_error_;
    cached.restores = nat_restores_;
    return cached;
  }
  NatInfo n;
  if (config_->nat_routes.empty() && !nat_.present()) return n;
  n.table = nat_.name();
  n.restores = nat_restores_;
  n.error = nat_error_;
  auto flows = nat_flows();
  n.flows_known = flows.ok;
  n.flows = std::move(flows.per_member);
  n.tcp_open = flows.tcp_open;
  n.udp = flows.total - flows.tcp_open;
  if (nat_.present()) {
    const auto values = nat_.counters().value_or(CounterValues{});
    auto get = [&](const std::string& name) {
      auto it = values.find(name);
      return it == values.end() ? std::pair<std::uint64_t, std::uint64_t>{0, 0} : it->second;
    };
    for (auto& r : config_->nat_routes)
      for (auto& u : r.upstreams) {
        const auto [pi, bi] = get(nat_counter_name(u.state->key, true));
        const auto [po, bo] = get(nat_counter_name(u.state->key, false));
        n.counts[u.state] = {pi, bi, po, bo};
      }
  }
  n.conntrack = conntrack_use();
  nat_info_ = n;
  nat_info_generation_ = generation_;
  // At most a tenth of the control thread's time, however large the dump.
  const auto done = monotonic_ms();
  nat_info_until_ms_ = done + std::max<std::int64_t>(200, 10 * (done - now));
  return n;
}

std::uint64_t Engine::live() const {
  std::uint64_t n = 0;
  for (auto& w : workers_) n += w->connections();
  return n;
}

void Engine::on_signal() {
  signalfd_siginfo si;
  while (::read(signal_fd_, &si, sizeof si) == sizeof si) {
    const int signo = static_cast<int>(si.ssi_signo);
    switch (signal_action(signo)) {
      case SignalAction::Reload: (void)reload("SIGHUP"); break;
      case SignalAction::ReopenLogs: reopen_log(); break;
      case SignalAction::Stop:
        if (!draining_) begin_drain(strsignal(signo));
        break;
      case SignalAction::Ignore:
        log_ratelimited("ignoring signal %d (%s) from pid %u: TERM, INT or QUIT stop the engine, HUP reloads, USR1 "
                        "reopens the logs",
                        signo, strsignal(signo), si.ssi_pid);
        break;
    }
  }
}

// logrotate has moved the logs away: write to new files at their names. The
// workers log through stderr too, and a dup2 swaps it under them at once;
// the access log's writer thread reopens its own.
void Engine::reopen_log() {
  if (access_log_) access_log_->reopen();
  if (opt_.log_file.empty()) return log("SIGUSR1: logging to stderr, no file to reopen");
  auto fd = open_log(opt_.log_file);
  if (!fd) return log("SIGUSR1: cannot reopen the log, still writing the old one: %s", fd.error().message.c_str());
  ::dup2(*fd, STDERR_FILENO);
  ::close(*fd);
  log("log reopened on SIGUSR1");
}

model::Status Engine::sync_nat(bool config_changed) {
  const auto routes = nat_routes();
  std::vector<bool> usable;
  for (auto* r : routes)
    for (auto& u : r->upstreams) usable.push_back(!u.drained && u.state->eligible());
  if (!config_changed && usable == nat_applied_ && nat_error_.empty()) return model::ok();
  // After a failure, try again every few seconds rather than on every wake-up.
  if (!config_changed && !nat_error_.empty() && monotonic_ms() < nat_retry_ms_) return model::ok();
  nat_retry_ms_ = monotonic_ms() + 5000;
  if (routes.empty()) {
    if (!dsr_.installed().empty()) sync_dsr();
    // Nothing of ours is NAT now; a table left by an engine that died goes
    // too. Asked over netlink first: without a table to remove, libnftables
    // is never used.
    if (config_changed && (nat_.present() || nft_inet_table_exists(nat_.name()).value_or(false))) {
      nat_.remove();
      log("NAT table %s removed: no service of this state is nat", nat_.name().c_str());
    }
    nat_applied_.clear();
    nat_error_.clear();
    return model::ok();
  }
  if (auto st = nat_.apply(routes); !st) {
    if (nat_error_ != st.error().message) log("%s", st.error().message.c_str());
    nat_error_ = st.error().message;
    return st;
  }
  if (config_changed) sync_dsr();
  if (!nat_error_.empty() || config_changed)
    log("NAT table %s in force: %s", nat_.name().c_str(), model::count(routes.size(), "route", "routes").c_str());
  nat_error_.clear();
  nat_applied_ = std::move(usable);
  return model::ok();
}

void Engine::recheck_routes() {
  std::string error;  // a read that fails every 2 s is said when it starts failing, and when it stops
  if (announcer_) {
    auto said = announcer_->recheck();
    if (!said) {
      error = "announce: cannot read table " + std::to_string(announcer_->table()) + ": " + said.error().message;
    } else if (!said->empty()) {
      for (auto& line : *said) log("%s: putting it right", line.c_str());
      sync_announce();
    }
  }
  if (!dsr_.installed().empty()) {
    auto said = dsr_.recheck();
    if (!said) {
      error = "direct server return: cannot read the rules and routes: " + said.error().message;
    } else if (!said->empty()) {
      for (auto& line : *said) log("direct server return: %s: putting it right", line.c_str());
      sync_dsr();
    }
  }
  if (error != route_check_error_) log("%s", error.empty() ? "routes read again" : error.c_str());
  route_check_error_ = std::move(error);
}

void Engine::sync_handoff() {
  if (!announcer_ || !registrar_) return;
  HandoffPlan plan;
  std::set<model::IpAddress> peers;
  for (auto& text : registrar_->peers())
    if (auto ip = model::parse_ip("address", text); ip && !ip->is_unspecified() &&
        std::find(handoff_addresses_.begin(), handoff_addresses_.end(), *ip) == handoff_addresses_.end())
      peers.insert(*ip);
  plan.peers.assign(peers.begin(), peers.end());
  if (plan.peers.size() > kMaxHandoffPeers) {
    if (!handoff_capped_)
      log("the state names %zu other hosts: packets of proxied connections go to the first %zu only",
          plan.peers.size(), kMaxHandoffPeers);
    handoff_capped_ = true;
    plan.peers.resize(kMaxHandoffPeers);
  } else {
    handoff_capped_ = false;
  }
  std::set<std::pair<model::IpAddress, std::uint16_t>> vips;
  for (auto& r : config_->routes)
    if (r.key.protocol == model::Protocol::Tcp && !r.key.address.is_unspecified() && !listeners_->unbound().contains(r.key))
      vips.insert({r.key.address, r.key.port});
  plan.vips.assign(vips.begin(), vips.end());
  if (plan.peers.empty() || plan.vips.empty()) plan = {};
  const auto now = monotonic_ms();
  bool changed_by_another = false;
  if (handoff_synced_ && plan == handoff_applied_ && !(plan == HandoffPlan{}) && handoff_error_.empty()) {
    const auto generation = nft_generation();
    if (generation && generation != handoff_generation_) {
      changed_by_another = handoff_tables_fingerprint() != handoff_fingerprint_;
      if (!changed_by_another) handoff_generation_ = generation;
    }
  }
  if (handoff_synced_ && plan == handoff_applied_ && !changed_by_another &&
      (handoff_error_.empty() || now < next_handoff_retry_ms_))
    return;
  if (changed_by_another)
    log("the hand-off tables %s were changed or removed by another program: putting them back",
        handoff_table_name(nat_.name()).c_str());
  auto st = nat_.run_script(handoff_script(handoff_table_name(nat_.name()), plan));
  if (!st) {
    if (st.error().message != handoff_error_)
      log("cannot hand the packets of proxied connections to the other hosts: %s (retrying every 5 s)",
          st.error().message.c_str());
    handoff_error_ = st.error().message;
    next_handoff_retry_ms_ = now + 5000;
    return;
  }
  if (plan.peers != handoff_applied_.peers) {
    std::string names;
    for (auto& p : plan.peers) names += (names.empty() ? "" : ", ") + p.to_string();
    if (plan.peers.empty())
      log("no other host to hand packets of proxied connections to");
    else
      log("packets of proxied connections this host does not hold go to the other hosts: %s", names.c_str());
  }
  handoff_applied_ = std::move(plan);
  handoff_synced_ = true;
  handoff_error_.clear();
  handoff_generation_ = nft_generation();
  handoff_fingerprint_ = handoff_tables_fingerprint();
}

std::uint64_t Engine::handoff_tables_fingerprint() const {
  const auto name = handoff_table_name(nat_.name());
  const auto v4 = nft_table_fingerprint(name, NFPROTO_IPV4), v6 = nft_table_fingerprint(name, NFPROTO_IPV6);
  return v4.value_or(0) * 1099511628211ull ^ v6.value_or(0);
}

void Engine::sync_dsr() {
  std::map<std::uint32_t, model::IpAddress> want;
  std::set<model::Family> families;
  if (config_) {
    const auto marks = nat_marks(nat_.name(), nat_routes());
    for (auto& r : config_->nat_routes) {
      if (!r.dsr) continue;
      families.insert(r.key.address.family);
      for (auto& u : r.upstreams)
        if (auto ip = ip_of(u.addr); ip.family == r.key.address.family) want[marks.at(u.state)] = ip;
    }
  }
  if (auto st = dsr_.sync(want); !st) {
    log("%s", st.error().message.c_str());
    return;
  }
  // The host forwards a DSR flow's packets: without forwarding they stop
  // here. Said once, until it is set.
  for (const auto family : {model::Family::V4, model::Family::V6}) {
    const bool v6 = family == model::Family::V6;
    const char* key = v6 ? "net.ipv6.conf.all.forwarding" : "net.ipv4.ip_forward";
    std::ifstream f(v6 ? "/proc/sys/net/ipv6/conf/all/forwarding" : "/proc/sys/net/ipv4/ip_forward");
    int on = 1;
    f >> on;
    const bool missing = families.contains(family) && !on;
    if (missing && !forwarding_warned_.contains(family))
      log("direct server return: this host does not forward (%s=0), so its %s members get nothing; set it to 1%s",
          key, v6 ? "IPv6" : "IPv4", v6 ? "" : ", and send_redirects=0 on the members' link");
    if (missing)
      forwarding_warned_.insert(family);
    else
      forwarding_warned_.erase(family);
  }
}

DrainInfo Engine::drain_info(bool fresh) {
  DrainInfo d;
  d.draining = draining_;
  d.connections = live();
  d.left_ms = draining_ ? std::max<std::int64_t>(0, drain_deadline_ms_ - monotonic_ms()) : opt_.drain_timeout_ms;
  if ((draining_ || fresh) && nat_.present()) {
    const auto flows = nat_flows();
    d.nat_tcp = flows.tcp_open;
    d.nat_udp = flows.total - flows.tcp_open;
    if (std::any_of(config_->nat_routes.begin(), config_->nat_routes.end(), [](auto& r) { return r.dsr; })) {
      const auto values = nat_.counters().value_or(CounterValues{});
      for (auto& r : config_->nat_routes)
        if (r.dsr)
          for (auto& u : r.upstreams)
            if (auto it = values.find(nat_counter_name(u.state->key, true)); it != values.end())
              d.dsr_packets += it->second.first;
    }
  } else {
    d.nat_tcp = nat_info_.tcp_open;
    d.nat_udp = nat_info_.udp;
  }
  return d;
}

void Engine::begin_drain(const char* why) {
  draining_ = true;
  drain_deadline_ms_ = monotonic_ms() + opt_.drain_timeout_ms;
  sync_announce();  // the routers send new flows to the other hosts while this one drains
  log("stopping on %s: waiting for %s", why, drain_summary(drain_info()).c_str());
  for (auto& w : workers_) w->post_drain();
  // New clients get a refusal at once instead of waiting in a backlog nobody accepts.
  listeners_->close_all();
  // NAT routes take no new flows; established ones keep their member until
  // they end or the drain times out, then the table goes.
  if (nat_.present())
    if (auto st = nat_.apply(nat_routes(), true); !st) log("NAT routes still take new flows: %s", st.error().message.c_str());
}

bool Engine::drain_step() {
  if (live() == 0 && nat_.present() && monotonic_ms() >= next_nat_count_ms_) {
    next_nat_count_ms_ = monotonic_ms() + 250;  // a conntrack dump, not at every wake-up
    // TCP flows end; UDP flows would only time out (drain_summary says so).
    const auto flows = nat_flows();
    nat_flows_left_ = flows.ok ? flows.tcp_open : 0;
  }
  if (live() == 0 && (!nat_.present() || nat_flows_left_ == 0)) {
    // The NAT flows carry on in conntrack; new ones stop with the table.
    if (nat_.present()) nat_.remove(), log("NAT table %s removed", nat_.name().c_str());
    log("engine stopped");
    return true;
  }
  if (monotonic_ms() > drain_deadline_ms_) {
    log("drain timed out: closing %lu connections", live());
    if (access_log_) access_log_->stop();  // what the workers logged so far reaches the file
    if (nat_.present()) nat_.remove();
    admin_.reset();
    lock_.reset();
    std::_Exit(0);  // the kernel closes what is left
  }
  return false;
}

int Engine::loop() {
  for (;;) {
    // Nothing may end the control thread but a stop: an error here is logged
    // and the loop goes on (probes and the admin socket keep running).
    try {
      const auto now = monotonic_ms();
      std::vector<curl_waitfd> fds;
      fds.push_back({signal_fd_, CURL_WAIT_POLLIN, 0});
      fds.push_back({watcher_.fd(), CURL_WAIT_POLLIN, 0});
      std::vector<AdminServer*> servers{admin_.get()};
      if (metrics_) servers.push_back(metrics_.get());
      std::vector<AdminServer*> owner;  // of fds[i], from 2 on
      std::int64_t timeout = std::min(prober_.next_due_ms(now), std::int64_t{draining_ ? 50 : 1000});
      if (state_changed_) timeout = std::min(timeout, std::max<std::int64_t>(0, next_state_apply_ms_ - now));
      for (auto* server : servers) {
        for (auto w : server->wants(now)) {
          fds.push_back({w.fd, static_cast<short>(w.events == POLLOUT ? CURL_WAIT_POLLOUT : CURL_WAIT_POLLIN), 0});
          owner.push_back(server);
        }
        timeout = std::min(timeout, server->next_due_ms(now));
      }
      c_.multi_poll(prober_.multi(), fds.data(), static_cast<unsigned>(fds.size()), static_cast<int>(timeout), nullptr);
      if (fds[0].revents) on_signal();
      if (fds[1].revents && watcher_.changed() && !draining_) state_changed_ = true;
      if (state_changed_ && !draining_ && monotonic_ms() >= next_state_apply_ms_) {
        state_changed_ = false;
        next_state_apply_ms_ = monotonic_ms() + kStateChangeGapMs;
        (void)reload(kStateChanged);
      }
      if (opt_.state.is_etcd() && monotonic_ms() >= next_registration_ms_) {
        register_engine();
        sync_handoff();
      }
      for (std::size_t i = 2; i < fds.size(); ++i)
        if (fds[i].revents) owner[i - 2]->on_ready(fds[i].fd, monotonic_ms());
      for (auto* server : servers) server->on_tick(monotonic_ms());
      prober_.run(monotonic_ms());
      if (!draining_ && config_) (void)sync_nat(false);  // a member went down or came back
      if (announcer_) sync_announce();  // a VIP became servable, or stopped being
      // Another program may delete the table (nft flush ruleset): noticed
      // within a second, by the ruleset's generation (one netlink message).
      if (nat_.present() && monotonic_ms() >= next_nat_check_ms_) {
        next_nat_check_ms_ = monotonic_ms() + 1000;
        restore_nat_if_changed();
      }
      if (monotonic_ms() >= next_route_check_ms_) {
        next_route_check_ms_ = monotonic_ms() + 2000;
        recheck_routes();
      }
      if (!config_->nat_routes.empty() && monotonic_ms() >= next_conntrack_check_ms_) {
        next_conntrack_check_ms_ = monotonic_ms() + 10000;
        const auto warning = conntrack_use().warning();
        if (!warning.empty() && !conntrack_warned_) log("%s", warning.c_str());
        conntrack_warned_ = !warning.empty();
      }
      if (!listeners_->unbound().empty() && !draining_ && monotonic_ms() >= next_bind_retry_ms_) {
        next_bind_retry_ms_ = monotonic_ms() + 5000;
        (void)reload("a listener bound on retry", true);
      }
      if (draining_ && drain_step()) return 0;
    } catch (const std::exception& e) {
      log("control thread: %s (going on)", e.what());
    }
  }
}

}  // namespace

int run_engine(const EngineOptions& opt, const std::function<void(const model::Status&)>& ready) {
  // A long life and many threads: the command line's heap on huge pages, never trimmed, is not for it.
  store::heap_on_huge_pages(false);
  // Each proxied connection holds two descriptors: use all the process may have.
  rlimit rl;
  if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
    rl.rlim_cur = rl.rlim_max;
    setrlimit(RLIMIT_NOFILE, &rl);
  }
  const char* why = nullptr;
  const store::CurlApi* c = store::curl_api(&why);
  if (!c) {
    model::Status st = model::runtime_error(std::string("cannot load libcurl for the probes: ") + why);
    ready(st);
    return static_cast<int>(st.error().kind);
  }
  c->global_init(CURL_GLOBAL_DEFAULT);
  int rc;
  {
    Engine engine(opt, *c);
    model::Status st = model::ok();
    try {
      st = engine.start();
    } catch (const std::exception& e) {  // ring or buffer set-up failed
      st = model::runtime_error(std::string("cannot start the engine: ") + e.what());
    }
    ready(st);
    if (!st) {
      log("engine not started: %s", st.error().message.c_str());
      return static_cast<int>(st.error().kind);
    }
    rc = engine.loop();
  }
  c->global_cleanup();
  return rc;
}

}  // namespace azlb::engine
