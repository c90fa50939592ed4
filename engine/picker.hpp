// Picks the upstream for a new connection or UDP flow. It only picks: health
// comes from the prober, bytes are moved by the proxies.
#pragma once

#include <cstdint>
#include <span>

#include "engine/config.hpp"

namespace azlb::engine {

// A flow's hash, the same on every host of the state (its hash_seed): of the
// five-tuple (the client's address and port, the listening address and port,
// the protocol: Azure's own "random" was a hash of it), of the client's
// address alone (source-ip, so that a client's UDP reaches the VM of its TCP:
// a TCP control channel and UDP media), or of the address and the protocol
// (source-ip-protocol). Computed once per connection or flow.
std::uint64_t flow_hash(const sockaddr_storage& client, const Route&);

inline constexpr int kNoUpstream = -1;

// The index of the chosen upstream in route.upstreams, skipping `tried`
// (earlier failed attempts of this connection), or kNoUpstream: the member
// of the flow's slot in the route's Maglev table (maglev.hpp), or while that
// one is down, drained or tried, the member of the next slot that may take
// it. With every upstream down, when_all_down=serve-all uses them all. A
// drained upstream is never picked.
int pick(const Route&, std::uint64_t flow_hash, std::span<const std::uint8_t> tried = {});

// What share of the route's new flows each upstream takes now (its slots of
// the table, and those it takes over from members that are down or
// drained), in the upstreams' order; they add up to 1, or to 0 when none may
// take a flow. For status and /metrics.
std::vector<double> shares_now(const Route&);

// Whether any upstream may take a new flow now: the route is servable.
bool servable(const Route&);

}  // namespace azlb::engine
