// A listening Unix socket only its owner may use (mode 0600 from the start),
// for the engine's admin socket and its etcd relay.
#pragma once

#include <filesystem>
#include <string>

#include "model/error.hpp"

namespace azlb::engine {

// Non-blocking, close-on-exec. Whatever was at `path` (a stale socket of a
// dead engine, or anything planted there) is unlinked first: unlink removes
// a link itself, never its target. `what` names it in errors.
model::Result<int> listen_unix(const std::filesystem::path& path, int backlog, const std::string& what);

}  // namespace azlb::engine
