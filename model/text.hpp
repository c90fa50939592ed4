// Text a user gives (names, labels, descriptions, paths) is a byte string:
// these say whether it is valid UTF-8 and make it so for output.
#pragma once

#include <string>
#include <string_view>

namespace azlb::model {

bool is_valid_utf8(std::string_view);
// The value in single quotes for a message, on one line: control characters
// and bytes that are not UTF-8 are shown as \xNN.
std::string quote(std::string_view);
// The same without the quotes.
std::string printable(std::string_view);
// Each byte that is not part of valid UTF-8 becomes U+FFFD.
std::string to_valid_utf8(std::string_view);

}  // namespace azlb::model
