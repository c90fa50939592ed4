// Bulk halves: once a receive fills a whole buffer, the half stops copying
// bytes through user space and splices them socket -> pipe -> socket, which
// moves page references instead of bytes. io_uring's own splice runs in
// blocking worker threads, so the splices are plain non-blocking calls made
// when a one-shot poll through the ring says a socket is ready.
#include <fcntl.h>
#include <poll.h>
#include <sys/socket.h>

#include <cerrno>

#include "engine/worker.hpp"

namespace azlb::engine {

namespace {

// Splices per wake-up before the half yields to other connections.
constexpr int kRoundsPerWake = 8;

void set_nonblocking(int fd) { ::fcntl(fd, F_SETFL, ::fcntl(fd, F_GETFL) | O_NONBLOCK); }

}  // namespace

bool Worker::start_splice(std::uint32_t ci, bool from_client) {
  Conn& c = conn(ci);
  Half& h = from_client ? c.d2u : c.u2d;
  const int p = pipes_.take();
  if (p < 0) return false;  // every pipe is lent: this half goes on with buffers
  if (!c.nonblocking) {
    // A splice must never block the worker; receives and sends through the
    // ring work the same on non-blocking sockets.
    set_nonblocking(c.down);
    set_nonblocking(c.up);
    c.nonblocking = true;
  }
  ThreadCounters::add(c.route->counters->per_thread[opt_.id].spliced, 1);
  h.pipe = static_cast<std::int16_t>(p);
  h.piped = 0;
  splice_pump(ci, from_client);
  return true;
}

// Moves what is ready, then waits through the ring for whichever socket
// stopped it: the source to become readable, or the destination writable
// (the pipe full of unsent bytes is the back-pressure).
void Worker::splice_pump(std::uint32_t ci, bool from_client) {
  Conn& c = conn(ci);
  Half& h = from_client ? c.d2u : c.u2d;
  const int src = from_client ? c.down : c.up, dst = from_client ? c.up : c.down;
  const Pipe& p = pipes_.at(h.pipe);
  constexpr unsigned kFlags = SPLICE_F_MOVE | SPLICE_F_NONBLOCK;
  for (int round = 0; round < kRoundsPerWake; ++round) {
    if (h.piped > 0) {
      const ssize_t n = ::splice(p.r, nullptr, dst, nullptr, h.piped, kFlags);
      if (n < 0) {
        if (errno == EAGAIN) return arm_poll(ci, from_client, dst, POLLOUT);
        return close_conn(ci, true);
      }
      h.piped -= static_cast<std::uint32_t>(n);
      c.last_active_ms = now_ms_;
      auto& counters = c.upstream->state->per_thread[opt_.id];
      ThreadCounters::add(from_client ? counters.bytes_in : counters.bytes_out, static_cast<std::uint64_t>(n));
      if (h.piped > 0) return arm_poll(ci, from_client, dst, POLLOUT);
    }
    if (h.eof) return pass_fin(ci, from_client);
    const ssize_t n = ::splice(src, nullptr, p.w, nullptr, static_cast<std::size_t>(pipes_.capacity()), kFlags);
    if (n < 0) {
      if (errno == EAGAIN) return arm_poll(ci, from_client, src, POLLIN);
      return close_conn(ci, true);
    }
    if (n == 0) {
      h.eof = true;  // the pipe is empty: the loop passes the FIN on
      continue;
    }
    h.piped += static_cast<std::uint32_t>(n);
    c.last_active_ms = now_ms_;
  }
  // Busy: let the other connections have their turn, and come back.
  if (h.piped > 0) return arm_poll(ci, from_client, dst, POLLOUT);
  arm_poll(ci, from_client, src, POLLIN);
}

void Worker::arm_poll(std::uint32_t ci, bool from_client, int fd, unsigned mask) {
  Conn& c = conn(ci);
  auto* s = sqe();
  io_uring_prep_poll_add(s, fd, mask);
  io_uring_sqe_set_data64(s, pack(from_client ? Op::PollD2U : Op::PollU2D, ci));
  ++c.pending;
}

void Worker::on_poll(std::uint32_t ci, bool from_client, int res) {
  Conn& c = conn(ci);
  --c.pending;
  if (c.state == Conn::State::Closing) return maybe_finish_close(ci);
  if (res < 0) return close_conn(ci, true);
  // Errors and hang-ups show up as the splice's own result.
  splice_pump(ci, from_client);
}

}  // namespace azlb::engine
