#include "store/history.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstring>

#include "model/text.hpp"
#include "store/etcd_client.hpp"
#include "store/etcd_state.hpp"
#include "store/files.hpp"
#include "store/state_file.hpp"
#include "store/toml_codec.hpp"

namespace azlb::store {

namespace fs = std::filesystem;
using model::Result;
using model::Status;

namespace {

fs::path history_dir(const fs::path& state) {
  fs::path p = state;
  p += ".history";
  return p;
}

// The folder, made 0700 if missing; refused if it is a link, not a folder,
// or another user's (it would let them plant or read old states).
Status own_folder(const fs::path& dir, bool create) {
  if (create && ::mkdir(dir.c_str(), 0700) != 0 && errno != EEXIST) return io_error("cannot create", dir);
  struct stat st {};
  if (::lstat(dir.c_str(), &st) != 0) return io_error("cannot read", dir);
  if (!S_ISDIR(st.st_mode)) return model::runtime_error("refusing to use " + dir.string() + ": it is not a folder");
  if (st.st_uid != ::geteuid())
    return model::runtime_error("refusing to use " + dir.string() + ": it belongs to uid " + std::to_string(st.st_uid));
  return model::ok();
}

// Saved states, newest first: files named by the time they were replaced.
std::vector<fs::path> saved(const fs::path& dir) {
  std::vector<fs::path> out;
  std::error_code ec;
  for (auto& e : fs::directory_iterator(dir, ec)) {
    const auto name = e.path().filename().string();
    if (name.size() > 5 && name.ends_with(".toml") && std::isdigit(static_cast<unsigned char>(name[0])))
      out.push_back(e.path());
  }
  std::sort(out.begin(), out.end(), [](auto& a, auto& b) { return a.filename().string() > b.filename().string(); });
  return out;
}

std::time_t modified(const fs::path& p) {
  struct stat st {};
  return ::stat(p.c_str(), &st) == 0 ? st.st_mtime : 0;
}

Result<std::vector<HistoryEntry>> file_history(const fs::path& state, std::size_t most) {
  std::vector<HistoryEntry> out;
  AZLB_ASSIGN(now, load(state));
  out.push_back({0, modified(state), state.string(), std::move(now)});
  const auto dir = history_dir(state);
  if (!fs::exists(dir)) return out;
  AZLB_TRY(own_folder(dir, false));
  for (auto& p : saved(dir)) {
    if (out.size() >= most) break;
    AZLB_ASSIGN(text, read_regular_file(p, kMaxStateBytes));
    if (!text) continue;
    auto s = parse_state(*text, p.string());
    if (!s) break;  // a hand edit of a saved state ends the history there
    out.push_back({out.size(), modified(p), p.string(), std::move(*s)});
  }
  return out;
}

Result<std::vector<HistoryEntry>> etcd_history(const EtcdLocation& loc, std::size_t most) {
  AZLB_ASSIGN(client, EtcdClient::open(loc));
  std::vector<HistoryEntry> out;
  std::int64_t at = 0;
  while (out.size() < most) {
    auto snap = etcd::read(*client, at);
    if (!snap) {
      if (out.empty()) return snap.error();
      break;  // compacted: etcd keeps no more
    }
    if (!snap->meta) {
      if (!out.empty()) break;  // before the state's first write
      // No state key now: deleted by hand? Its objects tell when it was last written.
      out.push_back({0, 0, "revision " + std::to_string(snap->revision) + " (no state key)", model::State{}});
      AZLB_ASSIGN(last, etcd::last_object_revision(*client));
      if (last <= 0) break;
      at = last;
      continue;
    }
    AZLB_ASSIGN(text, etcd::assemble(*snap, loc.prefix));
    auto s = parse_text(text);
    if (!s) {
      if (out.empty()) return s.error();
      break;
    }
    out.push_back({out.size(), snap->written, "revision " + std::to_string(snap->meta_revision), std::move(*s)});
    at = snap->meta_revision - 1;
    if (at <= 0) break;
  }
  return out;
}

}  // namespace

Status save_history(const fs::path& state, const std::string& text) {
  const auto dir = history_dir(state);
  AZLB_TRY(own_folder(dir, true));
  const auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(
                      std::chrono::system_clock::now().time_since_epoch())
                      .count();
  char name[48];
  std::snprintf(name, sizeof name, "%015lld.toml", static_cast<long long>(ms));
  fs::path p = dir / name;
  for (int i = 1; fs::exists(p); ++i) {  // two writes in one millisecond
    std::snprintf(name, sizeof name, "%015lld-%03d.toml", static_cast<long long>(ms), i);
    p = dir / name;
  }
  AZLB_TRY(replace_file(p, text, 0600));
  // It keeps the time the state was written, which history shows.
  struct stat old {};
  if (::stat(state.c_str(), &old) == 0) {
    const timespec times[2] = {old.st_atim, old.st_mtim};
    ::utimensat(AT_FDCWD, p.c_str(), times, 0);
  }
  auto all = saved(dir);
  std::error_code ec;
  for (std::size_t i = kHistoryKeep; i < all.size(); ++i) fs::remove(all[i], ec);
  return model::ok();
}

Result<std::vector<HistoryEntry>> history(const Location& loc, std::size_t most) {
  most = std::min(most, kHistoryKeep + 1);
  if (loc.is_etcd()) return etcd_history(loc.etcd(), most);
  return file_history(loc.file(), most);
}

}  // namespace azlb::store
