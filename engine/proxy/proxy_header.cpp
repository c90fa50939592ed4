#include "engine/proxy/proxy_header.hpp"

#include <arpa/inet.h>
#include <netinet/in.h>

#include <cstdio>
#include <cstring>

namespace azlb::engine {

namespace {

// One end of the connection, with a v4-mapped IPv6 address taken as IPv4.
struct End {
  int family = AF_UNSPEC;
  unsigned char addr[16]{};
  std::uint16_t port = 0;  // network order
};

End end_of(const sockaddr_storage& ss) {
  End e;
  if (ss.ss_family == AF_INET) {
    auto& sa = reinterpret_cast<const sockaddr_in&>(ss);
    e.family = AF_INET;
    std::memcpy(e.addr, &sa.sin_addr, 4);
    e.port = sa.sin_port;
  } else if (ss.ss_family == AF_INET6) {
    auto& sa = reinterpret_cast<const sockaddr_in6&>(ss);
    e.port = sa.sin6_port;
    if (IN6_IS_ADDR_V4MAPPED(&sa.sin6_addr)) {
      e.family = AF_INET;
      std::memcpy(e.addr, sa.sin6_addr.s6_addr + 12, 4);
    } else {
      e.family = AF_INET6;
      std::memcpy(e.addr, &sa.sin6_addr, 16);
    }
  }
  return e;
}

std::size_t v1(const End& src, const End& dst, char (&out)[kProxyHeaderMax]) {
  if (src.family != dst.family || src.family == AF_UNSPEC) {
    std::memcpy(out, "PROXY UNKNOWN\r\n", 15);
    return 15;
  }
  char s[INET6_ADDRSTRLEN], d[INET6_ADDRSTRLEN];
  inet_ntop(src.family, src.addr, s, sizeof s);
  inet_ntop(dst.family, dst.addr, d, sizeof d);
  const int n = std::snprintf(out, kProxyHeaderMax, "PROXY %s %s %s %u %u\r\n", src.family == AF_INET ? "TCP4" : "TCP6",
                              s, d, ntohs(src.port), ntohs(dst.port));
  return static_cast<std::size_t>(n);
}

std::size_t v2(const End& src, const End& dst, char (&out)[kProxyHeaderMax]) {
  static constexpr unsigned char kSignature[12] = {0x0D, 0x0A, 0x0D, 0x0A, 0x00, 0x0D,
                                                   0x0A, 0x51, 0x55, 0x49, 0x54, 0x0A};
  auto* p = reinterpret_cast<unsigned char*>(out);
  std::memcpy(p, kSignature, sizeof kSignature);
  if (src.family != dst.family || src.family == AF_UNSPEC) {
    p[12] = 0x20;  // version 2, LOCAL: the server uses the connection's own ends
    p[13] = 0x00;  // UNSPEC
    p[14] = p[15] = 0;
    return 16;
  }
  p[12] = 0x21;  // version 2, PROXY
  const bool v4 = src.family == AF_INET;
  p[13] = v4 ? 0x11 : 0x21;  // TCP over IPv4 / IPv6
  const std::size_t alen = v4 ? 4 : 16;
  const std::uint16_t len = static_cast<std::uint16_t>(2 * alen + 4);
  p[14] = static_cast<unsigned char>(len >> 8);
  p[15] = static_cast<unsigned char>(len);
  unsigned char* a = p + 16;
  std::memcpy(a, src.addr, alen);
  std::memcpy(a + alen, dst.addr, alen);
  std::memcpy(a + 2 * alen, &src.port, 2);  // both already in network order
  std::memcpy(a + 2 * alen + 2, &dst.port, 2);
  return 16 + len;
}

}  // namespace

std::size_t proxy_header(model::ProxyProtocol pp, const sockaddr_storage& client, const sockaddr_storage& local,
                         char (&out)[kProxyHeaderMax]) {
  switch (pp) {
    case model::ProxyProtocol::None: return 0;
    case model::ProxyProtocol::V1: return v1(end_of(client), end_of(local), out);
    case model::ProxyProtocol::V2: return v2(end_of(client), end_of(local), out);
  }
  return 0;
}

}  // namespace azlb::engine
