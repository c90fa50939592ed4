#include "cli/context.hpp"

#include <iostream>

#include "store/state_store.hpp"

namespace azlb::cli {


// A name or path with bytes that are not UTF-8 prints as U+FFFD, never as an
// exception (the state may hold them; issue: any byte string renders safely).
void Context::print_json(const Json& j) const {
  std::cout << j.dump(2, ' ', false, Json::error_handler_t::replace) << "\n";
}

void Context::warn(const std::string& message) const { std::cerr << "azlb: warning: " << message << "\n"; }

void Context::confirm(const std::string& message, Json details) const {
  if (dry_run_diff_) {
    // What would be done, and the state file's lines that would change.
    if (json()) {
      print_json({{"dry_run", true}, {"message", message}, {"diff", *dry_run_diff_}});
    } else if (!quiet) {
      std::cout << "Dry run, nothing written: " << message << "\n";
      for (auto& line : *dry_run_diff_) std::cout << line << "\n";
    }
    return;
  }
  if (json()) {
    Json j = {{"message", message}};
    for (auto& [k, v] : details.items()) j[k] = v;
    print_json(j);
  } else if (!quiet) {
    std::cout << message << "\n";
  }
}

CLI::App* command(CLI::App& parent, Context& ctx, const std::string& name, const std::string& help,
                  std::function<model::Status()> body) {
  auto* sub = parent.add_subcommand(name, help);
  sub->callback([&ctx, body = std::move(body)] { ctx.action = body; });
  if (name == "list") sub->alias("ls");  // every group's, as users of ls and kubectl type it
  return sub;
}

CLI::App* group(CLI::App& parent, Context& ctx, const std::string& name, const std::string& help) {
  auto* g = parent.add_subcommand(name, help);
  g->require_subcommand(0, 1);
  g->callback([&ctx, g, name] {
    if (!g->get_subcommands().empty()) return;
    std::string known;
    for (auto* sub : g->get_subcommands({}))
      if (!sub->get_group().empty()) known += (known.empty() ? "" : ", ") + sub->get_name();
    std::string path = g->get_parent()->get_parent() ? g->get_parent()->get_name() + " " + name : name;
    std::string message = "'azlb " + path + "' needs a command: " + known;
    ctx.action = [message] { return model::Status(model::usage_error(message)); };
  });
  return g;
}

}  // namespace azlb::cli
