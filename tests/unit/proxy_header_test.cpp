#include "engine/proxy/proxy_header.hpp"

#include <arpa/inet.h>
#include <doctest/doctest.h>
#include <netinet/in.h>

#include <cstring>
#include <string>

using namespace azlb::engine;
using azlb::model::ProxyProtocol;

namespace {

sockaddr_storage v4(const char* ip, std::uint16_t port) {
  sockaddr_storage ss{};
  auto& sa = reinterpret_cast<sockaddr_in&>(ss);
  sa.sin_family = AF_INET;
  sa.sin_port = htons(port);
  inet_pton(AF_INET, ip, &sa.sin_addr);
  return ss;
}

sockaddr_storage v6(const char* ip, std::uint16_t port) {
  sockaddr_storage ss{};
  auto& sa = reinterpret_cast<sockaddr_in6&>(ss);
  sa.sin6_family = AF_INET6;
  sa.sin6_port = htons(port);
  inet_pton(AF_INET6, ip, &sa.sin6_addr);
  return ss;
}

std::string header(ProxyProtocol pp, const sockaddr_storage& client, const sockaddr_storage& local) {
  char out[kProxyHeaderMax];
  return std::string(out, proxy_header(pp, client, local, out));
}

const std::string kSignature("\r\n\r\n\0\r\nQUIT\n", 12);

}  // namespace

TEST_CASE("v1 names TCP4, both addresses and both ports, and ends with CRLF") {
  CHECK(header(ProxyProtocol::V1, v4("192.0.2.7", 40000), v4("127.0.0.1", 8080)) ==
        "PROXY TCP4 192.0.2.7 127.0.0.1 40000 8080\r\n");
}

TEST_CASE("v1 over IPv6, at its longest, fits the 107 bytes the specification allows") {
  auto h = header(ProxyProtocol::V1, v6("ffff:ffff:ffff:ffff:ffff:ffff:ffff:fffe", 65535),
                  v6("ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", 65535));
  CHECK(h == "PROXY TCP6 ffff:ffff:ffff:ffff:ffff:ffff:ffff:fffe ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff 65535 65535\r\n");
  CHECK(h.size() <= 107);
}

TEST_CASE("v2 over IPv4 is the signature, PROXY, TCP4, 12 bytes of addresses and ports in network order") {
  auto h = header(ProxyProtocol::V2, v4("192.0.2.7", 40000), v4("127.0.0.1", 8080));
  const std::string expected = kSignature + std::string("\x21\x11\x00\x0c", 4) + std::string("\xc0\x00\x02\x07", 4) +
                               std::string("\x7f\x00\x00\x01", 4) + std::string("\x9c\x40\x1f\x90", 4);
  CHECK(h == expected);
}

TEST_CASE("v2 over IPv6 carries 36 bytes of addresses and ports") {
  auto h = header(ProxyProtocol::V2, v6("2001:db8::1", 1234), v6("::1", 443));
  REQUIRE(h.size() == 16 + 36);
  CHECK(h.substr(0, 12) == kSignature);
  CHECK(h.substr(12, 4) == std::string("\x21\x21\x00\x24", 4));
  in6_addr a;
  inet_pton(AF_INET6, "2001:db8::1", &a);
  CHECK(std::memcmp(h.data() + 16, &a, 16) == 0);
  inet_pton(AF_INET6, "::1", &a);
  CHECK(std::memcmp(h.data() + 32, &a, 16) == 0);
  CHECK(h.substr(48, 4) == std::string("\x04\xd2\x01\xbb", 4));
}

TEST_CASE("a v4-mapped IPv6 client on an IPv6 listener is sent as IPv4") {
  CHECK(header(ProxyProtocol::V1, v6("::ffff:192.0.2.7", 5000), v6("::ffff:127.0.0.1", 80)) ==
        "PROXY TCP4 192.0.2.7 127.0.0.1 5000 80\r\n");
}

TEST_CASE("ends of two families are sent as unknown: v1 UNKNOWN, v2 LOCAL with no addresses") {
  CHECK(header(ProxyProtocol::V1, v6("2001:db8::1", 1), v4("127.0.0.1", 80)) == "PROXY UNKNOWN\r\n");
  CHECK(header(ProxyProtocol::V2, v6("2001:db8::1", 1), v4("127.0.0.1", 80)) ==
        kSignature + std::string("\x20\x00\x00\x00", 4));
}

TEST_CASE("none sends nothing") { CHECK(header(ProxyProtocol::None, v4("1.2.3.4", 1), v4("5.6.7.8", 2)).empty()); }
