// One worker thread: one io_uring, its own share of every listening address
// (SO_REUSEPORT), its own connections, flows and buffers. Nothing on its hot
// path is shared with another worker; the config it reads is immutable and
// swapped whole between two batches of completions.
#pragma once

#include <liburing.h>

#include <array>
#include <atomic>
#include <deque>
#include <memory>
#include <mutex>
#include <thread>
#include <unordered_map>
#include <vector>

#include "engine/buffer_ring.hpp"
#include "engine/config.hpp"
#include "engine/picker.hpp"
#include "engine/pipe_pool.hpp"

namespace azlb::engine {

// What a completion is for. Packed with an index into user_data:
// the top byte is the Op, the low 32 bits name the connection, flow or listener.
enum class Op : std::uint8_t {
  Accept,          // multishot accept on a TCP listener
  Connect,         // upstream connect
  ConnectTimeout,  // the link timeout guarding it
  RecvDown,        // bytes from the client
  RecvUp,          // bytes from the upstream
  SendDown,        // bytes to the client
  SendUp,          // bytes to the upstream
  CancelConn,      // cancelling a closing connection's operations
  PollD2U,         // a spliced half waits: client readable or upstream writable
  PollU2D,         // a spliced half waits: upstream readable or client writable
  Closed,          // a socket closed through the ring; nothing to do
  Throttle,        // cancelling a receive whose half has enough queued
  UdpListen,       // multishot recvmsg on a UDP listener
  UdpReply,        // multishot recv on a flow's upstream socket
  CancelFlow,
  CancelListener,
  Wake,            // the control thread posted something
  Tick,            // periodic timer: idle timeouts, accept retry, drain
};

inline std::uint64_t pack(Op op, std::uint32_t index) { return (std::uint64_t(op) << 56) | index; }
inline Op op_of(std::uint64_t ud) { return static_cast<Op>(ud >> 56); }
inline std::uint32_t index_of(std::uint64_t ud) { return static_cast<std::uint32_t>(ud); }

// A config in use: kept alive while any connection or flow still routes by it.
struct Generation {
  std::shared_ptr<const Config> config;
  std::uint32_t users = 0;
};

inline constexpr std::uint8_t kMaxConnectAttempts = 4;  // the first try and 3 retries

// One direction of a proxied TCP connection: bytes received on one socket
// and sent on the other. A multishot receive stays armed while the half
// relays; what arrives while a send is in flight waits in a short queue, and
// a queue that grows cancels the receive until it drains (back-pressure).
struct Half {
  std::int32_t buf = -1;       // provided buffer being sent
  std::uint32_t off = 0, len = 0;
  std::int32_t q_head = -1, q_tail = -1;  // received buffers waiting their turn, oldest first
  std::uint8_t queued = 0;
  bool receiving = false;      // its multishot receive is armed
  bool throttled = false;      // that receive is being cancelled
  bool bulk = false;           // a receive filled a whole buffer: splice once drained
  bool fin_pending = false;    // the sender finished: pass the FIN on once drained
  bool eof = false;            // the FIN is passed on; the receiver's write side is shut
  bool starved = false;        // waiting for a free buffer
  // Bulk transfers move socket to pipe to socket without a copy (splice).
  std::int16_t pipe = -1;      // lent by the worker's PipePool while spliced
  std::uint32_t piped = 0;     // bytes in the pipe, not yet sent on
};

struct Conn {
  enum class State : std::uint8_t { Free, Connecting, Relaying, Closing } state = State::Free;
  int down = -1, up = -1;      // client socket, upstream socket
  std::uint16_t pending = 0;   // submitted operations whose final completion has not come
  std::uint8_t attempts = 0;
  std::uint8_t tried[kMaxConnectAttempts]{};
  bool counted = false;        // counted as active on its upstream
  bool nonblocking = false;    // sockets switched to O_NONBLOCK for splice
  Half d2u, u2d;               // downstream->upstream, upstream->downstream
  std::uint64_t client_hash = 0;
  std::int64_t last_active_ms = 0;
  const Route* route = nullptr;
  const Upstream* upstream = nullptr;
  Generation* gen = nullptr;
};

struct ListenerSlot {
  int fd = -1;
  const Route* route = nullptr;
  bool armed = false;          // its multishot request is live
  bool removed = false;        // gone from the config; waiting for the cancel
  bool retry = false;          // accept stopped on a resource limit; re-arm at the next tick
  // UDP listeners: recvmsg_multishot reads the header layout from here.
  msghdr msg{};
};

struct Flow {
  int fd = -1;                 // connected to the upstream
  std::uint32_t listener = 0;  // slot the client talks to
  sockaddr_storage client{};
  socklen_t client_len = 0;
  std::array<std::uint8_t, 16> local{};  // the address the client wrote to, on a wildcard VIP
  bool has_local = false;
  const Upstream* upstream = nullptr;
  Generation* gen = nullptr;
  std::int64_t last_active_ms = 0;
  std::uint16_t pending = 0;
  bool closing = false;
};

// A UDP flow is named by the listener the client wrote to and the client's address.
struct FlowKey {
  std::uint32_t listener = 0;
  std::uint16_t port = 0;
  std::uint16_t family = 0;
  std::array<std::uint8_t, 16> addr{};
  std::array<std::uint8_t, 16> local{};  // on a wildcard VIP, each local address is its own flow
  bool operator==(const FlowKey&) const = default;
};
struct FlowKeyHash {
  std::size_t operator()(const FlowKey& k) const;
};
FlowKey flow_key(std::uint32_t listener, const sockaddr_storage& client);

struct WorkerOptions {
  unsigned id = 0;
  // Few, large buffers: a small message touches one page of its buffer, so
  // many quiet connections cost little memory, while bulk transfers move 64 KiB
  // per receive. A receive that finds none free waits for one (ENOBUFS).
  std::uint32_t tcp_buffers = 256, tcp_buffer_size = 65536;
  std::uint32_t udp_buffers = 256, udp_buffer_size = 65536;
  std::uint32_t max_flows = 8192;
  // A receive that fills a whole buffer marks a bulk transfer: that half
  // moves on to a pipe, if one of these is free.
  std::uint32_t max_pipes = 64;
  int pipe_bytes = 1024 * 1024;
  std::uint32_t connect_timeout_ms = 3000;
};

class Worker {
 public:
  explicit Worker(WorkerOptions);
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

