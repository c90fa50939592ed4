#include "engine/picker.hpp"

#include <netinet/in.h>

#include <algorithm>
#include <cstring>

#include "engine/hash.hpp"
#include "engine/maglev.hpp"

namespace azlb::engine {

namespace {

bool was_tried(std::span<const std::uint8_t> tried, std::size_t i) {
  return std::find(tried.begin(), tried.end(), static_cast<std::uint8_t>(i)) != tried.end();
}

// Appends an address's bytes (4 or 16) and, when asked, its port.
std::size_t put_address(char* out, const sockaddr_storage& a, bool with_port) {
  std::size_t n = 0;
  if (a.ss_family == AF_INET) {
    auto& sa = reinterpret_cast<const sockaddr_in&>(a);
    std::memcpy(out, &sa.sin_addr, 4);
    n = 4;
    if (with_port) std::memcpy(out + n, &sa.sin_port, 2), n += 2;
  } else if (a.ss_family == AF_INET6) {
    auto& sa = reinterpret_cast<const sockaddr_in6&>(a);
    std::memcpy(out, &sa.sin6_addr, 16);
    n = 16;
    if (with_port) std::memcpy(out + n, &sa.sin6_port, 2), n += 2;
  }
  return n;
}

}  // namespace

std::uint64_t flow_hash(const sockaddr_storage& client, const Route& r) {
  char bytes[48];
  const bool five = r.distribution == model::Distribution::FiveTuple;
  std::size_t n = put_address(bytes, client, five);
  if (five) {
    // The address the route listens on (the VIP, or the wildcard): the same
    // on every host, where the socket's own local address may not be.
    const auto& a = r.key.address;
    const std::size_t len = a.family == model::Family::V6 ? 16 : 4;
    std::memcpy(bytes + n, a.bytes.data(), len);
    n += len;
    bytes[n++] = static_cast<char>(r.key.port >> 8);
    bytes[n++] = static_cast<char>(r.key.port & 0xff);
  }
  if (r.distribution != model::Distribution::SourceIp) bytes[n++] = static_cast<char>(r.key.protocol);
  return seeded_hash(std::string_view(bytes, n), r.seed);
}

// Whether upstream i may take a new flow: never when drained (whatever its
// health, serve-all included: its operator has asked for it to end its
// connections), else when eligible, or with every member down and
// serve-all, whatever its health.
struct Usable {
  const Route& r;
  std::span<const std::uint8_t> tried;
  bool serve_all = false;

  Usable(const Route& route, std::span<const std::uint8_t> t) : r(route), tried(t) {
    bool any_eligible = false;
    for (std::size_t i = 0; i < r.upstreams.size() && !any_eligible; ++i)
      any_eligible = !r.upstreams[i].drained && r.upstreams[i].state->eligible();
    serve_all = !any_eligible && r.when_all_down == model::WhenAllDown::ServeAll;
  }
  bool operator()(std::size_t i) const {
    return i < r.upstreams.size() && !was_tried(tried, i) && !r.upstreams[i].drained &&
           (serve_all || r.upstreams[i].state->eligible());
  }
};

bool servable(const Route& r) {
  const Usable usable(r, {});
  for (std::size_t i = 0; i < r.upstreams.size(); ++i)
    if (usable(i)) return true;
  return false;
}

std::vector<double> shares_now(const Route& r) {
  const auto n = r.upstreams.size();
  std::vector<double> out(n, 0.0);
  const Usable usable(r, {});
  if (!r.table || r.table->empty()) {
    for (std::size_t i = 0; i < n; ++i)
      if (usable(i)) {
        out[i] = 1.0;
        break;
      }
    return out;
  }
  for (int m : r.table->effective(usable))
    if (m >= 0) out[static_cast<std::size_t>(m)] += 1.0 / r.table->size();
  return out;
}

int pick(const Route& r, std::uint64_t hash, std::span<const std::uint8_t> tried) {
  const auto n = r.upstreams.size();
  const Usable usable(r, tried);
  if (!r.table || r.table->empty()) {
    // One member (no table to build), or none.
    for (std::size_t i = 0; i < n; ++i)
      if (usable(i)) return static_cast<int>(i);
    return kNoUpstream;
  }
  bool any = false;
  for (std::size_t i = 0; i < n && !any; ++i) any = usable(i);
  if (!any) return kNoUpstream;
  return r.table->member_of_slot(static_cast<std::uint32_t>(hash % r.table->size()), usable);
}

}  // namespace azlb::engine
