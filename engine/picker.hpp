// Picks the upstream for a new connection or UDP flow. It only picks: health
// comes from the prober, bytes are moved by the proxies.
#pragma once

#include <cstdint>
#include <span>

#include "engine/config.hpp"
#include "engine/rng.hpp"

namespace azlb::engine {

// What affinity modes hash: the client's address, and for source-ip-protocol
// the protocol too. Computed once per connection.
std::uint64_t client_hash(const sockaddr_storage& client, model::Protocol);

inline constexpr int kNoUpstream = -1;

// The index of the chosen upstream in route.upstreams, skipping `tried`
// (earlier failed attempts of this connection), or kNoUpstream.
//  - five-tuple: uniformly at random among eligible upstreams;
//  - source-ip(-protocol): rendezvous hashing, so a client stays on its member
//    while the membership is unchanged and only the clients of a member that
//    goes down move.
// With every upstream down, when_all_down=serve-all uses them all. A drained
// upstream is never picked.
int pick(const Route&, std::uint64_t client_hash, std::span<const std::uint8_t> tried, Rng&);

}  // namespace azlb::engine
