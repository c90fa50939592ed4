#include "engine/maglev.hpp"

#include <algorithm>

#include "engine/hash.hpp"

namespace azlb::engine {

namespace {

constexpr std::uint64_t kOffsetSalt = 0x6f66667365742d31ull;  // the two hashes of the paper
constexpr std::uint64_t kSkipSalt = 0x736b69702d2d2d32ull;

}  // namespace

std::uint64_t seeded_hash(std::string_view bytes, std::uint64_t seed) {
  // FNV-1a over the bytes, then a full mix with the seed: stable, and every
  // input bit reaches every output bit.
  return mix64(fnv1a64(bytes, 0xcbf29ce484222325ull ^ mix64(seed)) ^ seed);
}

std::uint32_t nat_table_size(std::size_t members) {
  for (std::uint32_t p : {1031u, 4099u, 16411u})
    if (members * 100 <= p) return p;
  return kMaglevSize;
}

MaglevTable MaglevTable::build(const std::vector<MaglevMember>& members, std::uint64_t seed, std::uint32_t size) {
  MaglevTable t;
  std::uint32_t max_weight = 0;
  for (auto& m : members) max_weight = std::max(max_weight, m.weight);
  if (members.empty() || max_weight == 0 || size < 2) return t;
  const std::size_t n = members.size();
  std::vector<std::uint64_t> offset(n), skip(n), next(n, 0), credit(n, 0);
  for (std::size_t i = 0; i < n; ++i) {
    offset[i] = seeded_hash(members[i].id, seed ^ kOffsetSalt) % size;
    skip[i] = seeded_hash(members[i].id, seed ^ kSkipSalt) % (size - 1) + 1;
  }
  constexpr std::uint32_t kFree = 0xffffffffu;
  t.slots_.assign(size, kFree);
  std::uint32_t filled = 0;
  // Turns are taken in the order of the members' identities, not of the
  // list: two lists of the same members (a tcp and a udp set of the same
  // VMs, listed otherwise) make the same table.
  std::vector<std::size_t> order(n);
  for (std::size_t i = 0; i < n; ++i) order[i] = i;
  std::sort(order.begin(), order.end(), [&](auto a, auto b) { return members[a].id < members[b].id; });
  // Turns in proportion to weight: each round every member earns its weight
  // in credit and takes a slot for each max_weight it holds (Katran's way),
  // so with equal weights every member takes one slot a round, as in the paper.
  while (filled < size) {
    for (std::size_t turn = 0; turn < n && filled < size; ++turn) {
      const std::size_t i = order[turn];
      credit[i] += members[i].weight;
      if (credit[i] < max_weight) continue;
      credit[i] -= max_weight;
      // The member's next preferred slot that is still free.
      std::uint64_t c;
      do {
        c = (offset[i] + skip[i] * next[i]) % size;
        ++next[i];
      } while (t.slots_[c] != kFree);
      t.slots_[c] = static_cast<std::uint32_t>(i);
      ++filled;
    }
  }
  return t;
}

std::vector<std::uint32_t> MaglevTable::shares(std::size_t members) const {
  std::vector<std::uint32_t> out(members, 0);
  for (auto s : slots_)
    if (s < members) ++out[s];
  return out;
}

}  // namespace azlb::engine
