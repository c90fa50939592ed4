#include "engine/control/admin.hpp"

#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <exception>

#include "engine/control/unix_listen.hpp"
#include "engine/log.hpp"
#include "engine/proxy/sockets.hpp"

namespace azlb::engine {

namespace {

const char* reason(int status) {
  switch (status) {
    case 200: return "OK";
    case 400: return "Bad Request";
    case 404: return "Not Found";
    case 405: return "Method Not Allowed";
    case 422: return "Unprocessable Entity";
    case 500: return "Internal Server Error";
    default: return "Error";
  }
}

constexpr std::size_t kMaxRequest = 8192;

}  // namespace

model::Result<std::unique_ptr<AdminServer>> AdminServer::open(const std::filesystem::path& path, Handler h) {
  AZLB_ASSIGN(fd, listen_unix(path, kBacklog, "admin socket"));
  return std::unique_ptr<AdminServer>(new AdminServer(path, fd, std::move(h)));
}

model::Result<std::unique_ptr<AdminServer>> AdminServer::open_tcp(const model::IpAddress& ip, std::uint16_t port,
                                                                  Handler h) {
  sockaddr_storage ss{};
  socklen_t len = 0;
  fill_sockaddr(ip, port, ss, len);
  const std::string where = ip.with_port(port);
  int fd = ::socket(ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
  if (fd < 0) return model::runtime_error("cannot create the metrics socket: " + std::string(std::strerror(errno)));
  int one = 1;
  ::setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  if (::bind(fd, reinterpret_cast<sockaddr*>(&ss), len) != 0 || ::listen(fd, kBacklog) != 0) {
    int e = errno;
    ::close(fd);
    return model::runtime_error("cannot listen for metrics on " + where + ": " + std::strerror(e));
  }
  return std::unique_ptr<AdminServer>(new AdminServer({}, fd, std::move(h)));
}

AdminServer::AdminServer(std::filesystem::path p, int fd, Handler h)
    : path_(std::move(p)), listen_fd_(fd), handler_(std::move(h)) {}

AdminServer::~AdminServer() {
  for (auto& c : clients_) ::close(c.fd);
  ::close(listen_fd_);
  if (!path_.empty()) ::unlink(path_.c_str());
}

std::vector<AdminServer::Want> AdminServer::wants(std::int64_t now_ms) const {
  std::vector<Want> out;
  if (now_ms >= accept_paused_until_ms_) out.push_back({listen_fd_, POLLIN});
  for (auto& c : clients_) out.push_back({c.fd, static_cast<short>(c.out.empty() ? POLLIN : POLLOUT)});
  return out;
}

void AdminServer::accept_clients(std::int64_t now_ms) {
  // A bounded batch, so that a flood of connects cannot hold the control
  // thread (and the probes) for long; the rest wait for the next turn.
  for (int batch = 0; batch < 256; ++batch) {
    int fd = ::accept4(listen_fd_, nullptr, nullptr, SOCK_CLOEXEC | SOCK_NONBLOCK);
    if (fd < 0) {
      if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS || errno == ENOMEM) {
        // The socket stays readable while the client waits: polling it again
        // at once would spin. Try again in a moment.
        accept_paused_until_ms_ = now_ms + kAcceptBackoffMs;
        log_ratelimited("admin socket: cannot accept: %s", std::strerror(errno));
      }
      return;
    }
    clients_.push_back({fd, now_ms + kIdleMs, now_ms, {}, {}});
    if (clients_.size() > kMaxClients && !evict_idle(clients_.back())) {
      ::close(fd);  // every other client is being answered: this one tries again
      clients_.pop_back();
    }
  }
}

bool AdminServer::evict_idle(const Client& keep) {
  auto oldest = clients_.end();
  for (auto it = clients_.begin(); it != clients_.end(); ++it)
    if (it->fd != keep.fd && it->out.empty() && (oldest == clients_.end() || it->accepted_ms < oldest->accepted_ms))
      oldest = it;
  if (oldest == clients_.end()) return false;
  ::close(oldest->fd);
  clients_.erase(oldest);
  log_ratelimited("admin socket: %zu clients at once; closed the one idle longest", kMaxClients);
  return true;
}

void AdminServer::on_ready(int fd, std::int64_t now_ms) {
  if (fd == listen_fd_) return accept_clients(now_ms);
  auto it = std::find_if(clients_.begin(), clients_.end(), [&](auto& c) { return c.fd == fd; });
  if (it == clients_.end()) return;
  if (!serve(*it)) {
    ::close(it->fd);
    clients_.erase(it);
  }
}

bool AdminServer::serve(Client& c) {
  if (c.out.empty()) {
    char buf[4096];
    ssize_t n = ::read(c.fd, buf, sizeof buf);
    if (n < 0) return errno == EAGAIN || errno == EINTR;
    if (n == 0) return false;
    c.in.append(buf, static_cast<std::size_t>(n));
    if (c.in.size() > kMaxRequest) {
      c.out = "HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\nConnection: close\r\n\r\n";
    } else if (c.in.find("\r\n\r\n") == std::string::npos) {
      return true;  // more to come
    } else {
      c.out = respond(c.in);
    }
  }
  ssize_t n = ::send(c.fd, c.out.data() + c.out_off, c.out.size() - c.out_off, MSG_NOSIGNAL | MSG_DONTWAIT);
  if (n < 0) return errno == EAGAIN || errno == EINTR;
  c.out_off += static_cast<std::size_t>(n);
  return c.out_off < c.out.size();
}

std::string AdminServer::respond(const std::string& request) {
  auto line = request.substr(0, request.find("\r\n"));
  auto sp1 = line.find(' '), sp2 = line.rfind(' ');
  HttpResponse res;
  if (sp1 == std::string::npos || sp2 == sp1) {
    res = {400, "text/plain", "bad request\n"};
  } else {
    // Nothing a request brings may take the control thread down with it.
    try {
      res = handler_(line.substr(0, sp1), line.substr(sp1 + 1, sp2 - sp1 - 1));
    } catch (const std::exception& e) {
      log("admin request '%s' failed: %s", line.substr(0, 200).c_str(), e.what());
      res = {500, "text/plain", std::string("internal error: ") + e.what() + "\n"};
    }
  }
  return "HTTP/1.1 " + std::to_string(res.status) + " " + reason(res.status) + "\r\nContent-Type: " +
         res.content_type + "\r\nContent-Length: " + std::to_string(res.body.size()) + "\r\nConnection: close\r\n\r\n" +
         res.body;
}

void AdminServer::on_tick(std::int64_t now_ms) {
  std::erase_if(clients_, [&](Client& c) {
    if (now_ms < c.deadline_ms) return false;
    ::close(c.fd);
    return true;
  });
}

std::int64_t AdminServer::next_due_ms(std::int64_t now_ms) const {
  std::int64_t due = 1000;
  if (accept_paused_until_ms_ > now_ms) due = std::min(due, accept_paused_until_ms_ - now_ms);
  for (auto& c : clients_) due = std::min(due, c.deadline_ms - now_ms);
  return std::max<std::int64_t>(due, 0);
}

}  // namespace azlb::engine
