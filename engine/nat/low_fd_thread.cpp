#include "engine/nat/low_fd_thread.hpp"
#include "engine/thread_name.hpp"

#include <sched.h>
#include <signal.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <utility>

namespace azlb::engine {

LowFdThread::LowFdThread() {
  thread_ = std::thread([this] { main(); });
  std::unique_lock lk(mu_);
  cv_.wait(lk, [this] { return ready_; });
}

LowFdThread::~LowFdThread() {
  {
    std::lock_guard lk(mu_);
    stop_ = true;
  }
  cv_.notify_all();
  thread_.join();
}

void LowFdThread::main() {
  name_this_thread("azlb-nat");
  // Made before the engine masks its signals: none may come here, where
  // their default action would end the process.
  sigset_t all;
  sigfillset(&all);
  pthread_sigmask(SIG_BLOCK, &all, nullptr);
  // The copy holds what was open when the thread began; the engine's lock
  // among them would stay held (and `engine stop` wait) while it is open
  // here, so everything but the standard streams is closed at once.
  const bool isolated =
      ::unshare(CLONE_FILES) == 0 && ::syscall(SYS_close_range, 3u, ~0u, 0u) == 0;
  std::unique_lock lk(mu_);
  isolated_ = isolated;
  ready_ = true;
  cv_.notify_all();
  for (;;) {
    cv_.wait(lk, [this] { return stop_ || job_; });
    if (!job_) return;
    try {
      // Not isolated (a sandbox that refuses unshare): the job still runs, in
      // the shared table, as it would without this thread.
      (*job_)();
    } catch (...) {
      error_ = std::current_exception();
    }
    job_ = nullptr;
    done_ = true;
    cv_.notify_all();
  }
}

void LowFdThread::call(const std::function<void()>& fn) {
  std::unique_lock lk(mu_);
  job_ = &fn;
  done_ = false;
  error_ = nullptr;
  cv_.notify_all();
  cv_.wait(lk, [this] { return done_; });
  if (error_) std::rethrow_exception(std::exchange(error_, nullptr));
}

}  // namespace azlb::engine
