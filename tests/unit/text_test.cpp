#include <doctest/doctest.h>

#include "model/text.hpp"

using namespace azlb::model;

TEST_CASE("UTF-8 is valid only as RFC 3629 defines it") {
  CHECK(is_valid_utf8("plain ascii"));
  CHECK(is_valid_utf8("caf\xC3\xA9 \xE2\x82\xAC \xF0\x9F\x98\x80"));
  CHECK_FALSE(is_valid_utf8("\xFF"));
  CHECK_FALSE(is_valid_utf8("\xC0\xAF"));          // overlong '/'
  CHECK_FALSE(is_valid_utf8("\xED\xA0\x80"));      // a surrogate
  CHECK_FALSE(is_valid_utf8("\xF4\x90\x80\x80"));  // past U+10FFFF
  CHECK_FALSE(is_valid_utf8("\xE2\x82"));          // cut short
}

TEST_CASE("a byte that is not UTF-8 renders as U+FFFD, the rest as it was") {
  CHECK(to_valid_utf8("a\xFF" "b") == "a\xEF\xBF\xBD" "b");
  CHECK(to_valid_utf8("caf\xC3\xA9") == "caf\xC3\xA9");
  CHECK(to_valid_utf8("\xE2\x82") == "\xEF\xBF\xBD\xEF\xBF\xBD");
}

TEST_CASE("split keeps every piece, empty ones too") {
  using V = std::vector<std::string_view>;
  CHECK(azlb::model::split("a,,b", ',') == V{"a", "", "b"});
  CHECK(azlb::model::split("198.18.1.2", ',') == V{"198.18.1.2"});
  CHECK(azlb::model::split("", ',') == V{""});
  CHECK(azlb::model::split("x,", ',') == V{"x", ""});
}
