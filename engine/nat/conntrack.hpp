// The kernel's connection tracking, read for the NAT data plane: its flows
// never pass through the engine, so their count per member is the
// kernel's (libnetfilter_conntrack, from Debian).
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "engine/config.hpp"
#include "engine/nat/nat_plane.hpp"

namespace azlb::engine {

// Flows in conntrack per member (its MemberState), found by the mark the
// NAT table gave them (nat_plane.hpp). A TCP flow counts until it is closing
// (TIME_WAIT, CLOSE are not counted).
// Null when conntrack cannot be read (no privilege, no module).
struct NatFlows {
  bool ok = false;
  std::map<const MemberState*, std::uint64_t> per_member;
  std::uint64_t total = 0;
  // TCP flows that are not closing: the ones that end by themselves, and so
  // the ones a stop waits for. UDP flows have no end but their timeout.
  std::uint64_t tcp_open = 0;
};
NatFlows count_nat_flows(const NatMarks& marks);

// nf_conntrack_count and nf_conntrack_max, when the kernel shows them.
struct ConntrackUse {
  std::int64_t count = -1, max = -1;
  // From 80% full, what to tell the operator (else empty): full, the kernel
  // drops new flows of every service on this host.
  std::string warning() const;
};
ConntrackUse conntrack_use();

}  // namespace azlb::engine
