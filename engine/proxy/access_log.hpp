// The access log: one JSON object per line for each finished TCP connection
// and each ended UDP flow. A worker never touches the disk: it appends the
// line to a buffer of its own, and a writer thread moves every buffer to the
// file a few times a second. A full buffer (the disk is slow) or a failed
// write (the disk is full) loses log lines, never traffic, and counts them.
#pragma once

#include <sys/socket.h>

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <filesystem>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "model/error.hpp"

namespace azlb::engine {

struct Route;
struct Upstream;

// How a connection or flow ended, as the log says it.
enum class End : std::uint8_t {
  Closed,             // both sides finished (FIN both ways)
  IdleTimeout,        // nothing moved for the endpoint's idle timeout
  ClientReset,        // the client reset or failed
  MemberReset,        // the member reset or failed
  Denied,             // the ACL turned the client away
  NoMember,           // no member could take it (every one down or drained)
  ConnectFailed,      // every member tried refused or timed out
  MemberUnreachable,  // UDP: the member answered with an ICMP error
  MemberDown,         // UDP: the member went down or left; the flow moves
  ListenerClosed,     // the endpoint or set was removed
  EngineStop,         // the engine stopped
  Error,              // a local error (no socket)
};
const char* to_string(End);

// What one log line says. Addresses are taken as the sockets gave them.
struct AccessRecord {
  const char* protocol = "tcp";
  const sockaddr_storage* client = nullptr;  // null: unknown
  const Route* route = nullptr;
  const Upstream* upstream = nullptr;        // null: no member was reached
  std::uint64_t bytes_in = 0, bytes_out = 0;
  std::int64_t duration_ms = 0;
  End end = End::Closed;
};

// The line, with its '\n' (for tests and for the workers' buffers).
std::string format_access_record(const AccessRecord&);

class AccessLog {
 public:
  // Opens (creates, 0640, never through a link) the file, for `workers` workers.
  static model::Result<std::unique_ptr<AccessLog>> open(const std::filesystem::path&, unsigned workers);
  ~AccessLog() { stop(); }
  // Writes what the buffers hold, then stops the writer; later lines are
  // lost. Once the workers are done.
  void stop();
  AccessLog(const AccessLog&) = delete;
  AccessLog& operator=(const AccessLog&) = delete;

  // From worker `worker` only; never blocks on the disk.
  void write(unsigned worker, const AccessRecord&);
  // From the control thread: the writer opens the file at its name again
  // (logrotate moved it) before its next write.
  void reopen() { reopen_.store(true, std::memory_order_relaxed); }

  std::uint64_t lines_written() const { return written_.load(std::memory_order_relaxed); }
  std::uint64_t lines_lost() const { return lost_.load(std::memory_order_relaxed); }
  const std::filesystem::path& path() const { return path_; }

  // Bytes a worker's buffer may hold between two writes: at 50,000 lines of
  // ~330 bytes a second, a tenth of a second fills 1.6 MB.
  static constexpr std::size_t kBufferBytes = 4 << 20;

 private:
  AccessLog(std::filesystem::path, int fd, unsigned workers);
  void run();
  void write_out(std::string& text);

  struct alignas(64) Buffer {
    std::mutex mu;
    std::string text;
  };
  std::filesystem::path path_;
  int fd_;
  std::vector<std::unique_ptr<Buffer>> buffers_;
  std::atomic<bool> reopen_{false};
  std::atomic<std::uint64_t> written_{0}, lost_{0};
  std::mutex mu_;
  std::condition_variable cv_;
  bool stop_ = false;
  std::thread writer_;
};

}  // namespace azlb::engine
