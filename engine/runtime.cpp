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
#define AZLB_SUM(name, kind, prom, help) t.name += c.name.load(std::memory_order_relaxed);
  for (auto& c : per_thread) {
    AZLB_MEMBER_COUNTERS(AZLB_SUM)
  }
  return t;
}

std::string ListenKey::to_string() const {
  return std::string(model::to_string(protocol)) + " " + address.with_port(port);
}

ListenerTotals ListenerState::totals() const {
  ListenerTotals t;
  for (auto& c : per_thread) {
    AZLB_LISTENER_COUNTERS(AZLB_SUM)
  }
  return t;
}
#undef AZLB_SUM

}  // namespace azlb::engine
