// Starting, stopping and asking a running engine, from another process
// (the CLI). The engine for a state file is found through the files next to it.
#pragma once

#include <filesystem>
#include <functional>
#include <optional>
#include <string>

#include "engine/control/engine.hpp"
#include "store/location.hpp"

namespace azlb::engine {

// The pid of the engine running for this state file, if one runs (it holds
// the engine lock; a pid file without the lock is stale).
std::optional<long> running_pid(const store::Location& state);

// Daemonizes: returns once the engine has bound every listener (with its pid),
// or with the reason it could not start. Its log goes to <state>.engine.log.
model::Result<long> start_daemon(const EngineOptions&);

// SIGTERM, then waits (bounded) for the engine to drain and release its lock.
// `waiting` is told, once, what the engine's drain waits for (its own words,
// from /v1/status), when it waits for anything.
model::Result<long> stop_engine(const store::Location& state, int timeout_ms,
                                const std::function<void(const std::string&)>& waiting = {});

struct AdminReply {
  long status = 0;
  std::string body;
};
// One HTTP request over the admin socket, within `deadline_ms` (a full
// backlog is tried again until then).
model::Result<AdminReply> admin_request(const store::Location& state, const std::string& method,
                                        const std::string& path, int deadline_ms = 10000);

}  // namespace azlb::engine
