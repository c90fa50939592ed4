#include "engine/proxy/udp_proxy.hpp"

#include <netinet/in.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "engine/log.hpp"
#include "engine/picker.hpp"
#include "engine/proxy/sockets.hpp"
#include "model/acl.hpp"

namespace azlb::engine {

namespace {

// The destination of a datagram received on a wildcard VIP (IP_PKTINFO).
bool destination_of(io_uring_recvmsg_out* out, msghdr& msg, std::array<std::uint8_t, 16>& local) {
  for (auto* c = io_uring_recvmsg_cmsg_firsthdr(out, &msg); c; c = io_uring_recvmsg_cmsg_nexthdr(out, &msg, c)) {
    if (c->cmsg_level == IPPROTO_IP && c->cmsg_type == IP_PKTINFO) {
      in_pktinfo pi;
      std::memcpy(&pi, CMSG_DATA(c), sizeof pi);
      std::memcpy(local.data(), &pi.ipi_addr, 4);
      return true;
    }
    if (c->cmsg_level == IPPROTO_IPV6 && c->cmsg_type == IPV6_PKTINFO) {
      in6_pktinfo pi;
      std::memcpy(&pi, CMSG_DATA(c), sizeof pi);
      std::memcpy(local.data(), &pi.ipi6_addr, 16);
      return true;
    }
  }
  return false;
}

// Puts one control message, the only one, into msg's control buffer.
template <typename Info>
void set_cmsg(msghdr& msg, int level, int type, const Info& info) {
  auto* c = reinterpret_cast<cmsghdr*>(msg.msg_control);
  c->cmsg_level = level;
  c->cmsg_type = type;
  c->cmsg_len = CMSG_LEN(sizeof info);
  std::memcpy(CMSG_DATA(c), &info, sizeof info);
  msg.msg_controllen = CMSG_SPACE(sizeof info);
}

// A reply to the client; on a wildcard VIP, from the address it wrote to.
ssize_t reply(int fd, const void* data, std::size_t len, const Flow& f) {
  if (!f.has_local)
    return ::sendto(fd, data, len, MSG_DONTWAIT, reinterpret_cast<const sockaddr*>(&f.client), f.client_len);
  alignas(cmsghdr) char control[CMSG_SPACE(sizeof(in6_pktinfo))]{};
  iovec iov{const_cast<void*>(data), len};
  msghdr msg{};
  msg.msg_name = const_cast<sockaddr_storage*>(&f.client);
  msg.msg_namelen = f.client_len;
  msg.msg_iov = &iov;
  msg.msg_iovlen = 1;
  msg.msg_control = control;
  if (f.client.ss_family == AF_INET) {
    in_pktinfo pi{};
    std::memcpy(&pi.ipi_spec_dst, f.local.data(), 4);
    set_cmsg(msg, IPPROTO_IP, IP_PKTINFO, pi);
  } else {
    in6_pktinfo pi{};
    std::memcpy(&pi.ipi6_addr, f.local.data(), 16);
    set_cmsg(msg, IPPROTO_IPV6, IPV6_PKTINFO, pi);
  }
  return ::sendmsg(fd, &msg, MSG_DONTWAIT);
}

bool same_address(const Upstream& a, const Upstream& b) {
  return a.addr_len == b.addr_len && std::memcmp(&a.addr, &b.addr, a.addr_len) == 0;
}

}  // namespace

std::size_t FlowKeyHash::operator()(const FlowKey& k) const {
  std::uint64_t h = 1469598103934665603ull;
  auto feed = [&](const void* p, std::size_t n) {
    auto* b = static_cast<const unsigned char*>(p);
    for (std::size_t i = 0; i < n; ++i) h = (h ^ b[i]) * 1099511628211ull;
  };
  feed(&k.listener_id, sizeof k.listener_id);
  feed(&k.port, sizeof k.port);
  feed(k.addr.data(), k.family == AF_INET ? 4 : 16);
  feed(k.local.data(), k.family == AF_INET ? 4 : 16);
  return h;
}

FlowKey flow_key(std::uint64_t listener_id, const sockaddr_storage& client) {
  FlowKey k;
  k.listener_id = listener_id;
  k.family = client.ss_family;
  if (client.ss_family == AF_INET) {
    auto& sa = reinterpret_cast<const sockaddr_in&>(client);
    k.port = sa.sin_port;
    std::memcpy(k.addr.data(), &sa.sin_addr, 4);
  } else {
    auto& sa = reinterpret_cast<const sockaddr_in6&>(client);
    k.port = sa.sin6_port;
    std::memcpy(k.addr.data(), &sa.sin6_addr, 16);
  }
  return k;
}

UdpProxy::UdpProxy(Loop& loop, Listeners& listeners, std::uint32_t max_flows, AccessLog* access_log)
    : loop_(loop), listeners_(listeners), max_flows_(max_flows), access_log_(access_log) {
  index_.reserve(max_flows);
}

UdpProxy::~UdpProxy() {
  for (auto& f : flows_)
    if (f.fd >= 0) ::close(f.fd), loop_.fds.give_udp_flow();
}

void UdpProxy::on_datagram(std::uint32_t slot, const io_uring_cqe* cqe) {
  auto& l = listeners_.at(slot);
  if (!(cqe->flags & IORING_CQE_F_BUFFER)) return;
  auto& bufs = *loop_.udp_bufs;
  const auto bid = static_cast<std::uint16_t>(cqe->flags >> IORING_CQE_BUFFER_SHIFT);
  struct Recycle {
    BufferRing& b;
    std::uint16_t id;
    ~Recycle() { b.recycle(id); }
  } recycle{bufs, bid};
  auto* out = io_uring_recvmsg_validate(bufs.data(bid), cqe->res, &l.msg);
  if (!out || out->namelen > sizeof(sockaddr_storage)) return;
  const Route& route = *l.route;
  auto& lc = route.counters->per_thread[loop_.opt.id];
  if (out->flags & MSG_TRUNC) {
    // Larger than our buffer (it cannot be, for a datagram IP can carry):
    // forwarding the cut-short rest would hand the member a corrupt message.
    ThreadCounters::add(lc.truncated, 1);
    log_ratelimited("%s: a datagram arrived truncated and was dropped", route.key.to_string().c_str());
    return;
  }
  sockaddr_storage client{};
  std::memcpy(&client, io_uring_recvmsg_name(out), out->namelen);
  const void* payload = io_uring_recvmsg_payload(out, &l.msg);
  const auto len = io_uring_recvmsg_payload_length(out, cqe->res, &l.msg);

  auto key = flow_key(l.id, client);
  const bool has_local = l.msg.msg_controllen > 0 && destination_of(out, l.msg, key.local);
  std::uint32_t fi = UINT32_MAX;
  if (auto it = index_.find(key); it != index_.end()) {
    fi = it->second;
    if (!still_usable(flows_[fi], route)) {
      // Its member went down or left the set: this datagram and the ones
      // after it go to a member that can take them. (A drained member keeps
      // its flows: draining only stops new ones.)
      ThreadCounters::add(flows_[fi].upstream->state->per_thread[loop_.opt.id].flows_moved, 1);
      close_flow(fi, End::MemberDown);
      fi = UINT32_MAX;
    }
  }
  if (fi == UINT32_MAX) {
    if (!route.acl.empty() && !model::acl_permits(route.acl, ip_of(client))) {
      ThreadCounters::add(lc.denied, 1);
      return;
    }
    fi = open_flow(slot, route, client, out->namelen, key, has_local);
    if (fi == UINT32_MAX) return;
  }
  Flow& f = flows_[fi];
  f.last_active_ms = loop_.now_ms;
  // A datagram is sent whole or not at all and a connected UDP socket never
  // blocks for long: a direct non-blocking send is simpler than a ring
  // round-trip, and a full socket buffer drops, as UDP may.
  if (::send(f.fd, payload, len, MSG_DONTWAIT) >= 0) {
    ThreadCounters::add(f.upstream->state->per_thread[loop_.opt.id].bytes_in, len);
    f.bytes[0] += len;
  } else
    ThreadCounters::add(lc.dropped, 1);
}

bool UdpProxy::still_usable(Flow& f, const Route& route) {
  if (f.route != &route) {
    // The config changed since the flow began: find its member in the route in force.
    const Upstream* now = nullptr;
    for (auto& u : route.upstreams)
      if (u.state == f.upstream->state && same_address(u, *f.upstream)) now = &u;
    if (!now) return false;
    loop_.gens.release(f.gen);
    f.gen = loop_.gens.hold();
    f.route = &route;
    f.upstream = now;
  }
  if (f.upstream->state->eligible()) return true;
  // Down. With every member down, serve-all keeps it where it is.
  if (route.when_all_down != model::WhenAllDown::ServeAll) return false;
  for (auto& u : route.upstreams)
    if (u.state->eligible()) return false;
  return true;
}

std::uint32_t UdpProxy::open_flow(std::uint32_t slot, const Route& route, const sockaddr_storage& client,
                                  socklen_t client_len, const FlowKey& key, bool has_local) {
  auto& lc = route.counters->per_thread[loop_.opt.id];
  const int idx = pick(route, flow_hash(client, route));
  if (idx == kNoUpstream) {
    ThreadCounters::add(lc.refused, 1);
    return UINT32_MAX;
  }
  if (live_ >= max_flows_) {
    ThreadCounters::add(lc.flow_table_full, 1);
    ThreadCounters::add(lc.dropped, 1);
    log_ratelimited("worker %u: the UDP flow table is full (%u flows): new clients are dropped until flows expire; "
                    "engine start --udp-flows raises the bound",
                    loop_.opt.id, max_flows_);
    return UINT32_MAX;
  }
  const auto& up = route.upstreams[idx];
  int fd = -1;
  if (loop_.fds.take_udp_flow()) {
    fd = ::socket(up.addr.ss_family, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (fd >= 0 && ::connect(fd, reinterpret_cast<const sockaddr*>(&up.addr), up.addr_len) != 0) {
      ::close(fd);
      fd = -1;
    }
    if (fd < 0) loop_.fds.give_udp_flow();
  }
  if (fd < 0) {
    ThreadCounters::add(lc.dropped, 1);
    log_ratelimited("%s: no descriptor for a new UDP flow (UDP flows hold %lld; they may take half of the %lld the "
                    "workers may hold): dropped",
                    route.key.to_string().c_str(), static_cast<long long>(loop_.fds.udp_flows()),
                    static_cast<long long>(loop_.fds.limit()));
    return UINT32_MAX;
  }
  std::uint32_t fi;
  if (free_.empty()) {
    flows_.emplace_back();
    fi = static_cast<std::uint32_t>(flows_.size() - 1);
  } else {
    fi = free_.back();
    free_.pop_back();
  }
  Flow& f = flows_[fi];
  f = Flow{};
  f.fd = fd;
  f.slot = slot;
  f.listener_id = key.listener_id;
  f.client = client;
  f.client_len = client_len;
  f.local = key.local;
  f.has_local = has_local;
  f.route = &route;
  f.upstream = &up;
  f.gen = loop_.gens.hold();
  f.started_ms = f.last_active_ms = loop_.now_ms;
  index_.emplace(key, fi);
  ++live_;
  auto& mc = up.state->per_thread[loop_.opt.id];
  ThreadCounters::add(mc.total, 1);
  ThreadCounters::add(mc.active, 1);
  arm_reply(fi);
  return fi;
}

void UdpProxy::arm_reply(std::uint32_t fi) {
  Flow& f = flows_[fi];
  auto* q = loop_.sqe();
  io_uring_prep_recv_multishot(q, f.fd, nullptr, 0, 0);
  q->flags |= IOSQE_BUFFER_SELECT;
  q->buf_group = loop_.udp_bufs->group();
  io_uring_sqe_set_data64(q, pack(Op::UdpReply, fi));
  ++f.pending;
}

void UdpProxy::on_completion(Op op, std::uint32_t fi, const io_uring_cqe* cqe) {
  if (op == Op::UdpReply) return on_reply(fi, cqe);
  if (op == Op::CancelFlow) {
    --flows_[fi].pending;
    maybe_free(fi);
  }
}

void UdpProxy::on_reply(std::uint32_t fi, const io_uring_cqe* cqe) {
  Flow& f = flows_[fi];
  const bool more = cqe->flags & IORING_CQE_F_MORE;
  if (cqe->flags & IORING_CQE_F_BUFFER) {
    const auto bid = static_cast<std::uint16_t>(cqe->flags >> IORING_CQE_BUFFER_SHIFT);
    if (cqe->res > 0 && !f.closing) {
      auto& l = listeners_.at(f.slot);
      if (reply(l.fd, loop_.udp_bufs->data(bid), static_cast<std::size_t>(cqe->res), f) >= 0) {
        ThreadCounters::add(f.upstream->state->per_thread[loop_.opt.id].bytes_out, static_cast<std::uint64_t>(cqe->res));
        f.bytes[1] += static_cast<std::uint64_t>(cqe->res);
        f.last_active_ms = loop_.now_ms;
      }
    }
    loop_.udp_bufs->recycle(bid);
  }
  if (more) return;
  --f.pending;
  if (f.closing) return maybe_free(fi);
  // The multishot receive ended (no buffer free, or the kernel stopped it): re-arm.
  if (cqe->res == -ENOBUFS || cqe->res >= 0) return arm_reply(fi);
  // ECONNREFUSED: the member has no listener on that port (an ICMP came back).
  close_flow(fi, End::MemberUnreachable);
}

void UdpProxy::close_flows_of(std::uint64_t listener_id) {
  for (std::uint32_t fi = 0; fi < flows_.size(); ++fi)
    if (flows_[fi].fd >= 0 && flows_[fi].listener_id == listener_id) close_flow(fi, End::ListenerClosed);
}

void UdpProxy::close_all() {
  for (std::uint32_t fi = 0; fi < flows_.size(); ++fi)
    if (flows_[fi].fd >= 0) close_flow(fi, End::EngineStop);
}

void UdpProxy::on_tick() {
  if (loop_.now_ms < next_idle_scan_ms_) return;
  next_idle_scan_ms_ = loop_.now_ms + 1000;
  for (std::uint32_t fi = 0; fi < flows_.size(); ++fi) {
    auto& f = flows_[fi];
    if (f.fd >= 0 && !f.closing && loop_.now_ms - f.last_active_ms > f.upstream->idle_timeout_ms)
      close_flow(fi, End::IdleTimeout);
  }
}

void UdpProxy::close_flow(std::uint32_t fi, End end) {
  Flow& f = flows_[fi];
  if (f.closing) return;
  f.closing = true;
  f.end = end;
  FlowKey key = flow_key(f.listener_id, f.client);
  key.local = f.local;
  index_.erase(key);
  if (f.pending == 0) return maybe_free(fi);
  auto* q = loop_.sqe();
  io_uring_prep_cancel_fd(q, f.fd, IORING_ASYNC_CANCEL_ALL);
  io_uring_sqe_set_data64(q, pack(Op::CancelFlow, fi));
  ++f.pending;
}

void UdpProxy::maybe_free(std::uint32_t fi) {
  Flow& f = flows_[fi];
  if (!f.closing || f.pending > 0) return;
  ::close(f.fd);
  loop_.fds.give_udp_flow();
  ThreadCounters::sub(f.upstream->state->per_thread[loop_.opt.id].active, 1);
  if (access_log_)
    access_log_->write(loop_.opt.id, {"udp", &f.client, f.route, f.upstream, f.bytes[0], f.bytes[1],
                                      loop_.now_ms - f.started_ms, f.end});
  loop_.gens.release(f.gen);
  f = Flow{};
  free_.push_back(fi);
  --live_;
}

}  // namespace azlb::engine
