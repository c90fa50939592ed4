// What the parts of one worker share: its ring, its buffers and pipes, the
// clock of the batch of completions being handled, the generations of the
// config in use, and the process's descriptor budget. Listeners, TcpProxy
// and UdpProxy each own their own state and take a Loop&.
#pragma once

#include <liburing.h>

#include <cstdint>
#include <deque>
#include <memory>

#include "engine/proxy/buffer_ring.hpp"
#include "engine/config.hpp"
#include "engine/proxy/fd_budget.hpp"
#include "engine/proxy/pipe_pool.hpp"

namespace azlb::engine {

// What a completion is for, packed into user_data with the connection, flow
// or listener it belongs to and, for a TCP half, its direction:
//   bits 56..63 the Op, bit 48 the direction, bits 0..31 the index.
enum class Op : std::uint8_t {
  Accept,          // accept on a TCP listener (multishot, or single near the fd limit)
  Connect,         // upstream connect
  ConnectTimeout,  // the link timeout guarding it
  Recv,            // receive of a half's source
  Send,            // a half's send to its destination
  Poll,            // a half waits for a socket: blocked destination, or splice
  CancelConn,      // cancelling a closing connection's operations
  SockOpt,         // a socket option set through the ring
  Closed,          // a socket closed through the ring; nothing to do
  UdpListen,       // multishot recvmsg on a UDP listener
  UdpReply,        // multishot recv on a flow's upstream socket
  CancelFlow,
  CancelListener,
  Wake,            // the control thread posted something
  Tick,            // periodic timer: idle timeouts, accept retry, drain
};

inline std::uint64_t pack(Op op, std::uint32_t index, unsigned dir = 0) {
  return (std::uint64_t(op) << 56) | (std::uint64_t(dir & 1) << 48) | index;
}
inline Op op_of(std::uint64_t ud) { return static_cast<Op>(ud >> 56); }
inline unsigned dir_of(std::uint64_t ud) { return static_cast<unsigned>(ud >> 48) & 1; }
inline std::uint32_t index_of(std::uint64_t ud) { return static_cast<std::uint32_t>(ud); }

// A config in use: kept alive while any connection or flow still routes by it.
struct Generation {
  std::shared_ptr<const Config> config;
  std::uint32_t users = 0;
};

class Generations {
 public:
  Generation* current() const { return current_; }
  // Makes `cfg` current; the previous one lives on while something holds it.
  void advance(std::shared_ptr<const Config> cfg);
  Generation* hold() {
    ++current_->users;
    return current_;
  }
  void release(Generation*);

 private:
  std::deque<Generation> gens_;
  Generation* current_ = nullptr;
};

struct LoopOptions {
  unsigned id = 0;
  // Few, large buffers: a small message touches one page of its buffer, so
  // many quiet connections cost little memory, while bulk transfers move 64 KiB
  // per receive. No connection keeps one for longer than a send: one whose
  // reader stops taking bytes moves them out of the pool (TcpProxy).
  std::uint32_t tcp_buffers = 256, tcp_buffer_size = 65536;
  // A UDP buffer holds the largest datagram (65,507 bytes over IPv4, 65,527
  // over IPv6) behind recvmsg's header, the client's address and the
  // destination-address control message.
  std::uint32_t udp_buffers = 256, udp_buffer_size = 65536 + 512;
  // A receive that fills a whole buffer marks a bulk transfer: that half
  // moves on to a pipe, if one of these is free.
  std::uint32_t max_pipes = 64;
  int pipe_bytes = 1024 * 1024;
  // The listeners of VIPs carry the hand-off mark (nat/handoff.hpp), which
  // accepted sockets inherit: set back to 0 on each, so that the kernel's
  // socket lookup tells a connection from its listener.
  bool reset_accepted_mark = false;
};

class Loop {
 public:
  Loop(LoopOptions, FdBudget&);
  ~Loop();
  Loop(const Loop&) = delete;
  Loop& operator=(const Loop&) = delete;

  // Called on the thread that will use the ring (SINGLE_ISSUER binds it).
  void enable();
  // A free submission entry; submits what is queued if none is left.
  io_uring_sqe* sqe();
  // setsockopt(2) as a submission: `val` must live until it is submitted.
  // Only where `sockopt_through_ring` (Linux 6.7).
  void prep_setsockopt(io_uring_sqe*, int fd, int level, int name, const int* val);
  // Submits, waits for at least one completion, and calls f on each.
  template <class F>
  void run_once(F&& f);

  const LoopOptions opt;
  io_uring ring{};
  std::unique_ptr<BufferRing> tcp_bufs, udp_bufs;
  PipePool pipes;
  FdBudget& fds;
  Generations gens;
  std::int64_t now_ms = 0;
  // The kernel takes socket options through the ring (found by enable()).
  bool sockopt_through_ring = false;

 private:
  bool probe_sockopt();
};

std::int64_t monotonic_ms();

template <class F>
void Loop::run_once(F&& f) {
  io_uring_submit_and_wait(&ring, 1);
  now_ms = monotonic_ms();
  unsigned head, seen = 0;
  io_uring_cqe* cqe;
  io_uring_for_each_cqe(&ring, head, cqe) {
    f(cqe);
    ++seen;
  }
  io_uring_cq_advance(&ring, seen);
}

}  // namespace azlb::engine
