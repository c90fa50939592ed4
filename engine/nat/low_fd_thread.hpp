// A thread whose descriptor table is its own, copied while the process's
// descriptors are still few, so that a library that can only handle small
// descriptor numbers never sees a large one. libnftables 1.0.6 waits on its
// netlink socket with select(), whose fd_set ends at FD_SETSIZE (1024): on a
// host where the engine holds thousands of listeners and connections, a
// socket it opened in the shared table would abort the process (glibc's
// "bit out of range 0 - FD_SETSIZE on fd_set"). Here the table holds only
// the standard streams and what the library itself opens.
#pragma once

#include <condition_variable>
#include <functional>
#include <mutex>
#include <thread>

namespace azlb::engine {

class LowFdThread {
 public:
  // Starts the thread; it unshares its descriptor table (unshare(2),
  // CLONE_FILES) and closes every descriptor of the copy but 0, 1 and 2, so
  // that it holds no lock, log or socket of the engine's open.
  LowFdThread();
  ~LowFdThread();
  LowFdThread(const LowFdThread&) = delete;
  LowFdThread& operator=(const LowFdThread&) = delete;

  // Runs `fn` on the thread and returns when it has run. An exception `fn`
  // throws is thrown here.
  void call(const std::function<void()>& fn);
  // False when the thread could not get a table of its own (a sandbox that
  // refuses unshare): call() then runs its jobs in the shared table.
  bool isolated() const { return isolated_; }

 private:
  void main();
  std::mutex mu_;
  std::condition_variable cv_;
  const std::function<void()>* job_ = nullptr;
  std::exception_ptr error_;
  bool done_ = false, stop_ = false, ready_ = false, isolated_ = false;
  std::thread thread_;
};

}  // namespace azlb::engine
