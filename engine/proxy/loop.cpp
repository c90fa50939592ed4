#include "engine/proxy/loop.hpp"

#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <ctime>
#include <cstring>
#include <stdexcept>
#include <string>

namespace azlb::engine {

namespace {
constexpr std::uint16_t kTcpGroup = 1, kUdpGroup = 2;
}

// The coarse clock: every timer here counts milliseconds at best and seconds
// mostly, and a worker reads the clock once per batch of completions. The
// fine clock reads the hypervisor's clock source, which cost 2% of a busy
// worker's CPU on a VM; the coarse one is a load from the vDSO page.
std::int64_t monotonic_ms() {
  timespec ts{};
  ::clock_gettime(CLOCK_MONOTONIC_COARSE, &ts);
  return static_cast<std::int64_t>(ts.tv_sec) * 1000 + ts.tv_nsec / 1'000'000;
}

void Generations::advance(std::shared_ptr<const Config> cfg) {
  gens_.push_back({std::move(cfg), 1});
  Generation* old = current_;
  current_ = &gens_.back();
  if (old) release(old);
}

void Generations::release(Generation* g) {
  if (--g->users == 0 && g != current_) {
    g->config.reset();
    while (!gens_.empty() && !gens_.front().config) gens_.pop_front();
  }
}

Loop::Loop(LoopOptions o, FdBudget& budget)
    : opt(o),
      pipes(o.max_pipes, o.pipe_bytes, budget),
      fds(budget) {
  io_uring_params p{};
  // One thread submits and reaps, so the kernel may skip cross-thread
  // signalling and run completion work only when we ask for events. The ring
  // starts disabled: SINGLE_ISSUER binds it to the thread that enables it,
  // which must be the worker's, not the control thread that builds it.
  p.flags = IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_DEFER_TASKRUN | IORING_SETUP_R_DISABLED | IORING_SETUP_CQSIZE;
  p.cq_entries = 16384;
  int r = io_uring_queue_init_params(4096, &ring, &p);
  if (r == -EINVAL) {  // Linux 6.0: the plain ring works, only slower (multishot receive needs 6.0)
    p = {};
    p.flags = IORING_SETUP_CQSIZE;
    p.cq_entries = 16384;
    r = io_uring_queue_init_params(4096, &ring, &p);
  }
  if (r < 0) throw std::runtime_error(std::string("cannot create io_uring: ") + std::strerror(-r));
  tcp_bufs = std::make_unique<BufferRing>(ring, kTcpGroup, o.tcp_buffers, o.tcp_buffer_size);
  udp_bufs = std::make_unique<BufferRing>(ring, kUdpGroup, o.udp_buffers, o.udp_buffer_size);
}

Loop::~Loop() {
  tcp_bufs.reset();
  udp_bufs.reset();
  io_uring_queue_exit(&ring);
}

void Loop::enable() {
  // liburing 2.3 declares io_uring_enable_rings but does not export it.
  if (ring.flags & IORING_SETUP_R_DISABLED)
    ::syscall(__NR_io_uring_register, ring.ring_fd, IORING_REGISTER_ENABLE_RINGS, nullptr, 0);
  // Every io_uring_enter then skips looking the ring's descriptor up in a
  // file table this process's threads share. Older kernels: the plain fd works.
  io_uring_register_ring_fd(&ring);
  now_ms = monotonic_ms();
  sockopt_through_ring = probe_sockopt();
}

namespace {
// SOCKET_URING_OP_SETSOCKOPT of <linux/io_uring.h> since Linux 6.7; liburing
// 2.3's headers predate it.
constexpr std::uint32_t kSocketUringOpSetsockopt = 3;
}  // namespace

void Loop::prep_setsockopt(io_uring_sqe* s, int fd, int level, int name, const int* val) {
  io_uring_prep_rw(IORING_OP_URING_CMD, s, fd, nullptr, 0, 0);
  s->cmd_op = kSocketUringOpSetsockopt;
  s->addr = (std::uint64_t(std::uint32_t(name)) << 32) | std::uint32_t(level);  // level, then optname
  s->splice_fd_in = sizeof(int);                                                // optlen
  s->addr3 = reinterpret_cast<std::uintptr_t>(val);                             // optval
}

// One option set through the ring on a throwaway socket, before anything
// else is in flight: an older kernel answers -EINVAL or -EOPNOTSUPP, and the
// engine then makes the same calls as system calls.
bool Loop::probe_sockopt() {
  const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return false;
  static constexpr int kOne = 1;
  io_uring_sqe* s = io_uring_get_sqe(&ring);
  prep_setsockopt(s, fd, IPPROTO_TCP, TCP_NODELAY, &kOne);
  io_uring_sqe_set_data64(s, 0);
  io_uring_cqe* cqe = nullptr;
  bool ok = io_uring_submit_and_wait(&ring, 1) == 1 && io_uring_peek_cqe(&ring, &cqe) == 0;
  if (ok) {
    ok = cqe->res == 0;
    io_uring_cqe_seen(&ring, cqe);
  }
  ::close(fd);
  return ok;
}

io_uring_sqe* Loop::sqe() {
  auto* s = io_uring_get_sqe(&ring);
  if (!s) {  // the submission queue is full: hand it to the kernel and go on
    io_uring_submit(&ring);
    s = io_uring_get_sqe(&ring);
  }
  return s;
}

}  // namespace azlb::engine
