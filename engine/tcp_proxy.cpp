// A proxied TCP connection, top to bottom:
//   accept -> ACL -> pick -> connect (retry on another member) -> relay both
//   ways -> half-close -> close.
// Each direction keeps one multishot receive armed and one send in flight;
// it holds a few buffers at most, so a slow reader stalls its sender instead
// of making us buffer.
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "engine/log.hpp"
#include "engine/sockets.hpp"
#include "engine/worker.hpp"
#include "model/acl.hpp"

namespace azlb::engine {

namespace {

// Buffers a half may have waiting behind its send before its receive is
// cancelled; a few more can land while the cancel is on its way.
constexpr std::uint8_t kMaxQueued = 2;

}  // namespace

std::uint32_t Worker::alloc_conn() {
  if (free_conns_.empty()) {
    conns_.emplace_back();
    return static_cast<std::uint32_t>(conns_.size() - 1);
  }
  auto i = free_conns_.back();
  free_conns_.pop_back();
  return i;
}

void Worker::on_accept(std::uint32_t slot, io_uring_cqe* cqe) {
  auto& l = listeners_[slot];
  if (!(cqe->flags & IORING_CQE_F_MORE)) on_listener_ended(slot, cqe->res);
  if (cqe->res < 0) return;
  const int fd = cqe->res;
  if (l.removed || draining_) {
    ::close(fd);
    return;
  }
  const Route& route = *l.route;
  // Only an ACL or affinity needs the client's address: spare the syscall otherwise.
  const bool need_client = !route.acl.empty() || route.distribution != model::Distribution::FiveTuple;
  sockaddr_storage client{};
  if (need_client) {
    socklen_t len = sizeof client;
    ::getpeername(fd, reinterpret_cast<sockaddr*>(&client), &len);
  }
  if (!route.acl.empty() && !model::acl_permits(route.acl, ip_of(client))) {
    ThreadCounters::add(route.counters->per_thread[opt_.id].denied, 1);
    close_with_reset(fd);
    return;
  }
  const auto ci = alloc_conn();
  Conn& c = conn(ci);
  c = Conn{};
  c.state = Conn::State::Connecting;
  c.down = fd;
  c.route = &route;
  c.gen = current_;
  ++current_->users;
  c.client_hash = need_client ? client_hash(client, route.key.protocol) : 0;
  c.last_active_ms = now_ms_;
  ++live_conns_;
  // TCP_NODELAY came with the socket: Linux copies it from the listener.
  connect_next(ci);
}

// Picks an upstream not tried yet and connects to it, guarded by a timeout.
void Worker::connect_next(std::uint32_t ci) {
  Conn& c = conn(ci);
  const Route& route = *c.route;
  int idx = c.attempts < kMaxConnectAttempts
                ? pick(route, c.client_hash, std::span<const std::uint8_t>(c.tried, c.attempts), rng_)
                : kNoUpstream;
  if (idx == kNoUpstream) {
    // Every member is down (or has refused us): reset at once rather than let
    // the client wait for a timeout.
    ThreadCounters::add(route.counters->per_thread[opt_.id].refused, 1);
    close_conn(ci, true);
    return;
  }
  c.tried[c.attempts++] = static_cast<std::uint8_t>(idx);
  c.upstream = &route.upstreams[idx];
  c.up = ::socket(c.upstream->addr.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (c.up < 0) {
    log_ratelimited("cannot create upstream socket: %s", std::strerror(errno));
    close_conn(ci, true);
    return;
  }
  set_nodelay(c.up);
  auto* s = sqe();
  io_uring_prep_connect(s, c.up, reinterpret_cast<const sockaddr*>(&c.upstream->addr), c.upstream->addr_len);
  io_uring_sqe_set_data64(s, pack(Op::Connect, ci));
  s->flags |= IOSQE_IO_LINK;
  auto* t = sqe();
  io_uring_prep_link_timeout(t, &connect_ts_, 0);
  io_uring_sqe_set_data64(t, pack(Op::ConnectTimeout, ci));
  c.pending += 2;
}

void Worker::on_connect(std::uint32_t ci, int res) {
  Conn& c = conn(ci);
  --c.pending;
  if (c.state == Conn::State::Closing) return maybe_finish_close(ci);
  auto& counters = c.upstream->state->per_thread[opt_.id];
  if (res < 0) {
    // Refused, unreachable, or cancelled by the link timeout: this member
    // costs the client nothing, the next one is tried.
    ThreadCounters::add(counters.connect_failures, 1);
    ::close(c.up);
    c.up = -1;
    connect_next(ci);
    return;
  }
  c.state = Conn::State::Relaying;
  c.counted = true;
  ThreadCounters::add(counters.active, 1);
  ThreadCounters::add(counters.total, 1);
  c.last_active_ms = now_ms_;
  arm_recv(ci, true);
  arm_recv(ci, false);
}

// One receive per half for the connection's whole life, not one per message:
// no request to prepare and no poll to re-arm after each relayed message.
void Worker::arm_recv(std::uint32_t ci, bool from_client) {
  Conn& c = conn(ci);
  Half& h = from_client ? c.d2u : c.u2d;
  auto* s = sqe();
  io_uring_prep_recv_multishot(s, from_client ? c.down : c.up, nullptr, 0, 0);
  s->flags |= IOSQE_BUFFER_SELECT;
  s->buf_group = tcp_bufs_->group();
  io_uring_sqe_set_data64(s, pack(from_client ? Op::RecvDown : Op::RecvUp, ci));
  h.receiving = true;
  h.throttled = false;
  ++c.pending;
}

void Worker::on_recv(std::uint32_t ci, bool from_client, io_uring_cqe* cqe) {
  Conn& c = conn(ci);
  Half& h = from_client ? c.d2u : c.u2d;
  const int res = cqe->res;
  if (!(cqe->flags & IORING_CQE_F_MORE)) {
    --c.pending;
    h.receiving = false;
  }
  const bool has_buf = cqe->flags & IORING_CQE_F_BUFFER;
  const auto bid = static_cast<std::uint16_t>(cqe->flags >> IORING_CQE_BUFFER_SHIFT);
  if (c.state == Conn::State::Closing) {
    if (has_buf) tcp_bufs_->recycle(bid);
    return maybe_finish_close(ci);
  }
  if (res > 0) {
    const auto n = static_cast<std::uint32_t>(res);
    c.last_active_ms = now_ms_;
    if (n == tcp_bufs_->size()) h.bulk = true;
    if (h.buf < 0) {
      h.buf = bid;
      h.off = 0;
      h.len = n;
      send_half(ci, from_client);
    } else if (h.q_tail >= 0 && chunk_len_[h.q_tail] + n <= tcp_bufs_->size()) {
      // Small messages that land behind a send join the last one queued:
      // one buffer and one send for the lot, and the buffer goes back at once.
      auto tail = static_cast<std::uint16_t>(h.q_tail);
      std::memcpy(tcp_bufs_->data(tail) + chunk_len_[tail], tcp_bufs_->data(bid), n);
      chunk_len_[tail] += n;
      tcp_bufs_->recycle(bid);
    } else {
      enqueue(h, bid, n);
    }
    if (h.receiving && !h.throttled && (h.bulk || h.queued >= kMaxQueued)) throttle(ci, from_client);
    return;
  }
  // The receive has ended.
  if (has_buf) tcp_bufs_->recycle(bid);
  if (res == 0) {
    h.fin_pending = true;
  } else if (res == -ENOBUFS) {
    // Every buffer is in flight: wait for one to come back rather than spin.
    h.starved = true;
    starved_.push_back({ci, from_client});
  } else if (res != -ECANCELED) {
    // A reset or error on either side ends both: pass a reset on to the client.
    return close_conn(ci, true);
  }
  if (h.buf < 0) resume(ci, from_client);
}

// Stops a half's receive: its queue is long enough, or a bulk transfer is
// about to move to a pipe.
void Worker::throttle(std::uint32_t ci, bool from_client) {
  Conn& c = conn(ci);
  Half& h = from_client ? c.d2u : c.u2d;
  auto* s = sqe();
  io_uring_prep_cancel64(s, pack(from_client ? Op::RecvDown : Op::RecvUp, ci), 0);
  io_uring_sqe_set_data64(s, pack(Op::Throttle, ci));
  h.throttled = true;
}

void Worker::enqueue(Half& h, std::uint16_t buf, std::uint32_t len) {
  chunk_len_[buf] = len;
  chunk_next_[buf] = -1;
  if (h.q_tail >= 0)
    chunk_next_[h.q_tail] = buf;
  else
    h.q_head = buf;
  h.q_tail = buf;
  ++h.queued;
}

// Makes the oldest queued buffer the one to send; false if none waits.
bool Worker::dequeue(Half& h) {
  if (h.q_head < 0) return false;
  h.buf = h.q_head;
  h.off = 0;
  h.len = chunk_len_[h.buf];
  h.q_head = chunk_next_[h.buf];
  if (h.q_head < 0) h.q_tail = -1;
  --h.queued;
  return true;
}

void Worker::recycle_all(Half& h) {
  if (h.buf >= 0) tcp_bufs_->recycle(static_cast<std::uint16_t>(h.buf));
  for (auto b = h.q_head; b >= 0; b = chunk_next_[b]) tcp_bufs_->recycle(static_cast<std::uint16_t>(b));
  h.buf = h.q_head = h.q_tail = -1;
  h.queued = 0;
}

void Worker::send_half(std::uint32_t ci, bool to_upstream) {
  Conn& c = conn(ci);
  Half& h = to_upstream ? c.d2u : c.u2d;
  auto* s = sqe();
  io_uring_prep_send(s, to_upstream ? c.up : c.down, tcp_bufs_->data(static_cast<std::uint16_t>(h.buf)) + h.off,
                     h.len - h.off, MSG_NOSIGNAL);
  io_uring_sqe_set_data64(s, pack(to_upstream ? Op::SendUp : Op::SendDown, ci));
  ++c.pending;
}

void Worker::on_send(std::uint32_t ci, bool to_upstream, int res) {
  Conn& c = conn(ci);
  Half& h = to_upstream ? c.d2u : c.u2d;
  --c.pending;
  if (c.state == Conn::State::Closing) return maybe_finish_close(ci);
  if (res < 0) {
    close_conn(ci, true);
    return;
  }
  auto& counters = c.upstream->state->per_thread[opt_.id];
  ThreadCounters::add(to_upstream ? counters.bytes_in : counters.bytes_out, static_cast<std::uint64_t>(res));
  h.off += static_cast<std::uint32_t>(res);
  if (h.off < h.len) {
    // A short send: the socket took part of the buffer; send the rest.
    send_half(ci, to_upstream);
    return;
  }
  tcp_bufs_->recycle(static_cast<std::uint16_t>(h.buf));
  h.buf = -1;
  if (dequeue(h))
    send_half(ci, to_upstream);
  else
    resume(ci, to_upstream);
  feed_starved();
}

void Worker::resume(std::uint32_t ci, bool from_client) {
  Conn& c = conn(ci);
  Half& h = from_client ? c.d2u : c.u2d;
  if (h.receiving || h.starved || c.state != Conn::State::Relaying) return;
  if (h.fin_pending) {
    h.fin_pending = false;
    h.eof = true;
    return pass_fin(ci, from_client);
  }
  if (h.bulk) {
    h.bulk = false;
    if (start_splice(ci, from_client)) return;
  }
  arm_recv(ci, from_client);
}

// The sender finished and everything it sent is on its way: pass the FIN on
// and keep the other direction going.
void Worker::pass_fin(std::uint32_t ci, bool from_client) {
  Conn& c = conn(ci);
  // Both ways done: closing the sockets, with nothing left unread, sends this
  // FIN too, one syscall fewer per connection.
  if (c.d2u.eof && c.u2d.eof) return close_conn(ci, false);
  // A plain syscall, not IORING_OP_SHUTDOWN: io_uring always hands that op to
  // an io-wq thread, and waking it costs more than the syscall (measured: a
  // third of the engine's CPU went to io-wq threads at 11k connections/s).
  ::shutdown(from_client ? c.up : c.down, SHUT_WR);
}

// A buffer came back: give it to a receive that found none.
void Worker::feed_starved() {
  while (!starved_.empty()) {
    auto [ci, from_client] = starved_.back();
    starved_.pop_back();
    Conn& c = conn(ci);
    Half& h = from_client ? c.d2u : c.u2d;
    if (!h.starved) continue;
    h.starved = false;
    if (c.state != Conn::State::Relaying) continue;
    if (h.buf < 0)
      resume(ci, from_client);
    else if (!h.bulk && !h.receiving)
      arm_recv(ci, from_client);  // behind the send still in flight; a bulk half waits for it and splices
    return;
  }
}

void Worker::close_conn(std::uint32_t ci, bool reset_client) {
  Conn& c = conn(ci);
  if (c.state == Conn::State::Closing || c.state == Conn::State::Free) return;
  c.state = Conn::State::Closing;
  if (reset_client && c.down >= 0) {
    linger l{1, 0};
    ::setsockopt(c.down, SOL_SOCKET, SO_LINGER, &l, sizeof l);
  }
  if (c.pending == 0) return finish_close(ci);
  // Operations still in flight hold the buffers and the slot: cancel them all
  // and free the connection when the last completion has come.
  for (int fd : {c.down, c.up}) {
    if (fd < 0) continue;
    auto* s = sqe();
    io_uring_prep_cancel_fd(s, fd, IORING_ASYNC_CANCEL_ALL);
    io_uring_sqe_set_data64(s, pack(Op::CancelConn, ci));
    ++c.pending;
  }
}

void Worker::maybe_finish_close(std::uint32_t ci) {
  Conn& c = conn(ci);
  if (c.state == Conn::State::Closing && c.pending == 0) finish_close(ci);
}

void Worker::finish_close(std::uint32_t ci) {
  Conn& c = conn(ci);
  for (Half* h : {&c.d2u, &c.u2d}) {
    recycle_all(*h);
    if (h->pipe >= 0) pipes_.give_back(h->pipe, h->piped == 0);
  }
  // Closing through the ring batches it with the next submission; nothing
  // waits for the result.
  for (int fd : {c.down, c.up}) {
    if (fd < 0) continue;
    auto* s = sqe();
    io_uring_prep_close(s, fd);
    io_uring_sqe_set_data64(s, pack(Op::Closed, 0));
  }
  if (c.counted) ThreadCounters::sub(c.upstream->state->per_thread[opt_.id].active, 1);
  release(c.gen);
  c = Conn{};
  free_conns_.push_back(ci);
  --live_conns_;
  feed_starved();
}

}  // namespace azlb::engine
