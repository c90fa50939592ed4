// Open-loop HTTP latency at a fixed request rate over keep-alive connections.
// Each request's latency is measured from the moment it was scheduled, not
// from when it could be sent, so a stalled balancer cannot hide its stall
// (no coordinated omission). Prints "p50_us p99_us sent errors".
//
//   bench-latency HOST PORT RATE SECONDS CONNECTIONS
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/epoll.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <deque>
#include <string>
#include <vector>

using Clock = std::chrono::steady_clock;

struct Conn {
  int fd = -1;
  std::deque<Clock::time_point> scheduled;  // requests due or in flight, oldest first
  bool in_flight = false;
  std::string buf;
};

static bool response_complete(std::string& b) {
  auto end = b.find("\r\n\r\n");
  if (end == std::string::npos) return false;
  auto cl = b.find("Content-Length: ");
  std::size_t len = cl != std::string::npos && cl < end ? std::strtoul(b.c_str() + cl + 16, nullptr, 10) : 0;
  if (b.size() < end + 4 + len) return false;
  b.erase(0, end + 4 + len);
  return true;
}

int main(int argc, char** argv) {
  if (argc != 6) {
    std::fprintf(stderr, "usage: %s HOST PORT RATE SECONDS CONNECTIONS\n", argv[0]);
    return 2;
  }
  sockaddr_in sa{};
  sa.sin_family = AF_INET;
  sa.sin_port = htons(static_cast<uint16_t>(std::atoi(argv[2])));
  inet_pton(AF_INET, argv[1], &sa.sin_addr);
  double rate = std::atof(argv[3]);
  double seconds = std::atof(argv[4]);
  int nconn = std::atoi(argv[5]);
  const std::string req = "GET / HTTP/1.1\r\nHost: bench\r\n\r\n";
  int ep = epoll_create1(0);
  std::vector<Conn> conns(static_cast<std::size_t>(nconn));
  for (int i = 0; i < nconn; ++i) {
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    if (connect(fd, reinterpret_cast<sockaddr*>(&sa), sizeof sa) != 0) {
      std::perror("connect");
      return 1;
    }
    conns[static_cast<std::size_t>(i)].fd = fd;
    epoll_event ev{EPOLLIN, {.u32 = static_cast<uint32_t>(i)}};
    epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev);
  }
  std::vector<double> lat;
  long sent = 0, errors = 0;
  const auto start = Clock::now() + std::chrono::milliseconds(100);
  const auto end = start + std::chrono::duration<double>(seconds);
  const auto gap = std::chrono::duration<double>(1.0 / rate);
  long next_index = 0;
  auto send_next = [&](Conn& c) {
    if (c.in_flight || c.scheduled.empty()) return;
    if (write(c.fd, req.data(), req.size()) != static_cast<ssize_t>(req.size())) ++errors;
    c.in_flight = true;
  };
  char buf[65536];
  for (;;) {
    auto now = Clock::now();
    // Hand out every request whose time has come, round-robin over connections.
    while (true) {
      auto due = start + std::chrono::duration_cast<Clock::duration>(gap * static_cast<double>(next_index));
      if (due > now || due >= end) break;
      auto& c = conns[static_cast<std::size_t>(next_index % nconn)];
      c.scheduled.push_back(due);
      send_next(c);
      ++next_index;
      ++sent;
    }
    bool pending = std::any_of(conns.begin(), conns.end(), [](auto& c) { return !c.scheduled.empty(); });
    if (now >= end && !pending) break;
    if (now > end + std::chrono::seconds(5)) break;  // bounded even if a balancer stops answering
    auto next_due = start + std::chrono::duration_cast<Clock::duration>(gap * static_cast<double>(next_index));
    // Sleep to the microsecond rather than spin: a spinning client would take
    // a core from the balancer under test on a small machine.
    auto wait_ns = std::clamp<long long>(
        std::chrono::duration_cast<std::chrono::nanoseconds>(next_due - Clock::now()).count(), 0, 50'000'000);
    timespec ts{0, static_cast<long>(wait_ns)};
    epoll_event evs[256];
    int n = epoll_pwait2(ep, evs, 256, &ts, nullptr);
    for (int i = 0; i < n; ++i) {
      auto& c = conns[evs[i].data.u32];
      ssize_t r = read(c.fd, buf, sizeof buf);
      if (r <= 0) {
        ++errors;
        epoll_ctl(ep, EPOLL_CTL_DEL, c.fd, nullptr);
        c.scheduled.clear();
        continue;
      }
      c.buf.append(buf, static_cast<std::size_t>(r));
      while (c.in_flight && response_complete(c.buf)) {
        auto t = Clock::now();
        lat.push_back(std::chrono::duration<double, std::micro>(t - c.scheduled.front()).count());
        c.scheduled.pop_front();
        c.in_flight = false;
        send_next(c);
      }
    }
  }
  if (lat.empty()) {
    std::printf("0 0 %ld %ld\n", sent, errors);
    return 1;
  }
  std::sort(lat.begin(), lat.end());
  auto pct = [&](double p) { return lat[std::min(lat.size() - 1, static_cast<std::size_t>(p * static_cast<double>(lat.size())))]; };
  std::printf("%.0f %.0f %ld %ld\n", pct(0.50), pct(0.99), sent, sent - static_cast<long>(lat.size()));
  return 0;
}
