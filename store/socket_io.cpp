#include "store/socket_io.hpp"

#include <poll.h>
#include <sys/socket.h>

#include <algorithm>
#include <cerrno>
#include <ctime>

namespace azlb::store {

std::int64_t monotonic_ms() {
  timespec ts{};
  ::clock_gettime(CLOCK_MONOTONIC, &ts);
  return std::int64_t(ts.tv_sec) * 1000 + ts.tv_nsec / 1'000'000;
}

namespace {

// Waits for `events` until the deadline; false when it passed (or poll failed).
bool wait_for(int fd, short events, std::int64_t deadline_ms) {
  for (;;) {
    const auto left = deadline_ms - monotonic_ms();
    if (left <= 0) return false;
    pollfd p{fd, events, 0};
    const int n = ::poll(&p, 1, static_cast<int>(std::min<std::int64_t>(left, 1000)));
    if (n > 0) return true;
    if (n < 0 && errno != EINTR) return false;
  }
}

bool again() { return errno == EAGAIN || errno == EWOULDBLOCK; }

}  // namespace

bool send_all(int fd, std::string_view data, std::int64_t deadline_ms) {
  while (!data.empty()) {
    const ssize_t w = ::send(fd, data.data(), data.size(), MSG_NOSIGNAL | MSG_DONTWAIT);
    if (w > 0) {
      data.remove_prefix(static_cast<std::size_t>(w));
      continue;
    }
    if (w < 0 && errno == EINTR) continue;
    if (w < 0 && again() && wait_for(fd, POLLOUT, deadline_ms)) continue;
    return false;
  }
  return true;
}

bool recv_exact(int fd, char* p, std::size_t n, std::int64_t deadline_ms) {
  while (n > 0) {
    const ssize_t r = ::recv(fd, p, n, MSG_DONTWAIT);
    if (r > 0) {
      p += r;
      n -= static_cast<std::size_t>(r);
      continue;
    }
    if (r < 0 && errno == EINTR) continue;
    if (r < 0 && again() && wait_for(fd, POLLIN, deadline_ms)) continue;
    return false;  // the end, an error or the deadline
  }
  return true;
}

long recv_some(int fd, std::string& out, std::size_t max, std::int64_t deadline_ms) {
  char buf[65536];
  for (;;) {
    const ssize_t r = ::recv(fd, buf, sizeof buf, MSG_DONTWAIT);
    if (r > 0) {
      if (out.size() + static_cast<std::size_t>(r) > max) return -1;
      out.append(buf, static_cast<std::size_t>(r));
      return static_cast<long>(r);
    }
    if (r == 0) return 0;
    if (errno == EINTR) continue;
    if (again() && wait_for(fd, POLLIN, deadline_ms)) continue;
    return -1;
  }
}

}  // namespace azlb::store
