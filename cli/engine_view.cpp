#include "cli/engine_view.hpp"

#include "engine/control/control.hpp"
#include "store/state_store.hpp"
#include "model/text.hpp"

namespace azlb::cli {

MemberLive EngineView::member(const std::string& svc, const std::string& set, const std::string& vm,
                              const std::string& ep) const {
  auto it = members.find({svc, set, vm, ep});
  return it == members.end() ? MemberLive{} : it->second;
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
  if (!running) return "Engine: not running, so health is unknown. Start it with 'azlb engine start'.";
  std::string s = "Engine: running (pid " + std::to_string(pid) + ", " +
                  model::count(static_cast<std::uint64_t>(listeners), "listener", "listeners") + ")";
  if (!store_error.empty()) s += "; the state is out of reach (" + store_error + "): it serves what is in force";
  if (!announce.empty()) s += "; " + announce;
  if (!error.empty()) s += "; " + error;
  return s;
}

EngineView query_engine(const store::Location& state) {
  EngineView v;
  auto abs = state.absolute();
  auto pid = engine::running_pid(abs);
  if (!pid) return v;
  v.running = true;
  v.pid = *pid;
  auto r = engine::admin_request(abs, "GET", "/v1/status");
  if (!r || r->status != 200) {
    v.error = r ? "admin socket answered " + std::to_string(r->status) : r.error().message;
    return v;
  }
  auto j = Json::parse(r->body, nullptr, false);
  if (!j.is_object()) {
    v.error = "admin socket sent no JSON";
    return v;
  }
  v.listeners = static_cast<int>(j["listeners"].size());
  v.identity = {{"host", j.value("host", std::string())},
                {"pid", j.value("pid", 0)},
                {"version", j.value("version", std::string())},
                {"started", j.value("started", std::string())},
                {"announcing", Json::array()}};
  if (j.contains("announce") && j["announce"].is_object() && j["announce"].value("enabled", false)) {
    const auto& a = j["announce"];
    v.identity["announcing"] = a.value("announcing", Json::array());
    v.identity["announce"] = a;
    std::string list;
    for (auto& vip : a.value("announcing", Json::array())) list += (list.empty() ? "" : ", ") + vip.get<std::string>();
    v.announce = a.value("withdrawn", false) ? "withdrawn (engine announce takes it back)"
                 : list.empty()              ? "announcing nothing: no VIP can be served now"
                                             : "announcing " + list + " (table " + a["table"].dump() + ")";
    for (auto& n : a.value("not_announced", Json::array()))
      if (n.value("why", std::string()) != "withdrawn")
        v.announce += "; not " + n.value("vip", std::string()) + ": " + n.value("why", std::string());
    if (a.contains("error")) v.announce += "; " + a.value("error", std::string());
    if (a.contains("handoff") && a["handoff"].is_object()) {
      const auto& h = a["handoff"];
      std::string peers;
      for (auto& p : h.value("peers", Json::array()))
        if (p.is_string()) peers += (peers.empty() ? "" : ", ") + p.get<std::string>();
      if (!peers.empty()) v.announce += "; packets of proxied connections held elsewhere go to " + peers;
      if (h.contains("error")) v.announce += "; hand-off: " + h.value("error", std::string());
    }
  }
  if (j.contains("store") && j["store"].is_object() && !j["store"].value("reachable", true))
    v.store_error = j["store"].value("error", std::string()) + ", since " + j["store"].value("since", std::string());
  for (auto& m : j["members"]) {
    const std::string set = m["lbset"].is_null() ? "" : m["lbset"].get<std::string>();
    MemberLive live{m.value("health", "unknown"), std::nullopt, std::nullopt};
    if (m.contains("active") && m["active"].is_number_unsigned()) live.active = m["active"].get<std::uint64_t>();
    if (m.contains("share") && m["share"].is_number()) live.share = m["share"].get<double>();
    v.members[{m["service"], set, m["vm"], m["endpoint"]}] = live;
  }
  if (!j["last_reload"].value("ok", true))
    v.error = "the state file did not load; the engine keeps its last good configuration: " +
              j["last_reload"].value("error", std::string());
  if (j.contains("nat") && j["nat"].is_object()) {
    if (j["nat"].contains("error")) v.error += (v.error.empty() ? "" : "; ") + j["nat"].value("error", std::string());
    if (j["nat"].contains("warning")) v.error += (v.error.empty() ? "" : "; ") + j["nat"].value("warning", std::string());
  }
  for (auto& u : j["unbound"])
    v.error += (v.error.empty() ? "" : "; ") + u.value("error", std::string()) + " (retrying)";
  return v;
}

EngineList engines_of(const store::Location& state, const EngineView& local) {
  EngineList out;
  if (!state.is_etcd()) {
    if (local.running && local.identity.is_object()) out.engines.push_back(local.identity);
    return out;
  }
  auto listed = store::registered_engines(state);
  if (!listed) {
    out.error = listed.error().message;
    return out;
  }
  for (auto& text : *listed) {
    auto j = Json::parse(text, nullptr, false);
    if (j.is_object()) out.engines.push_back(std::move(j));
  }
  return out;
}

}  // namespace azlb::cli
