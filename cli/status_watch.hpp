// azlb status --watch: a live view of what the engine does, redrawn every
// few seconds: each member's health (and since when), its last probe, its
// open, total and new connections, and bytes each way per second; totals per
// set and per VIP. In place on a terminal, one block per round when piped,
// one JSON line per round under -o json.
#pragma once

#include <cstdint>
#include <optional>
#include <string>

#include "cli/context.hpp"

namespace azlb::cli {

struct WatchOptions {
  std::uint32_t interval_s = 2;
  std::optional<std::uint32_t> rounds;  // --count: stop after these; else until interrupted
  std::string only_service;
};

model::Status watch_status(const Context&, const WatchOptions&);

}  // namespace azlb::cli
