// A proxied TCP connection, top to bottom: accept -> ACL -> pick -> connect
// (retry on another member) -> relay both ways -> half-close -> close.
#include "engine/proxy/tcp_proxy.hpp"

#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "engine/log.hpp"
#include "engine/picker.hpp"
#include "engine/proxy/proxy_header.hpp"
#include "engine/proxy/sockets.hpp"
#include "model/acl.hpp"

namespace azlb::engine {

namespace {
constexpr int kOne = 1;  // an option's value; lives as long as any submission reading it
}  // namespace

const char* to_string(HalfState s) {
  switch (s) {
    case HalfState::Idle: return "idle";
    case HalfState::Relaying: return "relaying";
    case HalfState::Blocked: return "blocked";
    case HalfState::Splicing: return "splicing";
    case HalfState::Done: return "done";
  }
  return "?";
}

TcpProxy::TcpProxy(Loop& loop, std::uint32_t connect_timeout_ms, AccessLog* access_log)
    : loop_(loop), access_log_(access_log) {
  connect_ts_.tv_sec = connect_timeout_ms / 1000;
  connect_ts_.tv_nsec = static_cast<long long>(connect_timeout_ms % 1000) * 1'000'000;
}

TcpProxy::~TcpProxy() {
  // Only reached with connections left in tests, or when the process ends.
  for (auto& c : conns_)
    for (int fd : {c.down, c.up})
      if (fd >= 0) ::close(fd), loop_.fds.give();
}

std::uint32_t TcpProxy::alloc_conn() {
  if (free_conns_.empty()) {
    conns_.emplace_back();
    return static_cast<std::uint32_t>(conns_.size() - 1);
  }
  auto i = free_conns_.back();
  free_conns_.pop_back();
  return i;
}

std::uint32_t TcpProxy::buffers_held() const {
  std::uint32_t n = 0;
  for (auto& c : conns_)
    for (auto& h : c.half) n += h.buf >= 0;
  return n;
}

void TcpProxy::on_accepted(int fd, const Route& route) {
  if (loop_.opt.reset_accepted_mark && !route.key.address.is_unspecified()) {
    const int zero = 0;
    ::setsockopt(fd, SOL_SOCKET, SO_MARK, &zero, sizeof zero);
  }
  // Only an ACL, a set's consistent hash, the PROXY protocol or the access
  // log needs the client's address: spare the syscall otherwise.
  const bool proxy_header = route.proxy_protocol != model::ProxyProtocol::None;
  const bool need_client = !route.acl.empty() || route.table || proxy_header || access_log_;
  sockaddr_storage client{};
  if (need_client) {
    socklen_t len = sizeof client;
    ::getpeername(fd, reinterpret_cast<sockaddr*>(&client), &len);
  }
  if (!route.acl.empty() && !model::acl_permits(route.acl, ip_of(client))) {
    ThreadCounters::add(route.counters->per_thread[loop_.opt.id].denied, 1);
    if (access_log_) access_log_->write(loop_.opt.id, {"tcp", &client, &route, nullptr, 0, 0, 0, End::Denied});
    close_with_reset(fd);
    loop_.fds.give();
    return;
  }
  const auto ci = alloc_conn();
  Conn& c = conns_[ci];
  c = Conn{};
  c.state = Conn::State::Connecting;
  c.down = fd;
  c.route = &route;
  c.gen = loop_.gens.hold();
  c.client_hash = route.table ? flow_hash(client, route) : 0;
  c.client = client;
  if (proxy_header) {
    // The header names the address the client reached: the VIP, or on a
    // wildcard VIP the one the kernel chose.
    socklen_t len = sizeof c.local;
    if (route.key.address.is_unspecified()) {
      ::getsockname(fd, reinterpret_cast<sockaddr*>(&c.local), &len);
    } else {
      fill_sockaddr(route.key.address, route.key.port, c.local, len);
    }
  }
  c.started_ms = c.last_active_ms = loop_.now_ms;
  ++live_;
  // TCP_NODELAY came with the socket: Linux copies it from the listener.
  connect_next(ci);
}

std::uint32_t TcpProxy::adopt(int down, int up, const Route& route, const Upstream& upstream) {
  loop_.fds.force(2);
  const auto ci = alloc_conn();
  Conn& c = conns_[ci];
  c = Conn{};
  c.down = down;
  c.up = up;
  c.route = &route;
  c.upstream = &upstream;
  c.gen = loop_.gens.hold();
  c.started_ms = c.last_active_ms = loop_.now_ms;
  ++live_;
  start_relay(ci);
  return ci;
}

// Picks an upstream not tried yet and connects to it, guarded by a timeout.
void TcpProxy::connect_next(std::uint32_t ci) {
  Conn& c = conns_[ci];
  const Route& route = *c.route;
  int idx = c.attempts < Conn::kMaxAttempts
                ? pick(route, c.client_hash, std::span<const std::uint8_t>(c.tried, c.attempts))
                : kNoUpstream;
  if (idx == kNoUpstream) {
    // Every member is down (or has refused us): reset at once rather than let
    // the client wait for a timeout.
    ThreadCounters::add(listener(c).refused, 1);
    close_conn(ci, c.attempts == 0 ? End::NoMember : End::ConnectFailed);
    return;
  }
  c.tried[c.attempts++] = static_cast<std::uint8_t>(idx);
  c.upstream = &route.upstreams[idx];
  // Counted from the pick, not the connect: a drain's wait must see a
  // connection still connecting to its member.
  c.counted = true;
  ThreadCounters::add(member(c).active, 1);
  // The accepted client is served: its upstream socket may dip into the reserve.
  loop_.fds.force();
  c.up = ::socket(c.upstream->addr.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (c.up < 0) {
    loop_.fds.give();
    log_ratelimited("cannot create upstream socket: %s", std::strerror(errno));
    close_conn(ci, End::Error);
    return;
  }
  if (loop_.sockopt_through_ring) {
    // Both options go before the connect, in its chain, as submissions
    // rather than system calls. TCP_DEFER_ACCEPT on a connecting socket
    // holds the handshake's last ACK back for the first bytes sent upstream
    // (the client's request, mostly there already): one segment fewer, and
    // the member accepts the connection and reads the request in one wake-up.
    for (int opt : {TCP_NODELAY, TCP_DEFER_ACCEPT}) {
      auto* o = loop_.sqe();
      loop_.prep_setsockopt(o, c.up, IPPROTO_TCP, opt, &kOne);
      io_uring_sqe_set_data64(o, pack(Op::SockOpt, ci));
      o->flags |= IOSQE_IO_LINK;
      ++c.pending;
    }
    c.ack_held = true;
  } else {
    set_nodelay(c.up);
  }
  auto* s = loop_.sqe();
  io_uring_prep_connect(s, c.up, reinterpret_cast<const sockaddr*>(&c.upstream->addr), c.upstream->addr_len);
  io_uring_sqe_set_data64(s, pack(Op::Connect, ci));
  s->flags |= IOSQE_IO_LINK;
  auto* t = loop_.sqe();
  io_uring_prep_link_timeout(t, &connect_ts_, 0);
  io_uring_sqe_set_data64(t, pack(Op::ConnectTimeout, ci));
  c.pending += 2;
}

void TcpProxy::on_connect(std::uint32_t ci, int res) {
  Conn& c = conns_[ci];
  --c.pending;
  if (c.state == Conn::State::Closing) return maybe_finish_close(ci);
  if (res < 0) {
    // Refused, unreachable, or cancelled by the link timeout: this member
    // costs the client nothing, the next one is tried.
    ThreadCounters::add(member(c).connect_failures, 1);
    ThreadCounters::sub(member(c).active, 1);
    c.counted = false;
    ::close(c.up);
    loop_.fds.give();
    c.up = -1;
    connect_next(ci);
    return;
  }
  if (!send_proxy_header(ci)) return close_conn(ci, End::MemberReset);
  start_relay(ci);
}

// The client has sent nothing yet (a protocol whose server speaks first, or a
// slow client): the held ACK goes now, since the member cannot accept the
// connection before it has it. TCP_QUICKACK sends an ACK that is due.
void TcpProxy::ack_now(std::uint32_t ci) {
  Conn& c = conns_[ci];
  c.ack_held = false;
  auto* o = loop_.sqe();
  loop_.prep_setsockopt(o, c.up, IPPROTO_TCP, TCP_QUICKACK, &kOne);
  io_uring_sqe_set_data64(o, pack(Op::SockOpt, ci));
  ++c.pending;
}

// Before anything else on the connection, so that it comes before the
// client's first byte and also reaches a server that speaks first. A new
// connection's send buffer is empty: the header (at most 108 bytes) goes
// whole at once or the connection has already failed.
bool TcpProxy::send_proxy_header(std::uint32_t ci) {
  Conn& c = conns_[ci];
  char header[kProxyHeaderMax];
  const std::size_t n = proxy_header(c.route->proxy_protocol, c.client, c.local, header);
  if (n == 0) return true;
  c.ack_held = false;  // the header carries it
  return ::send(c.up, header, n, MSG_NOSIGNAL | MSG_DONTWAIT) == static_cast<ssize_t>(n);
}

// Bytes a half delivered to its destination.
void TcpProxy::moved(Conn& c, unsigned d, std::uint64_t n) {
  ThreadCounters::add(d == 0 ? member(c).bytes_in : member(c).bytes_out, n);
  c.bytes[d] += n;
  c.last_active_ms = loop_.now_ms;
}

void TcpProxy::start_relay(std::uint32_t ci) {
  Conn& c = conns_[ci];
  c.state = Conn::State::Relaying;
  if (!c.counted) ThreadCounters::add(member(c).active, 1);  // adopt() picked nobody
  c.counted = true;
  ThreadCounters::add(member(c).total, 1);
  c.last_active_ms = loop_.now_ms;
  // The client has usually sent its request already; the upstream speaks
  // once it has it.
  for (unsigned d : {0u, 1u}) {
    c.half[d].state = HalfState::Relaying;
    arm_recv(ci, d, d == 1);
  }
}

// poll_first: when the last receive emptied the socket, wait for data before
// trying (IORING_RECVSEND_POLL_FIRST) rather than fail a read first.
void TcpProxy::arm_recv(std::uint32_t ci, unsigned d, bool poll_first) {
  Conn& c = conns_[ci];
  auto* s = loop_.sqe();
  // While the upstream ACK is held, the client's first receive must not
  // wait for bytes that may never come before the member speaks: it answers
  // -EAGAIN at once instead, and the ACK goes.
  io_uring_prep_recv(s, c.src(d), nullptr, loop_.tcp_bufs->size(), d == 0 && c.ack_held ? MSG_DONTWAIT : 0);
  s->flags |= IOSQE_BUFFER_SELECT;
  s->buf_group = loop_.tcp_bufs->group();
  if (poll_first) s->ioprio |= IORING_RECVSEND_POLL_FIRST;
  io_uring_sqe_set_data64(s, pack(Op::Recv, ci, d));
  c.half[d].recv = RecvState::Armed;
  ++c.pending;
}

void TcpProxy::on_recv(std::uint32_t ci, unsigned d, const io_uring_cqe* cqe) {
  Conn& c = conns_[ci];
  Half& h = c.half[d];
  const int res = cqe->res;
  --c.pending;
  h.recv = RecvState::Off;
  const bool has_buf = cqe->flags & IORING_CQE_F_BUFFER;
  const auto bid = static_cast<std::uint16_t>(cqe->flags >> IORING_CQE_BUFFER_SHIFT);
  auto& bufs = *loop_.tcp_bufs;
  if (c.state == Conn::State::Closing) {
    if (has_buf) bufs.recycle(bid);
    return maybe_finish_close(ci);
  }
  if (res > 0 && has_buf) {
    const auto n = static_cast<std::uint32_t>(res);
    c.last_active_ms = loop_.now_ms;
    if (d == 0) c.ack_held = false;  // the send upstream carries it
    h.bulk = n == bufs.size();
    // TCP's receive-queue hint counts a pending FIN too: a response followed
    // by its close is read at once instead of through a poll.
    h.more = cqe->flags & IORING_CQE_F_SOCK_NONEMPTY;
    h.buf = bid;
    h.off = 0;
    h.len = n;
    return send(ci, d);
  }
  if (has_buf) bufs.recycle(bid);
  // A FIN goes out with the held-back bytes (pass_fin); anything else sends them now.
  if (res != 0) uncork(ci, d);
  if (d == 0 && c.ack_held) {
    // The client's FIN carries the ACK upstream; nothing to read yet, or no
    // buffer to read into, sends it now.
    if (res == 0 || (res < 0 && res != -EAGAIN && res != -ENOBUFS && res != -EINTR))
      c.ack_held = false;
    else
      ack_now(ci);
  }
  if (res == 0) {
    h.fin_seen = true;
  } else if (res == -ENOBUFS) {
    // Every pool buffer is in flight: wait for one to come back rather than spin.
    h.recv = RecvState::Starved;
    starved_.push_back({ci, d});
    return;
  } else if (res != -EAGAIN && res != -EINTR) {
    // A reset or error on either side ends both: pass a reset on to the client.
    return close_conn(ci, failed_source(d));
  }
  advance(ci, d);
}

// MSG_DONTWAIT: the send completes at once, whole, short, or -EAGAIN, and
// never sits in the kernel holding a pool buffer for a reader that may never
// read (io_uring would otherwise park it on a poll).
//
// MSG_MORE when the source holds more already (a server's FIN behind its
// response, most often): the kernel keeps the last partial segment back, and
// the next receive's data or FIN, which is there, goes out in it. A response
// and its FIN then cost the client one segment, not two, and one ACK. A bulk
// half never holds back.
void TcpProxy::send(std::uint32_t ci, unsigned d) {
  Conn& c = conns_[ci];
  Half& h = c.half[d];
  auto* s = loop_.sqe();
  h.corked = h.more && !h.bulk;
  io_uring_prep_send(s, c.dst(d), loop_.tcp_bufs->data(static_cast<std::uint16_t>(h.buf)) + h.off, h.len - h.off,
                     MSG_NOSIGNAL | MSG_DONTWAIT | (h.corked ? MSG_MORE : 0));
  io_uring_sqe_set_data64(s, pack(Op::Send, ci, d));
  ++c.pending;
}

void TcpProxy::on_send(std::uint32_t ci, unsigned d, int res) {
  Conn& c = conns_[ci];
  Half& h = c.half[d];
  --c.pending;
  if (c.state == Conn::State::Closing) return maybe_finish_close(ci);
  if (res < 0 && res != -EAGAIN) return close_conn(ci, failed_destination(d));
  if (res > 0) {
    moved(c, d, static_cast<std::uint64_t>(res));
    h.off += static_cast<std::uint32_t>(res);
  }
  // Short or -EAGAIN: the reader's socket buffer is full.
  if (h.off < h.len) return block(ci, d);
  loop_.tcp_bufs->recycle(static_cast<std::uint16_t>(h.buf));
  h.buf = -1;
  advance(ci, d);
  feed_starved();
}

// What `more` promised did not come as data or a FIN (the receive found the
// socket empty or no pool buffer was free): the held-back tail goes now.
// Setting TCP_NODELAY again pushes what is queued.
void TcpProxy::uncork(std::uint32_t ci, unsigned d) {
  Conn& c = conns_[ci];
  Half& h = c.half[d];
  if (!h.corked) return;
  h.corked = false;
  set_nodelay(c.dst(d));
}

// The reader takes no more. The rest of the buffer leaves the shared pool for
// the half's spill, and the half reads nothing until the destination has
// taken it.
void TcpProxy::block(std::uint32_t ci, unsigned d) {
  Conn& c = conns_[ci];
  Half& h = c.half[d];
  auto& bufs = *loop_.tcp_bufs;
  h.spill.assign(bufs.data(static_cast<std::uint16_t>(h.buf)) + h.off, h.len - h.off);
  bufs.recycle(static_cast<std::uint16_t>(h.buf));
  h.buf = -1;
  h.spill_off = 0;
  h.corked = false;  // the spill's last send, a plain one, pushes everything
  h.state = HalfState::Blocked;
  ThreadCounters::add(listener(c).stalled, 1);
  arm_poll(ci, d, c.dst(d), POLLOUT);
  feed_starved();
}

void TcpProxy::drain_spill(std::uint32_t ci, unsigned d) {
  Conn& c = conns_[ci];
  Half& h = c.half[d];
  const ssize_t n = ::send(c.dst(d), h.spill.data() + h.spill_off, h.spill.size() - h.spill_off,
                           MSG_DONTWAIT | MSG_NOSIGNAL);
  if (n < 0) {
    if (errno == EAGAIN || errno == EINTR) return arm_poll(ci, d, c.dst(d), POLLOUT);
    return close_conn(ci, failed_destination(d));
  }
  moved(c, d, static_cast<std::uint64_t>(n));
  h.spill_off += static_cast<std::size_t>(n);
  if (h.spill_off < h.spill.size()) return arm_poll(ci, d, c.dst(d), POLLOUT);
  std::string().swap(h.spill);  // give the memory back, not just the bytes
  h.spill_off = 0;
  h.state = HalfState::Relaying;
  advance(ci, d);
}

void TcpProxy::advance(std::uint32_t ci, unsigned d) {
  Conn& c = conns_[ci];
  Half& h = c.half[d];
  if (c.state != Conn::State::Relaying || h.state != HalfState::Relaying || h.buf >= 0) return;
  // Armed or starved: its own completion comes back here.
  if (h.recv != RecvState::Off) return;
  if (h.fin_seen) return pass_fin(ci, d);
  const bool bulk = h.bulk;
  if (bulk) {
    h.bulk = false;
    if (start_splice(ci, d)) return;
  }
  arm_recv(ci, d, !bulk && !h.more);
}

// The source finished and everything it sent is on its way: pass the FIN on
// and keep the other direction going.
void TcpProxy::pass_fin(std::uint32_t ci, unsigned d) {
  Conn& c = conns_[ci];
  c.half[d].state = HalfState::Done;
  // Both ways done: closing the sockets, with nothing left unread, sends this
  // FIN too, one syscall fewer per connection.
  if (c.half[0].state == HalfState::Done && c.half[1].state == HalfState::Done) return close_conn(ci, End::Closed);
  // A plain syscall, not IORING_OP_SHUTDOWN: io_uring always hands that op to
  // an io-wq thread, and waking it costs more than the syscall (measured: a
  // third of the engine's CPU went to io-wq threads at 11k connections/s).
  ::shutdown(c.dst(d), SHUT_WR);
}

// A buffer came back: give it to a receive that found none.
void TcpProxy::feed_starved() {
  while (!starved_.empty()) {
    auto [ci, d] = starved_.back();
    starved_.pop_back();
    Conn& c = conns_[ci];
    Half& h = c.half[d];
    if (h.recv != RecvState::Starved) continue;
    h.recv = RecvState::Off;
    if (c.state != Conn::State::Relaying || h.state != HalfState::Relaying) continue;
    advance(ci, d);
    return;
  }
}

void TcpProxy::set_nonblocking(Conn& c) {
  if (c.nonblocking) return;
  // A splice must never block the worker; receives and sends through the
  // ring work the same on non-blocking sockets.
  for (int fd : {c.down, c.up}) ::fcntl(fd, F_SETFL, ::fcntl(fd, F_GETFL) | O_NONBLOCK);
  c.nonblocking = true;
}

void TcpProxy::arm_poll(std::uint32_t ci, unsigned d, int fd, unsigned mask) {
  Conn& c = conns_[ci];
  auto* s = loop_.sqe();
  io_uring_prep_poll_add(s, fd, mask);
  io_uring_sqe_set_data64(s, pack(Op::Poll, ci, d));
  ++c.pending;
}

void TcpProxy::on_poll(std::uint32_t ci, unsigned d, int res) {
  Conn& c = conns_[ci];
  --c.pending;
  if (c.state == Conn::State::Closing) return maybe_finish_close(ci);
  if (res < 0) return close_conn(ci, End::Error);
  // Errors and hang-ups show up as the send's or splice's own result.
  if (c.half[d].state == HalfState::Blocked)
    drain_spill(ci, d);
  else if (c.half[d].state == HalfState::Splicing)
    splice_pump(ci, d);
}

void TcpProxy::on_completion(Op op, std::uint32_t ci, unsigned d, const io_uring_cqe* cqe) {
  switch (op) {
    case Op::Connect: return on_connect(ci, cqe->res);
    case Op::ConnectTimeout:  // the connect's own completion decides what happens
    case Op::SockOpt:         // a failure cancels the connect linked behind it, which decides
    case Op::CancelConn:
      --conns_[ci].pending;
      return maybe_finish_close(ci);
    case Op::Recv: return on_recv(ci, d, cqe);
    case Op::Send: return on_send(ci, d, cqe->res);
    case Op::Poll: return on_poll(ci, d, cqe->res);
    default: return;
  }
}

void TcpProxy::on_tick() {
  if (loop_.now_ms < next_idle_scan_ms_) return;
  next_idle_scan_ms_ = loop_.now_ms + 1000;
  // Idle timeouts are minutes long; a scan a second is precise enough and
  // costs nothing per byte moved.
  for (std::uint32_t ci = 0; ci < conns_.size(); ++ci) {
    auto& c = conns_[ci];
    if (c.state == Conn::State::Relaying && loop_.now_ms - c.last_active_ms > c.upstream->idle_timeout_ms)
      close_conn(ci, End::IdleTimeout);
  }
}

void TcpProxy::close_conn(std::uint32_t ci, End end) {
  Conn& c = conns_[ci];
  if (c.state == Conn::State::Closing || c.state == Conn::State::Free) return;
  c.state = Conn::State::Closing;
  c.end = end;
  if (end != End::Closed && end != End::IdleTimeout && c.down >= 0) {
    linger l{1, 0};
    ::setsockopt(c.down, SOL_SOCKET, SO_LINGER, &l, sizeof l);
  }
  if (c.pending == 0) return finish_close(ci);
  // Operations still in flight hold the buffers and the slot: cancel them all
  // and free the connection when the last completion has come.
  for (int fd : {c.down, c.up}) {
    if (fd < 0) continue;
    auto* s = loop_.sqe();
    io_uring_prep_cancel_fd(s, fd, IORING_ASYNC_CANCEL_ALL);
    io_uring_sqe_set_data64(s, pack(Op::CancelConn, ci));
    ++c.pending;
  }
}

void TcpProxy::maybe_finish_close(std::uint32_t ci) {
  Conn& c = conns_[ci];
  if (c.state == Conn::State::Closing && c.pending == 0) finish_close(ci);
}

void TcpProxy::finish_close(std::uint32_t ci) {
  Conn& c = conns_[ci];
  for (Half& h : c.half) {
    if (h.buf >= 0) loop_.tcp_bufs->recycle(static_cast<std::uint16_t>(h.buf));
    if (h.pipe >= 0) loop_.pipes.give_back(h.pipe, h.piped == 0);
  }
  // Closing through the ring batches it with the next submission; nothing
  // waits for the result.
  for (int fd : {c.down, c.up}) {
    if (fd < 0) continue;
    auto* s = loop_.sqe();
    io_uring_prep_close(s, fd);
    io_uring_sqe_set_data64(s, pack(Op::Closed, 0));
    loop_.fds.give();
  }
  if (c.counted) ThreadCounters::sub(member(c).active, 1);
  if (access_log_)
    access_log_->write(loop_.opt.id, {"tcp", &c.client, c.route, c.counted ? c.upstream : nullptr, c.bytes[0],
                                      c.bytes[1], loop_.now_ms - c.started_ms, c.end});
  loop_.gens.release(c.gen);
  c = Conn{};
  free_conns_.push_back(ci);
  --live_;
  feed_starved();
}

}  // namespace azlb::engine
