// Fuzz target: any bytes as a state file. A file is refused with one line, or
// it loads, and what loads saves and loads again to the same state; and the
// fast parser of azlb's own layout reads it exactly as toml++ does (the same
// state, or the same refusal).
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "tests/fuzz/properties.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  auto state = azlb::store::parse_state(text, "state.toml");
  azlb::fuzz::check_same_as_tomlpp(text, state);
  if (!state) {
    azlb::fuzz::check_refusal(state.error());
    return 0;
  }
  azlb::fuzz::check_round_trip(*state);
  return 0;
}
