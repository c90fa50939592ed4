#include "cli/typos.hpp"

#include <vector>

#include "model/text.hpp"
#include "model/values.hpp"

namespace azlb::cli {

namespace {

// An option of `app` (or, since global options may follow a subcommand, of
// an app above it) that takes a value in the next word.
bool takes_value(CLI::App* app, const std::string& word) {
  if (word.find('=') != std::string::npos) return false;  // --state=PATH
  for (CLI::App* a = app; a; a = a->get_parent()) {
    const CLI::Option* o = a->get_option_no_throw(word);
    if (o) return o->get_items_expected_max() > 0;  // a flag expects none
  }
  return false;
}

}  // namespace

std::optional<std::string> first_command_word(CLI::App& app, int argc, const char* const* argv) {
  for (int i = 1; i < argc; ++i) {
    const std::string word = argv[i];
    if (word == "--") return std::nullopt;
    if (word.empty() || word[0] != '-') return word;
    if (takes_value(&app, word)) ++i;
  }
  return std::nullopt;
}

std::optional<std::string> unknown_command(CLI::App& app, int argc, const char* const* argv) {
  CLI::App* at = &app;
  std::string path = "azlb";
  for (int i = 1; i < argc; ++i) {
    const std::string word = argv[i];
    if (word == "--") return std::nullopt;
    if (!word.empty() && word[0] == '-') {
      if (takes_value(at, word)) ++i;
      continue;
    }
    const auto subs = at->get_subcommands({});
    if (subs.empty()) return std::nullopt;  // the command's own arguments follow
    CLI::App* next = nullptr;
    std::vector<std::string> names;
    for (auto* s : subs) {
      if (s->check_name(word)) next = s;
      names.push_back(s->get_name());
      for (auto& a : s->get_aliases()) names.push_back(a);
    }
    if (!next) {
      // A group's commands that take a name first (`vm show NAME`) never get here:
      // only a word where a command is expected does.
      std::string m = "unknown command " + model::quote(path + " " + word);
      if (auto near = model::closest_name(word, names)) m += "; did you mean '" + path + " " + *near + "'?";
      else {
        std::string known;
        for (auto* s : subs)
          if (!s->get_group().empty()) known += (known.empty() ? "" : ", ") + s->get_name();  // hidden ones aside
        m += "; '" + path + "' has: " + known;
      }
      return m;
    }
    at = next;
    path += " " + next->get_name();
  }
  return std::nullopt;
}

}  // namespace azlb::cli
