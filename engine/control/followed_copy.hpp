// The engine's copy of a state in etcd: kept by its follower (the one
// writer) and read by the etcd relay's workers, which hand it to this
// host's commands (store/etcd_snapshot_wire.hpp) so that a change needs no
// range from etcd. Shared by both, owned by neither: a relay worker may
// outlive the follower.
#pragma once

#include <condition_variable>
#include <cstdint>
#include <mutex>

#include "store/etcd_state.hpp"

namespace azlb::engine {

struct FollowedCopy {
  std::mutex mu;                    // held by the follower while it changes what follows, by readers
  std::condition_variable changed;  // after each change
  store::etcd::Snapshot snap;
  // Every change to the copy's keys up to this revision is in it: the
  // read's revision, then each event's. Not a watch header's: a progress
  // notice may run ahead of events still on their way (etcd 3.4).
  std::int64_t exact = 0;
  bool usable = false;  // etcd in reach and the state's key there: worth handing out
};

}  // namespace azlb::engine
