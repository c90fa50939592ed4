// Random numbers for spreading load and probes; not for cryptography.
#pragma once

#include <cstdint>

namespace azlb::engine {

// A small, fast random source (wyrand), one per thread: for spreading
// connections and probes evenly.
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

}  // namespace azlb::engine
