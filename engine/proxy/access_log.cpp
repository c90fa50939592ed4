#include "engine/proxy/access_log.hpp"
#include "engine/thread_name.hpp"

#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <ctime>

#include "engine/config.hpp"
#include "engine/log.hpp"
#include "engine/control/process_files.hpp"
#include "engine/proxy/sockets.hpp"

namespace azlb::engine {

const char* to_string(End e) {
  switch (e) {
    case End::Closed: return "closed";
    case End::IdleTimeout: return "idle_timeout";
    case End::ClientReset: return "client_reset";
    case End::MemberReset: return "member_reset";
    case End::Denied: return "denied";
    case End::NoMember: return "no_member";
    case End::ConnectFailed: return "connect_failed";
    case End::MemberUnreachable: return "member_unreachable";
    case End::MemberDown: return "member_down";
    case End::ListenerClosed: return "listener_closed";
    case End::EngineStop: return "engine_stop";
    case End::Error: return "error";
  }
  return "?";
}

namespace {

// Names in the model are letters, digits, '-', '_' and '.' (check_name), and
// addresses are what inet_ntop writes: nothing in a line needs escaping.
void field(std::string& out, const char* key, std::string_view value) {
  out += ",\"";
  out += key;
  out += "\":";
  if (value.empty()) {
    out += "null";
    return;
  }
  out += '"';
  out += value;
  out += '"';
}

void number(std::string& out, const char* key, std::uint64_t value) {
  out += ",\"";
  out += key;
  out += "\":";
  out += std::to_string(value);
}

}  // namespace

std::string format_access_record(const AccessRecord& r) {
  timespec now;
  clock_gettime(CLOCK_REALTIME_COARSE, &now);
  tm t;
  gmtime_r(&now.tv_sec, &t);
  char when[64];
  std::snprintf(when, sizeof when, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", t.tm_year + 1900, t.tm_mon + 1, t.tm_mday,
                t.tm_hour, t.tm_min, t.tm_sec, static_cast<int>(now.tv_nsec / 1'000'000));
  std::string out;
  out.reserve(360);
  out += "{\"time\":\"";
  out += when;
  out += '"';
  field(out, "protocol", r.protocol);
  field(out, "client", r.client ? describe(*r.client) : "");
  const Route& route = *r.route;
  field(out, "vip", route.key.address.with_port(route.key.port));
  field(out, "service", route.service);
  field(out, "lbset", route.lbset);
  // A plain endpoint has one VM whatever happened; a set's member is known
  // only once one was picked.
  const Upstream* u = r.upstream ? r.upstream : route.lbset.empty() && !route.upstreams.empty() ? &route.upstreams[0] : nullptr;
  field(out, "vm", u ? u->state->key.vm : "");
  field(out, "endpoint", u ? u->state->key.endpoint : "");
  field(out, "member", r.upstream ? describe(r.upstream->addr) : "");
  number(out, "bytes_in", r.bytes_in);
  number(out, "bytes_out", r.bytes_out);
  number(out, "duration_ms", static_cast<std::uint64_t>(r.duration_ms < 0 ? 0 : r.duration_ms));
  field(out, "end", to_string(r.end));
  out += "}\n";
  return out;
}

model::Result<std::unique_ptr<AccessLog>> AccessLog::open(const std::filesystem::path& path, unsigned workers) {
  AZLB_ASSIGN(fd, open_log(path));
  return std::unique_ptr<AccessLog>(new AccessLog(path, fd, workers));
}

AccessLog::AccessLog(std::filesystem::path path, int fd, unsigned workers) : path_(std::move(path)), fd_(fd) {
  for (unsigned i = 0; i < workers; ++i) buffers_.push_back(std::make_unique<Buffer>());
  writer_ = std::thread([this] {
    name_this_thread("azlb-access-log");
    run();
  });
}

void AccessLog::stop() {
  if (!writer_.joinable()) return;
  {
    std::lock_guard lk(mu_);
    stop_ = true;
  }
  cv_.notify_one();
  writer_.join();
  ::close(fd_);
}

void AccessLog::write(unsigned worker, const AccessRecord& r) {
  const std::string line = format_access_record(r);
  Buffer& b = *buffers_[worker];
  std::lock_guard lk(b.mu);  // shared with the writer's swap only
  if (b.text.size() + line.size() > kBufferBytes) {
    lost_.fetch_add(1, std::memory_order_relaxed);
    return;
  }
  b.text += line;
}

void AccessLog::run() {
  std::string text;
  for (bool last = false; !last;) {
    {
      std::unique_lock lk(mu_);
      cv_.wait_for(lk, std::chrono::milliseconds(100), [this] { return stop_; });
      last = stop_;
    }
    if (reopen_.exchange(false, std::memory_order_relaxed)) {
      if (auto fd = open_log(path_)) {
        ::close(fd_);
        fd_ = *fd;
        log("access log reopened on SIGUSR1");
      } else {
        log("SIGUSR1: cannot reopen the access log, still writing the old one: %s", fd.error().message.c_str());
      }
    }
    for (auto& b : buffers_) {
      {
        std::lock_guard lk(b->mu);
        text.swap(b->text);
      }
      if (!text.empty()) write_out(text);
      text.clear();
    }
  }
}

// Everything or the rest counted lost: a full disk loses lines, not traffic.
void AccessLog::write_out(std::string& text) {
  auto lines_in = [&](std::size_t from, std::size_t to) {
    return static_cast<std::uint64_t>(std::count(text.begin() + static_cast<std::ptrdiff_t>(from),
                                                 text.begin() + static_cast<std::ptrdiff_t>(to), '\n'));
  };
  std::size_t off = 0;
  while (off < text.size()) {
    const ssize_t n = ::write(fd_, text.data() + off, text.size() - off);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      // A line cut short by the failure counts as lost.
      const auto done = lines_in(0, off), lost = lines_in(off, text.size());
      written_.fetch_add(done, std::memory_order_relaxed);
      lost_.fetch_add(lost, std::memory_order_relaxed);
      log_ratelimited("access log %s: %s: %lu lines lost", path_.c_str(), n < 0 ? std::strerror(errno) : "short write",
                      static_cast<unsigned long>(lost));
      return;
    }
    off += static_cast<std::size_t>(n);
  }
  written_.fetch_add(lines_in(0, text.size()), std::memory_order_relaxed);
}

}  // namespace azlb::engine
