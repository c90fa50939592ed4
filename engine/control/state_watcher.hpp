// Notices changes to the state and reads it, wherever it is. A file: its
// folder is watched (inotify), not the file, since azlb replaces the file by
// rename and an editor may too. etcd: followed by a watch (etcd_follower).
#pragma once

#include <memory>

#include "engine/control/etcd_follower.hpp"
#include "model/error.hpp"
#include "store/location.hpp"
#include "store/state_text.hpp"

namespace azlb::engine {

class StateWatcher {
 public:
  explicit StateWatcher(store::Location state);
  ~StateWatcher();
  StateWatcher(const StateWatcher&) = delete;
  StateWatcher& operator=(const StateWatcher&) = delete;

  // etcd: the first read, then the watch; an error leaves the engine unstarted.
  model::Status start();
  int fd() const;
  // Reads the pending events: true if one concerns the state.
  bool changed();
  // The state's text. `fresh`: read now (a reload asked for), else what the
  // watch has (etcd). A missing, unreadable or oversized file, or etcd out
  // of reach, is an error: the engine keeps what it runs.
  model::Result<store::StateText> read(bool fresh);
  StoreHealth health() const;
  // etcd: the copy the follower keeps (null for a file).
  std::shared_ptr<FollowedCopy> followed_copy() const { return follower_ ? follower_->copy() : nullptr; }
  void restart_watch() {
    if (follower_) follower_->restart_watch();
  }

 private:
  store::Location state_;
  int fd_ = -1;
  std::unique_ptr<EtcdFollower> follower_;
};

}  // namespace azlb::engine
