#include "engine/control/listener_set.hpp"

#include <unistd.h>

#include <algorithm>
#include <set>

#include "engine/log.hpp"
#include "engine/proxy/sockets.hpp"

namespace azlb::engine {

model::Status ListenerSet::prepare(Config& cfg, bool starting) {
  std::map<ListenKey, std::vector<int>> added;
  std::map<ListenKey, std::string> unbound;
  for (auto& r : cfg.routes) {
    if (auto it = sockets_.find(r.key); it != sockets_.end()) {
      cfg.fds.push_back(it->second);
      continue;
    }
    int bind_errno = 0;
    const bool marked = r.key.protocol == model::Protocol::Tcp && !r.key.address.is_unspecified();
    auto fds = bind_listeners(r.key, threads_, &bind_errno, marked ? tcp_mark_ : 0);
    if (!fds && starting && !bind_may_succeed_later(bind_errno)) {
      for (auto& [k, v] : added)
        for (int fd : v) ::close(fd);
      return fds.error();
    }
    if (!fds) {
      unbound[r.key] = fds.error().message;
      continue;
    }
    added[r.key] = *fds;
    cfg.fds.push_back(*fds);
  }
  std::erase_if(cfg.routes, [&](const Route& r) { return unbound.contains(r.key); });
  for (auto& [k, v] : added) {
    sockets_[k] = v;
    log("listening on %s", k.to_string().c_str());
  }
  for (auto& [k, why] : unbound)
    if (!unbound_.contains(k)) log("%s; the rest of the change is in force, retrying every 5 s", why.c_str());
  unbound_ = std::move(unbound);
  return model::ok();
}

void ListenerSet::close_unused(const Config& cfg) {
  std::set<ListenKey> used_keys;  // one lookup per socket, not a scan of every route
  for (auto& r : cfg.routes) used_keys.insert(used_keys.end(), r.key);  // routes come sorted by key
  for (auto it = sockets_.begin(); it != sockets_.end();) {
    const bool used = used_keys.contains(it->first);
    if (used) {
      ++it;
      continue;
    }
    log("stopped listening on %s", it->first.to_string().c_str());
    for (int fd : it->second) ::close(fd);
    it = sockets_.erase(it);
  }
}

void ListenerSet::close_all() {
  for (auto& [k, fds] : sockets_)
    for (int fd : fds) ::close(fd);
  sockets_.clear();
}

std::size_t ListenerSet::descriptors() const { return sockets_.size() * threads_; }

}  // namespace azlb::engine
