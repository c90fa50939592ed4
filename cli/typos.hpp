// A mistyped command (`azlb vmm list`, `azlb lbset jion`) gets a did-you-mean
// naming the command meant, before CLI11 would answer with a bare "The
// following arguments were not expected".
#pragma once

#include <CLI/CLI.hpp>
#include <optional>
#include <string>

namespace azlb::cli {

// The message for the first word of the command line that names no command
// where one is expected, or nullopt when every command word is known.
std::optional<std::string> unknown_command(CLI::App& app, int argc, const char* const* argv);

// The first word of the command line that is neither an option of `app`
// nor an option's value: the command group typed (nullopt: none).
std::optional<std::string> first_command_word(CLI::App& app, int argc, const char* const* argv);

}  // namespace azlb::cli
