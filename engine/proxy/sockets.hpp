// Socket set-up the engine needs outside the ring: listening sockets that
// every worker shares through SO_REUSEPORT, and a few per-socket options.
#pragma once

#include <sys/socket.h>

#include <string>
#include <vector>

#include "engine/runtime.hpp"
#include "model/address.hpp"
#include "model/error.hpp"

namespace azlb::engine {

// `count` sockets bound to `key` with SO_REUSEPORT, so that the kernel spreads
// new connections (and UDP flows, by their 4-tuple) over the workers. The
// error says which address failed and, for a privileged port, how to grant it.
// `bind_errno`, when given, receives bind(2)'s errno on failure.
// `mark`, when not 0, is given to each (SO_MARK).
model::Result<std::vector<int>> bind_listeners(const ListenKey& key, unsigned count, int* bind_errno = nullptr,
                                               std::uint32_t mark = 0);
// A bind that may succeed later by itself: the port taken by another program
// (sshd on the VIP's port 22), or the address not yet this host's (a VIP
// that keepalived or the routers bring). The engine serves the rest and
// tries again; a missing privilege is the operator's to fix.
bool bind_may_succeed_later(int bind_errno);

// What `engine start` would meet binding `key`, without keeping anything:
// the address must be this host's and, with `port_too`, the port free and
// allowed. The error is bind_listeners' own.
model::Status check_bindable(ListenKey key, bool port_too, int* bind_errno = nullptr);
// Closing with SO_LINGER {on, 0} sends RST instead of FIN: the client learns
// at once that nobody will serve it.
void close_with_reset(int fd);
void set_nodelay(int fd);
std::string describe(const sockaddr_storage&);
// An address and port as the socket calls take them.
void fill_sockaddr(const model::IpAddress&, std::uint16_t port, sockaddr_storage& out, socklen_t& len);
// The client's address as the model's ACLs see it; a v4-mapped IPv6 address
// is an IPv4 client.
model::IpAddress ip_of(const sockaddr_storage&);

}  // namespace azlb::engine
