// Maglev consistent hashing (Eisenbud et al., "Maglev: A Fast and Reliable
// Software Network Load Balancer", NSDI'16), weighted as Katran weights it:
// a lookup table of a prime number of slots, each naming a member, filled by
// letting the members take turns along permutations of the slots derived
// from their stable identities. Every host that builds the table from the
// same members, weights and seed gets the same table, so a flow that the
// routers move to another host reaches the same member; removing a member
// moves its own flows and few others. One place computes it; both planes
// are to use it (issue "Many hosts, one VIP").
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace azlb::engine {

// Prime, and above 100 times the members of any set azlb allows (the paper's
// rule for shares within 1%).
inline constexpr std::uint32_t kMaglevSize = 65537;

struct MaglevMember {
  std::string id;            // stable across hosts and reloads: the member's VM name
  std::uint32_t weight = 1;  // 0: no slot
};

class MaglevTable {
 public:
  // `size` must be prime. With no member of weight above 0 the table is empty.
  static MaglevTable build(const std::vector<MaglevMember>&, std::uint64_t seed, std::uint32_t size = kMaglevSize);

  bool empty() const { return slots_.empty(); }
  std::uint32_t size() const { return static_cast<std::uint32_t>(slots_.size()); }
  // The member (an index into the members it was built from) of a flow's hash.
  std::uint32_t pick(std::uint64_t flow_hash) const { return slots_[flow_hash % slots_.size()]; }
  const std::vector<std::uint32_t>& slots() const { return slots_; }
  // Slots per member, in the members' order.
  std::vector<std::uint32_t> shares(std::size_t members) const;

 private:
  std::vector<std::uint32_t> slots_;
};

// A 64-bit hash of bytes with a seed: the members' permutations and flows'
// hashes use it, so it is the same on every host (no std::hash).
std::uint64_t seeded_hash(std::string_view bytes, std::uint64_t seed);

}  // namespace azlb::engine
