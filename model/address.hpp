// IP addresses and subnets, parsed once into values so that nothing after the
// parser handles them as strings.
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "model/error.hpp"

namespace azlb::model {

enum class Family : std::uint8_t { V4, V6 };

struct IpAddress {
  Family family = Family::V4;
  // Network byte order; a V4 address uses the first 4 bytes.
  std::array<std::uint8_t, 16> bytes{};

  std::size_t size() const { return family == Family::V4 ? 4 : 16; }
  bool is_unspecified() const;  // 0.0.0.0 or ::
  std::string to_string() const;
  // "10.0.0.4:80", "[2001:db8::1]:80": the address with a port, as URLs and
  // logs write it.
  std::string with_port(std::uint16_t port) const;
  friend bool operator==(const IpAddress&, const IpAddress&) = default;
  friend auto operator<=>(const IpAddress&, const IpAddress&) = default;
};

Result<IpAddress> parse_ip(std::string_view what, std::string_view text);

struct Cidr {
  IpAddress base;  // host bits cleared
  std::uint8_t prefix = 0;

  bool contains(const IpAddress& a) const;
  std::string to_string() const;
  friend bool operator==(const Cidr&, const Cidr&) = default;
};

// Accepts "10.0.0.0/8", "2001:db8::/32", and a bare address as a host route.
// Host bits set below the prefix are an error: "10.0.0.1/8" usually means a typo.
Result<Cidr> parse_cidr(std::string_view what, std::string_view text);

// The address `offset` places after the start of `subnet`, if it is inside the
// subnet and is not its broadcast address (V4).
std::optional<IpAddress> nth_address(const Cidr& subnet, std::uint64_t offset);

// Two listening addresses collide when equal, or when either is the wildcard of
// the other's family.
bool listen_overlaps(const IpAddress& a, const IpAddress& b);

}  // namespace azlb::model