 private:
  void run();
  void handle(io_uring_cqe*);
  io_uring_sqe* sqe();
  void arm_wake();
  void arm_tick();
  void on_tick();
  void apply(std::shared_ptr<const Config>);
  void release(Generation*);
  void arm_listener(std::uint32_t slot);
  void on_listener_cancelled(std::uint32_t slot);
  void on_listener_ended(std::uint32_t slot, int res);

  // tcp_proxy.cpp: the connection's state machine.
  void on_accept(std::uint32_t slot, io_uring_cqe*);
  void connect_next(std::uint32_t ci);
  void on_connect(std::uint32_t ci, int res);
  void arm_recv(std::uint32_t ci, bool from_client);
  void on_recv(std::uint32_t ci, bool from_client, io_uring_cqe*);
  void throttle(std::uint32_t ci, bool from_client);
  void send_half(std::uint32_t ci, bool to_upstream);
  void on_send(std::uint32_t ci, bool to_upstream, int res);
  // Nothing left to send on this half: receive again, splice, or pass the FIN.
  void resume(std::uint32_t ci, bool from_client);
  void enqueue(Half&, std::uint16_t buf, std::uint32_t len);
  bool dequeue(Half&);
  void recycle_all(Half&);
  void close_conn(std::uint32_t ci, bool reset_client);
  // Frees a closing connection once its last operation has completed.
  void maybe_finish_close(std::uint32_t ci);
  void finish_close(std::uint32_t ci);
  void feed_starved();
  void pass_fin(std::uint32_t ci, bool from_client);
  std::uint32_t alloc_conn();

  // splice_proxy.cpp: bulk halves, socket to pipe to socket.
  bool start_splice(std::uint32_t ci, bool from_client);
  void splice_pump(std::uint32_t ci, bool from_client);
  void arm_poll(std::uint32_t ci, bool from_client, int fd, unsigned mask);
  void on_poll(std::uint32_t ci, bool from_client, int res);

  // udp_proxy.cpp: flows.
  void arm_udp_listener(std::uint32_t slot);
  void on_udp_datagram(std::uint32_t slot, io_uring_cqe*);
  void on_udp_reply(std::uint32_t fi, io_uring_cqe*);
  void close_flow(std::uint32_t fi);
  void maybe_free_flow(std::uint32_t fi);

  Conn& conn(std::uint32_t i) { return conns_[i]; }

  WorkerOptions opt_;
  io_uring ring_{};
  std::unique_ptr<BufferRing> tcp_bufs_, udp_bufs_;
  // A half's queue, linked through its buffers' ids.
  std::vector<std::uint32_t> chunk_len_;
  std::vector<std::int32_t> chunk_next_;
  PipePool pipes_;
  int wake_fd_ = -1;
  std::uint64_t wake_value_ = 0;
  __kernel_timespec tick_ts_{0, 250'000'000};
  __kernel_timespec connect_ts_{};
  std::int64_t now_ms_ = 0;
  std::int64_t next_idle_scan_ms_ = 0;
  Rng rng_;

  std::deque<Conn> conns_;               // stable addresses; grows, never shrinks
  std::vector<std::uint32_t> free_conns_;
  std::vector<std::pair<std::uint32_t, bool>> starved_;  // (conn, from_client) waiting for a buffer
  std::deque<ListenerSlot> listeners_;   // stable: the kernel reads a UDP slot's msghdr
  std::vector<std::uint32_t> free_listeners_;
  std::deque<Flow> flows_;
  std::vector<std::uint32_t> free_flows_;
  // A new flow allocates a node here; datagrams of known flows allocate nothing.
  std::unordered_map<FlowKey, std::uint32_t, FlowKeyHash> flow_index_;
  std::uint32_t live_flows_ = 0;

  std::deque<Generation> gens_;
  Generation* current_ = nullptr;

  std::mutex mbox_mu_;
  std::shared_ptr<const Config> mbox_config_;
  bool mbox_drain_ = false;
  bool draining_ = false;
  std::atomic<std::uint64_t> applied_{0};
  std::atomic<std::uint64_t> live_{0};
  std::uint64_t live_conns_ = 0;
  std::thread thread_;
};

}  // namespace azlb::engine
