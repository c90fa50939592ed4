// Blocking-free socket I/O with an absolute deadline (CLOCK_MONOTONIC ms),
// for the short local exchanges of the CLI and the engine (the etcd relay,
// the admin socket): a peer that stops reading or writing costs a wait until
// the deadline, never a hang.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

namespace azlb::store {

std::int64_t monotonic_ms();
// All of `data`; false on error or the deadline.
bool send_all(int fd, std::string_view data, std::int64_t deadline_ms);
// Exactly `n` bytes; false on error, the end or the deadline.
bool recv_exact(int fd, char* out, std::size_t n, std::int64_t deadline_ms);
// What comes next, appended to `out`: its size, 0 at the end, -1 on error,
// the deadline, or `out` past `max`.
long recv_some(int fd, std::string& out, std::size_t max, std::int64_t deadline_ms);

}  // namespace azlb::store
