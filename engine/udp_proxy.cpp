// UDP: a flow per client address. The first datagram of a client passes the
// ACL, picks an upstream and opens a socket connected to it; replies on that
// socket go back to the client from the listener, so they come from the VIP.
// Flows end after the endpoint's idle timeout; the table is bounded.
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

}  // namespace

std::size_t FlowKeyHash::operator()(const FlowKey& k) const {
  std::uint64_t h = 1469598103934665603ull;
  auto feed = [&](const void* p, std::size_t n) {
    auto* b = static_cast<const unsigned char*>(p);
    for (std::size_t i = 0; i < n; ++i) h = (h ^ b[i]) * 1099511628211ull;
  };
  feed(&k.listener, sizeof k.listener);
  feed(&k.port, sizeof k.port);
  feed(k.addr.data(), k.family == AF_INET ? 4 : 16);
  feed(k.local.data(), k.family == AF_INET ? 4 : 16);
  return h;
}

FlowKey flow_key(std::uint32_t listener, const sockaddr_storage& client) {
  FlowKey k;
  k.listener = listener;
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

void Worker::arm_udp_listener(std::uint32_t s) {
  auto& l = listeners_[s];
  l.msg = {};
  l.msg.msg_namelen = sizeof(sockaddr_storage);
  // Room for the destination address (IP_PKTINFO) when the VIP is a wildcard.
  if (l.route->key.address.is_unspecified()) l.msg.msg_controllen = CMSG_SPACE(sizeof(in6_pktinfo));
  auto* q = sqe();
  io_uring_prep_recvmsg_multishot(q, l.fd, &l.msg, 0);
  q->flags |= IOSQE_BUFFER_SELECT;
  q->buf_group = udp_bufs_->group();
  io_uring_sqe_set_data64(q, pack(Op::UdpListen, s));
  l.armed = true;
}

void Worker::on_udp_datagram(std::uint32_t slot, io_uring_cqe* cqe) {
  auto& l = listeners_[slot];
  if (!(cqe->flags & IORING_CQE_F_MORE)) on_listener_ended(slot, cqe->res);
  if (cqe->res < 0 || !(cqe->flags & IORING_CQE_F_BUFFER)) return;
  const auto bid = static_cast<std::uint16_t>(cqe->flags >> IORING_CQE_BUFFER_SHIFT);
  char* buf = udp_bufs_->data(bid);
  auto* out = io_uring_recvmsg_validate(buf, cqe->res, &l.msg);
  if (!out || l.removed || draining_ || out->namelen > sizeof(sockaddr_storage)) {
    udp_bufs_->recycle(bid);
    return;
  }
  sockaddr_storage client{};
  std::memcpy(&client, io_uring_recvmsg_name(out), out->namelen);
  const void* payload = io_uring_recvmsg_payload(out, &l.msg);
  const auto len = io_uring_recvmsg_payload_length(out, cqe->res, &l.msg);
  const Route& route = *l.route;
  auto& lc = route.counters->per_thread[opt_.id];

  auto key = flow_key(slot, client);
  const bool has_local = l.msg.msg_controllen > 0 && destination_of(out, l.msg, key.local);
  auto it = flow_index_.find(key);
  std::uint32_t fi;
  if (it != flow_index_.end()) {
    fi = it->second;
  } else {
    if (!route.acl.empty() && !model::acl_permits(route.acl, ip_of(client))) {
      ThreadCounters::add(lc.denied, 1);
      udp_bufs_->recycle(bid);
      return;
    }
    std::uint64_t h = client_hash(client, route.key.protocol);
    int idx = pick(route, h, {}, rng_);
    int fd = -1;
    if (idx != kNoUpstream && live_flows_ < opt_.max_flows) {
      auto& up = route.upstreams[idx];
      fd = ::socket(up.addr.ss_family, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
      if (fd >= 0 && ::connect(fd, reinterpret_cast<const sockaddr*>(&up.addr), up.addr_len) != 0) {
        ::close(fd);
        fd = -1;
      }
    }
    if (fd < 0) {
      // No healthy member, a full flow table or no descriptor left: UDP drops.
      ThreadCounters::add(idx == kNoUpstream ? lc.refused : lc.dropped, 1);
      udp_bufs_->recycle(bid);
      return;
    }
    if (free_flows_.empty()) {
      flows_.emplace_back();
      fi = static_cast<std::uint32_t>(flows_.size() - 1);
    } else {
      fi = free_flows_.back();
      free_flows_.pop_back();
    }
    Flow& f = flows_[fi];
    f = Flow{};
    f.fd = fd;
    f.listener = slot;
    f.client = client;
    f.client_len = out->namelen;
    f.local = key.local;
    f.has_local = has_local;
    f.upstream = &route.upstreams[idx];
    f.gen = current_;
    ++current_->users;
    flow_index_.emplace(key, fi);
    ++live_flows_;
    auto& mc = f.upstream->state->per_thread[opt_.id];
    ThreadCounters::add(mc.total, 1);
    ThreadCounters::add(mc.active, 1);
    auto* q = sqe();
    io_uring_prep_recv_multishot(q, fd, nullptr, 0, 0);
    q->flags |= IOSQE_BUFFER_SELECT;
    q->buf_group = udp_bufs_->group();
    io_uring_sqe_set_data64(q, pack(Op::UdpReply, fi));
    ++f.pending;
  }
  Flow& f = flows_[fi];
  f.last_active_ms = now_ms_;
  // A datagram is sent whole or not at all and a connected UDP socket never
  // blocks for long: a direct non-blocking send is simpler than a ring
  // round-trip, and a full socket buffer drops, as UDP may.
  if (::send(f.fd, payload, len, MSG_DONTWAIT) >= 0)
    ThreadCounters::add(f.upstream->state->per_thread[opt_.id].bytes_in, len);
  else
    ThreadCounters::add(lc.dropped, 1);
  udp_bufs_->recycle(bid);
}

void Worker::on_udp_reply(std::uint32_t fi, io_uring_cqe* cqe) {
  Flow& f = flows_[fi];
  const bool more = cqe->flags & IORING_CQE_F_MORE;
  if (cqe->flags & IORING_CQE_F_BUFFER) {
    const auto bid = static_cast<std::uint16_t>(cqe->flags >> IORING_CQE_BUFFER_SHIFT);
    if (cqe->res > 0 && !f.closing) {
      auto& l = listeners_[f.listener];
      if (l.fd >= 0 && reply(l.fd, udp_bufs_->data(bid), static_cast<std::size_t>(cqe->res), f) >= 0) {
        ThreadCounters::add(f.upstream->state->per_thread[opt_.id].bytes_out, static_cast<std::uint64_t>(cqe->res));
        f.last_active_ms = now_ms_;
      }
    }
    udp_bufs_->recycle(bid);
  }
  if (more) return;
  --f.pending;
  if (f.closing) return maybe_free_flow(fi);
  if (cqe->res == -ENOBUFS || cqe->res >= 0) {
    // The multishot receive ended (no buffer free, or the kernel stopped it): re-arm.
    auto* q = sqe();
    io_uring_prep_recv_multishot(q, f.fd, nullptr, 0, 0);
    q->flags |= IOSQE_BUFFER_SELECT;
    q->buf_group = udp_bufs_->group();
    io_uring_sqe_set_data64(q, pack(Op::UdpReply, fi));
    ++f.pending;
    return;
  }
  // ECONNREFUSED: the member has no listener on that port (an ICMP came back).
  close_flow(fi);
}

void Worker::close_flow(std::uint32_t fi) {
  Flow& f = flows_[fi];
  if (f.closing) return;
  f.closing = true;
  flow_index_.erase(flow_key(f.listener, f.client));
  if (f.pending == 0) return maybe_free_flow(fi);
  auto* q = sqe();
  io_uring_prep_cancel_fd(q, f.fd, IORING_ASYNC_CANCEL_ALL);
  io_uring_sqe_set_data64(q, pack(Op::CancelFlow, fi));
  ++f.pending;
}

void Worker::maybe_free_flow(std::uint32_t fi) {
  Flow& f = flows_[fi];
  if (!f.closing || f.pending > 0) return;
  ::close(f.fd);
  ThreadCounters::sub(f.upstream->state->per_thread[opt_.id].active, 1);
  release(f.gen);
  f = Flow{};
  free_flows_.push_back(fi);
  --live_flows_;
}

}  // namespace azlb::engine
