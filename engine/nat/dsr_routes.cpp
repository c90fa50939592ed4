#include "engine/nat/dsr_routes.hpp"

#include <linux/fib_rules.h>
#include <linux/netlink.h>
#include <linux/rtnetlink.h>

#include <cerrno>
#include <cstring>
#include <set>

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
  // azlb's protocol, so recheck finds these routes in one filtered dump; a
  // delete matches any (an engine before it made them static).
  rt.rtm_protocol = add ? kAzlbRouteProtocol : RTPROT_UNSPEC;
  rt.rtm_scope = add ? RT_SCOPE_UNIVERSE : RT_SCOPE_NOWHERE;
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

model::Result<std::map<std::uint32_t, model::IpAddress>> DsrRoutes::in_kernel() {
  std::map<std::uint32_t, model::IpAddress> rules, routes;  // rules: mark -> an unspecified address of its family
  std::set<std::uint32_t> astray;                          // rules that lead to another table
  for (unsigned char family : {AF_INET, AF_INET6}) {
    // Rules: this priority and azlb's mark tag.
    AZLB_TRY(rtnl_.dump(RTM_GETRULE, family, [&](const nlmsghdr* h) {
      if (h->nlmsg_type != RTM_NEWRULE) return;
      auto* fr = reinterpret_cast<const fib_rule_hdr*>(NLMSG_DATA(h));
      std::uint32_t priority = 0, mark = 0, table = fr->table;
      int len = static_cast<int>(NLMSG_PAYLOAD(h, sizeof *fr));
      for (auto* a = reinterpret_cast<const rtattr*>(reinterpret_cast<const char*>(fr) + NLMSG_ALIGN(sizeof *fr));
           RTA_OK(a, len); a = RTA_NEXT(a, len)) {
        if (a->rta_type == FRA_PRIORITY) std::memcpy(&priority, RTA_DATA(a), sizeof priority);
        if (a->rta_type == FRA_FWMARK) std::memcpy(&mark, RTA_DATA(a), sizeof mark);
        if (a->rta_type == FRA_TABLE) std::memcpy(&table, RTA_DATA(a), sizeof table);
      }
      if (priority != kDsrRulePriority || (mark & kNatMarkMask) != kNatMarkTag) return;
      model::IpAddress any;
      any.family = fr->family == AF_INET6 ? model::Family::V6 : model::Family::V4;
      rules[mark] = any;
      if (table != mark) astray.insert(mark);
    }));
    // Routes: azlb's protocol, default routes in tables named by a mark of azlb's.
    AZLB_TRY(rtnl_.dump_routes(family, kAzlbRouteProtocol, 0, [&](const RouteInfo& r) {
      if (r.dst_len == 0 && (r.table & kNatMarkMask) == kNatMarkTag) routes[r.table] = r.gateway;
    }));
  }
  std::map<std::uint32_t, model::IpAddress> out;
  for (auto& [mark, family_only] : rules) {
    auto r = routes.find(mark);
    const bool whole = r != routes.end() && r->second.family == family_only.family && !astray.contains(mark);
    out[mark] = whole ? r->second : family_only;
  }
  for (auto& [table, via] : routes)
    if (!rules.contains(table)) {  // a route without its rule: redone
      model::IpAddress stray;
      stray.family = via.family;
      out[table] = stray;
    }
  return out;
}

model::Result<std::vector<std::string>> DsrRoutes::recheck() {
  std::vector<std::string> said;
  if (!read_kernel_) return said;
  AZLB_ASSIGN(found, in_kernel());
  // Only what this engine installed: rules of azlb's tag that it did not
  // make may be another engine's (another state on this host).
  for (auto it = installed_.begin(); it != installed_.end();) {
    const auto [mark, via] = *it;
    auto f = found.find(mark);
    if (f != found.end() && f->second == via) {
      ++it;
      continue;
    }
    said.push_back("the rule or route to member " + via.to_string() + " (fwmark " + std::to_string(mark) +
                   ") was removed or changed by another program");
    if (f == found.end()) {
      it = installed_.erase(it);  // the next sync adds it again
    } else {
      it->second = f->second;  // the next sync replaces it
      ++it;
    }
  }
  return said;
}

model::Status DsrRoutes::sync(const std::map<std::uint32_t, model::IpAddress>& want) {
  if (!read_kernel_) {
    // What a killed engine left is ours to replace or remove.
    AZLB_ASSIGN(found, in_kernel());
    installed_ = std::move(found);
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
