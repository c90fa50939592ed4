// The Maglev table against the paper's properties: every slot filled, shares
// within 1% of the weights, the same table on every host, and removing a
// member moves its own flows and few others (measured on 100,000 tuples).
#include "engine/maglev.hpp"

#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <numeric>

using azlb::engine::kMaglevSize;
using azlb::engine::MaglevMember;
using azlb::engine::MaglevTable;
using azlb::engine::seeded_hash;

namespace {

std::vector<MaglevMember> members(int n, std::uint32_t weight = 1) {
  std::vector<MaglevMember> out;
  for (int i = 0; i < n; ++i) out.push_back({"vm" + std::to_string(i + 1), weight});
  return out;
}

// 100,000 five-tuples' hashes, the same in every run.
std::vector<std::uint64_t> tuples() {
  std::vector<std::uint64_t> out;
  for (std::uint32_t i = 0; i < 100000; ++i) {
    char t[64];
    std::snprintf(t, sizeof t, "tcp 10.%u.%u.%u:%u 127.0.0.1:80", i >> 16 & 255, i >> 8 & 255, i & 255,
                  1024 + i % 60000);
    out.push_back(seeded_hash(t, 7));
  }
  return out;
}

}  // namespace

TEST_CASE("a Maglev table fills every slot, and equal members get equal shares") {
  for (int n : {1, 2, 3, 10, 100, 650}) {
    CAPTURE(n);
    auto t = MaglevTable::build(members(n), 42);
    REQUIRE(t.size() == kMaglevSize);
    auto shares = t.shares(static_cast<std::size_t>(n));
    CHECK(std::accumulate(shares.begin(), shares.end(), 0u) == kMaglevSize);
    const auto [lo, hi] = std::minmax_element(shares.begin(), shares.end());
    CHECK(*hi - *lo <= 1);  // the paper: each takes one slot a round
  }
  CHECK(MaglevTable::build({}, 1).empty());
  CHECK(MaglevTable::build(members(3, 0), 1).empty());
}

TEST_CASE("weights give shares within 1% of them") {
  std::vector<MaglevMember> m = {{"a", 1}, {"b", 2}, {"c", 3}, {"d", 10}, {"e", 256}, {"f", 0}};
  auto t = MaglevTable::build(m, 9);
  auto shares = t.shares(m.size());
  const double total_weight = 1 + 2 + 3 + 10 + 256;
  for (std::size_t i = 0; i < m.size(); ++i) {
    CAPTURE(m[i].id);
    const double expected = kMaglevSize * m[i].weight / total_weight;
    CHECK(std::abs(shares[i] - expected) <= 0.01 * kMaglevSize * m[i].weight / total_weight + 1);
  }
  CHECK(shares[5] == 0);
}

TEST_CASE("every host builds the same table; another seed, another table") {
  auto a = MaglevTable::build(members(10), 1234), b = MaglevTable::build(members(10), 1234);
  CHECK(a.slots() == b.slots());
  auto c = MaglevTable::build(members(10), 1235);
  CHECK(a.slots() != c.slots());
  // The members' order does not change who gets a flow, only their indexes.
  auto m = members(10);
  std::reverse(m.begin(), m.end());
  auto d = MaglevTable::build(m, 1234);
  std::size_t same = 0;
  for (std::uint32_t s = 0; s < a.size(); ++s) same += a.slots()[s] == 9 - d.slots()[s];
  CHECK(same > a.size() * 99 / 100);
}

TEST_CASE("removing one of ten members moves its flows and few others") {
  auto all = members(10);
  auto before = MaglevTable::build(all, 77);
  auto fewer = all;
  fewer.erase(fewer.begin() + 3);  // vm4 goes
  auto after = MaglevTable::build(fewer, 77);
  std::size_t theirs = 0, others = 0, others_moved = 0;
  for (auto h : tuples()) {
    const auto& was = all[before.pick(h)].id;
    const auto& now = fewer[after.pick(h)].id;
    if (was == "vm4") {
      ++theirs;
      CHECK(now != "vm4");
      continue;
    }
    ++others;
    others_moved += was != now;
  }
  const double moved = 100.0 * static_cast<double>(others_moved) / static_cast<double>(others);
  MESSAGE("flows of the other 9 members that moved: " << moved << "% (" << others_moved << " of " << others
                                                       << "); the removed member had " << theirs);
  CHECK(theirs > 9000);
  CHECK(theirs < 11000);
  CHECK(moved < 3.0);
}
