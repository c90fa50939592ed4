// The process's file descriptors, shared by the workers (client and upstream
// sockets, UDP flows, pipes) and the control thread (probes, the admin
// socket, reading the state file). Workers stop taking new descriptors at
// `limit`, below RLIMIT_NOFILE, so that the control thread always has a
// reserve: at the limit the engine stops accepting (clients wait in the
// backlog) instead of starving its own probes, as HAProxy's maxconn leaves
// room below ulimit -n.
#pragma once

#include <atomic>
#include <cstdint>

namespace azlb::engine {

class FdBudget {
 public:
  // Set by the control thread at start and at each reload (listening sockets
  // count against the same limit).
  void set_limit(std::int64_t n) { limit_.store(n, std::memory_order_relaxed); }
  std::int64_t limit() const { return limit_.load(std::memory_order_relaxed); }
  std::int64_t in_use() const { return used_.load(std::memory_order_relaxed); }

  // Claims n descriptors before opening them; false (nothing claimed) at the limit.
  bool take(int n = 1) {
    if (used_.fetch_add(n, std::memory_order_relaxed) + n <= limit()) return true;
    used_.fetch_sub(n, std::memory_order_relaxed);
    return false;
  }
  // Counts descriptors the kernel already handed over (an accepted socket),
  // or that an accepted connection needs to be served: they come out of the
  // reserve for the moment.
  void force(int n = 1) { used_.fetch_add(n, std::memory_order_relaxed); }
  void give(int n = 1) { used_.fetch_sub(n, std::memory_order_relaxed); }
  // Fewer than `margin` left before the limit.
  bool near(std::int64_t margin) const { return in_use() + margin >= limit(); }

  // A UDP flow's socket: UDP flows take at most half of the limit, since a
  // datagram's source costs its sender nothing to forge and a flood of
  // forged clients must not leave TCP without descriptors.
  bool take_udp_flow() {
    if (udp_.fetch_add(1, std::memory_order_relaxed) + 1 > limit() / 2 || !take()) {
      udp_.fetch_sub(1, std::memory_order_relaxed);
      return false;
    }
    return true;
  }
  void give_udp_flow() {
    udp_.fetch_sub(1, std::memory_order_relaxed);
    give();
  }
  std::int64_t udp_flows() const { return udp_.load(std::memory_order_relaxed); }

 private:
  std::atomic<std::int64_t> used_{0};
  std::atomic<std::int64_t> udp_{0};
  std::atomic<std::int64_t> limit_{INT64_MAX / 2};
};

}  // namespace azlb::engine
