#include "engine/control/announcer.hpp"

#include <linux/netlink.h>
#include <linux/rtnetlink.h>
#include <net/if.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <vector>

namespace azlb::engine {

namespace {

void add_attr(std::vector<char>& buf, std::uint16_t type, const void* data, std::size_t len) {
  rtattr a{};
  a.rta_len = static_cast<unsigned short>(RTA_LENGTH(len));
  a.rta_type = type;
  const auto at = buf.size();
  buf.resize(at + RTA_ALIGN(a.rta_len), 0);
  std::memcpy(buf.data() + at, &a, sizeof a);
  std::memcpy(buf.data() + at + RTA_LENGTH(0), data, len);
}

}  // namespace

Announcer::~Announcer() {
  if (fd_ >= 0) ::close(fd_);
}

model::Status Announcer::open() {
  if (fd_ >= 0) return model::ok();
  fd_ = ::socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_ROUTE);
  if (fd_ < 0) return model::runtime_error(std::string("cannot open a netlink socket to announce VIPs: ") + std::strerror(errno));
  timeval tv{2, 0};
  ::setsockopt(fd_, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  return model::ok();
}

model::Status Announcer::request(const void* msg, std::size_t len) {
  if (::send(fd_, msg, len, 0) < 0) return model::runtime_error(std::strerror(errno));
  char reply[4096];
  for (;;) {
    const auto n = ::recv(fd_, reply, sizeof reply, 0);
    if (n < 0) return model::runtime_error(std::string("no answer from the kernel: ") + std::strerror(errno));
    auto left = static_cast<unsigned>(n);
    for (auto* h = reinterpret_cast<nlmsghdr*>(reply); NLMSG_OK(h, left); h = NLMSG_NEXT(h, left)) {
      if (h->nlmsg_seq != seq_ || h->nlmsg_type != NLMSG_ERROR) continue;
      const int err = -reinterpret_cast<nlmsgerr*>(NLMSG_DATA(h))->error;
      if (err == 0) return model::ok();
      return model::runtime_error(err == EPERM ? "not permitted: announcing needs CAP_NET_ADMIN (run as root)"
                                               : std::strerror(err));
    }
  }
}

model::Status Announcer::change(bool add, const model::IpAddress& vip) {
  const bool v6 = vip.family == model::Family::V6;
  std::vector<char> buf(NLMSG_SPACE(sizeof(rtmsg)), 0);
  auto* h = reinterpret_cast<nlmsghdr*>(buf.data());
  h->nlmsg_type = add ? RTM_NEWROUTE : RTM_DELROUTE;
  h->nlmsg_flags = NLM_F_REQUEST | NLM_F_ACK | (add ? NLM_F_CREATE | NLM_F_REPLACE : 0);
  h->nlmsg_seq = ++seq_;
  auto* rt = reinterpret_cast<rtmsg*>(NLMSG_DATA(h));
  rt->rtm_family = v6 ? AF_INET6 : AF_INET;
  rt->rtm_dst_len = v6 ? 128 : 32;
  rt->rtm_table = table_ < 256 ? static_cast<unsigned char>(table_) : static_cast<unsigned char>(RT_TABLE_UNSPEC);
  rt->rtm_protocol = kAnnounceProtocol;
  rt->rtm_scope = RT_SCOPE_LINK;
  rt->rtm_type = RTN_UNICAST;
  add_attr(buf, RTA_DST, vip.bytes.data(), vip.size());
  add_attr(buf, RTA_TABLE, &table_, sizeof table_);
  const int lo = static_cast<int>(::if_nametoindex("lo"));
  add_attr(buf, RTA_OIF, &lo, sizeof lo);
  h = reinterpret_cast<nlmsghdr*>(buf.data());
  h->nlmsg_len = static_cast<std::uint32_t>(buf.size());
  auto st = request(buf.data(), buf.size());
  if (!st && !add && st.error().message == std::strerror(ESRCH)) return model::ok();  // already gone
  if (!st)
    return model::runtime_error("cannot " + std::string(add ? "announce" : "withdraw") + " VIP " + vip.to_string() +
                                " (a host route in table " + std::to_string(table_) + "): " + st.error().message);
  return st;
}

model::Result<std::set<model::IpAddress>> Announcer::in_kernel() {
  std::set<model::IpAddress> out;
  for (int family : {AF_INET, AF_INET6}) {
    struct {
      nlmsghdr h;
      rtmsg rt;
    } req{};
    req.h.nlmsg_len = NLMSG_LENGTH(sizeof(rtmsg));
    req.h.nlmsg_type = RTM_GETROUTE;
    req.h.nlmsg_flags = NLM_F_REQUEST | NLM_F_DUMP;
    req.h.nlmsg_seq = ++seq_;
    req.rt.rtm_family = static_cast<unsigned char>(family);
    if (::send(fd_, &req, req.h.nlmsg_len, 0) < 0) return model::runtime_error(std::strerror(errno));
    std::vector<char> reply(1 << 16);
    for (bool done = false; !done;) {
      auto n = ::recv(fd_, reply.data(), reply.size(), 0);
      if (n < 0) return model::runtime_error(std::string("listing routes: ") + std::strerror(errno));
      auto left = static_cast<unsigned>(n);
      for (auto* h = reinterpret_cast<nlmsghdr*>(reply.data()); NLMSG_OK(h, left); h = NLMSG_NEXT(h, left)) {
        if (h->nlmsg_type == NLMSG_DONE || h->nlmsg_type == NLMSG_ERROR) {
          done = true;
          break;
        }
        if (h->nlmsg_type != RTM_NEWROUTE) continue;
        auto* rt = reinterpret_cast<rtmsg*>(NLMSG_DATA(h));
        if (rt->rtm_protocol != kAnnounceProtocol) continue;
        std::uint32_t table = rt->rtm_table;
        model::IpAddress dst;
        bool has_dst = false;
        int len = static_cast<int>(RTM_PAYLOAD(h));
        for (auto* a = RTM_RTA(rt); RTA_OK(a, len); a = RTA_NEXT(a, len)) {
          if (a->rta_type == RTA_TABLE) std::memcpy(&table, RTA_DATA(a), sizeof table);
          if (a->rta_type == RTA_DST && RTA_PAYLOAD(a) <= 16) {
            dst.family = family == AF_INET6 ? model::Family::V6 : model::Family::V4;
            std::memcpy(dst.bytes.data(), RTA_DATA(a), RTA_PAYLOAD(a));
            has_dst = true;
          }
        }
        if (table == table_ && has_dst && rt->rtm_dst_len == (family == AF_INET6 ? 128 : 32)) out.insert(dst);
      }
    }
  }
  return out;
}

model::Status Announcer::sync(const std::set<model::IpAddress>& vips) {
  AZLB_TRY(open());
  if (!read_kernel_) {
    // A killed engine's routes are still there: ours to replace or remove.
    AZLB_ASSIGN(found, in_kernel());
    announced_ = found;
    read_kernel_ = true;
  }
  for (auto it = announced_.begin(); it != announced_.end();) {
    if (vips.contains(*it)) {
      ++it;
      continue;
    }
    AZLB_TRY(change(false, *it));
    it = announced_.erase(it);
  }
  for (auto& v : vips)
    if (!announced_.contains(v)) {
      AZLB_TRY(change(true, v));
      announced_.insert(v);
    }
  return model::ok();
}

}  // namespace azlb::engine
