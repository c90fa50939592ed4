// One worker thread: one io_uring (its Loop), its own share of every
// listening address (SO_REUSEPORT), its own connections, flows and buffers.
// Nothing on its hot path is shared with another worker but the descriptor
// budget; the config it reads is immutable and swapped whole between two
// batches of completions. The Worker owns the ring, the mailbox and the
// generations, and dispatches each completion by its Op to the part that
// owns it: Listeners, TcpProxy or UdpProxy.
#pragma once

#include <atomic>
#include <memory>
#include <mutex>
#include <thread>

#include "engine/proxy/listeners.hpp"
#include "engine/proxy/loop.hpp"
#include "engine/proxy/tcp_proxy.hpp"
#include "engine/proxy/udp_proxy.hpp"

namespace azlb::engine {

struct WorkerOptions {
  LoopOptions loop;
  std::uint32_t max_flows = 8192;  // UDP flows per worker
  std::uint32_t connect_timeout_ms = 3000;
  AccessLog* access_log = nullptr;  // the engine's, shared; null: none
};

class Worker {
 public:
  Worker(WorkerOptions, FdBudget&);
  ~Worker();
  Worker(const Worker&) = delete;
  Worker& operator=(const Worker&) = delete;

  void start(std::shared_ptr<const Config>);
  // From the control thread: a new config, or the order to stop accepting and
  // drain. Both take effect between two batches of completions.
  void post(std::shared_ptr<const Config>);
  void post_drain();
  void join();

  std::uint64_t applied_generation() const { return applied_.load(std::memory_order_acquire); }
  std::uint64_t connections() const { return live_.load(std::memory_order_relaxed); }
  std::uint64_t paused_listeners() const { return paused_.load(std::memory_order_relaxed); }

 private:
  void run();
  void dispatch(const io_uring_cqe*);
  void arm_wake();
  void arm_tick();
  void on_wake();
  void apply(std::shared_ptr<const Config>);

  Loop loop_;
  Listeners listeners_;
  TcpProxy tcp_;
  UdpProxy udp_;
  int wake_fd_ = -1;
  std::uint64_t wake_value_ = 0;
  __kernel_timespec tick_ts_{0, 250'000'000};

  std::mutex mbox_mu_;
  std::shared_ptr<const Config> mbox_config_;
  bool mbox_drain_ = false;
  bool draining_ = false;
  std::atomic<std::uint64_t> applied_{0};
  std::atomic<std::uint64_t> live_{0};
  std::atomic<std::uint64_t> paused_{0};
  std::thread thread_;
};

}  // namespace azlb::engine
