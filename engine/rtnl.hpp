// A routing netlink socket of the engine's own (no library): requests that
// the kernel acknowledges, and dumps. What the announcer (host routes of
// VIPs) and direct server return (rules and routes by mark) both send.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "model/address.hpp"
#include "model/error.hpp"

struct nlmsghdr;

namespace azlb::engine {

// The routing protocol number of every route azlb makes (announced VIPs,
// direct server return's next hops): a dump filtered by it finds azlb's
// routes, and only them.
inline constexpr std::uint8_t kAzlbRouteProtocol = 250;

// A route as a dump gives it.
struct RouteInfo {
  std::uint8_t protocol = 0, dst_len = 0;
  std::uint32_t table = 0;
  model::IpAddress dst, gateway;  // unspecified when absent
};

class Rtnl {
 public:
  Rtnl() = default;
  ~Rtnl();
  Rtnl(const Rtnl&) = delete;
  Rtnl& operator=(const Rtnl&) = delete;

  // A message: a header of `type` and `flags`, then `body` (rtmsg,
  // fib_rule_hdr...), then attributes.
  struct Message {
    std::vector<char> buf;
    Message(std::uint16_t type, std::uint16_t flags, const void* body, std::size_t len);
    void attr(std::uint16_t type, const void* data, std::size_t len);
    template <class T>
    void attr(std::uint16_t type, const T& v) {
      attr(type, &v, sizeof v);
    }
  };

  // Sends and waits for the kernel's answer: ok, or its errno (EPERM is said
  // as the missing CAP_NET_ADMIN).
  model::Status request(Message&, int* err = nullptr);
  // Every message a dump of `type` (RTM_GETROUTE, RTM_GETRULE) for `family` returns.
  model::Status dump(std::uint16_t type, unsigned char family, const std::function<void(const nlmsghdr*)>& each);
  // The routes of `family` with `protocol`, in `table` (0: every table),
  // filtered by the kernel (a strict dump request): a router's full table
  // is never read to find azlb's few routes.
  // Kernels before strict checking (4.20) ignore the filter: every route
  // handed to `each` is checked here against it.
  model::Status dump_routes(unsigned char family, std::uint8_t protocol, std::uint32_t table,
                            const std::function<void(const RouteInfo&)>& each);

 private:
  model::Status open();
  model::Status send_dump(Message&, const std::function<void(const nlmsghdr*)>& each);
  int fd_ = -1;
  std::uint32_t seq_ = 0;
};

}  // namespace azlb::engine
