// The files that say an engine runs for a state file: the engine lock, held
// for the process's life; the pid file; and the log. They live next to the
// state file, in a folder another local user may write to, so none of them is
// opened through a symbolic link, and what a planted file holds is never
// echoed into the log.
#pragma once

#include <optional>

#include "model/error.hpp"
#include "store/state_file.hpp"

namespace azlb::engine {

class ProcessLock {
 public:
  // Takes the engine lock (or says which engine holds it) and writes the pid file.
  static model::Result<std::unique_ptr<ProcessLock>> acquire(const store::Companions&, const std::string& state);
  // Removes the pid file, then lets the lock go: `engine stop` waits for that.
  ~ProcessLock();
  ProcessLock(const ProcessLock&) = delete;
  ProcessLock& operator=(const ProcessLock&) = delete;

 private:
  ProcessLock(store::Companions f, int fd) : files_(std::move(f)), fd_(fd) {}
  store::Companions files_;
  int fd_;
};

// The number in a pid file, if it holds one: a regular file, not followed
// through a link, digits only.
std::optional<long> read_pid(const std::filesystem::path&);

// True if an engine holds the lock of this state file.
bool engine_lock_held(const std::filesystem::path& lock);

// The daemon's log, appended to: 0640, never through a link.
model::Result<int> open_log(const std::filesystem::path&);

}  // namespace azlb::engine
