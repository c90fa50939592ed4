#include "cli/engine_view.hpp"

namespace azlb::cli {

std::string EngineView::health(const std::string& svc, const std::string& set, const std::string& vm,
                               const std::string& ep) const {
  auto it = member_health.find({svc, set, vm, ep});
  return it == member_health.end() ? "unknown" : it->second;
}

Json EngineView::to_json() const {
  Json j = {{"running", running}};
  if (running) {
    j["pid"] = pid;
    j["listeners"] = listeners;
  }
  if (!error.empty()) j["error"] = error;
  return j;
}

std::string EngineView::summary() const {
  if (!running) return "Engine: not running, so health is unknown.";
  std::string s = "Engine: running (pid " + std::to_string(pid) + ", " + std::to_string(listeners) + " listeners)";
  if (!error.empty()) s += "; " + error;
  return s;
}

// The engine does not exist yet in this build: nothing can be running.
EngineView query_engine(const std::filesystem::path&) { return {}; }

}  // namespace azlb::cli
