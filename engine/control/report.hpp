// The engine's runtime view as the admin socket serves it: JSON for
// `azlb status` and scripts, Prometheus text for scrapers. Read-only.
#pragma once

#include <ctime>
#include <map>
#include <string>

#include "engine/config.hpp"
#include "engine/nat/conntrack.hpp"
#include "engine/control/etcd_follower.hpp"

namespace azlb::engine {

struct ReloadInfo {
  bool ok = true;
  std::time_t at = 0;
  std::string error;
};

// Resource bounds in force, and how close the engine is to them.
struct Limits {
  std::int64_t fd_limit = 0;      // RLIMIT_NOFILE
  std::int64_t fd_budget = 0;     // what workers may hold; the rest is the control thread's reserve
  std::int64_t fd_in_use = 0;     // held by workers now
  std::uint64_t paused_listeners = 0;  // worker listeners not accepting for want of descriptors
  std::uint32_t buffers_per_worker = 0, buffer_bytes = 0, pipes_per_worker = 0;
  std::uint32_t udp_flows = 0;    // in all (per worker times workers)
  std::int64_t udp_flow_fds = 0;  // descriptors UDP flows hold now (at most half of fd_budget)
};

// The access log, when the engine writes one.
struct AccessLogInfo {
  std::string path;  // empty: none
  std::uint64_t lines_written = 0, lines_lost = 0;
};

// The NAT data plane's table, when some cloud service uses it.
struct NatInfo {
  std::string table;  // empty: no nat service
  std::string error;  // why the table in force is not the state's (the last apply failed)
  bool flows_known = false;  // conntrack could be read
  std::map<const MemberState*, std::uint64_t> flows;  // active flows per NAT member
  struct Counts {
    std::uint64_t packets_in = 0, bytes_in = 0, packets_out = 0, bytes_out = 0;
  };
  std::map<const MemberState*, Counts> counts;  // from the table's counters
  ConntrackUse conntrack;
  std::uint64_t restores = 0;  // times the table was put back after another program deleted or changed it
  std::uint64_t tcp_open = 0, udp = 0;  // flows in all: TCP ones that are not closing, UDP ones
};

// What a stop waits for: the proxy plane's connections and flows, and the
// NAT plane's TCP flows (UDP flows have no end but their conntrack timeout:
// they are not waited for, and stop when the table goes).
struct DrainInfo {
  bool draining = false;
  std::uint64_t connections = 0;  // proxied connections and UDP flows
  std::uint64_t nat_tcp = 0, nat_udp = 0;
  // Packets of direct-server-return flows so far: a host that returns
  // directly sees no end of a flow (no FIN, the member answers), so "its
  // flows are over" is "this count stopped moving".
  std::uint64_t dsr_packets = 0;
  std::int64_t left_ms = 0;  // until the drain timeout (its whole length before a stop)
};
// "3 connections and 2 NAT TCP connections (up to 10 s; 4 NAT UDP flows are
// not waited for: ...)", for the log and for `engine stop`.
std::string drain_summary(const DrainInfo&);
// GET /v1/drain: the counts, fresh, and that sentence.
std::string drain_json(const DrainInfo&);

// Who an engine is: what its etcd key and status say of it.
struct EngineIdentity {
  std::string host;
  int pid = 0;
  std::string version;
  std::time_t started = 0;
};

// What this host announces to the routers (announcer.hpp).
struct AnnounceInfo {
  bool enabled = false;    // engine start --announce
  std::uint32_t table = 0;
  bool withdrawn = false;  // engine withdraw (or a stop) took them back
  std::vector<std::string> announcing;
  std::vector<std::pair<std::string, std::string>> not_announced;  // VIP, why
  std::string error;
  // The proxy plane's hand-off (nat/handoff.hpp): this host's addresses that
  // peers send to, the peers' this host sends to, and why it is off.
  std::vector<std::string> handoff_addresses, handoff_peers;
  std::string handoff_error;
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
  Limits limits;
  AccessLogInfo access_log;
  NatInfo nat;
  DrainInfo drain;
  EngineIdentity identity;
  StoreHealth store;
  AnnounceInfo announce;
};

std::string status_json(const EngineSnapshot&);
// An engine's key in etcd: who it is, what it listens on and its view of
// each member's health.
std::string registration_json(const Config&, const EngineIdentity&, const std::map<ListenKey, std::string>& unbound,
                              const AnnounceInfo&);
std::string announce_json(const AnnounceInfo&);
std::string metrics_text(const EngineSnapshot&);
// The answer to a reload, with the listeners of the state that could not
// bind (a command that added one names it).
std::string reload_json(bool changed, std::uint64_t generation, const std::string& error,
                        const std::map<ListenKey, std::string>& unbound);

}  // namespace azlb::engine
