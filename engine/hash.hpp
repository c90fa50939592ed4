// The engine's stable hashes: the same on every host and every run (never
// std::hash), for affinity and the Maglev table.
#pragma once

#include <cstdint>
#include <string_view>

namespace azlb::engine {

// splitmix64's finaliser: every input bit moves every output bit.
inline std::uint64_t mix64(std::uint64_t x) {
  x ^= x >> 30;
  x *= 0xbf58476d1ce4e5b9ull;
  x ^= x >> 27;
  x *= 0x94d049bb133111ebull;
  return x ^ (x >> 31);
}

// FNV-1a over bytes, from `basis` (FNV's own offset basis by default).
inline std::uint64_t fnv1a64(std::string_view bytes, std::uint64_t basis = 0xcbf29ce484222325ull) {
  for (unsigned char c : bytes) basis = (basis ^ c) * 0x100000001b3ull;
  return basis;
}

}  // namespace azlb::engine
