// Picks the upstream for a new connection or UDP flow. It only picks: health
// comes from the prober, bytes are moved by the proxies.
#pragma once

#include <cstdint>
#include <span>

#include "engine/config.hpp"

namespace azlb::engine {

// A small, fast per-worker random source (wyrand); not for cryptography, only
// for spreading connections evenly.
class Rng {
 public:
  explicit Rng(std::uint64_t seed) : s_(seed) {}
  std::uint64_t next() {
    s_ += 0xa0761d6478bd642full;
    __uint128_t m = static_cast<__uint128_t>(s_) * (s_ ^ 0xe7037ed1a0b428dbull);
    return static_cast<std::uint64_t>(m >> 64) ^ static_cast<std::uint64_t>(m);
  }
  // Uniform in [0, n) without modulo bias worth measuring (Lemire's method).
  std::uint32_t below(std::uint32_t n) {
    return static_cast<std::uint32_t>((static_cast<__uint128_t>(next()) * n) >> 64);
  }

 private:
  std::uint64_t s_;
};

// What affinity modes hash: the client's address, and for source-ip-protocol
// the protocol too. Computed once per connection.
std::uint64_t client_hash(const sockaddr_storage& client, model::Protocol);

inline constexpr int kNoUpstream = -1;

// The index of the chosen upstream in route.upstreams, skipping `tried`
// (earlier failed attempts of this connection), or kNoUpstream.
//  - five-tuple: uniformly at random among eligible upstreams;
//  - source-ip(-protocol): rendezvous hashing, so a client stays on its member
//    while the membership is unchanged and only the clients of a member that
//    goes down move.
// With every upstream down, when_all_down=serve-all uses them all.
int pick(const Route&, std::uint64_t client_hash, std::span<const std::uint8_t> tried, Rng&);

}  // namespace azlb::engine
