#include "engine/report.hpp"

#include <nlohmann/json.hpp>

#include "engine/sockets.hpp"

namespace azlb::engine {

using Json = nlohmann::ordered_json;

namespace {

std::string iso8601(std::time_t t) {
  char buf[32];
  tm tmv;
  gmtime_r(&t, &tmv);
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tmv);
  return buf;
}

// Wall-clock time of a monotonic millisecond stamp taken by the prober.
std::time_t wall_of(std::int64_t mono_ms) {
  timespec mono, real;
  clock_gettime(CLOCK_MONOTONIC, &mono);
  clock_gettime(CLOCK_REALTIME, &real);
  std::int64_t now_mono_ms = static_cast<std::int64_t>(mono.tv_sec) * 1000 + mono.tv_nsec / 1000000;
  return real.tv_sec - (now_mono_ms - mono_ms) / 1000;
}

std::string label_escape(const std::string& s) {
  std::string out;
  for (char c : s) {
    if (c == '\\' || c == '"') out += '\\';
    if (c == '\n') {
      out += "\\n";
      continue;
    }
    out += c;
  }
  return out;
}

}  // namespace

std::string status_json(const EngineSnapshot& s) {
  Json listeners = Json::array(), members = Json::array();
  for (auto& r : s.config.routes) {
    listeners.push_back({{"address", r.key.to_string()},
                         {"route", r.name},
                         {"members", r.upstreams.size()},
                         {"denied", r.counters->denied()},
                         {"refused", r.counters->refused()},
                         {"dropped", r.counters->dropped()},
                         {"spliced", r.counters->spliced()}});
    for (auto& u : r.upstreams) {
      auto& m = *u.state;
      auto t = m.totals();
      Json probe = nullptr;
      if (m.last_probe_ms)
        probe = {{"ok", m.last_probe_ok}, {"at", iso8601(wall_of(m.last_probe_ms))}, {"detail", m.last_probe_detail}};
      members.push_back({{"service", m.key.service},
                         {"lbset", m.key.set.empty() ? Json(nullptr) : Json(m.key.set)},
                         {"vm", m.key.vm},
                         {"endpoint", m.key.endpoint},
                         {"address", describe(u.addr)},
                         {"health", to_string(m.health.load())},
                         {"last_probe", probe},
                         {"active", t.active},
                         {"total", t.total},
                         {"bytes_in", t.bytes_in},
                         {"bytes_out", t.bytes_out},
                         {"connect_failures", t.connect_failures}});
    }
  }
  Json unbound = Json::array();
  for (auto& [key, why] : s.unbound) unbound.push_back({{"address", key.to_string()}, {"error", why}});
  Json reload = {{"ok", s.last_reload.ok}, {"at", iso8601(s.last_reload.at)}};
  if (!s.last_reload.ok) reload["error"] = s.last_reload.error;
  Json j = {{"pid", s.pid},
            {"state", s.state_path},
            {"generation", s.generation},
            {"threads", s.threads},
            {"uptime_s", s.uptime_s},
            {"last_reload", reload},
            {"listeners", listeners},
            {"unbound", unbound},
            {"members", members}};
  return j.dump(2) + "\n";
}

std::string metrics_text(const EngineSnapshot& s) {
  std::string out;
  auto family = [&](const char* name, const char* type, const char* help) {
    out += std::string("# HELP ") + name + " " + help + "\n# TYPE " + name + " " + type + "\n";
  };
  auto member_labels = [](const MemberState& m) {
    return "{service=\"" + label_escape(m.key.service) + "\",lbset=\"" + label_escape(m.key.set) + "\",vm=\"" +
           label_escape(m.key.vm) + "\",endpoint=\"" + label_escape(m.key.endpoint) + "\"}";
  };
  struct Metric {
    const char* name;
    const char* type;
    const char* help;
    std::uint64_t Totals::*field;
  };
  const Metric metrics[] = {
      {"azlb_member_connections_active", "gauge", "Open connections and UDP flows to the member.", &Totals::active},
      {"azlb_member_connections_total", "counter", "Connections and UDP flows made to the member.", &Totals::total},
      {"azlb_member_bytes_in_total", "counter", "Bytes forwarded from clients to the member.", &Totals::bytes_in},
      {"azlb_member_bytes_out_total", "counter", "Bytes forwarded from the member to clients.", &Totals::bytes_out},
      {"azlb_member_connect_failures_total", "counter", "Connects to the member that failed (then retried elsewhere).",
       &Totals::connect_failures},
  };
  family("azlb_member_up", "gauge", "1 if the member is up, 0 if down, -1 if not probed yet.");
  for (auto& r : s.config.routes)
    for (auto& u : r.upstreams) {
      auto h = u.state->health.load();
      out += "azlb_member_up" + member_labels(*u.state) + " " +
             (h == Health::Up ? "1" : h == Health::Down ? "0" : "-1") + "\n";
    }
  for (auto& m : metrics) {
    family(m.name, m.type, m.help);
    for (auto& r : s.config.routes)
      for (auto& u : r.upstreams)
        out += std::string(m.name) + member_labels(*u.state) + " " + std::to_string(u.state->totals().*m.field) + "\n";
  }
  family("azlb_listener_denied_total", "counter", "Clients turned away by the endpoint's ACL.");
  for (auto& r : s.config.routes)
    out += "azlb_listener_denied_total{listener=\"" + r.key.to_string() + "\"} " + std::to_string(r.counters->denied()) + "\n";
  family("azlb_listener_refused_total", "counter", "Clients reset because no member was up.");
  for (auto& r : s.config.routes)
    out += "azlb_listener_refused_total{listener=\"" + r.key.to_string() + "\"} " + std::to_string(r.counters->refused()) + "\n";
  family("azlb_listener_spliced_total", "counter", "Bulk connection halves moved to zero-copy splice.");
  for (auto& r : s.config.routes)
    out += "azlb_listener_spliced_total{listener=\"" + r.key.to_string() + "\"} " + std::to_string(r.counters->spliced()) + "\n";
  family("azlb_config_generation", "gauge", "Generation of the configuration in force.");
  out += "azlb_config_generation " + std::to_string(s.generation) + "\n";
  return out;
}

std::string reload_json(bool changed, std::uint64_t generation, const std::string& error) {
  Json j = {{"ok", error.empty()}, {"changed", changed}, {"generation", generation}};
  if (!error.empty()) j["error"] = error;
  return j.dump() + "\n";
}

}  // namespace azlb::engine
