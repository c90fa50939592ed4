#include "engine/nat/conntrack.hpp"

#include <arpa/inet.h>
#include <linux/netfilter/nf_conntrack_tcp.h>
#include <netinet/in.h>

#include <fstream>
#include <unordered_map>

#include "engine/nat/nat_libs.hpp"

namespace azlb::engine {

namespace {

struct Dump {
  std::unordered_map<std::uint32_t, const MemberState*> by_mark;
  NatFlows* out;
  const ConntrackApi* ct;
};

int on_flow(enum nf_conntrack_msg_type, struct nf_conntrack* ct, void* data) {
  auto& d = *static_cast<Dump*>(data);
  const bool tcp = d.ct->get_attr_u8(ct, ATTR_L4PROTO) == IPPROTO_TCP;
  if (tcp) {
    const auto st = d.ct->get_attr_u8(ct, ATTR_TCP_STATE);
    if (st == TCP_CONNTRACK_TIME_WAIT || st == TCP_CONNTRACK_CLOSE) return NFCT_CB_CONTINUE;
  }
  // Another engine's flows carry the tag too, with marks of its own.
  auto it = d.by_mark.find(d.ct->get_attr_u32(ct, ATTR_MARK));
  if (it == d.by_mark.end()) return NFCT_CB_CONTINUE;
  ++d.out->per_member[it->second];
  ++d.out->total;
  if (tcp) ++d.out->tcp_open;
  return NFCT_CB_CONTINUE;
}

std::int64_t read_number(const char* path) {
  std::ifstream f(path);
  std::int64_t n = -1;
  f >> n;
  return f ? n : -1;
}

}  // namespace

NatFlows count_nat_flows(const NatMarks& marks) {
  NatFlows out;
  const ConntrackApi* api = conntrack_api();
  if (!api) return out;  // not ok: the counts are unknown
  Dump d{{}, &out, api};
  for (auto& [member, mark] : marks) d.by_mark.emplace(mark, member);
  nfct_handle* h = api->open(CONNTRACK, 0);
  if (!h) return out;
  api->callback_register(h, NFCT_T_ALL, on_flow, &d);
  // The kernel sends azlb's flows only (their mark's tag): the rest of a
  // large conntrack table never crosses into user space.
  nfct_filter_dump* filter = api->filter_dump_create();
  bool ok = filter != nullptr;
  if (ok) {
    nfct_filter_dump_mark tagged{kNatMarkTag, kNatMarkMask};
    api->filter_dump_set_attr(filter, NFCT_FILTER_DUMP_MARK, &tagged);
    for (std::uint8_t family : {AF_INET, AF_INET6}) {
      api->filter_dump_set_attr_u8(filter, NFCT_FILTER_DUMP_L3NUM, family);
      // A dump that the table's changes interrupted is read again, from
      // its start, with the counts of the broken one taken back.
      const NatFlows before = out;
      int rc = -1;
      for (int attempt = 0; attempt < 3 && rc != 0; ++attempt) {
        out = before;
        rc = api->query(h, NFCT_Q_DUMP_FILTER, filter);
      }
      ok = rc == 0 && ok;
    }
    api->filter_dump_destroy(filter);
  }
  api->close(h);
  out.ok = ok;
  return out;
}

std::string ConntrackUse::warning() const {
  if (max <= 0 || count * 10 < max * 8) return "";
  return "conntrack is " + std::to_string(count * 100 / max) + "% full (" + std::to_string(count) +
         " of nf_conntrack_max " + std::to_string(max) +
         "): new flows are dropped when it is full; raise net.netfilter.nf_conntrack_max";
}

ConntrackUse conntrack_use() {
  return {read_number("/proc/sys/net/netfilter/nf_conntrack_count"),
          read_number("/proc/sys/net/netfilter/nf_conntrack_max")};
}

}  // namespace azlb::engine
