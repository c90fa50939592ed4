// azlb: the portal's load-balancing steps for your own machines.
#include <iostream>
#include <nlohmann/json.hpp>
#include <string_view>

#include "cli/commands.hpp"
#include "cli/typos.hpp"
#include "model/text.hpp"
#include "store/prefault.hpp"

namespace {

constexpr std::size_t kCommandTreeBytes = 384u << 10;

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
  // The command-line tree below is ~280 KB of small allocations: mapped in
  // one call, not one page fault (12-16 us on a VM) per page.
  azlb::store::prefault_heap(kCommandTreeBytes);
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

  register_vm(app, ctx);
  register_service(app, ctx);
  register_endpoint(app, ctx);
  register_lbset(app, ctx);
  register_status(app, ctx);
  register_engine(app, ctx);
  register_state(app, ctx);
  register_complete(app, ctx);

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
