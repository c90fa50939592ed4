#include "cli/flags.hpp"

namespace azlb::cli {

using namespace azlb::model;

Flag& add(CLI::App& app, Flag& f, const std::string& name, const std::string& help) {
  f.opt = app.add_option(name, f.value, help);
  return f;
}

void SetFlags::add_to(CLI::App& app, bool with_distribution) {
  add(app, probe_protocol, "--probe-protocol", "Probe kind: tcp (connect succeeds) or http (200 to GET path)")
      .opt->type_name("tcp|http");
  add(app, probe_port, "--probe-port", "Port probed on each member (default: first member's private port)")
      .opt->type_name("PORT");
  add(app, probe_path, "--probe-path", "Path of an http probe (default /)").opt->type_name("PATH");
  add(app, probe_interval, "--probe-interval", "Seconds between probes, 1..3600 (default 15)").opt->type_name("SEC");
  add(app, probe_timeout, "--probe-timeout",
      "Seconds without a passed probe before a member is taken out (default 31)")
      .opt->type_name("SEC");
  app.add_flag("--no-probe", no_probe, "No health probe: every member counts as up");
  add(app, when_all_down, "--when-all-down", "With every member down: refuse new connections, or serve-all")
      .opt->type_name("refuse|serve-all");
  if (with_distribution)
    add(app, distribution, "--distribution", "five-tuple (default), source-ip or source-ip-protocol: what the consistent hash picks a member by")
        .opt->type_name("MODE");
  add(app, proxy_protocol, "--proxy-protocol",
      "Send members a PROXY protocol header with the client's address: none (default), v1 or v2 (tcp only)")
      .opt->type_name("none|v1|v2");
  app.add_flag("--direct-server-return", direct_server_return,
               "Members answer clients directly (nat services; private port = public port)");
  app.add_flag("--no-direct-server-return", no_direct_server_return, "Replies go back through the balancer");
}

Result<SetOptions> SetFlags::parse() const {
  SetOptions o;
  AZLB_TRY(parse_if(probe_protocol, o.probe_protocol, parse_probe_protocol));
  AZLB_TRY(parse_if(probe_port, o.probe_port, [](auto& v) { return parse_u16("probe port", v); }));
  if (probe_path.given()) o.probe_path = probe_path.value;
  AZLB_TRY(parse_if(probe_interval, o.probe_interval_s, [](auto& v) { return parse_u32("probe interval", v); }));
  AZLB_TRY(parse_if(probe_timeout, o.probe_timeout_s, [](auto& v) { return parse_u32("probe timeout", v); }));
  AZLB_TRY(parse_if(when_all_down, o.when_all_down, parse_when_all_down));
  AZLB_TRY(parse_if(distribution, o.distribution, parse_distribution));
  AZLB_TRY(parse_if(proxy_protocol, o.proxy_protocol, parse_proxy_protocol));
  o.no_probe = no_probe;
  if (direct_server_return && no_direct_server_return)
    return usage_error("--direct-server-return and --no-direct-server-return contradict each other: give one");
  if (direct_server_return || no_direct_server_return) o.direct_server_return = direct_server_return;
  return o;
}

}  // namespace azlb::cli
