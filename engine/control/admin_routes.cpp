#include "engine/control/admin_routes.hpp"

namespace azlb::engine {

HttpResponse serve_admin(const std::string& method, const std::string& path,
                         const std::function<EngineSnapshot()>& snapshot,
                         const std::function<ReloadOutcome()>& reload, const std::function<DrainInfo()>& drain,
                         const std::function<HttpResponse(bool withdraw)>& announce) {
  if (path == "/v1/status" || path == "/metrics") {
    if (method != "GET") return {405, "text/plain", "use GET\n"};
    if (path == "/metrics") return {200, "text/plain; version=0.0.4", metrics_text(snapshot())};
    return {200, "application/json", status_json(snapshot())};
  }
  if (path == "/v1/drain") {
    if (method != "GET") return {405, "text/plain", "use GET\n"};
    return {200, "application/json", drain_json(drain())};
  }
  if (path == "/v1/reload") {
    if (method != "POST") return {405, "text/plain", "use POST\n"};
    auto r = reload();
    if (!r.error.empty()) return {422, "application/json", reload_json(false, r.generation, r.error, r.unbound)};
    return {200, "application/json", reload_json(r.changed, r.generation, "", r.unbound)};
  }
  if (path == "/v1/withdraw" || path == "/v1/announce") {
    if (method != "POST") return {405, "text/plain", "use POST\n"};
    return announce(path == "/v1/withdraw");
  }
  return {404, "text/plain", "not found: try /v1/status or /metrics\n"};
}

}  // namespace azlb::engine
