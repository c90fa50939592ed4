// The engine's control thread: it owns the listening sockets, builds configs
// from the state file, hands them to the workers, runs the prober and serves
// the admin socket. It reads the model and never writes it.
#pragma once

#include <filesystem>
#include <functional>

#include "model/error.hpp"

namespace azlb::engine {

struct EngineOptions {
  std::filesystem::path state;
  unsigned threads = 0;                  // 0: one per core
  std::uint32_t drain_timeout_ms = 10000;
  std::uint32_t idle_unit_ms = 60000;    // a minute; tests shorten it (AZLB_IDLE_TIMEOUT_UNIT_MS)
};

// Runs the engine in this process until SIGTERM or SIGINT, then drains.
// `ready` is called exactly once: with ok() when every listener is bound and
// the workers run, or with the error that stopped the start. Returns the
// process exit code.
int run_engine(const EngineOptions&, const std::function<void(const model::Status&)>& ready);

}  // namespace azlb::engine
