// Fuzz target: any bytes as a state file. A file is refused with one line, or
// it loads, and what loads saves and loads again to the same state; and the
// fast parser of azlb's own layout reads it exactly as toml++ does (the same
// state, or the same refusal).
//
// Deep input (a million nested inline tables, dotted keys, headers) is what
// overflows a recursive parser, and libFuzzer's inputs are short: an input
// with a line "#repeat N" (N up to 1,000,000) has the line after it
// repeated N times in its place, without line breaks (the one before the
// mark goes too, so that "x = " may open what is repeated). Mutating N and the
// line, the fuzzer reaches any depth.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "tests/fuzz/properties.hpp"

namespace {

std::string expand(std::string_view text) {
  constexpr std::string_view kMark = "#repeat ";
  const auto mark = text.find(kMark);
  if (mark == std::string_view::npos || (mark > 0 && text[mark - 1] != '\n')) return std::string(text);
  std::size_t i = mark + kMark.size(), n = 0;
  while (i < text.size() && text[i] >= '0' && text[i] <= '9' && n <= 1000000) n = n * 10 + (text[i++] - '0');
  n = std::min<std::size_t>(n, 1000000);
  const auto mark_end = text.find('\n', i);
  if (mark_end == std::string_view::npos) return std::string(text);
  const auto line_end = std::min(text.find('\n', mark_end + 1), text.size());
  const auto line = text.substr(mark_end + 1, line_end - mark_end - 1);
  std::string out(text.substr(0, mark > 0 ? mark - 1 : 0));  // its line break too: "x = " can precede
  out.reserve(mark + line.size() * n + text.size());
  for (std::size_t k = 0; k < n; ++k) out += line;
  out += text.substr(std::min(line_end + 1, text.size()));
  return out;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string expanded = expand(std::string_view(reinterpret_cast<const char*>(data), size));
  const std::string_view text(expanded);
  auto state = azlb::store::parse_state(text, "state.toml");
  azlb::fuzz::check_same_as_tomlpp(text, state);
  if (!state) {
    azlb::fuzz::check_refusal(state.error());
    return 0;
  }
  azlb::fuzz::check_round_trip(*state);
  return 0;
}
