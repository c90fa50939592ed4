// Proxied TCP connections: accept -> ACL -> pick -> connect (retry on another
// member) -> relay both ways -> half-close -> close.
//
// Each direction is a Half, indexed by direction (0: client to upstream, 1:
// upstream to client). A half in Relaying receives one pool buffer, sends it
// on at once without waiting (MSG_DONTWAIT), and receives again only once it
// is sent: a half never holds more than one buffer. When the reader takes no
// more, the unsent rest moves to the half's own spill (at most one buffer's
// worth), the pool buffer goes back, and the half reads nothing until the
// reader has drained the spill (Blocked). So no number of readers that never
// read can starve the connections that do.
//
// A receive is single-shot on purpose: a multishot receive takes up to 32
// buffers in one wake-up before a cancel can land, and a stalled reader
// would then hold all of them.
#pragma once

#include <cstdint>
#include <deque>
#include <string>
#include <vector>

#include "engine/proxy/access_log.hpp"
#include "engine/proxy/loop.hpp"

namespace azlb::engine {

enum class HalfState : std::uint8_t {
  Idle,      // the connection is still connecting
  Relaying,  // receiving into pool buffers, sending each on
  Blocked,   // the destination refused bytes: they wait in the spill; reading is stopped
  Splicing,  // a bulk transfer: socket -> pipe -> socket, no copy
  Done,      // the source's FIN is passed on
};

// The half's receive, an io_uring request with a life of its own.
enum class RecvState : std::uint8_t {
  Off,      // not armed
  Armed,
  Starved,  // ended for want of a free pool buffer; re-armed when one comes back
};

const char* to_string(HalfState);

// Who failed when the read from (or the write to) half `d`'s socket failed.
inline End failed_source(unsigned d) { return d == 0 ? End::ClientReset : End::MemberReset; }
inline End failed_destination(unsigned d) { return d == 0 ? End::MemberReset : End::ClientReset; }

struct Half {
  HalfState state = HalfState::Idle;
  RecvState recv = RecvState::Off;
  bool fin_seen = false;  // the source finished: pass its FIN once everything is sent
  bool bulk = false;      // a receive filled a whole buffer: splice once the half is drained
  bool more = false;      // the last receive left data or a FIN in the socket: receive again at once
  bool corked = false;    // the last send held its tail back (MSG_MORE) for what `more` promised
  // The pool buffer being sent (its send is in flight).
  std::int32_t buf = -1;
  std::uint32_t off = 0, len = 0;
  // Blocked: bytes the destination refused, outside the pool.
  std::string spill;
  std::size_t spill_off = 0;
  // Splicing: a pipe lent by the PipePool, and the bytes in it.
  std::int16_t pipe = -1;
  std::uint32_t piped = 0;
};

struct Conn {
  enum class State : std::uint8_t { Free, Connecting, Relaying, Closing } state = State::Free;
  int down = -1, up = -1;     // client socket, upstream socket
  std::uint16_t pending = 0;  // submitted operations whose final completion has not come
  std::uint8_t attempts = 0;
  static constexpr std::uint8_t kMaxAttempts = 4;  // the first try and 3 retries
  std::uint8_t tried[kMaxAttempts]{};
  bool counted = false;       // counted as active on its upstream
  bool nonblocking = false;   // sockets switched to O_NONBLOCK (splice, spill)
  // The upstream handshake's last ACK waits for the first bytes sent upstream
  // (TCP_DEFER_ACCEPT on a connecting socket), or for ack_now().
  bool ack_held = false;
  Half half[2];               // [0] client -> upstream, [1] upstream -> client
  std::uint64_t client_hash = 0;
  std::int64_t started_ms = 0, last_active_ms = 0;
  std::uint64_t bytes[2]{};   // moved each way, for the access log
  End end = End::Closed;      // how it ended, once Closing
  // Filled only when something needs them (ACL, affinity, PROXY protocol,
  // access log): the client's address and the address it reached.
  sockaddr_storage client{}, local{};
  const Route* route = nullptr;
  const Upstream* upstream = nullptr;
  Generation* gen = nullptr;

  int src(unsigned d) const { return d == 0 ? down : up; }
  int dst(unsigned d) const { return d == 0 ? up : down; }
};

class TcpProxy {
 public:
  // `access_log` may be null (no access log).
  TcpProxy(Loop&, std::uint32_t connect_timeout_ms, AccessLog* access_log = nullptr);
  ~TcpProxy();

  // A client accepted on `route` (its descriptor already counted in the budget).
  void on_accepted(int fd, const Route&);
  // A connection whose upstream is already connected (tests of the relay).
  std::uint32_t adopt(int down, int up, const Route&, const Upstream&);
  void on_completion(Op, std::uint32_t ci, unsigned dir, const io_uring_cqe*);
  // Idle timeouts; a scan a second.
  void on_tick();
  // Connections not yet closed; a drain waits for them to end by themselves.
  std::uint64_t live() const { return live_; }
  const Conn& conn(std::uint32_t ci) const { return conns_[ci]; }
  // Pool buffers the connections hold right now (the relay's unit tests check it).
  std::uint32_t buffers_held() const;

 private:
  std::uint32_t alloc_conn();
  void connect_next(std::uint32_t ci);
  void on_connect(std::uint32_t ci, int res);
  bool send_proxy_header(std::uint32_t ci);
  void ack_now(std::uint32_t ci);
  void start_relay(std::uint32_t ci);
  void moved(Conn&, unsigned d, std::uint64_t n);

  // The relay of one half.
  void arm_recv(std::uint32_t ci, unsigned d, bool poll_first);
  void on_recv(std::uint32_t ci, unsigned d, const io_uring_cqe*);
  void send(std::uint32_t ci, unsigned d);
  void on_send(std::uint32_t ci, unsigned d, int res);
  void uncork(std::uint32_t ci, unsigned d);
  void block(std::uint32_t ci, unsigned d);
  void drain_spill(std::uint32_t ci, unsigned d);
  // Nothing is in flight to the destination: receive, splice or pass the FIN.
  void advance(std::uint32_t ci, unsigned d);
  void pass_fin(std::uint32_t ci, unsigned d);
  void feed_starved();
  void set_nonblocking(Conn&);
  void arm_poll(std::uint32_t ci, unsigned d, int fd, unsigned mask);
  void on_poll(std::uint32_t ci, unsigned d, int res);

  // tcp_splice.cpp
  bool start_splice(std::uint32_t ci, unsigned d);
  void splice_pump(std::uint32_t ci, unsigned d);

  // Any end but a clean close or an idle timeout resets the client.
  void close_conn(std::uint32_t ci, End);
  void maybe_finish_close(std::uint32_t ci);
  void finish_close(std::uint32_t ci);

  ThreadCounters& member(const Conn& c) { return c.upstream->state->per_thread[loop_.opt.id]; }
  ListenerCounters& listener(const Conn& c) { return c.route->counters->per_thread[loop_.opt.id]; }

  Loop& loop_;
  AccessLog* access_log_;
  __kernel_timespec connect_ts_{};
  std::deque<Conn> conns_;  // stable addresses; grows, never shrinks
  std::vector<std::uint32_t> free_conns_;
  std::vector<std::pair<std::uint32_t, unsigned>> starved_;  // (conn, direction) waiting for a buffer
  std::uint64_t live_ = 0;
  std::int64_t next_idle_scan_ms_ = 0;
};

}  // namespace azlb::engine
