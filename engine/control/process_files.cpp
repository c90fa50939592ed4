#include "engine/control/process_files.hpp"

#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "engine/log.hpp"
#include "store/files.hpp"

namespace azlb::engine {

std::optional<long> read_pid(const std::filesystem::path& p) {
  int fd = ::open(p.c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK);
  if (fd < 0) return std::nullopt;
  struct stat st {};
  char buf[24] = {};
  ssize_t n = -1;
  if (::fstat(fd, &st) == 0 && S_ISREG(st.st_mode)) n = ::read(fd, buf, sizeof buf - 1);
  ::close(fd);
  if (n <= 0) return std::nullopt;
  long pid = 0;
  for (ssize_t i = 0; i < n && buf[i] != '\n'; ++i) {
    if (buf[i] < '0' || buf[i] > '9' || pid > 100'000'000) return std::nullopt;
    pid = pid * 10 + (buf[i] - '0');
  }
  return pid > 0 ? std::optional<long>(pid) : std::nullopt;
}

bool engine_lock_held(const std::filesystem::path& lock) {
  int fd = ::open(lock.c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK);
  if (fd < 0) return false;
  struct stat st {};
  bool held = ::fstat(fd, &st) == 0 && S_ISREG(st.st_mode) && ::flock(fd, LOCK_SH | LOCK_NB) != 0 &&
              errno == EWOULDBLOCK;
  ::close(fd);
  return held;
}

model::Result<std::unique_ptr<ProcessLock>> ProcessLock::acquire(const store::Companions& files,
                                                                 const std::string& state) {
  AZLB_ASSIGN(fd, store::open_companion(files.engine_lock, O_RDWR, 0600));
  auto old_pid = read_pid(files.engine_pid);
  if (::flock(fd, LOCK_EX | LOCK_NB) != 0) {
    ::close(fd);
    return model::runtime_error("an engine already runs for " + state + " (pid " +
                                (old_pid ? std::to_string(*old_pid) : "?") + ")");
  }
  if (old_pid) log("removing stale pid file %s (pid %ld is gone)", files.engine_pid.c_str(), *old_pid);
  // Replaced by rename, never written through whatever is at its name.
  if (auto st = store::replace_file(files.engine_pid, std::to_string(::getpid()) + "\n", 0644); !st) {
    ::close(fd);
    return st.error();
  }
  return std::unique_ptr<ProcessLock>(new ProcessLock(files, fd));
}

ProcessLock::~ProcessLock() {
  ::unlink(files_.engine_pid.c_str());
  ::close(fd_);
}

model::Result<int> open_log(const std::filesystem::path& p) {
  AZLB_ASSIGN(fd, store::open_companion(p, O_WRONLY | O_APPEND, 0640));
  // A log is created in a folder another local user may write to. A file
  // they made there first, or a hard link to one of their (or anyone's)
  // files, would receive root's lines: only a file of the engine's own user
  // or of root, with no other name, is written.
  struct stat st {};
  auto refuse = [&](const std::string& why) {
    ::close(fd);
    return model::runtime_error("refusing to write the log " + p.string() + ": " + why);
  };
  if (::fstat(fd, &st) != 0) return refuse(std::strerror(errno));
  if (st.st_nlink > 1)
    return refuse("it has " + std::to_string(st.st_nlink) + " names (a hard link to another file?); remove it");
  if (st.st_uid != ::geteuid() && st.st_uid != 0)
    return refuse("it belongs to user " + std::to_string(st.st_uid) + ", not to this one or root; remove it");
  // The documented mode (0640) at most: a file made earlier with more loses it.
  if ((st.st_mode & 07777 & ~0640) != 0 && ::fchmod(fd, st.st_mode & 0640) != 0 && st.st_uid == ::geteuid())
    return refuse(std::string("cannot set its mode to 0640: ") + std::strerror(errno));
  return fd;
}

}  // namespace azlb::engine
