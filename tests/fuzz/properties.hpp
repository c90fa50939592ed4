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

// The message a user would see: one line, valid UTF-8, not empty.
inline void check_refusal(const model::Error& e) {
  if (e.message.empty()) broken("a refusal says why", "(empty message)");
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

}  // namespace azlb::fuzz
