// The engine's control thread: it owns the listening sockets, builds configs
// from the state file, hands them to the workers, runs the prober and serves
// the admin socket. It reads the model and never writes it.
#pragma once

#include <filesystem>
#include <functional>

#include <optional>
#include <utility>
#include <vector>

#include "model/address.hpp"
#include "model/error.hpp"
#include "store/location.hpp"

namespace azlb::engine {

struct EngineOptions {
  store::Location state;
  unsigned threads = 0;                  // 0: one per core
  std::uint32_t drain_timeout_ms = 10000;
  std::uint32_t idle_unit_ms = 60000;    // a minute; tests shorten it (AZLB_IDLE_TIMEOUT_UNIT_MS)
  // Resource bounds (see azlb-engine(1), "Resource bounds").
  std::uint32_t udp_flows = 0;           // UDP flows in all, split between workers; 0: WorkerOptions' default per worker
  std::uint32_t buffers = 256;           // TCP receive buffers of 64 KiB per worker (a power of two)
  std::uint32_t pipes = 64;              // splice pipes per worker
  std::uint32_t fd_reserve = 192;        // descriptors kept for the control thread (128 admin clients among them), plus one per probe
  // A daemon logs to this file (its stderr), which SIGUSR1 reopens for
  // logrotate; empty in the foreground, where stderr is the caller's.
  std::filesystem::path log_file;
  // One JSON line per finished connection and ended UDP flow; empty: none.
  // SIGUSR1 reopens it too.
  std::filesystem::path access_log;
  // /metrics over TCP for Prometheus (read-only: nothing else is served
  // there); empty: none. "ADDR:PORT", "[ADDR]:PORT" for IPv6.
  std::optional<std::pair<model::IpAddress, std::uint16_t>> metrics_listen;
  // Announce each servable VIP as a host route in this routing table, for a
  // BGP daemon to export (announcer.hpp); nullopt: announce nothing.
  std::optional<std::uint32_t> announce_table;
  // With announce_table: this host's addresses that other hosts hand the
  // packets of its proxied connections to (nat/handoff.hpp); empty: the
  // address each family's traffic leaves from.
  std::vector<model::IpAddress> handoff_addresses;
};

// Runs the engine in this process until SIGTERM or SIGINT, then drains.
// `ready` is called exactly once: with ok() when every listener is bound and
// the workers run, or with the error that stopped the start. Returns the
// process exit code.
int run_engine(const EngineOptions&, const std::function<void(const model::Status&)>& ready);

}  // namespace azlb::engine
