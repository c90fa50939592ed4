// When probes are due: spread and jittered, never later than the interval.
#include <doctest/doctest.h>

#include <algorithm>
#include <set>
#include <vector>

#include "engine/control/prober.hpp"

using namespace azlb::engine;

TEST_CASE("a thousand new members are not probed in one burst, and all within a second") {
  Rng rng(42);
  std::vector<std::int64_t> first;
  for (int i = 0; i < 1000; ++i) first.push_back(first_probe_delay_ms(15, rng));
  CHECK(*std::min_element(first.begin(), first.end()) >= 0);
  CHECK(*std::max_element(first.begin(), first.end()) < 1000);
  // Spread: no 10 ms window holds more than 5% of them.
  std::vector<int> per_window(100);
  for (auto d : first) ++per_window[static_cast<std::size_t>(d / 10)];
  CHECK(*std::max_element(per_window.begin(), per_window.end()) <= 50);
}

TEST_CASE("the next probe comes within the interval, less up to a tenth, so members drift apart") {
  Rng rng(7);
  for (std::uint32_t interval : {1u, 5u, 15u, 3600u}) {
    std::set<std::int64_t> seen;
    for (int i = 0; i < 200; ++i) {
      const auto d = next_probe_delay_ms(interval, rng);
      CHECK(d <= std::int64_t{interval} * 1000);  // the timeout rule counts on it
      CHECK(d >= std::int64_t{interval} * 900);
      seen.insert(d);
    }
    CHECK(seen.size() > 50);
  }
  // Two members probed together at first are apart after a few rounds.
  std::int64_t a = 0, b = 0;
  for (int round = 0; round < 5; ++round) a += next_probe_delay_ms(15, rng), b += next_probe_delay_ms(15, rng);
  CHECK(a != b);
}
