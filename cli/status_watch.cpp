#include "cli/status_watch.hpp"

#include <unistd.h>

#include <chrono>
#include <ctime>
#include <iostream>
#include <map>
#include <thread>
#include <tuple>

#include "cli/table.hpp"
#include "engine/control/control.hpp"

namespace azlb::cli {

namespace {

using Key = std::tuple<std::string, std::string, std::string, std::string>;  // service, set, vm, endpoint

struct Sample {
  std::uint64_t total = 0, bytes_in = 0, bytes_out = 0;
};

std::uint64_t num(const Json& j, const char* key) {
  return j.contains(key) && j[key].is_number_unsigned() ? j[key].get<std::uint64_t>() : 0;
}

std::string text(const Json& j, const char* key, const char* none = "-") {
  return j.contains(key) && j[key].is_string() ? j[key].get<std::string>() : none;
}

// "812 B/s", "12.4 KB/s", "3.1 MB/s".
std::string per_second(double v, const char* unit) {
  char buf[32];
  if (v < 1000) std::snprintf(buf, sizeof buf, "%.0f %s", v, unit);
  else if (v < 1e6) std::snprintf(buf, sizeof buf, "%.1f K%s", v / 1e3, unit);
  else if (v < 1e9) std::snprintf(buf, sizeof buf, "%.1f M%s", v / 1e6, unit);
  else std::snprintf(buf, sizeof buf, "%.1f G%s", v / 1e9, unit);
  return buf;
}

std::string rate_text(double v) {
  char buf[32];
  std::snprintf(buf, sizeof buf, v < 10 ? "%.1f" : "%.0f", v);
  return buf;
}

std::string now_text() {
  char buf[32];
  const std::time_t t = std::time(nullptr);
  std::tm tm{};
  ::gmtime_r(&t, &tm);
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buf;
}

struct Rates {
  double new_per_s = 0, in_per_s = 0, out_per_s = 0;
  bool known = false;
};

struct Sum {
  std::uint64_t active = 0, total = 0, up = 0, members = 0;
  Rates r;
  void add(const Json& m, const Rates& rates) {
    ++members;
    up += text(m, "health") == "up";
    active += num(m, "active");
    total += num(m, "total");
    r.known = r.known || rates.known;
    r.new_per_s += rates.new_per_s;
    r.in_per_s += rates.in_per_s;
    r.out_per_s += rates.out_per_s;
  }
};

}  // namespace

model::Status watch_status(const Context& ctx, const WatchOptions& o) {
  const bool tty = ::isatty(STDOUT_FILENO) && !ctx.json();
  const auto state = ctx.location().absolute();
  std::map<Key, Sample> before;
  auto last = std::chrono::steady_clock::now();
  for (std::uint32_t round = 0; !o.rounds || round < *o.rounds; ++round) {
    if (round) std::this_thread::sleep_for(std::chrono::seconds(o.interval_s));
    const auto at = std::chrono::steady_clock::now();
    const double dt = std::chrono::duration<double>(at - last).count();
    last = at;
    auto r = engine::running_pid(state) ? engine::admin_request(state, "GET", "/v1/status", 3000)
                                        : model::Result<engine::AdminReply>(model::runtime_error("no engine runs"));
    Json j = r && r->status == 200 ? Json::parse(r->body, nullptr, false) : Json();
    if (!j.is_object()) {
      const std::string why = r ? "the engine's admin socket answered " + std::to_string(r->status) : r.error().message;
      if (ctx.json()) std::cout << Json{{"at", now_text()}, {"error", why}}.dump() << std::endl;
      else std::cout << (tty ? "\033[H\033[2J" : "") << now_text() << "  " << why << " (start it with 'azlb engine start')"
                     << std::endl;
      before.clear();
      continue;
    }
    std::map<Key, Sample> now;
    std::map<std::string, Sum> sets, vips;  // "service/set", "service VIP"
    Table t({"SERVICE", "SET", "VM", "ENDPOINT", "HEALTH", "SINCE", "LAST PROBE", "ACTIVE", "TOTAL", "NEW/S", "IN/S",
             "OUT/S"});
    Json members = Json::array();
    for (auto& m : j["members"]) {
      const std::string svc = text(m, "service"), set = text(m, "lbset", "");
      if (!o.only_service.empty() && svc != o.only_service) continue;
      const Key key{svc, set, text(m, "vm"), text(m, "endpoint")};
      const Sample s{num(m, "total"), num(m, "bytes_in"), num(m, "bytes_out")};
      now[key] = s;
      Rates rates;
      if (auto it = before.find(key); it != before.end() && dt > 0) {
        auto d = [&](std::uint64_t a, std::uint64_t b) { return a >= b ? static_cast<double>(a - b) / dt : 0.0; };
        rates = {d(s.total, it->second.total), d(s.bytes_in, it->second.bytes_in), d(s.bytes_out, it->second.bytes_out),
                 true};
      }
      std::string probe = "-";
      if (m.contains("last_probe") && m["last_probe"].is_object())
        probe = std::string(m["last_probe"].value("ok", false) ? "ok" : "failed") + ": " +
                text(m["last_probe"], "detail", "");
      if (probe.size() > 48) probe = probe.substr(0, 45) + "...";
      std::string since = text(m, "health_since");
      if (since.size() > 11) since = since.substr(11);  // the time of day; the date is today's, mostly
      const std::string health = text(m, "health") + (text(m, "admin_state") == "drain" ? " (drain)" : "");
      t.add({svc, set.empty() ? "-" : set, std::get<2>(key), std::get<3>(key), health, since, probe,
             std::to_string(num(m, "active")), std::to_string(s.total), rates.known ? rate_text(rates.new_per_s) : "-",
             rates.known ? per_second(rates.in_per_s, "B/s") : "-",
             rates.known ? per_second(rates.out_per_s, "B/s") : "-"});
      if (!set.empty()) sets[svc + "/" + set].add(m, rates);
      vips[svc].add(m, rates);
      Json row = m;
      row["new_per_s"] = rates.known ? Json(rates.new_per_s) : Json(nullptr);
      row["bytes_in_per_s"] = rates.known ? Json(rates.in_per_s) : Json(nullptr);
      row["bytes_out_per_s"] = rates.known ? Json(rates.out_per_s) : Json(nullptr);
      members.push_back(std::move(row));
    }
    before = std::move(now);
    auto sum_json = [](const std::string& name, const Sum& s) {
      return Json{{"name", name}, {"members", s.members}, {"up", s.up}, {"active", s.active}, {"total", s.total},
                  {"new_per_s", s.r.known ? Json(s.r.new_per_s) : Json(nullptr)},
                  {"bytes_in_per_s", s.r.known ? Json(s.r.in_per_s) : Json(nullptr)},
                  {"bytes_out_per_s", s.r.known ? Json(s.r.out_per_s) : Json(nullptr)}};
    };
    if (ctx.json()) {
      Json js = Json::array(), jv = Json::array();
      for (auto& [name, s] : sets) js.push_back(sum_json(name, s));
      for (auto& [name, s] : vips) jv.push_back(sum_json(name, s));
      std::cout << Json{{"at", now_text()}, {"pid", j.value("pid", 0)}, {"generation", j.value("generation", 0)},
                        {"members", members}, {"sets", js}, {"services", jv}}
                       .dump(-1, ' ', false, Json::error_handler_t::replace)
                << std::endl;
      continue;
    }
    std::cout << (tty ? "\033[H\033[2J" : (round ? "\n" : "")) << "azlb status --watch: every " << o.interval_s
              << " s, " << now_text() << ", engine pid " << j.value("pid", 0) << ", generation "
              << j.value("generation", 0) << (tty ? "; Ctrl-C to stop" : "") << "\n";
    t.print(std::cout);
    Table totals({"TOTALS", "UP", "ACTIVE", "TOTAL", "NEW/S", "IN/S", "OUT/S"});
    auto add = [&](const std::string& what, const Sum& s) {
      totals.add({what, std::to_string(s.up) + "/" + std::to_string(s.members), std::to_string(s.active),
                  std::to_string(s.total), s.r.known ? rate_text(s.r.new_per_s) : "-",
                  s.r.known ? per_second(s.r.in_per_s, "B/s") : "-", s.r.known ? per_second(s.r.out_per_s, "B/s") : "-"});
    };
    for (auto& [name, s] : sets) add("set " + name, s);
    for (auto& [name, s] : vips) add("service " + name, s);
    std::cout << "\n";
    totals.print(std::cout);
    std::cout << std::flush;
  }
  return model::ok();
}

}  // namespace azlb::cli
