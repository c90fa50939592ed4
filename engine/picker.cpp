#include "engine/picker.hpp"

#include <netinet/in.h>

#include <algorithm>

#include "engine/hash.hpp"

namespace azlb::engine {

namespace {

bool was_tried(std::span<const std::uint8_t> tried, std::size_t i) {
  return std::find(tried.begin(), tried.end(), static_cast<std::uint8_t>(i)) != tried.end();
}

}  // namespace

std::uint64_t client_hash(const sockaddr_storage& client, model::Distribution d, model::Protocol proto) {
  std::uint64_t h = 0;
  if (client.ss_family == AF_INET) {
    h = reinterpret_cast<const sockaddr_in&>(client).sin_addr.s_addr;
  } else if (client.ss_family == AF_INET6) {
    auto* b = reinterpret_cast<const sockaddr_in6&>(client).sin6_addr.s6_addr;
    for (int i = 0; i < 16; ++i) h = mix64(h ^ b[i]);
  }
  if (d != model::Distribution::SourceIpProtocol) return mix64(h);
  return mix64(h ^ (static_cast<std::uint64_t>(proto) + 1) << 56);
}

int pick(const Route& r, std::uint64_t chash, std::span<const std::uint8_t> tried, Rng& rng) {
  const auto n = r.upstreams.size();
  // A drained member is out whatever its health, serve-all included: its
  // operator has asked for it to end its connections.
  bool any_eligible = false;
  for (std::size_t i = 0; i < n && !any_eligible; ++i)
    any_eligible = !r.upstreams[i].drained && r.upstreams[i].state->eligible();
  bool serve_all = !any_eligible && r.when_all_down == model::WhenAllDown::ServeAll;
  auto usable = [&](std::size_t i) {
    return !was_tried(tried, i) && !r.upstreams[i].drained && (serve_all || r.upstreams[i].state->eligible());
  };

  if (r.distribution == model::Distribution::FiveTuple) {
    // Reservoir sampling: one pass, uniform over the usable upstreams, no scratch space.
    int chosen = kNoUpstream;
    std::uint32_t seen = 0;
    for (std::size_t i = 0; i < n; ++i)
      if (usable(i) && rng.below(++seen) == 0) chosen = static_cast<int>(i);
    return chosen;
  }
  int chosen = kNoUpstream;
  std::uint64_t best = 0;
  for (std::size_t i = 0; i < n; ++i) {
    if (!usable(i)) continue;
    auto score = mix64(chash ^ r.upstreams[i].id_hash);
    if (chosen == kNoUpstream || score > best) best = score, chosen = static_cast<int>(i);
  }
  return chosen;
}

}  // namespace azlb::engine
