// Notices changes to the state file and reads it. It watches the folder, not
// the file: azlb replaces the file by rename, and an editor may too.
#pragma once

#include <filesystem>
#include <string>

#include "model/error.hpp"

namespace azlb::engine {

class StateWatcher {
 public:
  explicit StateWatcher(std::filesystem::path state);
  ~StateWatcher();
  StateWatcher(const StateWatcher&) = delete;
  StateWatcher& operator=(const StateWatcher&) = delete;

  int fd() const { return fd_; }
  // Reads the pending events: true if one concerns the state file.
  bool changed();
  // The file's text. A missing, unreadable or oversized file, or one that is
  // not a regular file, is an error: the engine keeps what it runs.
  model::Result<std::string> read() const;

 private:
  std::filesystem::path state_;
  int fd_ = -1;
};

}  // namespace azlb::engine
