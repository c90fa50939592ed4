#include "engine/state_watcher.hpp"

#include <sys/inotify.h>
#include <unistd.h>

#include "store/state_file.hpp"

namespace azlb::engine {

StateWatcher::StateWatcher(std::filesystem::path state) : state_(std::move(state)) {
  fd_ = inotify_init1(IN_CLOEXEC | IN_NONBLOCK);
  auto dir = state_.parent_path().empty() ? std::filesystem::path(".") : state_.parent_path();
  if (fd_ >= 0) inotify_add_watch(fd_, dir.c_str(), IN_CLOSE_WRITE | IN_MOVED_TO | IN_MOVED_FROM | IN_DELETE);
}

StateWatcher::~StateWatcher() {
  if (fd_ >= 0) ::close(fd_);
}

bool StateWatcher::changed() {
  alignas(inotify_event) char buf[4096];
  bool ours = false;
  ssize_t n;
  while ((n = ::read(fd_, buf, sizeof buf)) > 0)
    for (char* p = buf; p < buf + n;) {
      auto* ev = reinterpret_cast<inotify_event*>(p);
      if (ev->len && state_.filename() == ev->name) ours = true;
      p += sizeof(inotify_event) + ev->len;
    }
  return ours;
}

model::Result<std::string> StateWatcher::read() const {
  AZLB_ASSIGN(text, store::read_state_text(state_));
  // A deleted state file is an accident or a move in progress, never "serve
  // nothing": the VIPs stay up on what is in force.
  if (!text) return model::runtime_error("the state file " + state_.string() + " is missing");
  return std::move(*text);
}

}  // namespace azlb::engine
