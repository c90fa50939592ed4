#include "engine/engine.hpp"

#include <fcntl.h>
#include <signal.h>
#include <sys/file.h>
#include <sys/inotify.h>
#include <sys/resource.h>
#include <sys/signalfd.h>
#include <unistd.h>

#include <chrono>
#include <cstring>
#include <fstream>
#include <map>
#include <thread>

#include "engine/admin.hpp"
#include "engine/curl_api.hpp"
#include "engine/log.hpp"
#include "engine/prober.hpp"
#include "engine/report.hpp"
#include "engine/sockets.hpp"
#include "engine/worker.hpp"
#include "store/state_file.hpp"
#include "store/toml_codec.hpp"

namespace azlb::engine {

namespace {

using model::Status;
namespace fs = std::filesystem;

std::int64_t monotonic_ms() {
  using namespace std::chrono;
  return duration_cast<milliseconds>(steady_clock::now().time_since_epoch()).count();
}

std::optional<std::string> read_file(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  if (!in) return std::nullopt;
  return std::string(std::istreambuf_iterator<char>(in), {});
}

class Engine {
 public:
  Engine(EngineOptions o, const CurlApi& c)
      : opt_(std::move(o)), files_(store::companions_of(opt_.state)), c_(c), prober_(c) {}
  ~Engine();
  Status start();
  int loop();

 private:
  Status lock();
  Status reload(const char* why, bool retry = false);
  model::Result<std::shared_ptr<Config>> prepare(const model::State&, bool strict);
  void publish(std::shared_ptr<Config>);
  HttpResponse serve(const std::string& method, const std::string& path);
  bool wait_for_workers(std::uint64_t generation, int timeout_ms);

