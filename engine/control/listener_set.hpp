// The listening sockets of the control thread: one per worker for each
// address the config listens on (SO_REUSEPORT). It binds what a new config
// adds, keeps what stays, and closes what is gone once no worker uses it. A
// listener that cannot bind is left out and retried, at start as on a
// reload: one busy port (sshd on the VIP's port 22) never holds back the rest.
#pragma once

#include <map>
#include <string>
#include <vector>

#include "engine/config.hpp"

namespace azlb::engine {

class ListenerSet {
 public:
  // `tcp_mark`: each TCP listener of a VIP (not a wildcard) carries it (SO_MARK).
  explicit ListenerSet(unsigned threads, std::uint32_t tcp_mark = 0) : threads_(threads), tcp_mark_(tcp_mark) {}
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
  unsigned threads_;
  std::uint32_t tcp_mark_;
  std::map<ListenKey, std::vector<int>> sockets_;
  std::map<ListenKey, std::string> unbound_;
};

}  // namespace azlb::engine
