#include "engine/control/report.hpp"
#include <cmath>
#include <cstdio>
#include "engine/picker.hpp"

#include <nlohmann/json.hpp>

#include "engine/proxy/sockets.hpp"
#include "model/text.hpp"

namespace azlb::engine {

using Json = nlohmann::ordered_json;

namespace {

Json unbound_json(const std::map<ListenKey, std::string>& unbound) {
  Json out = Json::array();
  for (auto& [key, why] : unbound) out.push_back({{"address", key.to_string()}, {"error", why}});
  return out;
}

// Names, paths and descriptions are whatever bytes a user gave: a byte that is
// not UTF-8 is shown as U+FFFD rather than thrown as an exception.
std::string dump(const Json& j, int indent) {
  return j.dump(indent, ' ', false, Json::error_handler_t::replace) + "\n";
}

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

std::string label_escape(const std::string& raw) {
  const std::string s = model::to_valid_utf8(raw);
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

// Every route of both planes: the proxy's listeners, then the NAT's.
template <class F>
void each_route(const Config& c, F f) {
  for (auto& r : c.routes) f(r, false);
  for (auto& r : c.nat_routes) f(r, true);
}

Json drain_object(const DrainInfo& d) {
  return {{"draining", d.draining},
          {"connections", d.connections},
          {"nat_tcp_flows", d.nat_tcp},
          {"nat_udp_flows", d.nat_udp},
          {"dsr_packets", d.dsr_packets},
          {"left_ms", d.left_ms},
          {"waiting_for", drain_summary(d)}};
}

Json announce_object(const AnnounceInfo& a) {
  Json not_announced = Json::array();
  for (auto& [vip, why] : a.not_announced) not_announced.push_back({{"vip", vip}, {"why", why}});
  Json j = {{"enabled", a.enabled}, {"table", a.enabled ? Json(a.table) : Json(nullptr)}, {"withdrawn", a.withdrawn},
            {"announcing", a.announcing}, {"not_announced", not_announced}};
  if (!a.error.empty()) j["error"] = a.error;
  if (a.enabled) {
    Json handoff = {{"addresses", a.handoff_addresses}, {"peers", a.handoff_peers}};
    if (!a.handoff_error.empty()) handoff["error"] = a.handoff_error;
    j["handoff"] = handoff;
  }
  return j;
}

}  // namespace

std::string status_json(const EngineSnapshot& s) {
  Json listeners = Json::array(), members = Json::array();
  each_route(s.config, [&](const Route& r, bool nat) {
    if (!nat) {
      Json l = {{"address", r.key.to_string()}, {"route", r.name}, {"members", r.upstreams.size()},
                {"hash_table_size", r.table ? Json(r.table->size()) : Json(nullptr)}};
      const auto lt = r.counters->totals();
#define AZLB_JSON(name, kind, prom, help) l[#name] = lt.name;
      AZLB_LISTENER_COUNTERS(AZLB_JSON)
#undef AZLB_JSON
      listeners.push_back(std::move(l));
    }
    const auto shares = shares_now(r);
    const auto slots = r.table ? r.table->shares(r.upstreams.size()) : std::vector<std::uint32_t>{};
    for (std::size_t i = 0; i < r.upstreams.size(); ++i) {
      auto& u = r.upstreams[i];
      auto& m = *u.state;
      const auto t = m.totals();
      Json probe = nullptr;
      if (m.last_probe_ms)
        probe = {{"ok", m.last_probe_ok}, {"at", iso8601(wall_of(m.last_probe_ms))}, {"detail", m.last_probe_detail}};
      Json j = {{"service", m.key.service},
                {"lbset", m.key.set.empty() ? Json(nullptr) : Json(m.key.set)},
                {"vm", m.key.vm},
                {"endpoint", m.key.endpoint},
                {"address", describe(u.addr)},
                {"health", to_string(m.health.load())},
                {"admin_state", u.drained ? "drain" : "up"},
                {"dataplane", nat ? "nat" : "proxy"},
                {"last_probe", probe},
                {"health_since", m.health_since ? Json(iso8601(m.health_since)) : Json(nullptr)},
                {"weight", u.weight},
                // Its slots of the set's consistent-hash table, and the share
                // of new flows it takes now (with what it takes over from
                // members that are down or drained).
                {"hash_slots", r.table ? Json(slots[i]) : Json(nullptr)},
                {"share", std::round(shares[i] * 10000) / 10000}};
#define AZLB_MEMBER_JSON(name, kind, prom, help) j[#name] = t.name;
      AZLB_MEMBER_COUNTERS(AZLB_MEMBER_JSON)
#undef AZLB_MEMBER_JSON
      if (nat) {
        // Its flows are the kernel's: conntrack counts them, the table's
        // counters count their packets and bytes.
        auto it = s.nat.flows.find(&m);
        j["active"] = s.nat.flows_known ? Json(it == s.nat.flows.end() ? 0 : it->second) : Json(nullptr);
        // A direct-server-return flow is not in conntrack (the host sees one
        // direction, no end): its count is not known here.
        if (r.dsr) j["active"] = nullptr;
        j["direct_server_return"] = r.dsr;
        const auto c = s.nat.counts.count(&m) ? s.nat.counts.at(&m) : NatInfo::Counts{};
        j["bytes_in"] = c.bytes_in;
        j["bytes_out"] = c.bytes_out;
        j["packets_in"] = c.packets_in;
        j["packets_out"] = c.packets_out;
      }
      members.push_back(std::move(j));
    }
  });
  Json unbound = unbound_json(s.unbound);
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
            // What a stop waits for, now or while it runs.
            {"drain", drain_object(s.drain)},
            {"limits",
             {{"descriptors", s.limits.fd_limit},
              {"descriptors_for_connections", s.limits.fd_budget},
              {"descriptors_in_use", s.limits.fd_in_use},
              {"listeners_paused", s.limits.paused_listeners},
              {"buffers_per_worker", s.limits.buffers_per_worker},
              {"buffer_bytes", s.limits.buffer_bytes},
              {"pipes_per_worker", s.limits.pipes_per_worker},
              {"udp_flows", s.limits.udp_flows},
              // A flood of forged UDP clients leaves TCP the other half (fd_budget.hpp).
              {"descriptors_for_udp_flows", s.limits.fd_budget / 2},
              {"udp_flow_descriptors_in_use", s.limits.udp_flow_fds}}},
            {"members", members}};
  Json nat_routes = Json::array();
  for (auto& r : s.config.nat_routes) nat_routes.push_back({{"address", r.key.to_string()}, {"route", r.name}});
  j["nat"] = {{"table", s.nat.table}, {"ok", s.nat.error.empty()}, {"routes", nat_routes}, {"restores", s.nat.restores}};
  if (!s.nat.error.empty()) j["nat"]["error"] = s.nat.error;
  if (s.nat.conntrack.max > 0) {
    j["nat"]["conntrack"] = {{"count", s.nat.conntrack.count}, {"max", s.nat.conntrack.max}};
    if (auto w = s.nat.conntrack.warning(); !w.empty()) j["nat"]["warning"] = w;
  }
  j["announce"] = announce_object(s.announce);
  j["host"] = s.identity.host;
  j["version"] = s.identity.version;
  j["started"] = iso8601(s.identity.started);
  Json store = {{"kind", s.store.etcd ? "etcd" : "file"}, {"reachable", s.store.reachable}};
  if (!s.store.reachable) {
    store["error"] = s.store.error;
    store["since"] = iso8601(s.store.since);
  }
  if (s.store.etcd) {
    store["revision"] = s.store.revision;
    store["relay"] = s.store.relay_socket.empty() ? Json(nullptr)
                                                  : Json{{"socket", s.store.relay_socket},
                                                         {"forwarded", s.store.relayed},
                                                         {"refused", s.store.relay_refused},
                                                         {"copies", s.store.relay_copies}};
  }
  j["store"] = store;
  j["access_log"] = s.access_log.path.empty()
                        ? Json(nullptr)
                        : Json{{"path", s.access_log.path},
                               {"lines_written", s.access_log.lines_written},
                               {"lines_lost", s.access_log.lines_lost}};
  return dump(j, 2);
}

std::string announce_json(const AnnounceInfo& a) { return dump(announce_object(a), 2); }

std::string registration_json(const Config& c, const EngineIdentity& id,
                              const std::map<ListenKey, std::string>& unbound, const AnnounceInfo& announce) {
  Json listening = Json::array(), members = Json::array();
  each_route(c, [&](const Route& r, bool nat) {
    if (!nat && !unbound.count(r.key)) listening.push_back(r.key.to_string());
    for (auto& u : r.upstreams)
      members.push_back({{"service", u.state->key.service},
                         {"lbset", u.state->key.set.empty() ? Json(nullptr) : Json(u.state->key.set)},
                         {"vm", u.state->key.vm},
                         {"endpoint", u.state->key.endpoint},
                         {"health", to_string(u.state->health.load())}});
  });
  Json j = {{"host", id.host},         {"pid", id.pid},           {"version", id.version},
            {"started", iso8601(id.started)}, {"announcing", announce.announcing}, {"generation", c.generation},
            {"announce", announce_object(announce)},
            {"listening", listening},  {"members", members}};
  return dump(j, -1);
}

std::string drain_json(const DrainInfo& d) { return dump(drain_object(d), 2); }

std::string drain_summary(const DrainInfo& d) {
  using model::count;
  std::string s = count(d.connections, "connection or flow", "connections and flows");
  if (d.nat_tcp) s += " and " + count(d.nat_tcp, "NAT TCP connection", "NAT TCP connections");
  s += " (up to " + std::to_string((d.left_ms + 999) / 1000) + " s";
  if (d.nat_udp)
    s += "; " + count(d.nat_udp, "NAT UDP flow is", "NAT UDP flows are") +
         " not waited for: UDP has no end but the flow's idle timeout";
  return s + ")";
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
  family("azlb_member_share", "gauge",
         "The share of its set's new flows the member takes now, by the consistent-hash table and health.");
  each_route(s.config, [&](const Route& r, bool) {
    const auto shares = shares_now(r);
    for (std::size_t i = 0; i < r.upstreams.size(); ++i) {
      char v[32];
      std::snprintf(v, sizeof v, "%.4f", shares[i]);
      out += "azlb_member_share" + member_labels(*r.upstreams[i].state) + " " + v + "\n";
    }
  });
  family("azlb_member_weight", "gauge", "The member's weight in its set (1..256).");
  each_route(s.config, [&](const Route& r, bool) {
    for (auto& u : r.upstreams) out += "azlb_member_weight" + member_labels(*u.state) + " " + std::to_string(u.weight) + "\n";
  });
  family("azlb_member_hash_slots", "gauge", "The member's slots in its set's consistent-hash table (sets of several members).");
  each_route(s.config, [&](const Route& r, bool) {
    if (!r.table) return;
    const auto slots = r.table->shares(r.upstreams.size());
    for (std::size_t i = 0; i < r.upstreams.size(); ++i)
      out += "azlb_member_hash_slots" + member_labels(*r.upstreams[i].state) + " " + std::to_string(slots[i]) + "\n";
  });
  family("azlb_listener_hash_table_size", "gauge", "Slots of the set's consistent-hash table (sets of several members).");
  for (auto& r : s.config.routes)
    if (r.table) out += "azlb_listener_hash_table_size{listener=\"" + r.key.to_string() + "\"} " + std::to_string(r.table->size()) + "\n";
  family("azlb_member_up", "gauge", "1 if the member is up, 0 if down, -1 if not probed yet.");
  each_route(s.config, [&](const Route& r, bool) {
    for (auto& u : r.upstreams) {
      auto h = u.state->health.load();
      out += "azlb_member_up" + member_labels(*u.state) + " " +
             (h == Health::Up ? "1" : h == Health::Down ? "0" : "-1") + "\n";
    }
  });
#define AZLB_PROM_MEMBER(name, kind, prom, help)                                                 \
  family(prom, #kind, help);                                                                     \
  each_route(s.config, [&](const Route& r, bool) {                                               \
    for (auto& u : r.upstreams)                                                                  \
      out += std::string(prom) + member_labels(*u.state) + " " + std::to_string(u.state->totals().name) + "\n"; \
  });
  AZLB_MEMBER_COUNTERS(AZLB_PROM_MEMBER)
#undef AZLB_PROM_MEMBER
#define AZLB_PROM_LISTENER(name, kind, prom, help)                                               \
  family(prom, #kind, help);                                                                     \
  for (auto& r : s.config.routes)                                                                \
    out += std::string(prom) + "{listener=\"" + r.key.to_string() + "\"} " + std::to_string(r.counters->totals().name) + "\n";
  AZLB_LISTENER_COUNTERS(AZLB_PROM_LISTENER)
#undef AZLB_PROM_LISTENER
  if (!s.config.nat_routes.empty()) {
    const std::pair<const char*, std::uint64_t NatInfo::Counts::*> nat_families[] = {
        {"azlb_nat_member_packets_in_total", &NatInfo::Counts::packets_in},
        {"azlb_nat_member_bytes_in_total", &NatInfo::Counts::bytes_in},
        {"azlb_nat_member_packets_out_total", &NatInfo::Counts::packets_out},
        {"azlb_nat_member_bytes_out_total", &NatInfo::Counts::bytes_out}};
    for (auto& [name, field] : nat_families) {
      family(name, "counter", "Packets or bytes of a NAT member's flows, from the client (in) or back (out), counted by nftables.");
      for (auto& r : s.config.nat_routes)
        for (auto& u : r.upstreams) {
          auto it = s.nat.counts.find(u.state);
          out += std::string(name) + member_labels(*u.state) + " " +
                 std::to_string(it == s.nat.counts.end() ? 0 : it->second.*field) + "\n";
        }
    }
    family("azlb_nat_table_restores_total", "counter",
           "Times the NAT table was put back after another program deleted or changed it.");
    out += "azlb_nat_table_restores_total " + std::to_string(s.nat.restores) + "\n";
    family("azlb_nat_member_flows_active", "gauge", "A NAT member's flows in conntrack (closing TCP flows aside).");
    for (auto& r : s.config.nat_routes)
      for (auto& u : r.upstreams) {
        auto it = s.nat.flows.find(u.state);
        out += "azlb_nat_member_flows_active" + member_labels(*u.state) + " " +
               std::to_string(it == s.nat.flows.end() ? 0 : it->second) + "\n";
      }
  }
  if (s.announce.enabled) {
    family("azlb_handoff_peers", "gauge",
           "The other hosts this one hands the packets of proxied connections it does not hold to.");
    out += "azlb_handoff_peers " + std::to_string(s.announce.handoff_peers.size()) + "\n";
    family("azlb_vip_announced", "gauge",
           "1 while this host announces the VIP to the routers (engine start --announce), 0 while it does not.");
    for (auto& vip : s.announce.announcing) out += "azlb_vip_announced{vip=\"" + label_escape(vip) + "\"} 1\n";
    for (auto& [vip, why] : s.announce.not_announced)
      out += "azlb_vip_announced{vip=\"" + label_escape(vip) + "\"} 0\n";
  }
  family("azlb_descriptors_in_use", "gauge", "Descriptors held by the workers (connections, flows, pipes).");
  out += "azlb_descriptors_in_use " + std::to_string(s.limits.fd_in_use) + "\n";
  family("azlb_descriptors_for_connections", "gauge", "Descriptors the workers may hold; the rest is kept for probes and the admin socket.");
  out += "azlb_descriptors_for_connections " + std::to_string(s.limits.fd_budget) + "\n";
  family("azlb_udp_flow_descriptors_in_use", "gauge",
         "Descriptors held by UDP flows; they may hold at most half of azlb_descriptors_for_connections.");
  out += "azlb_udp_flow_descriptors_in_use " + std::to_string(s.limits.udp_flow_fds) + "\n";
  family("azlb_listeners_paused", "gauge", "Worker listeners not accepting for want of descriptors.");
  out += "azlb_listeners_paused " + std::to_string(s.limits.paused_listeners) + "\n";
  if (!s.access_log.path.empty()) {
    family("azlb_access_log_lines_written_total", "counter", "Access log lines written to the file.");
    out += "azlb_access_log_lines_written_total " + std::to_string(s.access_log.lines_written) + "\n";
    family("azlb_access_log_lines_lost_total", "counter",
           "Access log lines lost: the disk was too slow (a worker's buffer was full) or full (the write failed).");
    out += "azlb_access_log_lines_lost_total " + std::to_string(s.access_log.lines_lost) + "\n";
  }
  family("azlb_config_generation", "gauge", "Generation of the configuration in force.");
  out += "azlb_config_generation " + std::to_string(s.generation) + "\n";
  return out;
}

std::string reload_json(bool changed, std::uint64_t generation, const std::string& error,
                        const std::map<ListenKey, std::string>& unbound) {
  Json j = {{"ok", error.empty()}, {"changed", changed}, {"generation", generation}, {"unbound", unbound_json(unbound)}};
  if (!error.empty()) j["error"] = error;
  return dump(j, -1);
}

}  // namespace azlb::engine
