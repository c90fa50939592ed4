#include "engine/control/state_watcher.hpp"

#include <filesystem>

#include <sys/inotify.h>
#include <unistd.h>

#include "store/state_store.hpp"

namespace azlb::engine {

StateWatcher::StateWatcher(store::Location state) : state_(std::move(state)) {}

model::Status StateWatcher::start() {
  if (state_.is_etcd()) {
    AZLB_ASSIGN(f, EtcdFollower::start(state_.etcd()));
    follower_ = std::move(f);
    return model::ok();
  }
  fd_ = inotify_init1(IN_CLOEXEC | IN_NONBLOCK);
  const auto& file = state_.file();
  auto dir = file.parent_path().empty() ? std::filesystem::path(".") : file.parent_path();
  if (fd_ >= 0) inotify_add_watch(fd_, dir.c_str(), IN_CLOSE_WRITE | IN_MOVED_TO | IN_MOVED_FROM | IN_DELETE);
  return model::ok();
}

StateWatcher::~StateWatcher() {
  follower_.reset();
  if (fd_ >= 0) ::close(fd_);
}

int StateWatcher::fd() const { return follower_ ? follower_->fd() : fd_; }

bool StateWatcher::changed() {
  if (follower_) {
    follower_->drain_events();
    return true;
  }
  alignas(inotify_event) char buf[4096];
  bool ours = false;
  ssize_t n;
  while ((n = ::read(fd_, buf, sizeof buf)) > 0)
    for (char* p = buf; p < buf + n;) {
      auto* ev = reinterpret_cast<inotify_event*>(p);
      if (ev->len && state_.file().filename() == ev->name) ours = true;
      p += sizeof(inotify_event) + ev->len;
    }
  return ours;
}

model::Result<store::StateText> StateWatcher::read(bool fresh) {
  if (follower_ && !fresh) return follower_->latest();
  // Out of reach a moment ago: say so at once rather than wait on every endpoint.
  if (follower_ && !follower_->health().reachable)
    return model::runtime_error("etcd is out of reach: " + follower_->health().error);
  if (follower_) return follower_->read_now();
  AZLB_ASSIGN(text, store::read_text(state_));
  // A deleted state file is an accident or a move in progress, never "serve
  // nothing": the VIPs stay up on what is in force.
  if (!text) {
    std::error_code ec;
    const bool there = !state_.is_etcd() && std::filesystem::exists(state_.file(), ec);
    return model::runtime_error("the state file " + state_.display() + (there ? " is empty" : " is missing"));
  }
  return std::move(*text);
}

StoreHealth StateWatcher::health() const {
  if (follower_) return follower_->health();
  return StoreHealth{};
}

}  // namespace azlb::engine
