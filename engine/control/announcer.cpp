#include "engine/control/announcer.hpp"

#include <linux/netlink.h>
#include <linux/rtnetlink.h>
#include <net/if.h>
#include <sys/socket.h>

#include <cerrno>
#include <cstring>

namespace azlb::engine {

model::Status Announcer::change(bool add, const model::IpAddress& vip) {
  const bool v6 = vip.family == model::Family::V6;
  rtmsg rt{};
  rt.rtm_family = v6 ? AF_INET6 : AF_INET;
  rt.rtm_dst_len = v6 ? 128 : 32;
  rt.rtm_table = table_ < 256 ? static_cast<unsigned char>(table_) : static_cast<unsigned char>(RT_TABLE_UNSPEC);
  rt.rtm_protocol = kAnnounceProtocol;
  rt.rtm_scope = RT_SCOPE_LINK;
  rt.rtm_type = RTN_UNICAST;
  Rtnl::Message m(add ? RTM_NEWROUTE : RTM_DELROUTE,
                  static_cast<std::uint16_t>(add ? NLM_F_CREATE | NLM_F_REPLACE : 0), &rt, sizeof rt);
  m.attr(RTA_DST, vip.bytes.data(), vip.size());
  m.attr(RTA_TABLE, table_);
  m.attr(RTA_OIF, static_cast<int>(::if_nametoindex("lo")));
  int err = 0;
  auto st = rtnl_.request(m, &err);
  if (!st && !add && err == ESRCH) return model::ok();  // already gone
  if (!st)
    return model::runtime_error("cannot " + std::string(add ? "announce" : "withdraw") + " VIP " + vip.to_string() +
                                " (a host route in table " + std::to_string(table_) + "): " + st.error().message);
  return st;
}

model::Result<std::set<model::IpAddress>> Announcer::in_kernel() {
  std::set<model::IpAddress> out;
  for (int family : {AF_INET, AF_INET6})
    AZLB_TRY(rtnl_.dump_routes(static_cast<unsigned char>(family), kAnnounceProtocol, table_, [&](const RouteInfo& r) {
      if (r.dst_len == (family == AF_INET6 ? 128 : 32) && !r.dst.is_unspecified()) out.insert(r.dst);
    }));
  return out;
}

model::Result<std::vector<std::string>> Announcer::recheck() {
  std::vector<std::string> said;
  if (!read_kernel_) return said;
  AZLB_ASSIGN(found, in_kernel());
  for (auto& v : announced_)
    if (!found.contains(v)) said.push_back("VIP " + v.to_string() + "'s route was removed from table " +
                                           std::to_string(table_) + " by another program");
  for (auto& v : found)
    if (!announced_.contains(v)) said.push_back("a route to " + v.to_string() + " of azlb's protocol appeared in table " +
                                                std::to_string(table_));
  announced_ = std::move(found);  // the next sync puts back what should be there
  return said;
}

model::Status Announcer::sync(const std::set<model::IpAddress>& vips) {
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
