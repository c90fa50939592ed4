#include "engine/admin.hpp"

#include <fcntl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

namespace azlb::engine {

namespace {

const char* reason(int status) {
  switch (status) {
    case 200: return "OK";
    case 400: return "Bad Request";
    case 404: return "Not Found";
    case 405: return "Method Not Allowed";
    case 422: return "Unprocessable Entity";
    default: return "Error";
  }
}

constexpr std::size_t kMaxRequest = 8192;

}  // namespace

model::Result<std::unique_ptr<AdminServer>> AdminServer::open(const std::filesystem::path& path, Handler h) {
  sockaddr_un sa{};
  sa.sun_family = AF_UNIX;
  if (path.string().size() >= sizeof sa.sun_path)
    return model::runtime_error("admin socket path " + path.string() + " is too long for a Unix socket (" +
                                std::to_string(sizeof sa.sun_path - 1) + " bytes at most); use a shorter --state path");
  std::strcpy(sa.sun_path, path.c_str());
  int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
  ::unlink(path.c_str());  // a stale socket of a dead engine; the engine lock says none runs
  // Only the owner may talk to the engine: create the socket 0600 from the start.
  mode_t old = ::umask(0177);
  int r = ::bind(fd, reinterpret_cast<sockaddr*>(&sa), sizeof sa);
  ::umask(old);
  if (r != 0 || ::listen(fd, 64) != 0) {
    int e = errno;
    ::close(fd);
    return model::runtime_error("cannot open admin socket " + path.string() + ": " + std::strerror(e));
  }
  return std::unique_ptr<AdminServer>(new AdminServer(path, fd, std::move(h)));
}

AdminServer::AdminServer(std::filesystem::path p, int fd, Handler h)
    : path_(std::move(p)), listen_fd_(fd), handler_(std::move(h)) {}

AdminServer::~AdminServer() {
  for (auto& c : clients_) ::close(c.fd);
  ::close(listen_fd_);
  ::unlink(path_.c_str());
}

std::vector<int> AdminServer::fds() const {
  std::vector<int> out{listen_fd_};
  for (auto& c : clients_) out.push_back(c.fd);
  return out;
}

void AdminServer::on_readable(int fd) {
  if (fd == listen_fd_) {
    for (;;) {
      int c = ::accept4(listen_fd_, nullptr, nullptr, SOCK_CLOEXEC | SOCK_NONBLOCK);
      if (c < 0) break;
      clients_.push_back({c, {}});
    }
    return;
  }
  auto it = std::find_if(clients_.begin(), clients_.end(), [&](auto& c) { return c.fd == fd; });
  if (it == clients_.end()) return;
  char buf[4096];
  ssize_t n = ::read(fd, buf, sizeof buf);
  if (n > 0) it->request.append(buf, static_cast<std::size_t>(n));
  bool complete = it->request.find("\r\n\r\n") != std::string::npos;
  if (complete) respond(*it);
  if (complete || n == 0 || (n < 0 && errno != EAGAIN) || it->request.size() > kMaxRequest) {
    ::close(it->fd);
    clients_.erase(it);
  }
}

void AdminServer::respond(Client& c) {
  auto line_end = c.request.find("\r\n");
  auto line = c.request.substr(0, line_end);
  auto sp1 = line.find(' '), sp2 = line.rfind(' ');
  HttpResponse res;
  if (sp1 == std::string::npos || sp2 == sp1) {
    res = {400, "text/plain", "bad request\n"};
  } else {
    res = handler_(line.substr(0, sp1), line.substr(sp1 + 1, sp2 - sp1 - 1));
  }
  std::string out = "HTTP/1.1 " + std::to_string(res.status) + " " + reason(res.status) +
                    "\r\nContent-Type: " + res.content_type + "\r\nContent-Length: " + std::to_string(res.body.size()) +
                    "\r\nConnection: close\r\n\r\n" + res.body;
  // Local and small: write it out now, waiting at most a second for a slow reader.
  int fl = ::fcntl(c.fd, F_GETFL);
  ::fcntl(c.fd, F_SETFL, fl & ~O_NONBLOCK);
  timeval tv{1, 0};
  ::setsockopt(c.fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
  for (std::size_t off = 0; off < out.size();) {
    ssize_t w = ::send(c.fd, out.data() + off, out.size() - off, MSG_NOSIGNAL);
    if (w <= 0) break;
    off += static_cast<std::size_t>(w);
  }
}

}  // namespace azlb::engine