  EngineOptions opt_;
  store::Companions files_;
  int lock_fd_ = -1, signal_fd_ = -1, inotify_fd_ = -1;
  Registry registry_;
  std::map<ListenKey, std::vector<int>> sockets_;
  std::shared_ptr<Config> config_;
  std::vector<std::unique_ptr<Worker>> workers_;
  const CurlApi& c_;
  Prober prober_;
  std::unique_ptr<AdminServer> admin_;
  std::optional<std::string> state_text_;
  std::uint64_t generation_ = 0;
  ReloadInfo last_reload_;
  // Listeners of the state that could not bind on a reload (port taken, say):
  // the rest of the change is in force and these are retried.
  std::map<ListenKey, std::string> unbound_;
  std::int64_t next_bind_retry_ms_ = 0;
  std::int64_t started_ms_ = 0;
  bool draining_ = false;
  std::int64_t drain_deadline_ms_ = 0;
};

Engine::~Engine() {
  for (auto& w : workers_) w->join();
  workers_.clear();
  for (auto& [k, fds] : sockets_)
    for (int fd : fds) ::close(fd);
  admin_.reset();
  if (lock_fd_ >= 0) {
    ::unlink(files_.engine_pid.c_str());
    ::close(lock_fd_);  // releases the lock last: `engine stop` waits for it
  }
}

Status Engine::lock() {
  lock_fd_ = ::open(files_.engine_lock.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
  if (lock_fd_ < 0)
    return model::runtime_error("cannot open " + files_.engine_lock.string() + ": " + std::strerror(errno));
  auto old_pid = read_file(files_.engine_pid);
  if (::flock(lock_fd_, LOCK_EX | LOCK_NB) != 0) {
    ::close(lock_fd_);
    lock_fd_ = -1;
    std::string pid = old_pid ? old_pid->substr(0, old_pid->find('\n')) : "?";
    return model::runtime_error("an engine already runs for " + opt_.state.string() + " (pid " + pid + ")");
  }
  if (old_pid && !old_pid->empty())
    log("removing stale pid file %s (pid %s is gone)", files_.engine_pid.c_str(),
        old_pid->substr(0, old_pid->find('\n')).c_str());
  std::ofstream(files_.engine_pid) << ::getpid() << "\n";
  return model::ok();
}

// Binds what the state adds. At start (strict) any failure fails the start;
// on a reload a listener that cannot bind is left out and retried, so that
// one taken port does not hold back the rest of the change.
model::Result<std::shared_ptr<Config>> Engine::prepare(const model::State& state, bool strict) {
  auto cfg = build_config(state, registry_, generation_ + 1, opt_.idle_unit_ms);
  std::map<ListenKey, std::vector<int>> added;
  std::map<ListenKey, std::string> unbound;
  for (auto& r : cfg->routes) {
    if (auto it = sockets_.find(r.key); it != sockets_.end()) {
      cfg->fds.push_back(it->second);
      continue;
    }
    auto fds = bind_listeners(r.key, opt_.threads);
    if (!fds && strict) {
      for (auto& [k, v] : added)
        for (int fd : v) ::close(fd);
      return fds.error();
    }
    if (!fds) {
      unbound[r.key] = fds.error().message;
      continue;
    }
    added[r.key] = *fds;
    cfg->fds.push_back(*fds);
  }
  std::erase_if(cfg->routes, [&](const Route& r) { return unbound.contains(r.key); });
  for (auto& [k, v] : added) {
    sockets_[k] = v;
    log("listening on %s", k.to_string().c_str());
  }
  for (auto& [k, why] : unbound)
    if (!unbound_.contains(k)) log("%s; the rest of the change is in force, retrying every 5 s", why.c_str());
  unbound_ = std::move(unbound);
  return cfg;
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

void Engine::publish(std::shared_ptr<Config> cfg) {
  generation_ = cfg->generation;
  if (workers_.empty()) {
    for (unsigned i = 0; i < opt_.threads; ++i) {
      WorkerOptions wo;
      wo.id = i;
      workers_.push_back(std::make_unique<Worker>(wo));
    }
    for (auto& w : workers_) w->start(cfg);
  } else {
    for (auto& w : workers_) w->post(cfg);
  }
  // A listener dropped from the state is closed only once no worker uses it.
  if (!wait_for_workers(cfg->generation, 5000)) log("a worker is slow to take generation %lu", cfg->generation);
  for (auto it = sockets_.begin(); it != sockets_.end();) {
    bool used = std::any_of(cfg->routes.begin(), cfg->routes.end(), [&](auto& r) { return r.key == it->first; });
    if (used) {
      ++it;
      continue;
    }
    log("stopped listening on %s", it->first.to_string().c_str());
    for (int fd : it->second) ::close(fd);
    it = sockets_.erase(it);
  }
  config_ = std::move(cfg);
  prober_.reconcile(*config_, monotonic_ms());
  registry_.prune();
}

Status Engine::reload(const char* why, bool retry) {
  // A retry binds again what the state in force could not; anything else
  // reads the file.
  auto text = retry ? state_text_ : read_file(opt_.state);
  const bool same = text == state_text_ && config_;
  if (same && !retry) {
    // The file is back to what is in force (say, a bad edit was undone).
    if (!last_reload_.ok) log("state file matches generation %lu again", generation_);
    last_reload_ = {true, std::time(nullptr), ""};
    return model::ok();
  }
  auto fail = [&](const model::Error& e) {
    log("reload (%s) failed, generation %lu stays in force: %s", why, generation_, e.message.c_str());
    last_reload_ = {false, std::time(nullptr), e.message};
    return Status(e);
  };
  auto state = text ? store::parse_state(*text, opt_.state.string()) : model::Result<model::State>(model::State{});
  if (!state) return fail(state.error());
  const auto unbound_before = unbound_.size();
  auto cfg = prepare(*state, !config_);
  if (!cfg) return fail(cfg.error());
  if (same && unbound_.size() == unbound_before) return model::ok();  // a retry that bound nothing new
  publish(*cfg);
  state_text_ = text;
  last_reload_ = {true, std::time(nullptr), ""};
  log("configuration generation %lu in force (%s): %zu listeners, %zu probed members", generation_, why,
      config_->routes.size(), config_->probes.size());
  return model::ok();
}

Status Engine::start() {
  started_ms_ = monotonic_ms();
  if (opt_.threads == 0) opt_.threads = std::max(1u, std::thread::hardware_concurrency());
  opt_.threads = std::min(opt_.threads, kMaxThreads);
  AZLB_TRY(lock());
  // Workers inherit this mask: only the control thread takes these signals.
  sigset_t set;
  sigemptyset(&set);
  for (int s : {SIGTERM, SIGINT, SIGHUP}) sigaddset(&set, s);
  pthread_sigmask(SIG_BLOCK, &set, nullptr);
  signal(SIGPIPE, SIG_IGN);
  signal_fd_ = signalfd(-1, &set, SFD_CLOEXEC | SFD_NONBLOCK);
  // Watch the folder, not the file: azlb replaces the file by rename.
  inotify_fd_ = inotify_init1(IN_CLOEXEC | IN_NONBLOCK);
  auto dir = opt_.state.parent_path().empty() ? fs::path(".") : opt_.state.parent_path();
  inotify_add_watch(inotify_fd_, dir.c_str(), IN_CLOSE_WRITE | IN_MOVED_TO | IN_DELETE);
  AZLB_TRY(reload("start"));
  auto admin = AdminServer::open(files_.engine_sock, [this](auto& m, auto& p) { return serve(m, p); });
  if (!admin) return admin.error();
  admin_ = std::move(*admin);
  log("engine started: pid %d, %u threads, admin socket %s", ::getpid(), opt_.threads, files_.engine_sock.c_str());
  return model::ok();
}

HttpResponse Engine::serve(const std::string& method, const std::string& path) {
  if (path == "/v1/status" || path == "/metrics") {
    if (method != "GET") return {405, "text/plain", "use GET\n"};
    EngineSnapshot snap{*config_, generation_, opt_.threads, ::getpid(), last_reload_,
                        (monotonic_ms() - started_ms_) / 1000, opt_.state.string(), unbound_};
    if (path == "/metrics") return {200, "text/plain; version=0.0.4", metrics_text(snap)};
    return {200, "application/json", status_json(snap)};
  }
  if (path == "/v1/reload") {
    if (method != "POST") return {405, "text/plain", "use POST\n"};
    auto before = generation_;
    auto st = reload("admin request");
    if (!st) return {422, "application/json", reload_json(false, generation_, st.error().message)};
    return {200, "application/json", reload_json(generation_ != before, generation_, "")};
  }
  return {404, "text/plain", "not found: try /v1/status or /metrics\n"};
}

int Engine::loop() {
  for (;;) {
    std::vector<curl_waitfd> fds;
    fds.push_back({signal_fd_, CURL_WAIT_POLLIN, 0});
    fds.push_back({inotify_fd_, CURL_WAIT_POLLIN, 0});
    for (int fd : admin_->fds()) fds.push_back({fd, CURL_WAIT_POLLIN, 0});
    int timeout = static_cast<int>(std::min<std::int64_t>(prober_.next_due_ms(monotonic_ms()), draining_ ? 50 : 1000));
    c_.multi_poll(prober_.multi(), fds.data(), static_cast<unsigned>(fds.size()), timeout, nullptr);
    if (fds[0].revents) {
      signalfd_siginfo si;
      while (::read(signal_fd_, &si, sizeof si) == sizeof si) {
        if (si.ssi_signo == SIGHUP) {
          (void)reload("SIGHUP");
        } else if (!draining_) {
          std::uint64_t live = 0;
          for (auto& w : workers_) live += w->connections();
          log("stopping on %s: draining %lu connections and flows (up to %u ms)", strsignal(static_cast<int>(si.ssi_signo)),
              live, opt_.drain_timeout_ms);
          draining_ = true;
          drain_deadline_ms_ = monotonic_ms() + opt_.drain_timeout_ms;
          for (auto& w : workers_) w->post_drain();
          // New clients get a refusal at once instead of waiting in a backlog nobody accepts.
          for (auto& [k, v] : sockets_)
            for (int fd : v) ::close(fd);
          sockets_.clear();
        }
      }
    }
    if (fds[1].revents) {
      alignas(inotify_event) char buf[4096];
      bool ours = false;
      ssize_t n;
      while ((n = ::read(inotify_fd_, buf, sizeof buf)) > 0)
        for (char* p = buf; p < buf + n;) {
          auto* ev = reinterpret_cast<inotify_event*>(p);
          if (ev->len && opt_.state.filename() == ev->name) ours = true;
          p += sizeof(inotify_event) + ev->len;
        }
      if (ours && !draining_) (void)reload("state file changed");
    }
    for (std::size_t i = 2; i < fds.size(); ++i)
      if (fds[i].revents) admin_->on_readable(fds[i].fd);
    prober_.run(monotonic_ms());
    if (!unbound_.empty() && !draining_ && monotonic_ms() >= next_bind_retry_ms_) {
      next_bind_retry_ms_ = monotonic_ms() + 5000;
      (void)reload("a listener bound on retry", true);
    }
    if (draining_) {
      std::uint64_t live = 0;
      for (auto& w : workers_) live += w->connections();
      bool all_done = true;
      for (auto& w : workers_) all_done = all_done && w->connections() == 0;
      if (all_done) {
        log("engine stopped");
        return 0;
      }
      if (monotonic_ms() > drain_deadline_ms_) {
        log("drain timed out: closing %lu connections", live);
        ::unlink(files_.engine_pid.c_str());
        admin_.reset();
        std::_Exit(0);  // the kernel closes what is left
      }
    }
  }
}

}  // namespace

int run_engine(const EngineOptions& opt, const std::function<void(const model::Status&)>& ready) {
  // Each proxied connection holds two descriptors: use all the process may have.
  rlimit rl;
  if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
    rl.rlim_cur = rl.rlim_max;
    setrlimit(RLIMIT_NOFILE, &rl);
  }
  const char* why = nullptr;
  const CurlApi* c = curl_api(&why);
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
      log("%s", st.error().message.c_str());
      return static_cast<int>(st.error().kind);
    }
    rc = engine.loop();
  }
  c->global_cleanup();
  return rc;
}

}  // namespace azlb::engine
