// The states a location held before its last writes, so that a change can
// be undone. A file keeps the last kHistoryKeep of them in a folder beside
// it (STATE.history/, 0700, one file each, 0600); etcd keeps them itself:
// every change writes the meta key, so the states before it are etcd's
// earlier revisions (until a compaction removes them).
#pragma once

#include <cstdint>
#include <ctime>
#include <filesystem>
#include <optional>
#include <string>
#include <vector>

#include "model/error.hpp"
#include "model/state.hpp"
#include "store/location.hpp"

namespace azlb::store {

inline constexpr std::size_t kHistoryKeep = 20;

struct HistoryEntry {
  std::size_t id = 0;          // 0: the state now; 1: the one before the last write...
  std::time_t written = 0;     // when it was written (0: not known)
  std::string where;           // the file of a saved state, or "revision N" in etcd
  model::State state;
};

// The state now and up to kHistoryKeep before it, newest first. An entry
// that no longer loads (a hand-edited file, a compacted revision) ends the
// list there.
// `most`: how many entries to read at most (undo needs 2; each is a whole
// state to read and parse).
model::Result<std::vector<HistoryEntry>> history(const Location&, std::size_t most = kHistoryKeep + 1);

// For the file backend: keeps `text` (the file's contents before a write)
// in the history folder and drops the oldest beyond kHistoryKeep. A folder
// that is not ours (another user's, a link) is an error naming it.
model::Status save_history(const std::filesystem::path& state, const std::string& text);

}  // namespace azlb::store
