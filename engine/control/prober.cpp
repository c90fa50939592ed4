#include "engine/control/prober.hpp"

#include <algorithm>
#include <random>

#include "store/curl_api.hpp"
#include "engine/log.hpp"

namespace azlb::engine {

namespace {

std::size_t discard(char*, std::size_t size, std::size_t n, void*) { return size * n; }

std::string url_of(const ProbeTarget& t) {
  std::string path = t.probe.protocol == model::ProbeProtocol::Http ? t.probe.path : "/";
  return "http://" + t.ip.with_port(t.probe.port) + path;
}

// What the log calls a probe: "tcp probe 10.0.0.4:80" (curl connects only:
// its URL is a means, not what is probed) or "http probe http://10.0.0.4:80/health".
std::string name_of(const ProbeTarget& t, const std::string& url) {
  if (t.probe.protocol == model::ProbeProtocol::Http) return "http probe " + url;
  return "tcp probe " + t.ip.with_port(t.probe.port);
}

void set_health(MemberState& m, Health h, const std::string& why) {
  if (m.health.exchange(h) != h) {
    m.health_since = std::time(nullptr);
    log("member %s is %s (%s)", m.key.to_string().c_str(), to_string(h), why.c_str());
  }
}

}  // namespace

Prober::Prober(const store::CurlApi& api)
    : c_(api), multi_(api.multi_init()), rng_(std::random_device{}()) {}

Prober::~Prober() {
  for (auto& [k, t] : targets_)
    if (t->in_flight) {
      c_.multi_remove_handle(multi_, t->in_flight);
      c_.easy_cleanup(t->in_flight);
    }
  c_.multi_cleanup(multi_);
}

std::int64_t first_probe_delay_ms(std::uint32_t, Rng& rng) {
  return rng.below(1000);  // a second: the shortest interval there is
}

std::int64_t next_probe_delay_ms(std::uint32_t interval_s, Rng& rng) {
  const std::int64_t interval_ms = std::int64_t{interval_s} * 1000;
  return interval_ms - rng.below(static_cast<std::uint32_t>(interval_ms / 10) + 1);
}

void Prober::reconcile(const Config& cfg, std::int64_t now_ms) {
  std::map<MemberKey, const ProbeTarget*> wanted;
  for (auto& p : cfg.probes) wanted[p.member->key] = &p;
  for (auto& [key, t] : targets_)
    if (!wanted.count(key)) t->dead = true;
  for (auto& [key, spec] : wanted) {
    auto& t = targets_[key];
    if (!t) {
      t = std::make_unique<Target>();
      t->next_ms = now_ms + first_probe_delay_ms(spec->probe.interval_s, rng_);  // soon, not all at once
      // A member that was up without a probe gets a full timeout to pass its first.
      if (spec->member->health.load() == Health::Up && spec->member->last_pass_ms == 0)
        spec->member->last_pass_ms = now_ms;
    } else if (!(t->spec.probe == spec->probe) || !(t->spec.ip == spec->ip)) {
      t->next_ms = now_ms + first_probe_delay_ms(spec->probe.interval_s, rng_);  // a changed probe starts over
    }
    t->dead = false;
    t->spec = *spec;
    t->url = url_of(*spec);
  }
  std::erase_if(targets_, [](auto& kv) { return kv.second->dead && !kv.second->in_flight; });
}

void Prober::start(Target& t, std::int64_t now_ms) {
  CURL* e = c_.easy_init();
  const auto& p = t.spec.probe;
  // One attempt must end before the next is due, and within 5 s at most.
  long attempt_ms = static_cast<long>(std::min<std::uint32_t>(p.interval_s, 5)) * 1000;
  c_.easy_setopt(e, CURLOPT_URL, t.url.c_str());
  c_.easy_setopt(e, CURLOPT_TIMEOUT_MS, attempt_ms);
  c_.easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS, attempt_ms);
  c_.easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
  c_.easy_setopt(e, CURLOPT_PROXY, "");  // a probe goes straight to the VM, never through http_proxy
  c_.easy_setopt(e, CURLOPT_FORBID_REUSE, 1L);
  c_.easy_setopt(e, CURLOPT_USERAGENT, "azlb-probe/1");
  c_.easy_setopt(e, CURLOPT_WRITEFUNCTION, discard);
  c_.easy_setopt(e, CURLOPT_PRIVATE, &t);
  if (p.protocol == model::ProbeProtocol::Tcp) c_.easy_setopt(e, CURLOPT_CONNECT_ONLY, 1L);
  c_.multi_add_handle(multi_, e);
  t.in_flight = e;
  t.started_ms = now_ms;
  t.next_ms = now_ms + next_probe_delay_ms(p.interval_s, rng_);
}

