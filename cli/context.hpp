// What every command needs: where the state is, how to print, and the one
// action the parsed command line chose.
#pragma once

#include <CLI/CLI.hpp>
#include <filesystem>
#include <functional>
#include <nlohmann/json.hpp>
#include <string>

#include "model/error.hpp"

namespace azlb::cli {

using Json = nlohmann::ordered_json;

struct Context {
  std::string state_flag;
  std::string output = "table";
  bool quiet = false;
  std::function<model::Status()> action;  // set by the chosen subcommand

  std::filesystem::path state_path() const;
  bool json() const { return output == "json"; }

  // A change's confirmation: the sentence in table mode, {"message", ...} in JSON.
  void confirm(const std::string& message, Json details = Json::object()) const;
  void print_json(const Json& j) const;
};

// Registers a subcommand whose callback makes `body` the action to run.
CLI::App* command(CLI::App& parent, Context& ctx, const std::string& name, const std::string& help,
                  std::function<model::Status()> body);

// A command group ("vm", "lbset"): typed alone, it lists its commands.
CLI::App* group(CLI::App& parent, Context& ctx, const std::string& name, const std::string& help);

// "'name'", the way messages quote user names.
inline std::string q(const std::string& s) { return "'" + s + "'"; }

}  // namespace azlb::cli
