// azlb: the portal's load-balancing steps for your own machines.
#include <algorithm>
#include <iostream>
#include <nlohmann/json.hpp>
#include <string_view>

#include "cli/commands.hpp"
#include "cli/typos.hpp"
#include "model/text.hpp"
#include "store/prefault.hpp"

namespace {

// The command-line tree's heap: ~85 KB for the global options, 10-60 KB
// more for each group, 280 KB in all.
constexpr std::size_t kOneGroupTreeBytes = 192u << 10;
constexpr std::size_t kWholeTreeBytes = 384u << 10;

// Under -o json an error is a JSON object on stderr (the contract: {"error",
// "exit_code"}), so that a script reads one format; otherwise one line.
// Asked of the words themselves: a command line that does not parse has no
// parsed options.
bool wants_json(int argc, char** argv) {
  for (int i = 1; i < argc; ++i) {
    const std::string_view w = argv[i];
    if (w == "--") break;
    if ((w == "-o" || w == "--output") && i + 1 < argc) return std::string_view(argv[i + 1]) == "json";
    if (w == "--output=json" || w == "-ojson") return true;
  }
  return false;
}

int fail(bool json, const std::string& message, azlb::model::ErrorKind kind) {
  const int code = static_cast<int>(kind);
  if (json)
    std::cerr << nlohmann::json{{"error", message}, {"exit_code", code}}.dump(-1, ' ', false,
                                                                          nlohmann::json::error_handler_t::replace)
              << "\n";
  else
    std::cerr << "azlb: " << message << "\n";
  return code;
}

}  // namespace

int main(int argc, char** argv) {
  using namespace azlb::cli;
  // A command lives milliseconds: its heap on huge pages, mapped ahead of
  // the command-line tree's small allocations (store/prefault.hpp).
  azlb::store::heap_on_huge_pages(true);
  azlb::store::prefault_heap(kOneGroupTreeBytes);
  Context ctx;
  CLI::App app{"azlb: classic Azure cloud services, endpoints and load-balanced sets on your own machines", "azlb"};
  app.set_version_flag("--version", "azlb 0.1.0");
  app.add_option("--state", ctx.state_flag, "State file (default $AZLB_STATE, else $XDG_STATE_HOME/azlb/state.toml)")
      ->type_name("PATH");
  app.add_option("-o,--output", ctx.output, "Output format")
      ->check(CLI::IsMember({"table", "json"}))
      ->type_name("table|json");
  app.add_flag("-q,--quiet", ctx.quiet, "Print nothing on success (table output)");
  app.add_flag("--dry-run", ctx.dry_run, "A change: print what it would do (a diff of the state) and write nothing");
  app.add_flag("-y,--yes", ctx.yes, "A change that removes something: do not ask (on a terminal it asks first)");
  app.require_subcommand(1);
  app.fallthrough();  // global options may follow the subcommand

  // Only the group typed is built when the first word names one: the whole
  // tree is ~0.6 ms of a 10-20 ms command (its construction and its heap's
  // new pages, ~8 us each on a VM). Help, a typo or no command: all of it.
  struct Group {
    const char* name;
    void (*add)(CLI::App&, Context&);
  };
  static constexpr Group kGroups[] = {{"vm", register_vm},         {"service", register_service},
                                      {"endpoint", register_endpoint}, {"lbset", register_lbset},
                                      {"status", register_status}, {"engine", register_engine},
                                      {"state", register_state},   {"__complete", register_complete}};
  const auto first = first_command_word(app, argc, argv);
  const auto typed = std::find_if(std::begin(kGroups), std::end(kGroups),
                                  [&](const Group& g) { return first && *first == g.name; });
  if (typed != std::end(kGroups)) {
    typed->add(app, ctx);
  } else {
    azlb::store::prefault_heap(kWholeTreeBytes);
    for (const auto& g : kGroups) g.add(app, ctx);
  }

  const bool json = wants_json(argc, argv);
  if (auto typo = unknown_command(app, argc, argv)) return fail(json, *typo, azlb::model::ErrorKind::Usage);
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    if (e.get_exit_code() == 0) return app.exit(e);  // --help, --version
    // CLI11's message holds the argument as typed: shown on one line, as UTF-8.
    return fail(json, azlb::model::printable(e.what(), 1024), azlb::model::ErrorKind::Usage);
  }
  if (!ctx.action) return 0;
  auto location = azlb::store::resolve_location(ctx.state_flag);
  if (!location) return fail(ctx.json(), location.error().message, location.error().kind);
  ctx.location_ = std::move(*location);
  try {
    if (auto st = ctx.action(); !st) return fail(ctx.json(), st.error().message, st.error().kind);
  } catch (const std::exception& e) {
    // A defect, or a peer's reply of a shape nobody checked: still one line, never a core.
    return fail(ctx.json(), "internal error: " + azlb::model::printable(e.what(), 1024), azlb::model::ErrorKind::Runtime);
  }
  return 0;
}
