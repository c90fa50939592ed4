// Health probes as Azure defined them: every interval, tcp passes when a
// connection opens, http passes on 200 to GET path. A member goes down when it
// has not passed for `timeout` seconds and comes back on its first pass. The
// prober only reports (into MemberState::health); it never touches traffic.
#pragma once

#include <curl/curl.h>

#include <map>
#include <memory>
#include <vector>

#include "engine/config.hpp"
#include "store/curl_api.hpp"
#include "engine/rng.hpp"

namespace azlb::engine {

// When probes are due. Probing every member at the same instant sends bursts
// (an engine starting with a thousand members, a set that a script fills):
// as HAProxy and Envoy do, the schedule is spread and jittered.
//
// A new (or changed) member's first probe: within a second (the shortest
// interval), at a random place, so that its health is known soon.
std::int64_t first_probe_delay_ms(std::uint32_t interval_s, Rng&);
// From one probe to the next: the interval less up to a tenth of it, at
// random, so that members probed together drift apart. Never longer than the
// interval: the timeout rule (down after `timeout` > interval without a pass)
// counts on it.
std::int64_t next_probe_delay_ms(std::uint32_t interval_s, Rng&);

class Prober {
 public:
  explicit Prober(const store::CurlApi&);
  ~Prober();
  Prober(const Prober&) = delete;
  Prober& operator=(const Prober&) = delete;

  // Takes the probe targets of a new config; members that stay keep their
  // schedule and health.
  void reconcile(const Config&, std::int64_t now_ms);
  // Starts due probes, collects finished ones, applies the timeout rule.
  // Time the prober did not run (the process stopped by SIGSTOP or a
  // debugger, a VM paused, the control thread busy for seconds) proves
  // nothing about a member: a gap between two runs longer than
  // kStallMs is taken out of every member's time without a pass, a probe
  // that was in flight across it does not count when it fails, and every
  // member is probed again soon.
  void run(std::int64_t now_ms);
  // The control loop calls run() at least every second.
  static constexpr std::int64_t kStallMs = 2000;
  // Milliseconds until run() has something to do.
  std::int64_t next_due_ms(std::int64_t now_ms) const;
  CURLM* multi() const { return multi_; }

 private:
  struct Target {
    ProbeTarget spec;
    std::string url;
    std::int64_t next_ms = 0;
    CURL* in_flight = nullptr;
    std::int64_t started_ms = 0;
    bool dead = false;  // gone from the config, waiting for its probe to end
  };
  void start(Target&, std::int64_t now_ms);
  void finish(Target&, CURLcode, std::int64_t now_ms);
  void evaluate(Target&, std::int64_t now_ms);
  void forgive_stall(std::int64_t gap_ms, std::int64_t now_ms);

  const store::CurlApi& c_;
  CURLM* multi_;
  std::map<MemberKey, std::unique_ptr<Target>> targets_;
  Rng rng_;
  std::int64_t last_run_ms_ = 0;
  std::int64_t stall_end_ms_ = 0;  // when the last stall was seen
};

}  // namespace azlb::engine
