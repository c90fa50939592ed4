#include "engine/log.hpp"

#include <unistd.h>

#include <atomic>
#include <cstdarg>
#include <cstdio>
#include <ctime>

namespace azlb::engine {

namespace {

void vlog(const char* fmt, va_list ap) {
  char line[1024];
  timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  tm t;
  gmtime_r(&ts.tv_sec, &t);
  int n = static_cast<int>(strftime(line, sizeof line, "%Y-%m-%dT%H:%M:%S", &t));
  n += snprintf(line + n, sizeof line - static_cast<std::size_t>(n), ".%03ldZ azlb[%d] ", ts.tv_nsec / 1000000, getpid());
  int m = vsnprintf(line + n, sizeof line - static_cast<std::size_t>(n) - 1, fmt, ap);
  n = m < 0 ? n : std::min<int>(n + m, static_cast<int>(sizeof line) - 2);
  line[n++] = '\n';
  (void)!::write(STDERR_FILENO, line, static_cast<std::size_t>(n));
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
