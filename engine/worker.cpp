// The worker's event loop: submit, wait, dispatch each completion by its Op.
#include "engine/worker.hpp"

#include <sys/eventfd.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <chrono>
#include <cstring>
#include <stdexcept>

#include "engine/log.hpp"

namespace azlb::engine {

namespace {

std::int64_t monotonic_ms() {
  using namespace std::chrono;
  return duration_cast<milliseconds>(steady_clock::now().time_since_epoch()).count();
}

constexpr std::uint16_t kTcpGroup = 1, kUdpGroup = 2;

}  // namespace

Worker::Worker(WorkerOptions opt)
    : opt_(opt), pipes_(opt.max_pipes, opt.pipe_bytes), rng_(0x9E3779B97F4A7C15ull ^ (opt.id + 1) ^ monotonic_ms()) {
  io_uring_params p{};
  // One thread submits and reaps, so the kernel may skip cross-thread
  // signalling and run completion work only when we ask for events. The ring
  // starts disabled: SINGLE_ISSUER binds it to the thread that enables it,
  // which must be the worker's, not this (control) thread.
  p.flags = IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_DEFER_TASKRUN | IORING_SETUP_R_DISABLED | IORING_SETUP_CQSIZE;
  p.cq_entries = 16384;
  int r = io_uring_queue_init_params(4096, &ring_, &p);
  if (r == -EINVAL) {  // Linux 6.0: the plain ring works, only slower (multishot receive needs 6.0)
    p = {};
    p.flags = IORING_SETUP_CQSIZE;
    p.cq_entries = 16384;
    r = io_uring_queue_init_params(4096, &ring_, &p);
  }
  if (r < 0) throw std::runtime_error(std::string("cannot create io_uring: ") + std::strerror(-r));
  tcp_bufs_ = std::make_unique<BufferRing>(ring_, kTcpGroup, opt.tcp_buffers, opt.tcp_buffer_size);
  chunk_len_.assign(opt.tcp_buffers, 0);
  chunk_next_.assign(opt.tcp_buffers, -1);
  udp_bufs_ = std::make_unique<BufferRing>(ring_, kUdpGroup, opt.udp_buffers, opt.udp_buffer_size);
  wake_fd_ = eventfd(0, EFD_CLOEXEC);
  connect_ts_.tv_sec = opt.connect_timeout_ms / 1000;
  connect_ts_.tv_nsec = static_cast<long long>(opt.connect_timeout_ms % 1000) * 1'000'000;
  flow_index_.reserve(opt.max_flows);
}

Worker::~Worker() {
  tcp_bufs_.reset();
  udp_bufs_.reset();
  io_uring_queue_exit(&ring_);
  if (wake_fd_ >= 0) ::close(wake_fd_);
}

void Worker::start(std::shared_ptr<const Config> cfg) {
  mbox_config_ = std::move(cfg);
  // The ring is used by this thread only from here on (SINGLE_ISSUER binds it
  // to the first thread that submits).
  thread_ = std::thread([this] { run(); });
}

void Worker::post(std::shared_ptr<const Config> cfg) {
  {
    std::lock_guard lk(mbox_mu_);
    mbox_config_ = std::move(cfg);
  }
  std::uint64_t one = 1;
  (void)!::write(wake_fd_, &one, sizeof one);
}

void Worker::post_drain() {
  {
    std::lock_guard lk(mbox_mu_);
    mbox_drain_ = true;
  }
  std::uint64_t one = 1;
  (void)!::write(wake_fd_, &one, sizeof one);
}

void Worker::join() {
  if (thread_.joinable()) thread_.join();
}

io_uring_sqe* Worker::sqe() {
  auto* s = io_uring_get_sqe(&ring_);
  if (!s) {  // the submission queue is full: hand it to the kernel and go on
    io_uring_submit(&ring_);
    s = io_uring_get_sqe(&ring_);
  }
  return s;
}

void Worker::arm_wake() {
  auto* s = sqe();
  io_uring_prep_read(s, wake_fd_, &wake_value_, sizeof wake_value_, 0);
  io_uring_sqe_set_data64(s, pack(Op::Wake, 0));
}

void Worker::arm_tick() {
  auto* s = sqe();
  io_uring_prep_timeout(s, &tick_ts_, 0, 0);
  io_uring_sqe_set_data64(s, pack(Op::Tick, 0));
}

void Worker::run() {
  // liburing 2.3 declares io_uring_enable_rings but does not export it.
  if (ring_.flags & IORING_SETUP_R_DISABLED)
    ::syscall(__NR_io_uring_register, ring_.ring_fd, IORING_REGISTER_ENABLE_RINGS, nullptr, 0);
  // Every io_uring_enter then skips looking the ring's descriptor up in a
  // file table this process's threads share. Older kernels: the plain fd works.
  io_uring_register_ring_fd(&ring_);
  now_ms_ = monotonic_ms();
  arm_wake();
  arm_tick();
  {
    std::lock_guard lk(mbox_mu_);
    apply(std::move(mbox_config_));
  }
  for (;;) {
    io_uring_submit_and_wait(&ring_, 1);
    now_ms_ = monotonic_ms();
    unsigned head, seen = 0;
    io_uring_cqe* cqe;
    io_uring_for_each_cqe(&ring_, head, cqe) {
      handle(cqe);
      ++seen;
    }
    io_uring_cq_advance(&ring_, seen);
    live_.store(live_conns_ + live_flows_, std::memory_order_relaxed);
    if (draining_ && live_conns_ == 0 && live_flows_ == 0) break;
  }
}

void Worker::handle(io_uring_cqe* cqe) {
  const auto ud = io_uring_cqe_get_data64(cqe);
  const auto i = index_of(ud);
  switch (op_of(ud)) {
    case Op::Accept: on_accept(i, cqe); break;
    case Op::Connect: on_connect(i, cqe->res); break;
    case Op::ConnectTimeout:  // the connect's own completion decides what happens
    case Op::CancelConn:
      --conn(i).pending;
      maybe_finish_close(i);
      break;
    case Op::RecvDown: on_recv(i, true, cqe); break;
    case Op::RecvUp: on_recv(i, false, cqe); break;
    case Op::SendUp: on_send(i, true, cqe->res); break;
    case Op::SendDown: on_send(i, false, cqe->res); break;
    case Op::PollD2U: on_poll(i, true, cqe->res); break;
    case Op::PollU2D: on_poll(i, false, cqe->res); break;
    case Op::UdpListen: on_udp_datagram(i, cqe); break;
    case Op::UdpReply: on_udp_reply(i, cqe); break;
    case Op::CancelFlow:
      --flows_[i].pending;
      maybe_free_flow(i);
      break;
    case Op::CancelListener:  // the listener's own request reports the end
    case Op::Throttle:        // the receive's own completion reports the end
    case Op::Closed:
      break;
    case Op::Wake: {
      arm_wake();
      std::shared_ptr<const Config> next;
      bool drain;
      {
        std::lock_guard lk(mbox_mu_);
        next = std::move(mbox_config_);
        drain = mbox_drain_;
      }
      if (next) apply(std::move(next));
      if (drain && !draining_) {
        draining_ = true;
        for (std::uint32_t s = 0; s < listeners_.size(); ++s)
          if (listeners_[s].fd >= 0 && !listeners_[s].removed) {
            listeners_[s].removed = true;
            on_listener_cancelled(s);
          }
        // A UDP flow has no end of its own to wait for: draining ends it now.
        for (std::uint32_t fi = 0; fi < flows_.size(); ++fi)
          if (flows_[fi].fd >= 0) close_flow(fi);
      }
      break;
    }
    case Op::Tick:
      arm_tick();
      on_tick();
      break;
  }
}

void Worker::on_tick() {
  for (std::uint32_t s = 0; s < listeners_.size(); ++s)
    if (listeners_[s].retry && !listeners_[s].removed) {
      listeners_[s].retry = false;
      arm_listener(s);
    }
  if (now_ms_ < next_idle_scan_ms_) return;
  next_idle_scan_ms_ = now_ms_ + 1000;
  // Idle timeouts are minutes long; a scan a second is precise enough and
  // costs nothing per byte moved.
  for (std::uint32_t ci = 0; ci < conns_.size(); ++ci) {
    auto& c = conns_[ci];
    if (c.state == Conn::State::Relaying && now_ms_ - c.last_active_ms > c.upstream->idle_timeout_ms)
      close_conn(ci, false);
  }
  for (std::uint32_t fi = 0; fi < flows_.size(); ++fi) {
    auto& f = flows_[fi];
    if (f.fd >= 0 && !f.closing && now_ms_ - f.last_active_ms > f.upstream->idle_timeout_ms) close_flow(fi);
  }
}

// Swaps in a config: listeners that stay keep their sockets and requests,
// new ones start, removed ones are cancelled. Connections keep the
// generation they started with until they end.
void Worker::apply(std::shared_ptr<const Config> cfg) {
  gens_.push_back({std::move(cfg), 1});
  Generation* old = current_;
  current_ = &gens_.back();
  const Config& c = *current_->config;
  std::vector<bool> kept(listeners_.size(), false);
  for (std::size_t r = 0; r < c.routes.size(); ++r) {
    int fd = c.fds[r][opt_.id];
    std::uint32_t slot = UINT32_MAX;
    for (std::uint32_t s = 0; s < listeners_.size(); ++s)
      if (listeners_[s].fd == fd && !listeners_[s].removed) slot = s;
    if (slot == UINT32_MAX) {
      if (free_listeners_.empty()) {
        listeners_.emplace_back();
        kept.push_back(false);
        slot = static_cast<std::uint32_t>(listeners_.size() - 1);
      } else {
        slot = free_listeners_.back();
        free_listeners_.pop_back();
        listeners_[slot] = ListenerSlot{};
      }
      listeners_[slot].fd = fd;
      listeners_[slot].route = &c.routes[r];
      if (!draining_) arm_listener(slot);
    }
    listeners_[slot].route = &c.routes[r];
    kept[slot] = true;
  }
  for (std::uint32_t s = 0; s < listeners_.size(); ++s)
    if (!kept[s] && listeners_[s].fd >= 0 && !listeners_[s].removed) {
      listeners_[s].removed = true;
      on_listener_cancelled(s);
    }
  if (old) release(old);
  applied_.store(c.generation, std::memory_order_release);
}

// Stops a listener's request; its slot is freed when the request ends.
void Worker::on_listener_cancelled(std::uint32_t s) {
  auto& l = listeners_[s];
  if (l.armed) {
    auto* q = sqe();
    io_uring_prep_cancel64(q, pack(l.route->key.protocol == model::Protocol::Tcp ? Op::Accept : Op::UdpListen, s), 0);
    io_uring_sqe_set_data64(q, pack(Op::CancelListener, s));
  } else {
    l.fd = -1;
    free_listeners_.push_back(s);
  }
}

void Worker::release(Generation* g) {
  if (--g->users == 0 && g != current_) {
    g->config.reset();
    while (!gens_.empty() && !gens_.front().config) gens_.pop_front();
  }
}

// A listener's multishot request ended: cancelled (the listener is gone), or
// stopped by the kernel.
void Worker::on_listener_ended(std::uint32_t slot, int res) {
  auto& l = listeners_[slot];
  l.armed = false;
  if (l.removed) {
    l.fd = -1;
    free_listeners_.push_back(slot);
  } else if (res == -EMFILE || res == -ENFILE || res == -ENOBUFS || res == -ENOMEM) {
    // Out of descriptors (or buffers): the kernel ends the request. Existing
    // connections go on; the listener resumes at the next tick, when some
    // may have closed.
    l.retry = true;
    log_ratelimited("%s paused: %s", l.route->key.to_string().c_str(), std::strerror(-res));
  } else if (res >= 0 || res == -ECANCELED || res == -EINTR || res == -ECONNABORTED) {
    arm_listener(slot);
  } else {
    l.retry = true;
    log_ratelimited("%s failed: %s; retrying", l.route->key.to_string().c_str(), std::strerror(-res));
  }
}

void Worker::arm_listener(std::uint32_t s) {
  auto& l = listeners_[s];
  if (l.route->key.protocol == model::Protocol::Udp) return arm_udp_listener(s);
  auto* q = sqe();
  io_uring_prep_multishot_accept(q, l.fd, nullptr, nullptr, SOCK_CLOEXEC);
  io_uring_sqe_set_data64(q, pack(Op::Accept, s));
  l.armed = true;
}

}  // namespace azlb::engine
