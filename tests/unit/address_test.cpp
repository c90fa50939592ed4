#include "model/address.hpp"

#include <doctest/doctest.h>

using namespace azlb::model;

TEST_CASE("IPv4 and IPv6 addresses parse and print back the same") {
  CHECK(parse_ip("VIP", "127.0.1.4")->to_string() == "127.0.1.4");
  CHECK(parse_ip("VIP", "::1")->to_string() == "::1");
  CHECK(parse_ip("VIP", "::1")->family == Family::V6);
  auto bad = parse_ip("VIP", "127.0.0.256");
  REQUIRE_FALSE(bad);
  CHECK(bad.error().kind == ErrorKind::Usage);
  CHECK(bad.error().message.find("'127.0.0.256'") != std::string::npos);
}

TEST_CASE("a subnet contains exactly the addresses under its prefix") {
  auto c = *parse_cidr("subnet", "10.1.0.0/16");
  CHECK(c.contains(*parse_ip("ip", "10.1.255.7")));
  CHECK_FALSE(c.contains(*parse_ip("ip", "10.2.0.1")));
  CHECK_FALSE(c.contains(*parse_ip("ip", "::1")));
  auto odd = *parse_cidr("subnet", "192.168.0.0/23");
  CHECK(odd.contains(*parse_ip("ip", "192.168.1.200")));
  CHECK_FALSE(odd.contains(*parse_ip("ip", "192.168.2.1")));
  auto v6 = *parse_cidr("subnet", "2001:db8::/32");
  CHECK(v6.contains(*parse_ip("ip", "2001:db8:ffff::1")));
  CHECK(parse_cidr("subnet", "0.0.0.0/0")->contains(*parse_ip("ip", "8.8.8.8")));
}

TEST_CASE("a subnet with host bits set or a bad prefix is rejected with its text") {
  CHECK_FALSE(parse_cidr("remote subnet", "10.0.0.1/8"));
  CHECK_FALSE(parse_cidr("remote subnet", "10.0.0.0/33"));
  CHECK_FALSE(parse_cidr("remote subnet", "10.0.0.0/"));
  auto e = parse_cidr("remote subnet", "nonsense/8");
  REQUIRE_FALSE(e);
  CHECK(e.error().message.find("'nonsense/8'") != std::string::npos);
  CHECK(parse_cidr("remote subnet", "10.0.0.7")->prefix == 32);
}

TEST_CASE("addresses are counted from the start of a subnet, short of its broadcast") {
  auto c = *parse_cidr("subnet", "127.0.1.0/24");
  CHECK(nth_address(c, 4)->to_string() == "127.0.1.4");
  CHECK(nth_address(c, 254)->to_string() == "127.0.1.254");
  CHECK_FALSE(nth_address(c, 255));
  CHECK_FALSE(nth_address(c, 256));
  CHECK(nth_address(*parse_cidr("subnet", "10.0.0.0/16"), 300)->to_string() == "10.0.1.44");
}

TEST_CASE("a wildcard VIP overlaps every address of its family only") {
  auto any4 = *parse_ip("ip", "0.0.0.0"), lo = *parse_ip("ip", "127.0.0.1"), lo2 = *parse_ip("ip", "127.0.0.2");
  CHECK(listen_overlaps(any4, lo));
  CHECK(listen_overlaps(lo, lo));
  CHECK_FALSE(listen_overlaps(lo, lo2));
  CHECK_FALSE(listen_overlaps(any4, *parse_ip("ip", "::1")));
}
