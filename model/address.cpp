#include "model/address.hpp"

#include "model/text.hpp"

#include <arpa/inet.h>

#include <algorithm>
#include <charconv>

namespace azlb::model {

bool IpAddress::is_unspecified() const {
  return std::all_of(bytes.begin(), bytes.begin() + size(), [](auto b) { return b == 0; });
}

std::string IpAddress::with_port(std::uint16_t port) const {
  std::string out;  // appended: `"[" + to_string()` trips GCC 12's false -Wrestrict
  if (family == Family::V6) out += '[';
  out += to_string();
  if (family == Family::V6) out += ']';
  out += ':';
  out += std::to_string(port);
  return out;
}

std::string IpAddress::to_string() const {
  char buf[INET6_ADDRSTRLEN];
  inet_ntop(family == Family::V4 ? AF_INET : AF_INET6, bytes.data(), buf, sizeof buf);
  return buf;
}

Result<IpAddress> parse_ip(std::string_view what, std::string_view text) {
  std::string s(text);
  IpAddress a;
  // inet_pton reads up to a NUL: "127.0.0.1\0junk" must not pass as 127.0.0.1.
  if (s.find('\0') != std::string::npos)
    return usage_error("invalid " + std::string(what) + " " + quote(s) + ": not an IPv4 or IPv6 address");
  if (inet_pton(AF_INET, s.c_str(), a.bytes.data()) == 1) {
    a.family = Family::V4;
    return a;
  }
  if (inet_pton(AF_INET6, s.c_str(), a.bytes.data()) == 1) {
    a.family = Family::V6;
    return a;
  }
  return usage_error("invalid " + std::string(what) + " " + quote(s) + ": not an IPv4 or IPv6 address");
}

namespace {

bool host_bits_clear(const IpAddress& a, unsigned prefix) {
  for (unsigned bit = prefix; bit < a.size() * 8; ++bit)
    if (a.bytes[bit / 8] & (0x80u >> (bit % 8))) return false;
  return true;
}

}  // namespace

bool Cidr::contains(const IpAddress& a) const {
  if (a.family != base.family) return false;
  unsigned full = prefix / 8, rest = prefix % 8;
  if (!std::equal(base.bytes.begin(), base.bytes.begin() + full, a.bytes.begin())) return false;
  if (rest == 0) return true;
  std::uint8_t mask = static_cast<std::uint8_t>(0xFFu << (8 - rest));
  return (a.bytes[full] & mask) == base.bytes[full];
}

std::string Cidr::to_string() const { return base.to_string() + "/" + std::to_string(prefix); }

Result<Cidr> parse_cidr(std::string_view what, std::string_view text) {
  auto slash = text.find('/');
  auto bad = [&](std::string why) {
    return usage_error("invalid " + std::string(what) + " " + quote(text) + ": " + why);
  };
  auto addr = parse_ip(what, text.substr(0, slash));
  if (!addr) return bad("not an IPv4 or IPv6 subnet like 10.0.0.0/8");
  Cidr c{*addr, static_cast<std::uint8_t>(addr->size() * 8)};
  if (slash != std::string_view::npos) {
    auto p = text.substr(slash + 1);
    unsigned prefix = 0;
    auto [end, ec] = std::from_chars(p.data(), p.data() + p.size(), prefix);
    if (p.empty() || ec != std::errc{} || end != p.data() + p.size() || prefix > c.base.size() * 8)
      return bad("prefix length must be 0.." + std::to_string(c.base.size() * 8));
    c.prefix = static_cast<std::uint8_t>(prefix);
  }
  if (!host_bits_clear(c.base, c.prefix))
    return bad("address has bits set beyond the /" + std::to_string(c.prefix) + " prefix");
  return c;
}

std::optional<IpAddress> nth_address(const Cidr& subnet, std::uint64_t offset) {
  unsigned host_bits = subnet.base.size() * 8 - subnet.prefix;
  if (host_bits < 64 && offset >= (std::uint64_t{1} << host_bits)) return std::nullopt;
  if (subnet.base.family == Family::V4 && host_bits < 64 &&
      offset == (std::uint64_t{1} << host_bits) - 1 && host_bits > 1)
    return std::nullopt;  // broadcast
  IpAddress a = subnet.base;
  // Add offset to the low 8 bytes, big-endian, with carry.
  std::uint64_t carry = offset;
  for (int i = static_cast<int>(a.size()) - 1; i >= 0 && carry; --i) {
    std::uint64_t sum = a.bytes[i] + (carry & 0xFF);
    a.bytes[i] = static_cast<std::uint8_t>(sum);
    carry = (carry >> 8) + (sum >> 8);
  }
  return a;
}

bool listen_overlaps(const IpAddress& a, const IpAddress& b) {
  if (a.family != b.family) return false;
  return a == b || a.is_unspecified() || b.is_unspecified();
}

}  // namespace azlb::model
