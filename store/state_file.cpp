#include "store/state_file.hpp"

#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <sstream>

#include "store/files.hpp"
#include "store/history.hpp"
#include "store/prefault.hpp"
#include "store/toml_codec.hpp"

namespace azlb::store {

namespace fs = std::filesystem;
using namespace azlb::model;

namespace {

// Closes a descriptor when it goes out of scope.
struct Fd {
  int fd = -1;
  explicit Fd(int f) : fd(f) {}
  Fd(const Fd&) = delete;
  Fd& operator=(const Fd&) = delete;
  ~Fd() {
    if (fd >= 0) ::close(fd);
  }
};

// Nothing but blanks: a file made empty for azlb to fill (mktemp, touch, a
// test's temporary file), read as no file at all: an empty state for a
// command, and for a running engine a file it does not replace its
// configuration with.
bool blank(std::string_view text) { return text.find_first_not_of(" \t\r\n") == std::string_view::npos; }

Result<std::optional<std::string>> read_text(const fs::path& p) {
  AZLB_ASSIGN(text, read_regular_file(p, kMaxStateBytes));
  if (text && blank(*text)) return std::optional<std::string>{};
  if (text) prefault_heap(text->size() * kParseBytesPerTextByte);
  return text;
}

Status write_all(int fd, std::string_view data, const fs::path& p) {
  while (!data.empty()) {
    ssize_t n = ::write(fd, data.data(), data.size());
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return io_error("cannot write", p);
    data.remove_prefix(static_cast<std::size_t>(n));
  }
  return ok();
}

Status ensure_parent(const fs::path& state) {
  std::error_code ec;
  auto dir = state.parent_path();
  if (!dir.empty()) fs::create_directories(dir, ec);
  if (ec) return runtime_error("cannot create folder " + dir.string() + ": " + ec.message());
  return ok();
}

// Replaces the file so that a reader, or a crash at any instant, sees the old
// or the new contents and never a mix. The temp file has a random name and is
// created with O_EXCL (mkostemp), so nothing planted at a predictable name can
// be followed or reused. The file keeps its mode and owner; a new one is 0600
// under the umask (it may hold ACLs and addresses).
Status write_atomically(const fs::path& state, const std::string& text) {
  struct stat old {};
  const bool existed = ::stat(state.c_str(), &old) == 0 && S_ISREG(old.st_mode);
  std::string name = state.string() + ".tmp.XXXXXX";
  Fd f(::mkostemp(name.data(), O_CLOEXEC));
  fs::path tmp = name;
  if (f.fd < 0) return io_error("cannot create a temporary file next to", state);
  const mode_t mask = ::umask(0);
  ::umask(mask);
  Status st = ok();
  if (::fchmod(f.fd, existed ? old.st_mode & 07777 : 0600 & ~mask) != 0) st = io_error("cannot set the mode of", tmp);
  if (st && existed && (old.st_uid != ::geteuid() || old.st_gid != ::getegid()) &&
      ::fchown(f.fd, old.st_uid, old.st_gid) != 0)
    st = runtime_error("cannot keep the owner of " + state.string() + " (uid " + std::to_string(old.st_uid) +
                       "): " + std::strerror(errno) + "; write it as its owner");
  if (st) st = write_all(f.fd, text, tmp);
  if (st && ::fsync(f.fd) != 0) st = io_error("cannot sync", tmp);
  if (st && ::rename(tmp.c_str(), state.c_str()) != 0) st = io_error("cannot replace", state);
  if (!st) {
    ::unlink(tmp.c_str());
    return st;
  }
  // The rename is only durable once the folder's entry is on disk.
  auto dir = state.parent_path().empty() ? fs::path(".") : state.parent_path();
  Fd d(::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (d.fd >= 0) ::fsync(d.fd);
  return ok();
}

// A writer killed between creating its temp file and renaming it leaves the
// file behind. Under the lock no other writer is mid-way, so any is stale.
void remove_stale_temp_files(const fs::path& state) {
  auto prefix = state.filename().string() + ".tmp.";
  std::error_code ec;
  auto dir = state.parent_path().empty() ? fs::path(".") : state.parent_path();
  for (auto& entry : fs::directory_iterator(dir, ec))
    if (entry.path().filename().string().rfind(prefix, 0) == 0) fs::remove(entry.path(), ec);
}

}  // namespace

fs::path resolve_state_path(const std::string& flag) {
  if (!flag.empty()) return flag;
  if (const char* e = std::getenv("AZLB_STATE"); e && *e) return e;
  if (const char* x = std::getenv("XDG_STATE_HOME"); x && *x) return fs::path(x) / "azlb" / "state.toml";
  const char* home = std::getenv("HOME");
  return fs::path(home && *home ? home : ".") / ".local" / "state" / "azlb" / "state.toml";
}

Companions companions_of(const fs::path& state) {
  auto with = [&](const char* suffix) {
    fs::path p = state;
    p += suffix;
    return p;
  };
  return {with(".lock"), with(".engine.lock"), with(".engine.pid"), with(".engine.sock"), with(".engine.log"),
          with(".engine.relay")};
}

Result<std::optional<std::string>> read_state_text(const fs::path& state) { return read_text(state); }

Result<State> load(const fs::path& state) {
  AZLB_ASSIGN(text, read_text(state));
  if (!text) return State{};
  return parse_state(*text, state.string());
}

Status update(const fs::path& state, const std::function<Status(State&)>& change) {
  AZLB_TRY(ensure_parent(state));
  auto lock_path = companions_of(state).lock;
  AZLB_ASSIGN(lock_fd, open_companion(lock_path, O_RDWR, 0600));
  Fd lock(lock_fd);
  while (::flock(lock.fd, LOCK_EX) != 0)
    if (errno != EINTR) return io_error("cannot lock", lock_path);

  remove_stale_temp_files(state);
  AZLB_ASSIGN(before, read_text(state));
  State s;
  if (before) {
    AZLB_ASSIGN(parsed, parse_state(*before, state.string()));
    s = std::move(parsed);
  }
  AZLB_TRY(change(s));
  auto after = format_state(s);
  if (before && *before == after) return ok();
  // What it was, for `state undo`: kept before the file is replaced.
  if (before) AZLB_TRY(save_history(state, *before));
  return write_atomically(state, after);
}

}  // namespace azlb::store
