#include "engine/nat/dsr_routes.hpp"

#include <linux/fib_rules.h>
#include <linux/netlink.h>
#include <linux/rtnetlink.h>

#include <cerrno>
#include <cstring>

#include "engine/nat/nat_plane.hpp"

namespace azlb::engine {

namespace {

unsigned char family_of(model::Family f) { return f == model::Family::V6 ? AF_INET6 : AF_INET; }

}  // namespace

model::Status DsrRoutes::rule(bool add, std::uint32_t mark, model::Family f) {
  fib_rule_hdr h{};
  h.family = family_of(f);
  h.action = FR_ACT_TO_TBL;
  h.table = RT_TABLE_UNSPEC;
  Rtnl::Message m(add ? RTM_NEWRULE : RTM_DELRULE, static_cast<std::uint16_t>(add ? NLM_F_CREATE | NLM_F_EXCL : 0), &h,
                  sizeof h);
  m.attr(FRA_PRIORITY, kDsrRulePriority);
  m.attr(FRA_FWMARK, mark);
  m.attr(FRA_FWMASK, std::uint32_t{0xffffffffu});
  m.attr(FRA_TABLE, mark);
  int err = 0;
  auto st = rtnl_.request(m, &err);
  if (!st && ((add && err == EEXIST) || (!add && err == ENOENT))) return model::ok();
  return st;
}

model::Status DsrRoutes::route(bool add, std::uint32_t mark, const model::IpAddress& via) {
  rtmsg rt{};
  rt.rtm_family = family_of(via.family);
  rt.rtm_table = RT_TABLE_UNSPEC;
  rt.rtm_protocol = RTPROT_STATIC;
  rt.rtm_scope = RT_SCOPE_UNIVERSE;
  rt.rtm_type = RTN_UNICAST;
  Rtnl::Message m(add ? RTM_NEWROUTE : RTM_DELROUTE, static_cast<std::uint16_t>(add ? NLM_F_CREATE | NLM_F_REPLACE : 0),
                  &rt, sizeof rt);
  m.attr(RTA_TABLE, mark);
  if (add) m.attr(RTA_GATEWAY, via.bytes.data(), via.size());
  int err = 0;
  auto st = rtnl_.request(m, &err);
  if (!st && !add && err == ESRCH) return model::ok();
  return st;
}

model::Status DsrRoutes::sync(const std::map<std::uint32_t, model::IpAddress>& want) {
  if (!read_kernel_) {
    // Rules a killed engine left: this priority and azlb's mark tag.
    for (unsigned char family : {AF_INET, AF_INET6}) {
      AZLB_TRY(rtnl_.dump(RTM_GETRULE, family, [&](const nlmsghdr* h) {
        if (h->nlmsg_type != RTM_NEWRULE) return;
        auto* fr = reinterpret_cast<const fib_rule_hdr*>(NLMSG_DATA(h));
        std::uint32_t priority = 0, mark = 0;
        int len = static_cast<int>(NLMSG_PAYLOAD(h, sizeof *fr));
        for (auto* a = reinterpret_cast<const rtattr*>(reinterpret_cast<const char*>(fr) + NLMSG_ALIGN(sizeof *fr));
             RTA_OK(a, len); a = RTA_NEXT(a, len)) {
          if (a->rta_type == FRA_PRIORITY) std::memcpy(&priority, RTA_DATA(a), sizeof priority);
          if (a->rta_type == FRA_FWMARK) std::memcpy(&mark, RTA_DATA(a), sizeof mark);
        }
        if (priority == kDsrRulePriority && (mark & kNatMarkMask) == kNatMarkTag) {
          model::IpAddress any;
          any.family = fr->family == AF_INET6 ? model::Family::V6 : model::Family::V4;
          installed_[mark] = any;  // its route is replaced or removed below
        }
      }));
    }
    read_kernel_ = true;
  }
  for (auto it = installed_.begin(); it != installed_.end();) {
    auto w = want.find(it->first);
    if (w != want.end() && w->second == it->second) {
      ++it;
      continue;
    }
    (void)route(false, it->first, it->second);
    AZLB_TRY(rule(false, it->first, it->second.family));
    it = installed_.erase(it);
  }
  for (auto& [mark, via] : want) {
    if (installed_.contains(mark)) continue;
    if (auto st = route(true, mark, via); !st)
      return model::runtime_error("direct server return: cannot route to member " + via.to_string() + ": " +
                                  st.error().message + " (a member must share a link with this host)");
    AZLB_TRY(rule(true, mark, via.family));
    installed_[mark] = via;
  }
  return model::ok();
}

}  // namespace azlb::engine
