#include "engine/nat/dsr_member.hpp"

#include <linux/if_addr.h>
#include <linux/netlink.h>
#include <linux/rtnetlink.h>
#include <net/if.h>
#include <sys/socket.h>

#include <cerrno>
#include <fstream>

#include "engine/rtnl.hpp"

namespace azlb::engine {

namespace {

constexpr const char* kArpSysctls[][2] = {{"net/ipv4/conf/all/arp_ignore", "1"},
                                          {"net/ipv4/conf/all/arp_announce", "2"}};

}  // namespace

std::vector<std::string> dsr_member_commands(const model::IpAddress& vip) {
  const bool v6 = vip.family == model::Family::V6;
  std::vector<std::string> out;
  out.push_back(std::string("ip ") + (v6 ? "-6 " : "") + "address replace " + vip.to_string() + (v6 ? "/128" : "/32") +
                " dev lo");
  if (!v6)
    for (auto& [key, value] : kArpSysctls) {
      std::string dotted = key;
      for (auto& c : dotted)
        if (c == '/') c = '.';
      out.push_back("sysctl -w " + dotted + "=" + value);
    }
  return out;
}

model::Status apply_dsr_member(const model::IpAddress& vip) {
  const bool v6 = vip.family == model::Family::V6;
  ifaddrmsg a{};
  a.ifa_family = v6 ? AF_INET6 : AF_INET;
  a.ifa_prefixlen = v6 ? 128 : 32;
  a.ifa_scope = RT_SCOPE_HOST;
  a.ifa_index = ::if_nametoindex("lo");
  Rtnl rtnl;
  Rtnl::Message m(RTM_NEWADDR, NLM_F_CREATE | NLM_F_REPLACE, &a, sizeof a);
  m.attr(IFA_LOCAL, vip.bytes.data(), vip.size());
  m.attr(IFA_ADDRESS, vip.bytes.data(), vip.size());
  if (auto st = rtnl.request(m); !st)
    return model::runtime_error("cannot put VIP " + vip.to_string() + " on lo: " + st.error().message);
  if (!v6)
    for (auto& [key, value] : kArpSysctls) {
      std::ofstream f(std::string("/proc/sys/") + key);
      f << value;
      f.flush();
      if (!f) return model::runtime_error(std::string("cannot set ") + key + " to " + value + " (run as root)");
    }
  return model::ok();
}

}  // namespace azlb::engine
