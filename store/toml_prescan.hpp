// A pass over the bytes of a TOML document before toml++ parses it.
//
// toml++ 3.3 (Debian bookworm) has undefined behaviour when it asks whether
// some characters outside ASCII are whitespace (upstream issue 295, fixed
// after 3.3 by PR 305), and it asks in more places than can be foreseen: a
// malformed value is scanned up to the next blank, across quotes. So toml++
// is only ever given ASCII. Inside basic strings every other character
// becomes its \uXXXX escape, literal strings become basic strings, comments
// lose what they hold beyond ASCII, and a character outside ASCII anywhere
// else (where TOML allows none) is refused here, with its place. Bytes that
// are not UTF-8 and control characters (TOML allows none but tab) are refused
// too.
#pragma once

#include <optional>
#include <string>
#include <string_view>

namespace azlb::store {

struct PrescanError {
  std::size_t line = 1, column = 1;
  std::string message;
};

// On success, `ascii` holds the document to give toml++, or stays empty when
// `text` can be given as it is (pure ASCII without literal strings: what
// azlb itself writes, unless a label or description holds more).
std::optional<PrescanError> prescan_toml(std::string_view text, std::string& ascii);

}  // namespace azlb::store
