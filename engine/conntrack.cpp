#include "engine/conntrack.hpp"

#include <arpa/inet.h>
#include <libnetfilter_conntrack/libnetfilter_conntrack.h>
#include <linux/netfilter/nf_conntrack_tcp.h>
#include <netinet/in.h>

#include <cstring>
#include <fstream>

namespace azlb::engine {

namespace {

// What a flow is matched on: VIP, public port, protocol; member address and port.
struct Want {
  int family;
  std::uint8_t l4;
  unsigned char vip[16];
  std::uint16_t vport;  // network order
  unsigned char dip[16];
  std::uint16_t dport;  // network order
  const MemberState* member;
};

struct Dump {
  std::vector<Want> wants;
  NatFlows* out;
};

int on_flow(enum nf_conntrack_msg_type, struct nf_conntrack* ct, void* data) {
  auto& d = *static_cast<Dump*>(data);
  const int family = nfct_get_attr_u8(ct, ATTR_L3PROTO);
  const auto l4 = nfct_get_attr_u8(ct, ATTR_L4PROTO);
  if (l4 == IPPROTO_TCP) {
    const auto st = nfct_get_attr_u8(ct, ATTR_TCP_STATE);
    if (st == TCP_CONNTRACK_TIME_WAIT || st == TCP_CONNTRACK_CLOSE) return NFCT_CB_CONTINUE;
  }
  const auto vport = nfct_get_attr_u16(ct, ATTR_ORIG_PORT_DST);
  const auto dport = nfct_get_attr_u16(ct, ATTR_REPL_PORT_SRC);
  const std::size_t n = family == AF_INET ? 4 : 16;
  const void* vip = nfct_get_attr(ct, family == AF_INET ? ATTR_ORIG_IPV4_DST : ATTR_ORIG_IPV6_DST);
  const void* dip = nfct_get_attr(ct, family == AF_INET ? ATTR_REPL_IPV4_SRC : ATTR_REPL_IPV6_SRC);
  if (!vip || !dip) return NFCT_CB_CONTINUE;
  for (auto& w : d.wants)
    if (w.family == family && w.l4 == l4 && w.vport == vport && w.dport == dport && !std::memcmp(w.vip, vip, n) &&
        !std::memcmp(w.dip, dip, n)) {
      ++d.out->per_member[w.member];
      ++d.out->total;
      break;
    }
  return NFCT_CB_CONTINUE;
}

std::int64_t read_number(const char* path) {
  std::ifstream f(path);
  std::int64_t n = -1;
  f >> n;
  return f ? n : -1;
}

}  // namespace

NatFlows count_nat_flows(const std::vector<const Route*>& routes) {
  NatFlows out;
  Dump d{{}, &out};
  for (auto* r : routes)
    for (auto& u : r->upstreams) {
      Want w{};
      w.family = u.addr.ss_family;
      w.l4 = r->key.protocol == model::Protocol::Tcp ? IPPROTO_TCP : IPPROTO_UDP;
      w.vport = htons(r->key.port);
      std::memcpy(w.vip, r->key.address.bytes.data(), r->key.address.size());
      if (u.addr.ss_family == AF_INET) {
        auto& sa = reinterpret_cast<const sockaddr_in&>(u.addr);
        std::memcpy(w.dip, &sa.sin_addr, 4);
        w.dport = sa.sin_port;
      } else {
        auto& sa = reinterpret_cast<const sockaddr_in6&>(u.addr);
        std::memcpy(w.dip, &sa.sin6_addr, 16);
        w.dport = sa.sin6_port;
      }
      w.member = u.state;
      d.wants.push_back(w);
    }
  nfct_handle* h = nfct_open(CONNTRACK, 0);
  if (!h) return out;
  nfct_callback_register(h, NFCT_T_ALL, on_flow, &d);
  bool ok = true;
  for (std::uint32_t family : {AF_INET, AF_INET6}) ok = nfct_query(h, NFCT_Q_DUMP, &family) == 0 && ok;
  nfct_close(h);
  out.ok = ok;
  return out;
}

ConntrackUse conntrack_use() {
  return {read_number("/proc/sys/net/netfilter/nf_conntrack_count"),
          read_number("/proc/sys/net/netfilter/nf_conntrack_max")};
}

}  // namespace azlb::engine
