// The worker's event loop: submit, wait, dispatch each completion by its Op.
#include "engine/proxy/worker.hpp"
#include "engine/thread_name.hpp"

#include <sys/eventfd.h>
#include <unistd.h>

#include <stdexcept>

namespace azlb::engine {

Worker::Worker(WorkerOptions opt, FdBudget& fds)
    : loop_(opt.loop, fds),
      listeners_(loop_),
      tcp_(loop_, opt.connect_timeout_ms, opt.access_log),
      udp_(loop_, listeners_, opt.max_flows, opt.access_log) {
  wake_fd_ = eventfd(0, EFD_CLOEXEC);
  if (wake_fd_ < 0) throw std::runtime_error("cannot create the worker's eventfd");
}

Worker::~Worker() {
  if (wake_fd_ >= 0) ::close(wake_fd_);
}

void Worker::start(std::shared_ptr<const Config> cfg) {
  mbox_config_ = std::move(cfg);
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

void Worker::arm_wake() {
  auto* s = loop_.sqe();
  io_uring_prep_read(s, wake_fd_, &wake_value_, sizeof wake_value_, 0);
  io_uring_sqe_set_data64(s, pack(Op::Wake, 0));
}

void Worker::arm_tick() {
  auto* s = loop_.sqe();
  io_uring_prep_timeout(s, &tick_ts_, 0, 0);
  io_uring_sqe_set_data64(s, pack(Op::Tick, 0));
}

void Worker::run() {
  name_this_thread("azlb-worker" + std::to_string(loop_.opt.id));
  loop_.enable();
  arm_wake();
  arm_tick();
  {
    std::lock_guard lk(mbox_mu_);
    apply(std::move(mbox_config_));
  }
  for (;;) {
    loop_.run_once([this](const io_uring_cqe* cqe) { dispatch(cqe); });
    live_.store(tcp_.live() + udp_.live(), std::memory_order_relaxed);
    paused_.store(listeners_.paused(), std::memory_order_relaxed);
    if (draining_ && tcp_.live() == 0 && udp_.live() == 0) break;
  }
}

void Worker::dispatch(const io_uring_cqe* cqe) {
  const auto ud = io_uring_cqe_get_data64(cqe);
  const auto i = index_of(ud);
  const Op op = op_of(ud);
  switch (op) {
    case Op::Accept:
      if (listeners_.on_completion(i, cqe) && !draining_) {
        tcp_.on_accepted(cqe->res, *listeners_.at(i).route);
      } else if (cqe->res >= 0) {  // a client of a listener on its way out
        ::close(cqe->res);
        loop_.fds.give();
      }
      break;
    case Op::UdpListen:
      if (listeners_.on_completion(i, cqe) && !draining_)
        udp_.on_datagram(i, cqe);
      else if (cqe->flags & IORING_CQE_F_BUFFER)
        loop_.udp_bufs->recycle(static_cast<std::uint16_t>(cqe->flags >> IORING_CQE_BUFFER_SHIFT));
      break;
    case Op::Connect:
    case Op::ConnectTimeout:
    case Op::Recv:
    case Op::Send:
    case Op::Poll:
    case Op::CancelConn:
    case Op::SockOpt:
      tcp_.on_completion(op, i, dir_of(ud), cqe);
      break;
    case Op::UdpReply:
    case Op::CancelFlow:
      udp_.on_completion(op, i, cqe);
      break;
    case Op::CancelListener:  // the listener's own request reports the end
    case Op::Closed:
      break;
    case Op::Wake:
      arm_wake();
      on_wake();
      break;
    case Op::Tick:
      arm_tick();
      listeners_.on_tick();
      tcp_.on_tick();
      udp_.on_tick();
      break;
  }
}

void Worker::on_wake() {
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
    for (auto id : listeners_.stop_all()) udp_.close_flows_of(id);
    // A UDP flow has no end of its own to wait for: draining ends it now.
    udp_.close_all();
  }
}

// Swaps in a config: listeners that stay keep their sockets and requests,
// new ones start, removed ones are cancelled and their UDP flows end with
// them. Connections keep the generation they started with until they end.
void Worker::apply(std::shared_ptr<const Config> cfg) {
  const auto generation = cfg->generation;
  // The listeners of the old config are cancelled by name (their routes):
  // keep it alive until that is done.
  Generation* old = loop_.gens.current() ? loop_.gens.hold() : nullptr;
  loop_.gens.advance(std::move(cfg));
  for (auto id : listeners_.apply(*loop_.gens.current()->config, draining_)) udp_.close_flows_of(id);
  if (old) loop_.gens.release(old);
  applied_.store(generation, std::memory_order_release);
}

}  // namespace azlb::engine
