#include "engine/log.hpp"

#include <unistd.h>

#include <atomic>
#include <cstdarg>
#include <cstdio>
#include <ctime>
#include <string>

#include "model/text.hpp"

namespace azlb::engine {

namespace {

// The one place where what the engine logs is made safe: paths, names and
// whatever a peer sent reach the log through format arguments, and a line
// break or an escape sequence among them would forge a line or drive the
// reader's terminal. Every control character and every byte that is not
// UTF-8 is written as \xNN (model::printable), and a message is cut after
// kMaxMessage bytes.
constexpr std::size_t kMaxMessage = 2048;

void vlog(const char* fmt, va_list ap) {
  char message[kMaxMessage + 1];
  const int m = vsnprintf(message, sizeof message, fmt, ap);
  const std::size_t len = m < 0 ? 0 : std::min<std::size_t>(static_cast<std::size_t>(m), kMaxMessage);
  std::string line(64, '\0');
  timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  tm t;
  gmtime_r(&ts.tv_sec, &t);
  std::size_t n = strftime(line.data(), line.size(), "%Y-%m-%dT%H:%M:%S", &t);
  n += static_cast<std::size_t>(
      snprintf(line.data() + n, line.size() - n, ".%03ldZ azlb[%d] ", ts.tv_nsec / 1000000, getpid()));
  line.resize(n);
  line += model::printable(std::string_view(message, len));
  if (m > static_cast<int>(kMaxMessage)) line += "... (cut)";
  line += '\n';
  (void)!::write(STDERR_FILENO, line.data(), line.size());
}

std::atomic<long> window{0};
std::atomic<int> in_window{0};
std::atomic<int> suppressed{0};

}  // namespace

void log(const char* fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  vlog(fmt, ap);
  va_end(ap);
}

void log_ratelimited(const char* fmt, ...) {
  long now = static_cast<long>(::time(nullptr));
  if (window.exchange(now) != now) {
    in_window = 0;
    if (int s = suppressed.exchange(0)) log("(%d similar messages suppressed)", s);
  }
  if (++in_window > 5) {
    ++suppressed;
    return;
  }
  va_list ap;
  va_start(ap, fmt);
  vlog(fmt, ap);
  va_end(ap);
}

}  // namespace azlb::engine
