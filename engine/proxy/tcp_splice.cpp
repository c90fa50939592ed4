// Bulk halves: once a receive fills a whole buffer, the half stops copying
// bytes through user space and splices them socket -> pipe -> socket, which
// moves page references instead of bytes. io_uring's own splice runs in
// blocking worker threads, so the splices are plain non-blocking calls made
// when a one-shot poll through the ring says a socket is ready.
#include <fcntl.h>
#include <poll.h>

#include <cerrno>

#include "engine/proxy/tcp_proxy.hpp"

namespace azlb::engine {

namespace {

// Splices per wake-up before the half yields to other connections.
constexpr int kRoundsPerWake = 8;

}  // namespace

bool TcpProxy::start_splice(std::uint32_t ci, unsigned d) {
  Conn& c = conns_[ci];
  Half& h = c.half[d];
  const int p = loop_.pipes.take();
  if (p < 0) return false;  // every pipe is lent: this half goes on with buffers
  set_nonblocking(c);
  ThreadCounters::add(listener(c).spliced, 1);
  h.state = HalfState::Splicing;
  h.pipe = static_cast<std::int16_t>(p);
  h.piped = 0;
  splice_pump(ci, d);
  return true;
}

// Moves what is ready, then waits through the ring for whichever socket
// stopped it: the source to become readable, or the destination writable
// (the pipe full of unsent bytes is the back-pressure).
void TcpProxy::splice_pump(std::uint32_t ci, unsigned d) {
  Conn& c = conns_[ci];
  Half& h = c.half[d];
  const int src = c.src(d), dst = c.dst(d);
  const Pipe& p = loop_.pipes.at(h.pipe);
  constexpr unsigned kFlags = SPLICE_F_MOVE | SPLICE_F_NONBLOCK;
  for (int round = 0; round < kRoundsPerWake; ++round) {
    if (h.piped > 0) {
      const ssize_t n = ::splice(p.r, nullptr, dst, nullptr, h.piped, kFlags);
      if (n < 0) {
        if (errno == EAGAIN) return arm_poll(ci, d, dst, POLLOUT);
        return close_conn(ci, failed_destination(d));
      }
      h.piped -= static_cast<std::uint32_t>(n);
      moved(c, d, static_cast<std::uint64_t>(n));
      if (h.piped > 0) return arm_poll(ci, d, dst, POLLOUT);
    }
    if (h.fin_seen) return pass_fin(ci, d);
    const ssize_t n = ::splice(src, nullptr, p.w, nullptr, static_cast<std::size_t>(loop_.pipes.capacity()), kFlags);
    if (n < 0) {
      if (errno == EAGAIN) return arm_poll(ci, d, src, POLLIN);
      return close_conn(ci, failed_source(d));
    }
    if (n == 0) {
      h.fin_seen = true;  // the pipe is empty: the loop passes the FIN on
      continue;
    }
    h.piped += static_cast<std::uint32_t>(n);
    c.last_active_ms = loop_.now_ms;
  }
  // Busy: let the other connections have their turn, and come back.
  if (h.piped > 0) return arm_poll(ci, d, dst, POLLOUT);
  arm_poll(ci, d, src, POLLIN);
}

}  // namespace azlb::engine
