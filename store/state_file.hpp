// The state file on disk: where it is, reading it, and changing it so that
// concurrent azlb processes never lose an update and a crash never leaves a
// torn file.
#pragma once

#include <filesystem>
#include <functional>
#include <optional>
#include <string>

#include "model/state.hpp"

namespace azlb::store {

// --state, else $AZLB_STATE, else $XDG_STATE_HOME/azlb/state.toml, else
// ~/.local/state/azlb/state.toml.
std::filesystem::path resolve_state_path(const std::string& flag);

// Files that live next to the state file and belong to it.
struct Companions {
  std::filesystem::path lock;         // serialises writers (the state file itself is replaced by rename)
  std::filesystem::path engine_lock;  // held by the running engine
  std::filesystem::path engine_pid;
  std::filesystem::path engine_sock;  // admin socket
  std::filesystem::path engine_log;
  std::filesystem::path engine_relay;  // the engine's etcd relay (a state in etcd only)
};
Companions companions_of(const std::filesystem::path& state);

// The file's text, or nullopt if it does not exist. Only a regular file of
// at most store::kMaxStateBytes is read (a FIFO or device is an error).
model::Result<std::optional<std::string>> read_state_text(const std::filesystem::path& state);

// A missing file is an empty state.
model::Result<model::State> load(const std::filesystem::path& state);

// Takes the writer lock, loads, applies `change`, and, if the state changed,
// writes it back atomically (temp file, fsync, rename, fsync of the folder).
// On any error the file is left as it was.
model::Status update(const std::filesystem::path& state, const std::function<model::Status(model::State&)>& change);

}  // namespace azlb::store
