#include "engine/control/listener_set.hpp"

#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <set>

#include "engine/log.hpp"
#include "engine/proxy/sockets.hpp"

namespace azlb::engine {

ListenerSet::Sockets ListenerSet::spread(const ListenKey& key, std::vector<int> bound) {
  Sockets s{std::move(bound), {}};
  if (s.own.size() == threads_) {
    s.per_worker = s.own;
  } else if (key.protocol == model::Protocol::Tcp) {
    s.per_worker.assign(threads_, s.own[0]);
  } else {
    s.per_worker.assign(threads_, -1);
    s.per_worker[next_udp_owner_++ % threads_] = s.own[0];
  }
  return s;
}

model::Status ListenerSet::prepare(Config& cfg, bool starting) {
  std::map<ListenKey, Sockets> added;
  std::map<ListenKey, std::string> unbound;
  std::size_t in_use = descriptors_;
  for (auto& r : cfg.routes) {
    if (auto it = sockets_.find(r.key); it != sockets_.end()) {
      cfg.fds.push_back(it->second.per_worker);
      continue;
    }
    int bind_errno = 0;
    const bool marked = r.key.protocol == model::Protocol::Tcp && !r.key.address.is_unspecified();
    const unsigned count = in_use + threads_ <= per_worker_cap_ ? threads_ : 1;
    auto fds = bind_listeners(r.key, count, &bind_errno, marked ? tcp_mark_ : 0);
    if (!fds && (bind_errno == EMFILE || bind_errno == ENFILE))
      fds = model::runtime_error(
          "cannot listen on " + r.key.to_string() + ": " + std::to_string(cfg.routes.size()) +
          " listening addresses do not fit in the engine's limit of open files" +
          (limit_ ? " (" + std::to_string(limit_) + ", ulimit -n)" : std::string()) +
          (bind_errno == ENFILE ? " or the system's (fs.file-max)" : "") +
          "; raise it, or serve some services through the nat data plane, which needs no socket");
    if (!fds && starting && !bind_may_succeed_later(bind_errno)) {
      for (auto& [k, v] : added)
        for (int fd : v.own) ::close(fd);
      return fds.error();
    }
    if (!fds) {
      unbound[r.key] = fds.error().message;
      continue;
    }
    in_use += fds->size();
    auto& s = added[r.key] = spread(r.key, std::move(*fds));
    cfg.fds.push_back(s.per_worker);
  }
  std::erase_if(cfg.routes, [&](const Route& r) { return unbound.contains(r.key); });
  for (auto& [k, v] : added) {
    descriptors_ += v.own.size();
    const char* shared = k.protocol == model::Protocol::Tcp
                             ? " (one socket for every worker: the per-worker share of descriptors is spent)"
                             : " (one socket, one worker serves it: the per-worker share of descriptors is spent)";
    log("listening on %s%s", k.to_string().c_str(), v.own.size() < threads_ ? shared : "");
    sockets_[k] = std::move(v);
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
    for (int fd : it->second.own) ::close(fd);
    descriptors_ -= it->second.own.size();
    it = sockets_.erase(it);
  }
}

void ListenerSet::close_all() {
  for (auto& [k, s] : sockets_)
    for (int fd : s.own) ::close(fd);
  sockets_.clear();
  descriptors_ = 0;
}

std::size_t ListenerSet::descriptors() const { return descriptors_; }

}  // namespace azlb::engine
