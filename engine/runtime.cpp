#include "engine/runtime.hpp"

namespace azlb::engine {

const char* to_string(Health h) {
  switch (h) {
    case Health::Up: return "up";
    case Health::Down: return "down";
    default: return "unknown";
  }
}

std::string MemberKey::to_string() const {
  return service + "/" + (set.empty() ? "" : set + "/") + vm + "/" + endpoint;
}

Totals MemberState::totals() const {
  Totals t;
  for (auto& c : per_thread) {
    t.active += c.active.load(std::memory_order_relaxed);
    t.total += c.total.load(std::memory_order_relaxed);
    t.bytes_in += c.bytes_in.load(std::memory_order_relaxed);
    t.bytes_out += c.bytes_out.load(std::memory_order_relaxed);
    t.connect_failures += c.connect_failures.load(std::memory_order_relaxed);
  }
  return t;
}

std::string ListenKey::to_string() const {
  auto ip = address.to_string();
  if (address.family == model::Family::V6) ip = "[" + ip + "]";
  return std::string(model::to_string(protocol)) + " " + ip + ":" + std::to_string(port);
}

namespace {
template <class F>
std::uint64_t sum(const std::array<ListenerCounters, kMaxThreads>& a, F field) {
  std::uint64_t s = 0;
  for (auto& c : a) s += (c.*field).load(std::memory_order_relaxed);
  return s;
}
}  // namespace

std::uint64_t ListenerState::denied() const { return sum(per_thread, &ListenerCounters::denied); }
std::uint64_t ListenerState::refused() const { return sum(per_thread, &ListenerCounters::refused); }
std::uint64_t ListenerState::dropped() const { return sum(per_thread, &ListenerCounters::dropped); }
std::uint64_t ListenerState::spliced() const { return sum(per_thread, &ListenerCounters::spliced); }

}  // namespace azlb::engine
