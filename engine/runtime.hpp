// What the engine knows about each member and listener while it runs: health
// and counters. These outlive a reload (they are found again by key), so that
// a member keeps its health and its totals when the state file changes.
#pragma once

#include <array>
#include <atomic>
#include <compare>
#include <ctime>
#include <cstdint>
#include <string>

#include "engine/counters.hpp"
#include "model/address.hpp"
#include "model/values.hpp"

namespace azlb::engine {

inline constexpr unsigned kMaxThreads = 64;

enum class Health : std::uint8_t { Unknown, Up, Down };
const char* to_string(Health);

// Counters a single worker writes and the control thread reads. One cache
// line per worker: nothing is shared between workers on the hot path.
struct alignas(64) ThreadCounters {
  AZLB_MEMBER_COUNTERS(AZLB_COUNTER_FIELD)

  // Only the owning worker writes, so a load and a store need no locked
  // read-modify-write.
  static void add(std::atomic<std::uint64_t>& c, std::uint64_t n) {
    c.store(c.load(std::memory_order_relaxed) + n, std::memory_order_relaxed);
  }
  static void sub(std::atomic<std::uint64_t>& c, std::uint64_t n) {
    c.store(c.load(std::memory_order_relaxed) - n, std::memory_order_relaxed);
  }
};

struct Totals {
  AZLB_MEMBER_COUNTERS(AZLB_TOTAL_FIELD)
};

// A member of a set, or the one VM behind a plain endpoint (set empty).
struct MemberKey {
  std::string service, set, vm, endpoint;
  auto operator<=>(const MemberKey&) const = default;
  std::string to_string() const;
};

struct MemberState {
  MemberKey key;
  std::atomic<Health> health{Health::Unknown};
  // Probe results: written and read by the control thread only.
  std::int64_t last_probe_ms = 0;
  std::int64_t last_pass_ms = 0;
  bool last_probe_ok = false;
  std::string last_probe_detail;
  std::time_t health_since = 0;  // when the prober last changed its health (0: never)
  std::array<ThreadCounters, kMaxThreads> per_thread;

  explicit MemberState(MemberKey k) : key(std::move(k)) {}
  bool eligible() const { return health.load(std::memory_order_relaxed) != Health::Down; }
  Totals totals() const;
};

// Where the engine listens: one socket per worker for each key.
struct ListenKey {
  model::Protocol protocol;
  model::IpAddress address;
  std::uint16_t port;
  auto operator<=>(const ListenKey&) const = default;
  std::string to_string() const;  // "tcp 127.0.0.1:8080", "udp [::1]:53"
};

struct alignas(64) ListenerCounters {
  AZLB_LISTENER_COUNTERS(AZLB_COUNTER_FIELD)
};

struct ListenerTotals {
  AZLB_LISTENER_COUNTERS(AZLB_TOTAL_FIELD)
};

struct ListenerState {
  ListenKey key;
  std::array<ListenerCounters, kMaxThreads> per_thread;
  explicit ListenerState(ListenKey k) : key(std::move(k)) {}
  ListenerTotals totals() const;
};

}  // namespace azlb::engine
