#include "engine/control/control.hpp"

#include <fcntl.h>
#include <signal.h>
#include <sys/file.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <charconv>
#include <chrono>
#include <cstring>
#include <fstream>
#include <thread>

#include <nlohmann/json.hpp>

#include "store/socket_io.hpp"
#include "engine/control/process_files.hpp"
#include "store/state_store.hpp"

namespace azlb::engine {

namespace {

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

// The admin socket is this project's own server (admin.cpp): one request
// per connection, a status line, Content-Length and "Connection: close". A
// few lines of socket code read it; loading libcurl for them cost a command
// beside a running engine more than all the rest of its work.
model::Result<AdminReply> admin_request(const store::Location& state, const std::string& method,
                                        const std::string& path, int deadline_ms) {
  const auto sock = store::companions_of(state).engine_sock;
  sockaddr_un sa{};
  sa.sun_family = AF_UNIX;
  if (sock.native().size() >= sizeof sa.sun_path)
    return model::runtime_error("the engine's admin socket path " + sock.string() + " is too long for a Unix socket");
  std::memcpy(sa.sun_path, sock.c_str(), sock.native().size());
  const std::string request = method + " " + path + " HTTP/1.1\r\nHost: azlb\r\nContent-Length: 0\r\n" +
                              "Connection: close\r\n\r\n";
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(deadline_ms);
  auto fail = [&](const std::string& why) {
    return model::runtime_error("cannot reach the engine's admin socket " + sock.string() + ": " + why);
  };
  for (int attempt = 0;; ++attempt) {
    const int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (fd < 0) return fail(std::strerror(errno));
    if (::connect(fd, reinterpret_cast<sockaddr*>(&sa), sizeof sa) != 0) {
      const int e = errno;
      ::close(fd);
      // A full backlog (clients that connect and never send, thousands of
      // them) refuses a connect with EAGAIN; the engine makes room by closing
      // the longest idle, so a busy socket is tried again until the deadline.
      const bool busy = e == EAGAIN || e == EWOULDBLOCK;
      if (!busy || std::chrono::steady_clock::now() >= deadline)
        return fail(std::string(std::strerror(e)) + (busy ? " (its backlog stayed full)" : ""));
      std::this_thread::sleep_for(std::chrono::milliseconds(std::min(10 * (attempt + 1), 100)));
      continue;
    }
    auto left_ms = [&] {
      return std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now()).count();
    };
    std::string in;
    bool ok = store::send_all(fd, request, store::monotonic_ms() + std::max<long long>(left_ms(), 100));
    while (ok) {
      const auto n = store::recv_some(fd, in, 64u << 20, store::monotonic_ms() + std::max<long long>(left_ms(), 100));
      if (n == 0) break;  // the end: Connection: close
      ok = n > 0;
    }
    ::close(fd);
    if (!ok) return fail("no whole answer within " + std::to_string(deadline_ms) + " ms");
    const auto head_end = in.find("\r\n\r\n");
    AdminReply reply;
    if (in.compare(0, 9, "HTTP/1.1 ") != 0 || head_end == std::string::npos ||
        std::from_chars(in.data() + 9, in.data() + std::min<std::size_t>(in.size(), 12), reply.status).ec != std::errc())
      return fail("an answer that is not HTTP");
    reply.body = in.substr(head_end + 4);
    return reply;
  }
}

}  // namespace azlb::engine
