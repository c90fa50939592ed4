// The proxy plane across hosts: a proxied connection lives on the host that
// accepted it, but the routers may move its packets to another host (this
// host withdrawn, ECMP's paths changed). That host hands them on to the
// others, as GitHub's GLB does with its "second chance": a packet for a
// proxied VIP and port that is not a SYN and that no socket of this host
// knows (the socket lookup finds the listener, which carries
// kHandoffListenerMark; accepted sockets are set back to mark 0) is copied,
// unchanged but for its TTL, to every peer host (nftables `dup`), where the
// host that holds the connection takes it; the others drop their copy. The
// local copy goes on to the listener as before (a SYN cookie's last ACK is
// one), and the reset the listener answers with (it carries the listener's
// mark) is dropped: the connection is not this host's to end.
//
// A copy leaves with TTL (hop limit) 1, which no router leaves on a
// client's packet: a host that does not know a copy drops it instead of
// handing it on again, so a packet crosses the hosts' link at most once.
#pragma once

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "model/address.hpp"

namespace azlb::engine {

// In azlb's mark space (kNatMarkTag's neighbour: no NAT or DSR rule matches it).
inline constexpr std::uint32_t kHandoffListenerMark = 0xa3000001u;

// Each stray packet costs a copy per peer: a state that names more hosts
// (a key written by another program, a misconfiguration) hands to the first
// this many, by address.
inline constexpr std::size_t kMaxHandoffPeers = 64;

struct HandoffPlan {
  std::vector<std::pair<model::IpAddress, std::uint16_t>> vips;  // proxied TCP VIPs and ports
  std::vector<model::IpAddress> peers;                          // the other hosts' hand-off addresses
  bool operator==(const HandoffPlan&) const = default;
};

// The tables' name for an engine's NAT table name (one per state).
std::string handoff_table_name(const std::string& nat_table);

// The nftables script that makes the hand-off tables (`table ip` and `table
// ip6`: nftables' dup takes an address of the table's family only) hold
// `plan`, replacing what they held; a family without a VIP or without a peer
// has no table. An empty plan removes both.
std::string handoff_script(const std::string& table, const HandoffPlan& plan);

// This host's address that peers send their copies to, per family: the one
// the kernel would send from towards the rest of the network (a connected
// UDP socket's local address; nothing is sent). None where the family has
// no route out.
std::vector<model::IpAddress> default_handoff_addresses();

}  // namespace azlb::engine
