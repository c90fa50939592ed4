// azlb vm serve VM: stands in for the VM's own servers on loopback, so that
// the demo and the tests have real backends. Every tcp endpoint answers HTTP
// with the VM's name; every udp endpoint echoes "VM: datagram".
#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/epoll.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <iostream>
#include <map>
#include <memory>

#include "cli/commands.hpp"
#include "model/rules.hpp"
#include "store/state_store.hpp"

namespace azlb::cli {

using namespace azlb::model;

// Named, not anonymous: the CLI's files are compiled together (a unity build).
namespace serve_cmd {

struct Listen {
  int fd;
  Protocol protocol;
  std::string endpoint;
};

Result<int> bind_to(const IpAddress& ip, std::uint16_t port, Protocol p) {
  sockaddr_storage ss{};
  socklen_t len;
  if (ip.family == Family::V4) {
    auto* sa = reinterpret_cast<sockaddr_in*>(&ss);
    sa->sin_family = AF_INET;
    sa->sin_port = htons(port);
    std::memcpy(&sa->sin_addr, ip.bytes.data(), 4);
    len = sizeof *sa;
  } else {
    auto* sa = reinterpret_cast<sockaddr_in6*>(&ss);
    sa->sin6_family = AF_INET6;
    sa->sin6_port = htons(port);
    std::memcpy(&sa->sin6_addr, ip.bytes.data(), 16);
    len = sizeof *sa;
  }
  int fd = ::socket(ss.ss_family, (p == Protocol::Tcp ? SOCK_STREAM : SOCK_DGRAM) | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  int one = 1;
  ::setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  if (::bind(fd, reinterpret_cast<sockaddr*>(&ss), len) != 0 || (p == Protocol::Tcp && ::listen(fd, 4096) != 0)) {
    int e = errno;
    ::close(fd);
    return runtime_error("cannot serve " + std::string(to_string(p)) + " " + ip.to_string() + ":" +
                         std::to_string(port) + ": " + std::strerror(e));
  }
  return fd;
}

volatile sig_atomic_t stopping = 0;

// One HTTP/1.1 connection: answers each request in turn, keep-alive unless
// the client asks to close.
struct HttpConn {
  std::string in, out;
  bool close_after = false;
};

Status serve(const Context& ctx, const std::string& vm_name) {
  AZLB_ASSIGN(s, store::load(ctx.location()));
  AZLB_ASSIGN(vm, vm_or_error(s, vm_name));
  std::vector<Listen> listens;
  const auto& svc = *find_service(s, vm->cloud_service);
  for (auto& ep : vm->endpoints) {
    auto fd = bind_to(vm->private_ip, ep.private_port, ep.protocol);
    if (!fd) {
      for (auto& l : listens) ::close(l.fd);
      return fd.error();
    }
    listens.push_back({*fd, ep.protocol, ep.name});
    // A member of a direct-server-return set gets the clients' packets
    // addressed to the VIP, and answers from it.
    auto* set = ep.lbset.empty() ? nullptr : find_lbset(svc, ep.lbset);
    if (set && set->direct_server_return) {
      auto vip_fd = bind_to(svc.vip, ep.private_port, ep.protocol);
      if (!vip_fd) {
        for (auto& l : listens) ::close(l.fd);
        return runtime_error(vip_fd.error().message + " (a member of direct-server-return set " + q(set->name) +
                             " needs the VIP on this host: azlb vm dsr-setup " + vm->name + " --apply)");
      }
      listens.push_back({*vip_fd, ep.protocol, ep.name});
    }
  }
  if (listens.empty()) return usage_error("VM '" + vm_name + "' has no endpoints to serve");
  const std::string body = vm->name + "\n";
  const std::string response = "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: " +
                               std::to_string(body.size()) + "\r\n\r\n" + body;
  int ep = epoll_create1(EPOLL_CLOEXEC);
  for (std::size_t i = 0; i < listens.size(); ++i) {
    epoll_event ev{EPOLLIN, {.u64 = i}};
    epoll_ctl(ep, EPOLL_CTL_ADD, listens[i].fd, &ev);
  }
  if (!ctx.quiet)
    std::cout << "Serving VM '" << vm->name << "' on " << vm->private_ip.to_string() << ": " << listens.size()
              << " endpoint(s); stop with Ctrl-C" << std::endl;
  signal(SIGTERM, [](int) { stopping = 1; });
  signal(SIGINT, [](int) { stopping = 1; });
  signal(SIGPIPE, SIG_IGN);
  constexpr std::uint64_t kConnTag = 1ull << 62;
  std::map<int, HttpConn> conns;
  epoll_event events[256];
  char buf[65536];
  while (!stopping) {
    int n = epoll_wait(ep, events, 256, 200);
    for (int i = 0; i < n; ++i) {
      auto tag = events[i].data.u64;
      if (!(tag & kConnTag)) {
        auto& l = listens[tag];
        if (l.protocol == Protocol::Udp) {
          sockaddr_storage from{};
          socklen_t flen = sizeof from;
          for (ssize_t r; (r = ::recvfrom(l.fd, buf, sizeof buf, 0, reinterpret_cast<sockaddr*>(&from), &flen)) >= 0;
               flen = sizeof from) {
            std::string reply = vm->name + ": " + std::string(buf, static_cast<std::size_t>(r));
            ::sendto(l.fd, reply.data(), reply.size(), 0, reinterpret_cast<sockaddr*>(&from), flen);
          }
          continue;
        }
        for (int c; (c = ::accept4(l.fd, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC)) >= 0;) {
          epoll_event ev{EPOLLIN | EPOLLRDHUP, {.u64 = kConnTag | static_cast<std::uint64_t>(c)}};
          epoll_ctl(ep, EPOLL_CTL_ADD, c, &ev);
          conns[c];
        }
        continue;
      }
      int fd = static_cast<int>(tag & ~kConnTag);
      auto& c = conns[fd];
      bool done = false;
      for (;;) {
        ssize_t r = ::read(fd, buf, sizeof buf);
        if (r > 0) {
          c.in.append(buf, static_cast<std::size_t>(r));
          continue;
        }
        if (r == 0 || errno != EAGAIN) done = true;
        break;
      }
      for (std::size_t end; (end = c.in.find("\r\n\r\n")) != std::string::npos;) {
        std::string head = c.in.substr(0, end);
        c.in.erase(0, end + 4);
        for (auto& ch : head) ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
        c.out += response;
        if (head.find("connection: close") != std::string::npos || head.find("http/1.0") != std::string::npos)
          c.close_after = true;
      }
      while (!c.out.empty()) {
        ssize_t w = ::write(fd, c.out.data(), c.out.size());
        if (w <= 0) break;
        c.out.erase(0, static_cast<std::size_t>(w));
      }
      if (done || (c.close_after && c.out.empty())) {
        ::close(fd);
        conns.erase(fd);
      }
    }
  }
  for (auto& [fd, c] : conns) ::close(fd);
  for (auto& l : listens) ::close(l.fd);
  ::close(ep);
  return ok();
}

}  // namespace serve_cmd

void register_serve(CLI::App& vm_group, Context& ctx) {
  using namespace serve_cmd;
  auto name = std::make_shared<std::string>();
  command(vm_group, ctx, "serve",
          "Stand in for the VM's servers on its private IP: HTTP answering its name, UDP echo (for demos and tests)",
          [&ctx, name] { return serve(ctx, *name); })
      ->add_option("NAME", *name, "VM name")
      ->required();
}

}  // namespace azlb::cli
