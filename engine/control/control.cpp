#include "engine/control/control.hpp"

#include <curl/curl.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/file.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstring>
#include <fstream>
#include <thread>

#include <nlohmann/json.hpp>

#include "store/curl_api.hpp"
#include "engine/control/process_files.hpp"
#include "store/state_store.hpp"

namespace azlb::engine {

namespace {

std::size_t append(char* p, std::size_t size, std::size_t n, void* out) {
  static_cast<std::string*>(out)->append(p, size * n);
  return size * n;
}

// Gone, or a zombie: its exit is complete, only the reaping is left.
bool exited(long pid) {
  if (::kill(static_cast<pid_t>(pid), 0) != 0) return errno == ESRCH;
  std::ifstream f("/proc/" + std::to_string(pid) + "/stat");
  std::string stat((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
  auto paren = stat.rfind(')');
  return paren == std::string::npos || stat.compare(paren, 3, ") Z") == 0;
}

}  // namespace

std::optional<long> running_pid(const store::Location& state) {
  auto files = store::companions_of(state);
  if (!engine_lock_held(files.engine_lock)) return std::nullopt;
  return read_pid(files.engine_pid).value_or(0);
}

model::Result<long> start_daemon(const EngineOptions& opt) {
  if (auto pid = running_pid(opt.state))
    return model::runtime_error("an engine already runs for " + opt.state.display() + " (pid " + std::to_string(*pid) + ")");
  AZLB_TRY(store::make_companion_dir(opt.state));
  auto files = store::companions_of(opt.state);
  // Opened here, before the fork, so that a log that cannot be opened safely
  // (a link planted at its name, say) is the user's error, not a silent daemon.
  AZLB_ASSIGN(logfd, open_log(files.engine_log));
  EngineOptions daemon = opt;
  daemon.log_file = files.engine_log;
  int ready[2];
  if (::pipe2(ready, O_CLOEXEC) != 0) return model::runtime_error(std::string("pipe: ") + std::strerror(errno));
  pid_t child = ::fork();
  if (child < 0) return model::runtime_error(std::string("fork: ") + std::strerror(errno));
  if (child == 0) {
    ::close(ready[0]);
    ::setsid();
    int null = ::open("/dev/null", O_RDWR);
    ::dup2(null, STDIN_FILENO);
    ::dup2(null, STDOUT_FILENO);
    ::dup2(logfd >= 0 ? logfd : null, STDERR_FILENO);
    int rc = run_engine(daemon, [&](const model::Status& st) {
      std::string msg = st ? "OK\n" : st.error().message + "\n";
      (void)!::write(ready[1], msg.data(), msg.size());
      ::close(ready[1]);
    });
    std::_Exit(rc);
  }
  ::close(ready[1]);
  ::close(logfd);
  std::string msg;
  char buf[512];
  for (ssize_t n; (n = ::read(ready[0], buf, sizeof buf)) != 0;) {
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) break;
    msg.append(buf, static_cast<std::size_t>(n));
  }
  ::close(ready[0]);
  if (msg == "OK\n") return static_cast<long>(child);
  ::waitpid(child, nullptr, 0);
  if (!msg.empty() && msg.back() == '\n') msg.pop_back();
  return model::runtime_error(msg.empty() ? "the engine exited before it was ready; see " + files.engine_log.string()
                                          : msg);
}

model::Result<long> stop_engine(const store::Location& state, int timeout_ms,
                                const std::function<void(const std::string&)>& waiting) {
  auto pid = running_pid(state);
  if (!pid || *pid <= 0) return model::runtime_error("no engine runs for " + state.display());
  // What the drain will wait for, in the engine's words, before it begins:
  // a drain can take its whole timeout. Best effort: a busy admin socket
  // must not hold the stop back for long.
  if (auto r = waiting ? admin_request(state, "GET", "/v1/drain", 1000) : model::runtime_error("");
      r && r->status == 200) {
    auto d = nlohmann::json::parse(r->body, nullptr, false);
    if (d.is_object() && d.value("connections", 0) + d.value("nat_tcp_flows", 0) + d.value("nat_udp_flows", 0) > 0)
      waiting(d.value("waiting_for", std::string()));
  }
  if (::kill(static_cast<pid_t>(*pid), SIGTERM) != 0)
    return model::runtime_error("cannot signal engine pid " + std::to_string(*pid) + ": " + std::strerror(errno));
  auto lock = store::companions_of(state).engine_lock;
  auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);
  // The lock is let go as the process closes its files; the process itself
  // ends a moment later. `stop` returns when it has.
  while (engine_lock_held(lock) || !exited(*pid)) {
    if (std::chrono::steady_clock::now() > deadline)
      return model::runtime_error("engine pid " + std::to_string(*pid) + " did not stop within " +
                                  std::to_string(timeout_ms / 1000) + " s");
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  return *pid;
}

model::Result<AdminReply> admin_request(const store::Location& state, const std::string& method,
                                        const std::string& path, int deadline_ms) {
  auto sock = store::companions_of(state).engine_sock;
  const char* why = nullptr;
  const store::CurlApi* c = store::curl_api(&why);
  if (!c) return model::runtime_error(std::string("cannot load libcurl to ask the engine: ") + why);
  // A full backlog (clients that connect and never send, thousands of
  // them) refuses a connect with EAGAIN; the engine makes room by closing
  // the longest idle, so a busy socket is tried again until the deadline.
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(deadline_ms);
  for (int attempt = 0;; ++attempt) {
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
    CURL* e = c->easy_init();
    AdminReply reply;
    c->easy_setopt(e, CURLOPT_UNIX_SOCKET_PATH, sock.c_str());
    std::string url = "http://azlb" + path;
    c->easy_setopt(e, CURLOPT_URL, url.c_str());
    c->easy_setopt(e, CURLOPT_CUSTOMREQUEST, method.c_str());
    if (method == "POST") c->easy_setopt(e, CURLOPT_POSTFIELDS, "");
    c->easy_setopt(e, CURLOPT_TIMEOUT_MS, static_cast<long>(std::max<std::int64_t>(left.count(), 100)));
    c->easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
    c->easy_setopt(e, CURLOPT_WRITEFUNCTION, append);
    c->easy_setopt(e, CURLOPT_WRITEDATA, &reply.body);
    CURLcode rc = c->easy_perform(e);
    long os_errno = 0;
    c->easy_getinfo(e, CURLINFO_RESPONSE_CODE, &reply.status);
    c->easy_getinfo(e, CURLINFO_OS_ERRNO, &os_errno);
    c->easy_cleanup(e);
    if (rc == CURLE_OK) return reply;
    const bool busy = rc == CURLE_COULDNT_CONNECT && (os_errno == EAGAIN || os_errno == EWOULDBLOCK);
    if (!busy || std::chrono::steady_clock::now() >= deadline)
      return model::runtime_error("cannot reach the engine's admin socket " + sock.string() + ": " +
                                  c->easy_strerror(rc) + (busy ? " (its backlog stayed full)" : ""));
    std::this_thread::sleep_for(std::chrono::milliseconds(std::min(10 * (attempt + 1), 100)));
  }
}

}  // namespace azlb::engine
