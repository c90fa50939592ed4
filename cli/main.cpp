// azlb: the portal's load-balancing steps for your own machines.
#include <iostream>

#include "cli/commands.hpp"
#include "cli/typos.hpp"
#include "model/text.hpp"

int main(int argc, char** argv) {
  using namespace azlb::cli;
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
  app.require_subcommand(1);
  app.fallthrough();  // global options may follow the subcommand

  register_vm(app, ctx);
  register_service(app, ctx);
  register_endpoint(app, ctx);
  register_lbset(app, ctx);
  register_status(app, ctx);
  register_engine(app, ctx);
  register_complete(app, ctx);

  if (auto typo = unknown_command(app, argc, argv)) {
    std::cerr << "azlb: " << *typo << "\n";
    return static_cast<int>(azlb::model::ErrorKind::Usage);
  }
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    if (e.get_exit_code() == 0) return app.exit(e);  // --help, --version
    // CLI11's message holds the argument as typed: shown on one line, as UTF-8.
    std::cerr << "azlb: " << azlb::model::printable(e.what(), 1024) << "\n";
    return static_cast<int>(azlb::model::ErrorKind::Usage);
  }
  if (auto st = ctx.action(); !st) {
    std::cerr << "azlb: " << st.error().message << "\n";
    return static_cast<int>(st.error().kind);
  }
  return 0;
}
