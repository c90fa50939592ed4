// A worker's share of every listening address: its own SO_REUSEPORT socket
// per route, the request armed on it (accept for TCP, recvmsg for UDP), and
// what happens when the kernel ends that request.
#pragma once

#include <sys/socket.h>

#include <cstdint>
#include <deque>
#include <vector>

#include "engine/proxy/loop.hpp"

namespace azlb::engine {

struct ListenerSlot {
  enum class Request : std::uint8_t {
    Off,        // nothing armed: new, paused, or removed
    Multishot,  // one request for many clients or datagrams
    Single,     // TCP near the descriptor limit: one accept at a time
    Ending,     // a multishot accept asked to end near the limit
  };
  int fd = -1;
  // Never reused, unlike the slot's index: a UDP flow belongs to the listener
  // that created it and ends with it.
  std::uint64_t id = 0;
  model::Protocol protocol = model::Protocol::Tcp;
  // The route in force; not to be read once the slot is removed (its config
  // may be gone while the request's last completion is on its way).
  const Route* route = nullptr;
  Request request = Request::Off;
  bool removed = false;  // gone from the config; the slot is freed once its request ends
  bool paused = false;   // stopped on a resource limit; re-armed at a tick when it has passed
  // UDP: recvmsg_multishot reads the header layout from here.
  msghdr msg{};
};

class Listeners {
 public:
  explicit Listeners(Loop& loop) : loop_(loop) {}

  // Takes the routes of the config just made current: listeners that stay keep
  // their sockets and requests, new ones are armed (unless draining), removed
  // ones are cancelled. Returns the ids of the removed ones.
  std::vector<std::uint64_t> apply(const Config&, bool draining);
  // Stops every listener (drain); returns their ids.
  std::vector<std::uint64_t> stop_all();
  // A completion of the listener's request. True when it carries a client
  // (an accepted socket, a datagram) that the listener still takes. An
  // accepted socket is counted in the descriptor budget here.
  bool on_completion(std::uint32_t slot, const io_uring_cqe*);
  // Re-arms listeners paused on a resource limit once it has passed.
  void on_tick();

  ListenerSlot& at(std::uint32_t slot) { return slots_[slot]; }
  std::uint64_t paused() const { return paused_count_; }

 private:
  void arm(std::uint32_t slot);
  void cancel(std::uint32_t slot);
  void free_slot(std::uint32_t slot);
  void pause(std::uint32_t slot, const char* why);

  Loop& loop_;
  std::deque<ListenerSlot> slots_;  // stable: the kernel reads a UDP slot's msghdr
  std::vector<std::uint32_t> free_;
  std::uint64_t next_id_ = 1;
  std::uint64_t paused_count_ = 0;
};

// Accepting stops this many descriptors short of the budget's limit: a
// multishot accept takes a whole backlog in one go, so near the limit
// accepts go one at a time.
inline constexpr std::int64_t kAcceptMargin = 64;

}  // namespace azlb::engine