void Prober::finish(Target& t, CURLcode rc, std::int64_t now_ms) {
  MemberState& m = *t.spec.member;
  long status = 0;
  c_.easy_getinfo(t.in_flight, CURLINFO_RESPONSE_CODE, &status);
  c_.multi_remove_handle(multi_, t.in_flight);
  c_.easy_cleanup(t.in_flight);
  t.in_flight = nullptr;
  if (t.dead) return;
  bool http = t.spec.probe.protocol == model::ProbeProtocol::Http;
  bool pass = rc == CURLE_OK && (!http || status == 200);
  // Its clock ran while the prober did not: a timeout says nothing of the member.
  if (!pass && t.started_ms < stall_end_ms_) return;
  m.last_probe_ms = now_ms;
  m.last_probe_ok = pass;
  m.last_probe_detail = rc != CURLE_OK ? c_.easy_strerror(rc)
                        : http        ? "HTTP " + std::to_string(status)
                                      : "connected";
  if (pass) {
    m.last_pass_ms = now_ms;
    set_health(m, Health::Up, name_of(t.spec, t.url) + ": " + m.last_probe_detail);
  } else if (m.health.load() == Health::Unknown) {
    // Nothing has vouched for it yet: the first failure decides.
    set_health(m, Health::Down, name_of(t.spec, t.url) + ": " + m.last_probe_detail);
  }
  evaluate(t, now_ms);
}

void Prober::evaluate(Target& t, std::int64_t now_ms) {
  MemberState& m = *t.spec.member;
  if (m.health.load() != Health::Up) return;
  if (now_ms - m.last_pass_ms >= static_cast<std::int64_t>(t.spec.probe.timeout_s) * 1000)
    set_health(m, Health::Down,
               "no passed probe for " + std::to_string(t.spec.probe.timeout_s) + " s; last: " + m.last_probe_detail);
}

void Prober::forgive_stall(std::int64_t gap_ms, std::int64_t now_ms) {
  log("the prober did not run for %ld ms (the engine was stopped or starved): that time does not count against "
      "any member, and each is probed again now",
      static_cast<long>(gap_ms));
  stall_end_ms_ = now_ms;
  for (auto& [k, t] : targets_) {
    auto& m = *t->spec.member;
    if (m.last_pass_ms != 0) m.last_pass_ms += gap_ms;
    if (!t->in_flight) t->next_ms = std::min(t->next_ms, now_ms + static_cast<std::int64_t>(rng_.below(200)));
  }
}

void Prober::run(std::int64_t now_ms) {
  if (last_run_ms_ != 0 && now_ms - last_run_ms_ > kStallMs) forgive_stall(now_ms - last_run_ms_, now_ms);
  last_run_ms_ = now_ms;
  int running = 0;
  c_.multi_perform(multi_, &running);
  int left = 0;
  while (CURLMsg* msg = c_.multi_info_read(multi_, &left)) {
    if (msg->msg != CURLMSG_DONE) continue;
    Target* t = nullptr;
    c_.easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE, &t);
    finish(*t, msg->data.result, now_ms);
  }
  std::erase_if(targets_, [](auto& kv) { return kv.second->dead && !kv.second->in_flight; });
  bool started = false;
  for (auto& [k, t] : targets_) {
    if (!t->dead && !t->in_flight && now_ms >= t->next_ms) start(*t, now_ms), started = true;
    if (!t->dead) evaluate(*t, now_ms);
  }
  if (started) c_.multi_perform(multi_, &running);
}

std::int64_t Prober::next_due_ms(std::int64_t now_ms) const {
  std::int64_t due = 1000;
  for (auto& [k, t] : targets_) {
    if (t->dead) continue;
    if (!t->in_flight) due = std::min(due, t->next_ms - now_ms);
    auto& m = *t->spec.member;
    if (m.health.load() == Health::Up)
      due = std::min(due, m.last_pass_ms + static_cast<std::int64_t>(t->spec.probe.timeout_s) * 1000 - now_ms);
  }
  return std::max<std::int64_t>(due, 0);
}

}  // namespace azlb::engine
