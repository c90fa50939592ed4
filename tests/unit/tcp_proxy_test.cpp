// The TCP relay on its own: a real ring, real socket pairs, no worker, no
// listener. Each connection is adopted with its upstream already connected,
// and the test plays both the client and the upstream.
#include <doctest/doctest.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <unistd.h>

#include <functional>
#include <string>
#include <vector>

#include "engine/proxy/loop.hpp"
#include "engine/proxy/tcp_proxy.hpp"

using namespace azlb::engine;

namespace {

struct Pair {
  int app = -1, proxy = -1;  // the test's end, the proxy's end
};

Pair socket_pair() {
  int sv[2];
  REQUIRE(::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) == 0);
  ::fcntl(sv[0], F_SETFL, O_NONBLOCK);
  return {sv[0], sv[1]};
}

LoopOptions small_pool() {
  LoopOptions o;
  o.tcp_buffers = 16;  // far fewer buffers than connections
  o.udp_buffers = 16;
  o.max_pipes = 0;     // every half stays on buffers
  return o;
}

struct Rig {
  FdBudget fds;
  Loop loop{small_pool(), fds};
  TcpProxy tcp{loop, 1000};
  MemberState member{MemberKey{"svc", "", "vm", "ep"}};
  ListenerState listener{ListenKey{}};
  Route route;
  Upstream upstream;
  std::vector<int> app_fds;
  __kernel_timespec tick{0, 20'000'000};

  Rig() {
    loop.enable();
    loop.gens.advance(std::make_shared<const Config>());
    route.counters = &listener;
    upstream.state = &member;
    upstream.idle_timeout_ms = 600000;
  }
  ~Rig() {
    for (int fd : app_fds) ::close(fd);
  }
  // A connection: returns {client's end, upstream's end}.
  std::pair<int, int> connect() {
    auto down = socket_pair(), up = socket_pair();
    app_fds.push_back(down.app);
    app_fds.push_back(up.app);
    tcp.adopt(down.proxy, up.proxy, route, upstream);
    return {down.app, up.app};
  }
  // Runs the loop until `done` or `rounds` batches have passed.
  bool run_until(const std::function<bool()>& done, int rounds = 200) {
    for (int i = 0; i < rounds; ++i) {
      if (done()) return true;
      auto* s = loop.sqe();  // never wait longer than a tick
      io_uring_prep_timeout(s, &tick, 0, 0);
      io_uring_sqe_set_data64(s, pack(Op::Tick, 0));
      loop.run_once([&](const io_uring_cqe* cqe) {
        const auto ud = io_uring_cqe_get_data64(cqe);
        if (op_of(ud) != Op::Tick && op_of(ud) != Op::Closed) tcp.on_completion(op_of(ud), index_of(ud), dir_of(ud), cqe);
      });
    }
    return done();
  }
};

// Writes until the socket takes no more; returns how much it took.
std::size_t fill(int fd) {
  std::string block(65536, 'x');
  std::size_t n = 0;
  for (ssize_t w; (w = ::send(fd, block.data(), block.size(), MSG_DONTWAIT)) > 0;) n += static_cast<std::size_t>(w);
  return n;
}

std::string read_some(int fd) {
  char buf[65536];
  ssize_t n = ::recv(fd, buf, sizeof buf, MSG_DONTWAIT);
  return n > 0 ? std::string(buf, static_cast<std::size_t>(n)) : std::string();
}

}  // namespace

TEST_CASE("a reader that never reads holds no pool buffer, so stalled connections starve nobody") {
  Rig rig;
  std::vector<std::pair<int, int>> stalled;
  for (int i = 0; i < 40; ++i) stalled.push_back(rig.connect());  // 40 downloads, 16 buffers
  auto all_blocked = [&] {
    for (auto [client, upstream] : stalled) fill(upstream);
    for (std::uint32_t ci = 0; ci < 40; ++ci)
      if (rig.tcp.conn(ci).half[1].state != HalfState::Blocked) return false;
    return true;
  };
  REQUIRE(rig.run_until(all_blocked, 2000));
  CHECK(rig.tcp.buffers_held() == 0);
  for (std::uint32_t ci = 0; ci < 40; ++ci) CHECK(rig.tcp.conn(ci).half[1].spill.size() <= 65536);

  // A new client is served at once, both ways.
  // Plain variables: lambdas may capture them (clang 14 cannot capture bindings).
  const auto ends = rig.connect();
  const int client = ends.first, upstream = ends.second;
  REQUIRE(::send(client, "ping", 4, 0) == 4);
  std::string got;
  REQUIRE(rig.run_until([&] { return (got += read_some(upstream)) == "ping"; }));
  REQUIRE(::send(upstream, "pong", 4, 0) == 4);
  got.clear();
  REQUIRE(rig.run_until([&] { return (got += read_some(client)) == "pong"; }));
}

