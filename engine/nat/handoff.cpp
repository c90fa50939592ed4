#include "engine/nat/handoff.hpp"

#include <sys/socket.h>
#include <unistd.h>

#include <cstdio>

#include "engine/proxy/sockets.hpp"

namespace azlb::engine {

namespace {

std::string family_table(const std::string& table, model::Family f, const HandoffPlan& plan) {
  const bool v4 = f == model::Family::V4;
  const std::string kind = v4 ? "ip" : "ip6";
  std::string out = "add table " + kind + " " + table + "\ndelete table " + kind + " " + table + "\n";
  std::string vips, dups;
  for (auto& [addr, port] : plan.vips)
    if (addr.family == f) vips += (vips.empty() ? "" : ", ") + addr.to_string() + " . " + std::to_string(port);
  for (auto& p : plan.peers)
    if (p.family == f) dups += "    dup to " + p.to_string() + "\n";
  if (vips.empty() || dups.empty()) return out;
  char mark[16];
  std::snprintf(mark, sizeof mark, "0x%08x", kHandoffListenerMark);
  const std::string addr = v4 ? "ip" : "ip6", ttl = v4 ? "ip ttl" : "ip6 hoplimit";
  const std::string type = v4 ? "ipv4_addr" : "ipv6_addr";
  return out + "table " + kind + " " + table + " {\n" +
         "  set proxied {\n    type " + type + " . inet_service\n    elements = { " + vips + " }\n  }\n" +
         // After conntrack and before routing: the copy is routed to the peer.
         "  chain prerouting {\n    type filter hook prerouting priority mangle; policy accept;\n" +
         "    " + addr + " daddr . tcp dport @proxied tcp flags & syn == 0 socket mark " + mark + " jump unknown\n  }\n" +
         "  chain unknown {\n    " + ttl + " 1 counter drop\n    " + ttl + " set 2\n    counter\n" + dups + "  }\n" +
         "  chain output {\n    type filter hook output priority filter; policy accept;\n" +
         "    meta mark " + mark + " " + addr + " saddr . tcp sport @proxied tcp flags rst drop\n  }\n}\n";
}

}  // namespace

std::string handoff_table_name(const std::string& nat_table) { return nat_table + "_handoff"; }

std::string handoff_script(const std::string& table, const HandoffPlan& plan) {
  return family_table(table, model::Family::V4, plan) + family_table(table, model::Family::V6, plan);
}

std::vector<model::IpAddress> default_handoff_addresses() {
  std::vector<model::IpAddress> out;
  // Documentation addresses (RFC 5737, RFC 3849): routed like any other
  // address out of this host, never reached (a UDP connect sends nothing).
  for (const char* text : {"192.0.2.1", "2001:db8::1"}) {
    const auto to_addr = model::parse_ip("address", text);
    sockaddr_storage to{}, local{};
    socklen_t len = 0, local_len = sizeof local;
    fill_sockaddr(*to_addr, 9, to, len);
    const int fd = ::socket(to.ss_family, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (fd < 0) continue;
    if (::connect(fd, reinterpret_cast<sockaddr*>(&to), len) == 0 &&
        ::getsockname(fd, reinterpret_cast<sockaddr*>(&local), &local_len) == 0 && !ip_of(local).is_unspecified())
      out.push_back(ip_of(local));
    ::close(fd);
  }
  return out;
}

}  // namespace azlb::engine
