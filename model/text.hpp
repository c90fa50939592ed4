// Text a user gives (names, labels, descriptions, paths) is a byte string:
// these say whether it is valid UTF-8 and make it so for output.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace azlb::model {

bool is_valid_utf8(std::string_view);
// The value in single quotes for a message, on one line: control characters
// and bytes that are not UTF-8 are shown as \xNN. A long value is cut after
// kQuoteMax bytes of it, with its length said: a message stays one readable
// line whatever a user gave (a 50 MB name).
inline constexpr std::size_t kQuoteMax = 120;
std::string quote(std::string_view);
// The same without the quotes, cut after `max` bytes of the value (never
// inside a character) with "... (N bytes)".
std::string printable(std::string_view, std::size_t max = std::string_view::npos);
// "1 listener", "3 listeners": a count with its noun.
std::string count(std::uint64_t n, std::string_view one, std::string_view many);
// Each byte that is not part of valid UTF-8 becomes U+FFFD.
std::string to_valid_utf8(std::string_view);
// "a,,b" -> {"a", "", "b"}: the pieces between `sep`, empty ones kept (a
// caller that takes lists from users names an empty piece as given).
std::vector<std::string_view> split(std::string_view, char sep);

}  // namespace azlb::model