TEST_CASE("more halves ready at once than the pool has buffers: each gets its turn") {
  Rig rig;
  std::vector<std::pair<int, int>> conns;
  for (int i = 0; i < 40; ++i) conns.push_back(rig.connect());  // 40 x 2 halves, 16 buffers
  rig.run_until([] { return false; }, 3);                       // every receive armed, waiting
  for (int i = 0; i < 40; ++i) {
    const std::string up = "request " + std::to_string(i), down = "response " + std::to_string(i);
    REQUIRE(::send(conns[i].first, up.data(), up.size(), 0) == static_cast<ssize_t>(up.size()));
    REQUIRE(::send(conns[i].second, down.data(), down.size(), 0) == static_cast<ssize_t>(down.size()));
  }
  std::vector<std::string> at_upstream(40), at_client(40);
  auto all_delivered = [&] {
    bool all = true;
    for (int i = 0; i < 40; ++i) {
      at_upstream[i] += read_some(conns[i].second);
      at_client[i] += read_some(conns[i].first);
      all = all && at_upstream[i] == "request " + std::to_string(i) && at_client[i] == "response " + std::to_string(i);
    }
    return all;
  };
  REQUIRE(rig.run_until(all_delivered));
  CHECK(rig.tcp.buffers_held() == 0);
}

TEST_CASE("a blocked half delivers every byte in order once its reader reads again") {
  Rig rig;
  const auto ends = rig.connect();
  const int client = ends.first, upstream = ends.second;
  std::string sent;
  for (int i = 0; sent.size() < (4u << 20); ++i) sent += std::to_string(i) + ",";
  std::size_t off = 0;
  auto push = [&] {
    ssize_t w = ::send(upstream, sent.data() + off, sent.size() - off, MSG_DONTWAIT);
    if (w > 0) off += static_cast<std::size_t>(w);
  };
  REQUIRE(rig.run_until([&] {
    push();
    return rig.tcp.conn(0).half[1].state == HalfState::Blocked;
  }));
  std::string got;
  REQUIRE(rig.run_until(
      [&] {
        push();
        got += read_some(client);
        return got.size() == sent.size();
      },
      20000));
  CHECK(got == sent);
  CHECK(rig.tcp.conn(0).half[1].state == HalfState::Relaying);
  CHECK(rig.listener.totals().stalled >= 1);
}

TEST_CASE("a FIN is passed on after the bytes sent before it, and the other way stays open") {
  Rig rig;
  const auto ends = rig.connect();
  const int client = ends.first, upstream = ends.second;
  REQUIRE(::send(client, "abc", 3, 0) == 3);
  REQUIRE(::shutdown(client, SHUT_WR) == 0);
  std::string got;
  bool eof = false;
  REQUIRE(rig.run_until([&] {
    char buf[16];
    ssize_t n = ::recv(upstream, buf, sizeof buf, MSG_DONTWAIT);
    if (n > 0) got.append(buf, static_cast<std::size_t>(n));
    if (n == 0) eof = true;
    return eof;
  }));
  CHECK(got == "abc");
  CHECK(rig.tcp.conn(0).half[0].state == HalfState::Done);
  REQUIRE(::send(upstream, "reply", 5, 0) == 5);
  got.clear();
  REQUIRE(rig.run_until([&] { return (got += read_some(client)) == "reply"; }));
}

TEST_CASE("both FINs end the connection and give its descriptors back") {
  Rig rig;
  const auto ends = rig.connect();
  const int client = ends.first, upstream = ends.second;
  CHECK(rig.fds.in_use() == 2);
  ::shutdown(client, SHUT_WR);
  ::shutdown(upstream, SHUT_WR);
  REQUIRE(rig.run_until([&] { return rig.tcp.live() == 0; }));
  CHECK(rig.fds.in_use() == 0);
  CHECK(rig.member.totals().active == 0);
}

TEST_CASE("a socket option set through the ring takes effect, where the kernel has socket commands") {
  FdBudget fds;
  Loop loop{small_pool(), fds};
  loop.enable();
  if (!loop.sockopt_through_ring) {
    MESSAGE("this kernel has no socket commands (Linux 6.7): the engine sets options with system calls");
    return;
  }
  const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  REQUIRE(fd >= 0);
  static constexpr int kOne = 1;
  int value = 0;
  socklen_t len = sizeof value;
  REQUIRE(::getsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &value, &len) == 0);
  CHECK(value == 0);
  loop.prep_setsockopt(loop.sqe(), fd, IPPROTO_TCP, TCP_NODELAY, &kOne);
  io_uring_cqe* cqe = nullptr;
  REQUIRE(io_uring_submit_and_wait(&loop.ring, 1) == 1);
  REQUIRE(io_uring_peek_cqe(&loop.ring, &cqe) == 0);
  CHECK(cqe->res == 0);
  io_uring_cqe_seen(&loop.ring, cqe);
  REQUIRE(::getsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &value, &len) == 0);
  CHECK(value == 1);
  ::close(fd);
}
