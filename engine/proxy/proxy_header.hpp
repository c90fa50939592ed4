// HAProxy's PROXY protocol (haproxy.org/download/2.9/doc/proxy-protocol.txt):
// the header a proxy sends a server before the client's first byte, so that
// the server learns the connection's real two ends.
#pragma once

#include <sys/socket.h>

#include <cstddef>

#include "model/values.hpp"

namespace azlb::engine {

// Room for the largest header: v1's is at most 107 bytes; v2's, with two
// IPv6 addresses, 52.
inline constexpr std::size_t kProxyHeaderMax = 108;

// Writes the header for a TCP connection from `client` to `local` (the VIP
// and port it reached) into `out` and returns its length, or 0 for
// ProxyProtocol::None. A v4-mapped IPv6 address is written as IPv4; ends of
// two different families are sent as v1 "UNKNOWN" or v2 LOCAL, which a
// server takes as "no address known".
std::size_t proxy_header(model::ProxyProtocol, const sockaddr_storage& client, const sockaddr_storage& local,
                         char (&out)[kProxyHeaderMax]);

}  // namespace azlb::engine
