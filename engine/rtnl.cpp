#include "engine/rtnl.hpp"

#include <linux/netlink.h>
#include <linux/rtnetlink.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

namespace azlb::engine {

Rtnl::~Rtnl() {
  if (fd_ >= 0) ::close(fd_);
}

Rtnl::Message::Message(std::uint16_t type, std::uint16_t flags, const void* body, std::size_t len)
    : buf(NLMSG_SPACE(len), 0) {
  auto* h = reinterpret_cast<nlmsghdr*>(buf.data());
  h->nlmsg_type = type;
  h->nlmsg_flags = static_cast<std::uint16_t>(NLM_F_REQUEST | flags);
  std::memcpy(NLMSG_DATA(h), body, len);
}

void Rtnl::Message::attr(std::uint16_t type, const void* data, std::size_t len) {
  rtattr a{};
  a.rta_len = static_cast<unsigned short>(RTA_LENGTH(len));
  a.rta_type = type;
  const auto at = buf.size();
  buf.resize(at + RTA_ALIGN(a.rta_len), 0);
  std::memcpy(buf.data() + at, &a, sizeof a);
  std::memcpy(buf.data() + at + RTA_LENGTH(0), data, len);
}

model::Status Rtnl::open() {
  if (fd_ >= 0) return model::ok();
  fd_ = ::socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_ROUTE);
  if (fd_ < 0) return model::runtime_error(std::string("cannot open a routing netlink socket: ") + std::strerror(errno));
  timeval tv{2, 0};
  ::setsockopt(fd_, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  // Dumps are filtered by what their request says (dump_routes).
  const int one = 1;
  ::setsockopt(fd_, SOL_NETLINK, NETLINK_GET_STRICT_CHK, &one, sizeof one);
  return model::ok();
}

model::Status Rtnl::request(Message& m, int* err_out) {
  AZLB_TRY(open());
  auto* h = reinterpret_cast<nlmsghdr*>(m.buf.data());
  h->nlmsg_len = static_cast<std::uint32_t>(m.buf.size());
  h->nlmsg_flags |= NLM_F_ACK;
  h->nlmsg_seq = ++seq_;
  if (::send(fd_, m.buf.data(), m.buf.size(), 0) < 0) return model::runtime_error(std::strerror(errno));
  char reply[8192];
  for (;;) {
    const auto n = ::recv(fd_, reply, sizeof reply, 0);
    if (n < 0) return model::runtime_error(std::string("no answer from the kernel: ") + std::strerror(errno));
    auto left = static_cast<unsigned>(n);
    for (auto* r = reinterpret_cast<nlmsghdr*>(reply); NLMSG_OK(r, left); r = NLMSG_NEXT(r, left)) {
      if (r->nlmsg_seq != seq_ || r->nlmsg_type != NLMSG_ERROR) continue;
      const int err = -reinterpret_cast<nlmsgerr*>(NLMSG_DATA(r))->error;
      if (err_out) *err_out = err;
      if (err == 0) return model::ok();
      return model::runtime_error(err == EPERM ? "not permitted: it needs CAP_NET_ADMIN (run as root)" : std::strerror(err));
    }
  }
}

model::Status Rtnl::dump(std::uint16_t type, unsigned char family, const std::function<void(const nlmsghdr*)>& each) {
  rtmsg rt{};  // rtmsg and fib_rule_hdr begin alike: the family first
  rt.rtm_family = family;
  Message m(type, NLM_F_DUMP, &rt, sizeof rt);
  return send_dump(m, each);
}

model::Status Rtnl::dump_routes(unsigned char family, std::uint8_t protocol, std::uint32_t table,
                                const std::function<void(const RouteInfo&)>& each) {
  rtmsg rt{};
  rt.rtm_family = family;
  rt.rtm_protocol = protocol;
  Message m(RTM_GETROUTE, NLM_F_DUMP, &rt, sizeof rt);
  if (table) m.attr(RTA_TABLE, table);
  const auto addr_family = family == AF_INET6 ? model::Family::V6 : model::Family::V4;
  return send_dump(m, [&](const nlmsghdr* h) {
    if (h->nlmsg_type != RTM_NEWROUTE) return;
    auto* r = reinterpret_cast<const rtmsg*>(NLMSG_DATA(h));
    RouteInfo info;
    info.protocol = r->rtm_protocol;
    info.dst_len = r->rtm_dst_len;
    info.table = r->rtm_table;
    int len = static_cast<int>(RTM_PAYLOAD(h));
    for (auto* a = RTM_RTA(r); RTA_OK(a, len); a = RTA_NEXT(a, len)) {
      if (a->rta_type == RTA_TABLE && RTA_PAYLOAD(a) == sizeof info.table)
        std::memcpy(&info.table, RTA_DATA(a), sizeof info.table);
      for (auto [type, addr] : {std::pair{RTA_DST, &info.dst}, std::pair{RTA_GATEWAY, &info.gateway}})
        if (a->rta_type == type && RTA_PAYLOAD(a) <= addr->bytes.size()) {
          addr->family = addr_family;
          std::memcpy(addr->bytes.data(), RTA_DATA(a), RTA_PAYLOAD(a));
        }
    }
    if (info.protocol == protocol && (!table || info.table == table)) each(info);
  });
}

model::Status Rtnl::send_dump(Message& m, const std::function<void(const nlmsghdr*)>& each) {
  AZLB_TRY(open());
  auto* req = reinterpret_cast<nlmsghdr*>(m.buf.data());
  req->nlmsg_len = static_cast<std::uint32_t>(m.buf.size());
  req->nlmsg_seq = ++seq_;
  if (::send(fd_, m.buf.data(), m.buf.size(), 0) < 0) return model::runtime_error(std::strerror(errno));
  std::vector<char> reply(1 << 16);
  for (;;) {
    const auto n = ::recv(fd_, reply.data(), reply.size(), 0);
    if (n < 0) return model::runtime_error(std::string("a netlink dump: ") + std::strerror(errno));
    auto left = static_cast<unsigned>(n);
    for (auto* h = reinterpret_cast<nlmsghdr*>(reply.data()); NLMSG_OK(h, left); h = NLMSG_NEXT(h, left)) {
      if (h->nlmsg_seq != seq_) continue;
      if (h->nlmsg_type == NLMSG_DONE) return model::ok();
      if (h->nlmsg_type == NLMSG_ERROR) {
        const int err = -reinterpret_cast<const nlmsgerr*>(NLMSG_DATA(h))->error;
        if (err) return model::runtime_error(std::string("a netlink dump: ") + std::strerror(err));
        return model::ok();
      }
      each(h);
    }
  }
}

}  // namespace azlb::engine
