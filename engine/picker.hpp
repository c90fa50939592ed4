// Picks the upstream for a new connection or UDP flow. It only picks: health
// comes from the prober, bytes are moved by the proxies.
#pragma once

#include <cstdint>
#include <span>

#include "engine/config.hpp"
#include "engine/rng.hpp"

namespace azlb::engine {

// What affinity modes hash, as Azure's: source-ip the client's address alone
// (so that a client's UDP reaches the VM of its TCP: a TCP control channel
// and UDP media), source-ip-protocol the address and the protocol.
// Computed once per connection or flow.
std::uint64_t client_hash(const sockaddr_storage& client, model::Distribution, model::Protocol);

inline constexpr int kNoUpstream = -1;

// The index of the chosen upstream in route.upstreams, skipping `tried`
// (earlier failed attempts of this connection), or kNoUpstream.
//  - five-tuple: uniformly at random among eligible upstreams;
//  - source-ip(-protocol): rendezvous hashing over each member's VM (its
//    id_hash), so a client stays on its member while the membership is
//    unchanged, only the clients of a member that goes down move, and two
//    sets of the same VMs (a tcp and a udp one) send a client to one VM.
// With every upstream down, when_all_down=serve-all uses them all. A drained
// upstream is never picked.
int pick(const Route&, std::uint64_t client_hash, std::span<const std::uint8_t> tried, Rng&);

}  // namespace azlb::engine
