#include "model/acl.hpp"

#include <doctest/doctest.h>

using namespace azlb::model;

namespace {
AclRule rule(std::uint32_t order, AclAction a, const char* cidr) {
  return {order, a, *parse_cidr("subnet", cidr), ""};
}
IpAddress ip(const char* s) { return *parse_ip("ip", s); }
}  // namespace

TEST_CASE("an endpoint without ACL rules permits every client") { CHECK(acl_permits({}, ip("203.0.113.9"))); }

TEST_CASE("the first matching rule by order decides") {
  std::vector<AclRule> acl{rule(100, AclAction::Permit, "10.0.0.0/8"), rule(200, AclAction::Deny, "10.1.0.0/16")};
  CHECK(acl_permits(acl, ip("10.1.2.3")));  // rule 100 matches first
  std::vector<AclRule> reversed{rule(100, AclAction::Deny, "10.1.0.0/16"), rule(200, AclAction::Permit, "10.0.0.0/8")};
  CHECK_FALSE(acl_permits(reversed, ip("10.1.2.3")));
  CHECK(acl_permits(reversed, ip("10.2.0.1")));
}

TEST_CASE("with a permit rule present, a client that matches nothing is denied") {
  std::vector<AclRule> acl{rule(1, AclAction::Permit, "127.0.0.0/8")};
  CHECK(acl_permits(acl, ip("127.9.9.9")));
  CHECK_FALSE(acl_permits(acl, ip("192.0.2.1")));
}

TEST_CASE("with only deny rules, a client that matches nothing is permitted") {
  std::vector<AclRule> acl{rule(1, AclAction::Deny, "192.0.2.0/24")};
  CHECK_FALSE(acl_permits(acl, ip("192.0.2.1")));
  CHECK(acl_permits(acl, ip("198.51.100.1")));
}

TEST_CASE("IPv6 clients are matched against IPv6 rules only") {
  std::vector<AclRule> acl{rule(1, AclAction::Permit, "::1/128"), rule(2, AclAction::Deny, "0.0.0.0/0")};
  CHECK(acl_permits(acl, ip("::1")));
  CHECK_FALSE(acl_permits(acl, ip("::2")));
  CHECK_FALSE(acl_permits(acl, ip("127.0.0.1")));
}
