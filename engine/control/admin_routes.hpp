// What the admin socket answers, by path: the engine's status (JSON), its
// metrics (Prometheus), what a stop would wait for (JSON, counted afresh:
// `engine stop` says it before it signals) and the reload command.
#pragma once

#include <functional>
#include <map>
#include <string>

#include "engine/control/admin.hpp"
#include "engine/control/report.hpp"

namespace azlb::engine {

struct ReloadOutcome {
  std::string error;  // empty: applied (or nothing to apply)
  bool changed = false;
  std::uint64_t generation = 0;
  std::map<ListenKey, std::string> unbound;
};

HttpResponse serve_admin(const std::string& method, const std::string& path,
                         const std::function<EngineSnapshot()>& snapshot,
                         const std::function<ReloadOutcome()>& reload, const std::function<DrainInfo()>& drain,
                         const std::function<HttpResponse(bool withdraw)>& announce);

}  // namespace azlb::engine
