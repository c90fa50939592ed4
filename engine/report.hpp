// The engine's runtime view as the admin socket serves it: JSON for
// `azlb status` and scripts, Prometheus text for scrapers. Read-only.
#pragma once

#include <ctime>
#include <string>

#include "engine/config.hpp"

namespace azlb::engine {

struct ReloadInfo {
  bool ok = true;
  std::time_t at = 0;
  std::string error;
};

struct EngineSnapshot {
  const Config& config;
  std::uint64_t generation;
  unsigned threads;
  int pid;
  const ReloadInfo& last_reload;
  std::int64_t uptime_s;
  std::string state_path;
  const std::map<ListenKey, std::string>& unbound;  // listeners of the state that could not bind
};

std::string status_json(const EngineSnapshot&);
std::string metrics_text(const EngineSnapshot&);
std::string reload_json(bool changed, std::uint64_t generation, const std::string& error);

}  // namespace azlb::engine
