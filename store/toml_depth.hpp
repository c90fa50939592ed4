// How deeply a TOML document nests: tables in headers ([a.b.c]), dotted keys
// (a.b.c = 1), inline tables and arrays, all counted together. toml++ builds
// a node per level and frees them recursively, and the loader converts its
// tree recursively too: a 400 KB hand edit of a million levels would
// overflow the stack (the CLI, and a running engine on reload). So deeper
// input is refused before toml++ sees it, with its place.
#pragma once

#include <optional>
#include <string_view>

#include "store/toml_prescan.hpp"

namespace azlb::store {

// Far more than azlb's own layout needs ([[vm.endpoint]] with an acl array
// of inline tables is 5), far less than what overflows a stack.
inline constexpr std::size_t kMaxTomlDepth = 64;

// The place where `text` (ASCII, as prescan_toml leaves it: basic strings
// only) goes deeper than kMaxTomlDepth, if it does.
std::optional<PrescanError> check_toml_depth(std::string_view text);

}  // namespace azlb::store
