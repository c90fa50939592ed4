// One line per event on stderr (the log file when daemonized), each written
// with a single write(2) so lines from several threads never interleave.
#pragma once

namespace azlb::engine {

void log(const char* fmt, ...) __attribute__((format(printf, 1, 2)));
// For events that can repeat per connection (accept errors): at most a few a
// second, with a count of what was left out.
void log_ratelimited(const char* fmt, ...) __attribute__((format(printf, 1, 2)));

}  // namespace azlb::engine
