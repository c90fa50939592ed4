// What every fuzz target checks, whatever its input: an accepted state
// survives a save and a load unchanged, and a refusal is one printable line.
// A broken property aborts, which is how libFuzzer records a crash.
#pragma once

#include <cstdio>
#include <cstdlib>
#include <string>

#include "model/error.hpp"
#include "model/text.hpp"
#include "store/toml_codec.hpp"

namespace azlb::fuzz {

[[noreturn]] inline void broken(const char* property, const std::string& detail) {
  std::fprintf(stderr, "property broken: %s\n%s\n", property, detail.c_str());
  std::abort();
}

// The message a user would see: one line, valid UTF-8, not empty, and short
// whatever the input quoted in it (values are cut, model::quote).
inline void check_refusal(const model::Error& e) {
  if (e.message.empty()) broken("a refusal says why", "(empty message)");
  if (e.message.size() > 4096) broken("a refusal is at most 4 KiB", e.message.substr(0, 4096));
  if (e.message.find('\n') != std::string::npos || e.message.find('\r') != std::string::npos)
    broken("a refusal is one line", e.message);
  if (!model::is_valid_utf8(e.message)) broken("a refusal is valid UTF-8", model::to_valid_utf8(e.message));
}

// Save, load, save again: the second save is byte for byte the first.
inline void check_round_trip(const model::State& s) {
  const std::string saved = store::format_state(s);
  auto loaded = store::parse_state(saved, "saved");
  if (!loaded) broken("a saved state loads", loaded.error().message + "\n--- saved:\n" + saved);
  const std::string again = store::format_state(*loaded);
  if (again != saved) broken("a state loads as it was saved", "--- first:\n" + saved + "--- second:\n" + again);
}

// What parse_state gave (through fast_toml when it takes the text) is what
// toml++ alone gives: the same state, byte for byte once saved, or the same message.
inline void check_same_as_tomlpp(std::string_view text, const model::Result<model::State>& got) {
  auto slow = store::detail::parse_state(text, "state.toml", false);
  if (got.ok() != slow.ok())
    broken("fast_toml and toml++ agree on accepting a file",
           got.ok() ? "toml++ refused: " + slow.error().message : "fast refused: " + got.error().message);
  if (!got.ok()) {
    if (got.error().message != slow.error().message || got.error().kind != slow.error().kind)
      broken("fast_toml and toml++ refuse a file with the same message",
             "fast:   " + got.error().message + "\ntoml++: " + slow.error().message);
    return;
  }
  if (store::format_state(*got) != store::format_state(*slow))
    broken("fast_toml and toml++ read the same state", store::format_state(*got) + "---\n" + store::format_state(*slow));
}

}  // namespace azlb::fuzz
