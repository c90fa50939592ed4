// The listening sockets of the control thread: one per worker for each
// address the config listens on (SO_REUSEPORT), while they stay within the
// share of the descriptor limit set for them; beyond it, one per address:
// a TCP one that every worker accepts from (the kernel wakes one of them
// per connection), a UDP one that one worker serves (a client's datagrams
// must all reach the worker that holds its flow). 1,000 endpoints on 16
// workers would otherwise be 16,000 descriptors of 20,000, and 1,300 more
// than the limit. It binds what a new config adds, keeps what stays, and
// closes what is gone once no worker uses it. A listener that cannot bind is
// left out and retried, at start as on a reload: one busy port (sshd on the
// VIP's port 22) never holds back the rest.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "engine/config.hpp"

namespace azlb::engine {

class ListenerSet {
 public:
  // `tcp_mark`: each TCP listener of a VIP (not a wildcard) carries it (SO_MARK).
  explicit ListenerSet(unsigned threads, std::uint32_t tcp_mark = 0) : threads_(threads), tcp_mark_(tcp_mark) {}
  // The process's limit of open files: listeners are one per worker while
  // they take at most a quarter of it, leaving the rest to connections.
  void set_descriptor_limit(std::size_t limit) {
    limit_ = limit;
    per_worker_cap_ = limit / 4;
  }
  ~ListenerSet() { close_all(); }
  ListenerSet(const ListenerSet&) = delete;
  ListenerSet& operator=(const ListenerSet&) = delete;

  // Binds what `cfg` adds and fills cfg.fds. Routes that cannot bind for
  // now (a port another program holds, an address not yet this host's) are
  // dropped from `cfg` and remembered in unbound(), to be tried again. At
  // start (`starting`), any other failure (a missing privilege) fails.
  model::Status prepare(Config& cfg, bool starting);
  // Closes the sockets `cfg` no longer uses (after every worker has taken it).
  void close_unused(const Config& cfg);
  void close_all();
  const std::map<ListenKey, std::string>& unbound() const { return unbound_; }
  std::size_t descriptors() const;

 private:
  struct Sockets {
    std::vector<int> own;         // what was bound, closed when the address goes
    std::vector<int> per_worker;  // each worker's, -1 where it serves none
  };
  Sockets spread(const ListenKey&, std::vector<int> bound);

  unsigned threads_;
  std::uint32_t tcp_mark_;
  std::size_t limit_ = 0, per_worker_cap_ = SIZE_MAX;
  std::size_t descriptors_ = 0;
  unsigned next_udp_owner_ = 0;
  std::map<ListenKey, Sockets> sockets_;
  std::map<ListenKey, std::string> unbound_;
};

}  // namespace azlb::engine
