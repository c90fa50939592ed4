#include "model/values.hpp"

#include <doctest/doctest.h>

using namespace azlb::model;

TEST_CASE("names are 1 to 63 letters, digits, '-', '_' or '.', starting with a letter or digit") {
  CHECK(check_name("VM name", "web-1.prod_a"));
  CHECK(check_name("VM name", std::string(63, 'a')));
  CHECK_FALSE(check_name("VM name", std::string(64, 'a')));
  CHECK_FALSE(check_name("VM name", ""));
  CHECK_FALSE(check_name("VM name", "-web"));
  CHECK_FALSE(check_name("VM name", "web 1"));
  auto e = check_name("VM name", "we/b");
  REQUIRE_FALSE(e);
  CHECK(e.error().message == "invalid VM name 'we/b': only letters, digits, '-', '_' and '.' are allowed");
}

TEST_CASE("text parses over the type's whole range; the rule 1..65535 is the model's, and names the bad value") {
  CHECK(*parse_u16("public port", "65535") == 65535);
  CHECK(*parse_u16("public port", "0") == 0);
  CHECK_FALSE(parse_u16("public port", "65536"));
  CHECK_FALSE(parse_u16("public port", "80x"));
  CHECK_FALSE(parse_u16("public port", "-1"));
  CHECK_FALSE(parse_u16("public port", ""));
  CHECK(*parse_u32("probe interval", "0") == 0);
  CHECK(*parse_u32("probe interval", "4294967295") == 4294967295u);
  CHECK(parse_u32("probe interval", "4294967296").error().message ==
        "invalid probe interval 4294967296: must be 0..4294967295");
  CHECK(check_port("public port", 0).error().message == "invalid public port 0: must be 1..65535");
}

TEST_CASE("enums parse only their spelled names and list the choices otherwise") {
  CHECK(*parse_protocol("udp") == Protocol::Udp);
  CHECK(*parse_distribution("source-ip-protocol") == Distribution::SourceIpProtocol);
  CHECK(to_string(Distribution::FiveTuple) == "five-tuple");
  auto e = parse_protocol("TCP");
  REQUIRE_FALSE(e);
  CHECK(e.error().message == "invalid protocol 'TCP': expected one of tcp, udp");
}

TEST_CASE("an unknown name is answered with the nearest known one") {
  CHECK(closest_name("wbe1", {"web1", "db1"}) == "web1");
  CHECK_FALSE(closest_name("zzzzzz", {"web1", "db1"}));
  auto e = not_found_with_hint("VM", "wbe1", {"web1"});
  CHECK(e.kind == ErrorKind::NotFound);
  CHECK(e.message == "no VM 'wbe1'; did you mean 'web1'?");
}

TEST_CASE("a number out of range is named as it was typed, however large") {
  auto msg = [](std::string_view text) { return parse_uint("wait", text, 0, 86400).error().message; };
  CHECK(msg("99999999999999") == "invalid wait 99999999999999: must be 0..86400");
  CHECK(msg("99999999999999999999999") == "invalid wait '99999999999999999999999': must be 0..86400");
  CHECK(msg("86401") == "invalid wait 86401: must be 0..86400");
  CHECK(msg("-1") == "invalid wait '-1': must be a number 0..86400");
  CHECK(msg(std::string(300, '9')).size() < 200);  // cut, as every quoted value
  CHECK(parse_uint("wait", "86400", 0, 86400).ok());
}
