#include "engine/proxy/sockets.hpp"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

namespace azlb::engine {

namespace {

int one = 1;

// A probe binds alone, so that it fails if anybody else holds the address,
// even another SO_REUSEPORT group; the workers' sockets then share it.
enum class Bind { Probe, Shared };

model::Result<int> bind_one(const ListenKey& key, Bind how, int* bind_errno) {
  int family = key.address.family == model::Family::V4 ? AF_INET : AF_INET6;
  int type = key.protocol == model::Protocol::Tcp ? SOCK_STREAM : SOCK_DGRAM;
  int fd = ::socket(family, type | SOCK_CLOEXEC, 0);
  if (fd < 0) {
    if (bind_errno) *bind_errno = errno;
    return model::runtime_error("cannot create socket for " + key.to_string() + ": " + std::strerror(errno));
  }
  // TCP: past connections in TIME_WAIT do not hold the port. (For UDP the
  // option means sharing: not for a probe.)
  if (type == SOCK_STREAM || how == Bind::Shared) ::setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  if (how == Bind::Shared) ::setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof one);
  // An IPv6 VIP serves IPv6 only; IPv4 clients are the business of an IPv4 VIP.
  if (family == AF_INET6) ::setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof one);
  // Accepted sockets inherit it: no per-connection setsockopt.
  if (type == SOCK_STREAM) ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  // A wildcard UDP VIP learns each datagram's destination, so that the reply
  // leaves from the address the client wrote to.
  if (type == SOCK_DGRAM && key.address.is_unspecified()) {
    if (family == AF_INET)
      ::setsockopt(fd, IPPROTO_IP, IP_PKTINFO, &one, sizeof one);
    else
      ::setsockopt(fd, IPPROTO_IPV6, IPV6_RECVPKTINFO, &one, sizeof one);
  }
  sockaddr_storage ss{};
  socklen_t len;
  if (family == AF_INET) {
    auto* sa = reinterpret_cast<sockaddr_in*>(&ss);
    sa->sin_family = AF_INET;
    sa->sin_port = htons(key.port);
    std::memcpy(&sa->sin_addr, key.address.bytes.data(), 4);
    len = sizeof *sa;
  } else {
    auto* sa = reinterpret_cast<sockaddr_in6*>(&ss);
    sa->sin6_family = AF_INET6;
    sa->sin6_port = htons(key.port);
    std::memcpy(&sa->sin6_addr, key.address.bytes.data(), 16);
    len = sizeof *sa;
  }
  if (::bind(fd, reinterpret_cast<sockaddr*>(&ss), len) != 0 ||
      (type == SOCK_STREAM && how == Bind::Shared && ::listen(fd, SOMAXCONN) != 0)) {
    int e = errno;
    ::close(fd);
    if (bind_errno) *bind_errno = e;
    std::string msg = "cannot bind " + key.to_string() + ": " + std::strerror(e);
    if (e == EACCES && key.port < 1024)
      msg += "; ports under 1024 need root or CAP_NET_BIND_SERVICE (sudo setcap cap_net_bind_service=+ep $(command -v azlb))";
    else if (e == EADDRINUSE)
      msg += " (another program holds this port)";
    else if (e == EADDRNOTAVAIL)
      msg += " (no interface has this address)";
    return model::runtime_error(msg);
  }
  return fd;
}

}  // namespace

bool bind_may_succeed_later(int bind_errno) { return bind_errno == EADDRINUSE || bind_errno == EADDRNOTAVAIL; }

model::Result<std::vector<int>> bind_listeners(const ListenKey& key, unsigned count, int* bind_errno,
                                               std::uint32_t mark) {
  // SO_REUSEPORT would let the group join another program's (another engine's,
  // say) and split the traffic with it without a word: check first.
  AZLB_ASSIGN(probe, bind_one(key, Bind::Probe, bind_errno));
  ::close(probe);
  std::vector<int> fds;
  for (unsigned i = 0; i < count; ++i) {
    auto fd = bind_one(key, Bind::Shared, bind_errno);
    if (!fd) {
      for (int f : fds) ::close(f);
      return fd.error();
    }
    fds.push_back(*fd);
    if (mark && ::setsockopt(*fd, SOL_SOCKET, SO_MARK, &mark, sizeof mark) != 0) {
      const int e = errno;
      for (int f : fds) ::close(f);
      return model::runtime_error("cannot mark the listener of " + key.to_string() +
                                  " for the hand-off between hosts (SO_MARK): " + std::strerror(e) +
                                  (e == EPERM ? "; it needs CAP_NET_ADMIN, as --announce does" : ""));
    }
  }
  return fds;
}

model::Status check_bindable(ListenKey key, bool port_too, int* bind_errno) {
  if (!port_too) key.port = 0;  // any free port: only the address is tried
  AZLB_ASSIGN(fd, bind_one(key, Bind::Probe, bind_errno));
  ::close(fd);
  return model::ok();
}

void close_with_reset(int fd) {
  linger l{1, 0};
  ::setsockopt(fd, SOL_SOCKET, SO_LINGER, &l, sizeof l);
  ::close(fd);
}

void set_nodelay(int fd) { ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one); }

void fill_sockaddr(const model::IpAddress& ip, std::uint16_t port, sockaddr_storage& out, socklen_t& len) {
  std::memset(&out, 0, sizeof out);
  if (ip.family == model::Family::V4) {
    auto* sa = reinterpret_cast<sockaddr_in*>(&out);
    sa->sin_family = AF_INET;
    sa->sin_port = htons(port);
    std::memcpy(&sa->sin_addr, ip.bytes.data(), 4);
    len = sizeof(sockaddr_in);
  } else {
    auto* sa = reinterpret_cast<sockaddr_in6*>(&out);
    sa->sin6_family = AF_INET6;
    sa->sin6_port = htons(port);
    std::memcpy(&sa->sin6_addr, ip.bytes.data(), 16);
    len = sizeof(sockaddr_in6);
  }
}

std::string describe(const sockaddr_storage& ss) {
  char buf[INET6_ADDRSTRLEN] = "?";
  if (ss.ss_family == AF_INET) {
    auto& sa = reinterpret_cast<const sockaddr_in&>(ss);
    inet_ntop(AF_INET, &sa.sin_addr, buf, sizeof buf);
    return std::string(buf) + ":" + std::to_string(ntohs(sa.sin_port));
  }
  if (ss.ss_family == AF_INET6) {
    auto& sa = reinterpret_cast<const sockaddr_in6&>(ss);
    inet_ntop(AF_INET6, &sa.sin6_addr, buf, sizeof buf);
    std::string out = "[";  // appended: `"[" + std::string(buf)` trips GCC 12's false -Wrestrict at -O3
    out += buf;
    out += "]:";
    out += std::to_string(ntohs(sa.sin6_port));
    return out;
  }
  return "?";
}

model::IpAddress ip_of(const sockaddr_storage& ss) {
  model::IpAddress ip;
  if (ss.ss_family == AF_INET6) {
    auto& sa = reinterpret_cast<const sockaddr_in6&>(ss);
    if (IN6_IS_ADDR_V4MAPPED(&sa.sin6_addr)) {
      std::memcpy(ip.bytes.data(), sa.sin6_addr.s6_addr + 12, 4);
      return ip;
    }
    ip.family = model::Family::V6;
    std::memcpy(ip.bytes.data(), sa.sin6_addr.s6_addr, 16);
  } else {
    std::memcpy(ip.bytes.data(), &reinterpret_cast<const sockaddr_in&>(ss).sin_addr, 4);
  }
  return ip;
}

}  // namespace azlb::engine
