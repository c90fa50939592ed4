// Options that several commands share, kept as typed text until the model's
// parsers turn them into values (the CLI checks nothing by hand).
#pragma once

#include <CLI/CLI.hpp>
#include <string>

#include "model/ops.hpp"

namespace azlb::cli {

// One option's text and whether the user gave it.
struct Flag {
  std::string value;
  CLI::Option* opt = nullptr;
  bool given() const { return opt && opt->count() > 0; }
};

Flag& add(CLI::App& app, Flag& f, const std::string& name, const std::string& help);

// The contract's "probe options" plus --distribution and --proxy-protocol.
struct SetFlags {
  Flag probe_protocol, probe_port, probe_path, probe_interval, probe_timeout, when_all_down, distribution,
      proxy_protocol;
  bool no_probe = false;
  bool direct_server_return = false, no_direct_server_return = false;

  void add_to(CLI::App& app, bool with_distribution = true);
  model::Result<model::SetOptions> parse() const;
};

template <class T, class Parse>
model::Status parse_if(const Flag& f, std::optional<T>& out, Parse parse) {
  if (!f.given()) return model::ok();
  AZLB_ASSIGN(v, parse(f.value));
  out = std::move(v);
  return model::ok();
}

}  // namespace azlb::cli
