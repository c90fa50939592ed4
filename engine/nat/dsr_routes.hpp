// Direct server return's next hops: a new flow's packet leaves the NAT
// plane's chains with its member's mark (nat_plane.hpp), and policy routing
// sends it, unchanged, to that member's address: a rule per member
// (`fwmark MARK lookup MARK`, priority kDsrRulePriority) and a default
// route via the member in table MARK. The member shares a link with this
// host (no tunnel: these kernels have no IPIP, GRE or FOU), owns the VIP
// (`azlb vm dsr-setup`) and answers the client itself. Rules of that
// priority with azlb's mark tag are azlb's: a restarted engine replaces
// what a killed one left.
#pragma once

#include <sys/socket.h>

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "engine/rtnl.hpp"
#include "model/address.hpp"
#include "model/error.hpp"

namespace azlb::engine {

inline constexpr std::uint32_t kDsrRulePriority = 3250;

class DsrRoutes {
 public:
  // Makes the rules and routes be exactly `next_hops` (mark -> member address).
  model::Status sync(const std::map<std::uint32_t, model::IpAddress>& next_hops);
  model::Status clear() { return sync({}); }
  // Reads the rules and azlb's routes again: a rule or route another
  // program removed or changed is said, and the next sync puts it back.
  model::Result<std::vector<std::string>> recheck();
  const std::map<std::uint32_t, model::IpAddress>& installed() const { return installed_; }

 private:
  model::Status rule(bool add, std::uint32_t mark, model::Family);
  model::Status route(bool add, std::uint32_t mark, const model::IpAddress&);
  // mark -> next hop as the kernel has them; an unspecified address where
  // the rule or the route is missing or the route goes elsewhere.
  model::Result<std::map<std::uint32_t, model::IpAddress>> in_kernel();
  Rtnl rtnl_;
  bool read_kernel_ = false;
  std::map<std::uint32_t, model::IpAddress> installed_;
};

}  // namespace azlb::engine
