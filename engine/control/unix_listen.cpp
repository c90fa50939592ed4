#include "engine/control/unix_listen.hpp"

#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

namespace azlb::engine {

model::Result<int> listen_unix(const std::filesystem::path& path, int backlog, const std::string& what) {
  sockaddr_un sa{};
  sa.sun_family = AF_UNIX;
  if (path.string().size() >= sizeof sa.sun_path)
    return model::runtime_error(what + " path " + path.string() + " is too long for a Unix socket (" +
                                std::to_string(sizeof sa.sun_path - 1) + " bytes at most); use a shorter --state path");
  std::strcpy(sa.sun_path, path.c_str());
  int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
  if (fd < 0) return model::runtime_error("cannot create the " + what + ": " + std::strerror(errno));
  ::unlink(path.c_str());
  mode_t old = ::umask(0177);
  int r = ::bind(fd, reinterpret_cast<sockaddr*>(&sa), sizeof sa);
  ::umask(old);
  if (r != 0 || ::listen(fd, backlog) != 0) {
    int e = errno;
    ::close(fd);
    return model::runtime_error("cannot open " + what + " " + path.string() + ": " + std::strerror(e));
  }
  return fd;
}

}  // namespace azlb::engine
