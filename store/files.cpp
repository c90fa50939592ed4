#include "store/files.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>

namespace azlb::store {

namespace fs = std::filesystem;
using namespace azlb::model;

Error io_error(const std::string& what, const fs::path& p, int e) {
  return runtime_error(what + " " + p.string() + ": " + std::strerror(e));
}

namespace {

const char* kind_of(mode_t m) {
  if (S_ISFIFO(m)) return "a FIFO";
  if (S_ISDIR(m)) return "a folder";
  if (S_ISCHR(m) || S_ISBLK(m)) return "a device";
  if (S_ISSOCK(m)) return "a socket";
  return "not a regular file";
}

}  // namespace

Result<int> open_companion(const fs::path& p, int flags, mode_t mode) {
  // O_NONBLOCK: opening a FIFO must not wait for a peer; cleared below.
  int fd = ::open(p.c_str(), flags | O_CREAT | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK, mode);
  if (fd < 0) {
    if (errno == ELOOP) return runtime_error("refusing to open " + p.string() + ": it is a symbolic link");
    // A FIFO without a reader, opened for writing without blocking.
    if (errno == ENXIO) return runtime_error("refusing to open " + p.string() + ": it is a FIFO");
    return io_error("cannot open", p);
  }
  struct stat st {};
  if (::fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
    ::close(fd);
    return runtime_error("refusing to open " + p.string() + ": it is " + kind_of(st.st_mode));
  }
  ::fcntl(fd, F_SETFL, ::fcntl(fd, F_GETFL) & ~O_NONBLOCK);
  return fd;
}

Result<std::optional<std::string>> read_regular_file(const fs::path& p, std::size_t max_bytes) {
  int fd = ::open(p.c_str(), O_RDONLY | O_CLOEXEC | O_NONBLOCK);
  if (fd < 0) {
    if (errno == ENOENT) return std::optional<std::string>{};
    return io_error("cannot read", p);
  }
  struct stat st {};
  if (::fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
    ::close(fd);
    return runtime_error("cannot read " + p.string() + ": it is " + kind_of(st.st_mode) + ", not a state file");
  }
  auto too_large = [&] {
    ::close(fd);
    return runtime_error("cannot read " + p.string() + ": larger than the " + std::to_string(max_bytes >> 20) +
                         " MiB a state file may hold");
  };
  if (static_cast<std::size_t>(st.st_size) > max_bytes) return too_large();
  std::string text;
  text.reserve(static_cast<std::size_t>(st.st_size));
  char buf[65536];
  for (;;) {
    ssize_t n = ::read(fd, buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      int e = errno;
      ::close(fd);
      return io_error("cannot read", p, e);
    }
    if (n == 0) break;
    text.append(buf, static_cast<std::size_t>(n));
    if (text.size() > max_bytes) return too_large();  // it grew while we read
  }
  ::close(fd);
  return std::optional<std::string>{std::move(text)};
}

Status replace_file(const fs::path& p, const std::string& text, mode_t mode) {
  std::string tmpl = p.string() + ".XXXXXX";
  // mkostemp: O_CREAT|O_EXCL with a random name, so nothing planted can be reused.
  int fd = ::mkostemp(tmpl.data(), O_CLOEXEC);
  if (fd < 0) return io_error("cannot create a file next to", p);
  Status st = ok();
  if (::fchmod(fd, mode) != 0) st = io_error("cannot set the mode of", tmpl);
  for (std::string_view rest = text; st && !rest.empty();) {
    ssize_t n = ::write(fd, rest.data(), rest.size());
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) st = io_error("cannot write", tmpl);
    if (n > 0) rest.remove_prefix(static_cast<std::size_t>(n));
  }
  ::close(fd);
  if (st && ::rename(tmpl.c_str(), p.c_str()) != 0) st = io_error("cannot replace", p);
  if (!st) ::unlink(tmpl.c_str());
  return st;
}

}  // namespace azlb::store
