// Maglev consistent hashing (Eisenbud et al., "Maglev: A Fast and Reliable
// Software Network Load Balancer", NSDI'16), weighted as Katran weights it:
// a lookup table of a prime number of slots, each naming a member, filled by
// letting the members take turns along permutations of the slots derived
// from their stable identities. Every host that builds the table from the
// same members, weights and seed gets the same table, so a flow that the
// routers move to another host reaches the same member; removing a member
// moves its own flows and few others. One place computes it, and both
// planes use it: the proxy's picker (picker.hpp) and the NAT plane's slot
// maps (nat_plane.hpp).
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace azlb::engine {

// Prime, and above 100 times the members of any set azlb allows (the paper's
// rule for shares within 1%).
inline constexpr std::uint32_t kMaglevSize = 65537;

// The NAT plane's table size: the smallest of a few primes that is at least
// 100 times the members (the paper's rule), 65,537 above 655 members. Each
// slot is an element of an nftables map, and nftables is slow with many:
// loading a map of 65,537 elements took 0.4 s and listing it 0.9 s here, on
// every change of health, where 1,031 elements take a few milliseconds.
// Every host computes the same size from the same members, so they agree.
std::uint32_t nat_table_size(std::size_t members);

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

  // The member that takes a flow of `slot` when only members for which
  // usable(i) holds may: the slot's own, else the next slot's, and so on.
  // A member that is down or drained so gives its flows to the members of
  // the slots that follow its own (spread as the table spreads them), and no
  // other flow moves; the table itself is rebuilt only when the members or
  // their weights change. -1 when no member is usable.
  template <class Usable>
  int member_of_slot(std::uint32_t slot, Usable usable) const {
    const auto n = size();
    for (std::uint32_t k = 0; k < n; ++k) {
      auto m = slots_[(slot + k) % n];
      if (usable(m)) return static_cast<int>(m);
    }
    return -1;
  }
  // member_of_slot for every slot at once, in O(size): what the NAT plane's
  // slot map holds.
  template <class Usable>
  std::vector<int> effective(Usable usable) const {
    const auto n = size();
    std::vector<int> out(n, -1);
    int next = -1;
    // Two passes backwards around the ring: the second carries the first
    // usable member past the end of the table to the slots before it.
    for (std::uint64_t k = 2ull * n; k-- > 0;) {
      const auto s = static_cast<std::uint32_t>(k % n);
      if (usable(slots_[s])) next = static_cast<int>(slots_[s]);
      out[s] = next;
    }
    return out;
  }

 private:
  std::vector<std::uint32_t> slots_;
};

// A 64-bit hash of bytes with a seed: the members' permutations and flows'
// hashes use it, so it is the same on every host (no std::hash).
std::uint64_t seeded_hash(std::string_view bytes, std::uint64_t seed);

}  // namespace azlb::engine
