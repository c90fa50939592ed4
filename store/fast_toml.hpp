// A parser for the layout azlb writes (format_state) and the hand edits that
// keep to it: [[a]] and [[a.b]] headers, bare keys, basic strings, decimal
// integers, one-line inline tables and arrays of them. It makes no node per
// value and copies no text but what escapes change, where toml++ allocates
// for each: a 50,000-VM state loads several times faster. Whatever it does
// not know (other TOML, and every error) it leaves to toml++: it answers
// "not mine", never a different reading of the same text.
#pragma once

#include <string_view>

#include "store/toml_doc.hpp"

namespace azlb::store {

// Fills `out` and returns true, or returns false for toml++ to parse `text`.
// `text` is ASCII (prescan_toml's output): no control characters but tab and
// line feed.
bool parse_canonical(std::string_view text, doc::Doc& out);

}  // namespace azlb::store
