// What every command needs: where the state is, how to print, and the one
// action the parsed command line chose.
#pragma once

#include <CLI/CLI.hpp>
#include <filesystem>
#include <functional>
#include <optional>
#include <vector>
#include <nlohmann/json.hpp>
#include <string>

#include "model/error.hpp"
#include "model/state.hpp"
#include "store/location.hpp"

namespace azlb::cli {

using Json = nlohmann::ordered_json;

struct Context {
  std::string state_flag;
  std::string output = "table";
  bool quiet = false;
  bool dry_run = false;  // --dry-run: a mutation shows its change and writes nothing
  bool yes = false;      // --yes: a change that removes something does not ask, even on a terminal
  std::function<model::Status()> action;  // set by the chosen subcommand

  // Where the state is (--state, $AZLB_STATE or the default file), checked
  // by main before any command runs.
  const store::Location& location() const { return location_; }
  store::Location location_;
  bool json() const { return output == "json"; }

  // A mutation of the state (cli/change.cpp): written under the lock, then,
  // with an engine running, applied at once and any new listener it cannot
  // bind named on stderr. With --dry-run, nothing is written: the change is
  // kept as a diff of the state file for confirm() to print.
  model::Status change(const std::function<model::Status(model::State&)>& fn) const;
  // A change's confirmation: the sentence in table mode, {"message", ...} in
  // JSON; under --dry-run, the sentence of what would be done and the diff.
  void confirm(const std::string& message, Json details = Json::object()) const;
  void print_json(const Json& j) const;
  // "azlb: warning: ..." on stderr: something the user should know that
  // does not fail the command (as text under -o json too, beside the output).
  void warn(const std::string& message) const;

 private:
  mutable std::optional<std::vector<std::string>> dry_run_diff_;
};

// Registers a subcommand whose callback makes `body` the action to run.
CLI::App* command(CLI::App& parent, Context& ctx, const std::string& name, const std::string& help,
                  std::function<model::Status()> body);

// A command group ("vm", "lbset"): typed alone, it lists its commands.
CLI::App* group(CLI::App& parent, Context& ctx, const std::string& name, const std::string& help);

// "'name'", the way messages quote user names.
inline std::string q(const std::string& s) { return "'" + s + "'"; }

}  // namespace azlb::cli
