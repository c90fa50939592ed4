// Follows a state in etcd on a thread of its own: reads the prefix at one
// revision, watches from the next, applies each event to its copy, and wakes
// the control thread (an eventfd) with the new text. A compacted revision or
// a cancelled watch means: read again, watch again. An outage is retried
// with backoff, logged, and reported; the engine keeps what it serves.
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>

#include "engine/control/followed_copy.hpp"
#include "model/error.hpp"
#include "store/etcd_client.hpp"
#include "store/etcd_state.hpp"
#include "store/location.hpp"
#include "store/state_text.hpp"

namespace azlb::engine {

struct StoreHealth {
  bool etcd = false;
  bool reachable = true;
  std::string error;           // why not, the last failure
  std::int64_t since = 0;      // unix time it became unreachable
  std::int64_t revision = 0;   // etcd: the revision the engine's copy is at
  std::string relay_socket;    // etcd: the relay's socket, empty when it is off
  std::uint64_t relayed = 0, relay_refused = 0, relay_copies = 0;
};

class EtcdFollower {
 public:
  // The first read is made here (an engine with nothing to serve does not
  // start); the thread then follows.
  static model::Result<std::unique_ptr<EtcdFollower>> start(const store::EtcdLocation&);
  ~EtcdFollower();
  EtcdFollower(const EtcdFollower&) = delete;
  EtcdFollower& operator=(const EtcdFollower&) = delete;

  int fd() const { return event_fd_; }
  void drain_events();
  // The text of the latest revision followed, or why it does not make a
  // state (a key that is not azlb's).
  model::Result<store::StateText> latest() const;
  // Read from etcd now (a reload asked for), on the caller's thread, with
  // the same rule for a state key that has gone.
  model::Result<store::StateText> read_now();
  StoreHealth health() const;
  // Ends the watch's connection and watches again through whichever member
  // answers: for when the registrar finds etcd silent while the watch's
  // connection still looks open (a member cut off without a reset).
  void restart_watch() { restart_ = true; }
  // The copy it keeps, for the relay to hand to this host's commands.
  std::shared_ptr<FollowedCopy> copy() const { return copy_; }

 private:
  EtcdFollower(std::unique_ptr<store::EtcdClient>, store::etcd::Snapshot);
  void run();
  void publish(bool changed);
  void set_unreachable(const std::string& why);

  std::unique_ptr<store::EtcdClient> client_;
  std::atomic<bool> had_meta_{false};  // the state key was seen once: its absence is a missing state
  std::string prefix_;
  std::shared_ptr<FollowedCopy> copy_;
  store::etcd::Snapshot& snap_;  // copy_'s: the thread changes it holding copy_->mu, reads it without
  mutable std::mutex mu_;
  store::StateText text_;
  std::optional<model::Error> text_error_;
  StoreHealth health_;
  int event_fd_ = -1;
  std::atomic<bool> stop_{false};
  std::atomic<bool> restart_{false};
  std::mutex wait_mu_;
  std::condition_variable wait_cv_;
  std::thread thread_;
};

}  // namespace azlb::engine
