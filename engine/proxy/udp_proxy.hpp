// UDP: a flow per client address and listener. The first datagram of a
// client passes the ACL, picks a member and opens a socket connected to it;
// replies on that socket go back to the client from the listener, so they
// come from the VIP. A flow ends after the endpoint's idle timeout, with its
// listener, or when its member goes down or leaves (its next datagram picks
// again). The table is bounded per worker.
#pragma once

#include <sys/socket.h>

#include <array>
#include <cstdint>
#include <deque>
#include <unordered_map>
#include <vector>

#include "engine/proxy/access_log.hpp"
#include "engine/proxy/listeners.hpp"
#include "engine/proxy/loop.hpp"

namespace azlb::engine {

struct Flow {
  int fd = -1;                    // connected to the upstream
  std::uint32_t slot = 0;         // the listener the client talks to, for replies
  std::uint64_t listener_id = 0;  // and its identity, never reused
  sockaddr_storage client{};
  socklen_t client_len = 0;
  std::array<std::uint8_t, 16> local{};  // the address the client wrote to, on a wildcard VIP
  bool has_local = false;
  bool closing = false;
  std::uint16_t pending = 0;
  const Route* route = nullptr;
  const Upstream* upstream = nullptr;
  Generation* gen = nullptr;
  std::int64_t started_ms = 0, last_active_ms = 0;
  std::uint64_t bytes[2]{};  // client to member, member to client
  End end = End::IdleTimeout;
};

// A flow is named by the listener's identity and the client's address (and,
// on a wildcard VIP, the local address the client wrote to).
struct FlowKey {
  std::uint64_t listener_id = 0;
  std::uint16_t port = 0;
  std::uint16_t family = 0;
  std::array<std::uint8_t, 16> addr{};
  std::array<std::uint8_t, 16> local{};
  bool operator==(const FlowKey&) const = default;
};
struct FlowKeyHash {
  std::size_t operator()(const FlowKey& k) const;
};
FlowKey flow_key(std::uint64_t listener_id, const sockaddr_storage& client);

class UdpProxy {
 public:
  // `access_log` may be null (no access log).
  UdpProxy(Loop&, Listeners&, std::uint32_t max_flows, AccessLog* access_log = nullptr);
  ~UdpProxy();

  // A datagram on a listener (Listeners::on_completion said it is taken).
  void on_datagram(std::uint32_t slot, const io_uring_cqe*);
  void on_completion(Op, std::uint32_t fi, const io_uring_cqe*);
  void close_flows_of(std::uint64_t listener_id);
  void close_all();
  void on_tick();
  std::uint64_t live() const { return live_; }

 private:
  // The flow's member is still in the route in force and may take traffic.
  bool still_usable(Flow&, const Route&);
  std::uint32_t open_flow(std::uint32_t slot, const Route&, const sockaddr_storage&, socklen_t, const FlowKey&,
                          bool has_local);
  void arm_reply(std::uint32_t fi);
  void on_reply(std::uint32_t fi, const io_uring_cqe*);
  void close_flow(std::uint32_t fi, End);
  void maybe_free(std::uint32_t fi);

  Loop& loop_;
  Listeners& listeners_;
  const std::uint32_t max_flows_;
  AccessLog* access_log_;
  std::deque<Flow> flows_;
  std::vector<std::uint32_t> free_;
  // A new flow allocates a node here; datagrams of known flows allocate nothing.
  std::unordered_map<FlowKey, std::uint32_t, FlowKeyHash> index_;
  std::uint32_t live_ = 0;
  std::int64_t next_idle_scan_ms_ = 0;
};

}  // namespace azlb::engine
