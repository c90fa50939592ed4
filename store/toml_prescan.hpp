// A pass over the bytes of a TOML document before toml++ parses it. TOML
// allows bytes outside ASCII only inside strings and comments, and only as
// valid UTF-8; toml++ 3.3 (Debian bookworm) has undefined behaviour on some
// documents that break this rule (upstream issue 295, fixed after 3.3 by
// PR 305), so they are refused here, with the place, and never reach it.
#pragma once

#include <optional>
#include <string>
#include <string_view>

namespace azlb::store {

struct PrescanError {
  std::size_t line = 1, column = 1;
  std::string message;
};

std::optional<PrescanError> prescan_toml(std::string_view text);

}  // namespace azlb::store
