// What this host can serve, told to the routers: a host route (/32, /128)
// for each VIP with at least one member that may take new flows, in a
// kernel routing table of azlb's own, which a BGP daemon (BIRD's `protocol
// kernel { learn; }`, FRR's `redistribute table`) exports to the routers.
// azlb never speaks BGP itself. The routes are `dev lo`, protocol 250 (one
// BIRD learns; it ignores routes of the kernel's own protocols), so a
// table of azlb's holds only azlb's routes and a restarted engine finds and
// replaces what a killed one left.
#pragma once

#include <cstdint>
#include <set>
#include <string>
#include <vector>

#include "engine/rtnl.hpp"
#include "model/address.hpp"
#include "model/error.hpp"

namespace azlb::engine {

inline constexpr std::uint32_t kAnnounceTableDefault = 201;
inline constexpr std::uint8_t kAnnounceProtocol = kAzlbRouteProtocol;

class Announcer {
 public:
  explicit Announcer(std::uint32_t table) : table_(table) {}
  Announcer(const Announcer&) = delete;
  Announcer& operator=(const Announcer&) = delete;

  // Makes the table hold exactly `vips`' host routes (of protocol 250;
  // other routes there are not azlb's and stay). The error names the VIP and
  // what the kernel said (no CAP_NET_ADMIN...).
  model::Status sync(const std::set<model::IpAddress>& vips);
  // Reads the table again (a dump the kernel filters to it and protocol
  // 250): what another program removed or added is said, and the next sync
  // makes the table right again.
  model::Result<std::vector<std::string>> recheck();
  // Removes every route of azlb's from the table (on stop, or withdraw).
  model::Status clear() { return sync({}); }

  std::uint32_t table() const { return table_; }
  const std::set<model::IpAddress>& announced() const { return announced_; }

 private:
  model::Status change(bool add, const model::IpAddress&);
  // The protocol-250 host routes the kernel's table holds now.
  model::Result<std::set<model::IpAddress>> in_kernel();

  std::uint32_t table_;
  Rtnl rtnl_;
  bool read_kernel_ = false;  // the first sync reads what a killed engine left
  std::set<model::IpAddress> announced_;
};

}  // namespace azlb::engine
