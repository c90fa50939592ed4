#include "engine/proxy/pipe_pool.hpp"

#include <fcntl.h>
#include <unistd.h>

namespace azlb::engine {

PipePool::PipePool(std::uint32_t max_pipes, int pipe_bytes, FdBudget& fds)
    : pipes_(max_pipes), pipe_bytes_(pipe_bytes), fds_(fds) {
  for (std::uint32_t i = max_pipes; i-- > 0;) closed_.push_back(static_cast<int>(i));
}

PipePool::~PipePool() {
  for (auto& p : pipes_)
    if (p.r >= 0) ::close(p.r), ::close(p.w), fds_.give(2);
}

int PipePool::take() {
  if (!idle_.empty()) {
    int i = idle_.back();
    idle_.pop_back();
    return i;
  }
  if (closed_.empty() || !fds_.take(2)) return -1;  // the half stays on buffers
  int fds[2];
  if (::pipe2(fds, O_NONBLOCK | O_CLOEXEC) != 0) {
    fds_.give(2);
    return -1;
  }
  // A larger pipe moves more per splice. Past the user's pipe quota the
  // kernel refuses; the default size still works.
  const int got = ::fcntl(fds[1], F_SETPIPE_SZ, pipe_bytes_);
  if (got < pipe_bytes_) {
    const int actual = ::fcntl(fds[1], F_GETPIPE_SZ);
    if (actual > 0 && actual < pipe_bytes_) pipe_bytes_ = actual;
  }
  int i = closed_.back();
  closed_.pop_back();
  pipes_[static_cast<std::size_t>(i)] = {fds[0], fds[1]};
  return i;
}

void PipePool::give_back(int index, bool empty) {
  if (empty) {
    idle_.push_back(index);
    return;
  }
  auto& p = pipes_[static_cast<std::size_t>(index)];
  ::close(p.r);
  ::close(p.w);
  fds_.give(2);
  p = {};
  closed_.push_back(index);
}

}  // namespace azlb::engine
