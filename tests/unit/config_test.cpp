#include <algorithm>
#include <set>

#include "engine/config.hpp"
#include "engine/control/config_diff.hpp"

#include "fixtures.hpp"

using namespace azlb::engine;
using namespace azlb::test;

TEST_CASE("every plain endpoint and every set becomes one route on the VIP") {
  State s = web_farm();
  must(join_lbset(s, {"webset", "vm2", std::nullopt, std::nullopt, std::nullopt}));
  must(add_endpoint(s, {"vm3", spec("dns", 53, 5353, Protocol::Udp), std::nullopt, "", {}, std::nullopt}));
  Registry reg;
  auto cfg = build_config(s, reg, 1, 60000);
  REQUIRE(cfg->routes.size() == 2);
  auto& set = cfg->routes[0];
  CHECK(set.key.to_string() == "tcp 127.0.0.1:8080");
  CHECK(set.name == "web/webset");
  CHECK(set.upstreams.size() == 2);
  CHECK(set.upstreams[0].idle_timeout_ms == 4 * 60000);
  auto& dns = cfg->routes[1];
  CHECK(dns.key.to_string() == "udp 127.0.0.1:53");
  CHECK(dns.upstreams.at(0).state->health == Health::Up);  // a plain endpoint has no probe
  CHECK(cfg->probes.size() == 2);
  CHECK(cfg->probes[0].probe.port == 80);
}

TEST_CASE("the proxy plane's listening addresses are the routes' keys, without building the routes") {
  State s = web_farm();
  must(join_lbset(s, {"webset", "vm2", std::nullopt, std::nullopt, std::nullopt}));
  must(add_endpoint(s, {"vm3", spec("dns", 53, 5353, Protocol::Udp), std::nullopt, "", {}, std::nullopt}));
  must(add_endpoint(s, {"vm3", spec("ssh", 2222, 22), std::nullopt, "", {}, std::nullopt}));
  auto keys_of = [](const State& st) {
    Registry reg;
    std::set<ListenKey> out;
    const auto cfg = build_config(st, reg, 1, 60000);  // held: a range-for would not keep it alive
    for (auto& r : cfg->routes) out.insert(r.key);
    return out;
  };
  CHECK(proxy_listen_keys(s) == keys_of(s));
  CHECK(proxy_listen_keys(s).size() == 3);
  // A service on the NAT plane has no proxy listener.
  s.services[0].dataplane = azlb::model::Dataplane::Nat;
  CHECK(proxy_listen_keys(s).empty());
  CHECK(keys_of(s).empty());
}

TEST_CASE("health and counters survive a rebuild; a --no-probe set's members are up") {
  State s = web_farm();
  Registry reg;
  auto one = build_config(s, reg, 1, 60000);
  one->routes[0].upstreams[0].state->health = Health::Down;
  auto two = build_config(s, reg, 2, 60000);
  CHECK(two->routes[0].upstreams[0].state == one->routes[0].upstreams[0].state);
  CHECK(two->routes[0].upstreams[0].state->health == Health::Down);
  SetOptions none;
  none.no_probe = true;
  must(update_lbset(s, {"webset", ""}, none));
  auto three = build_config(s, reg, 3, 60000);
  CHECK(three->probes.empty());
  CHECK(three->routes[0].upstreams[0].state->health == Health::Up);
}

TEST_CASE("a new configuration's changes are named: routes added and removed, members joined, drained, left, settings") {
  State s = web_farm();
  Registry reg;
  auto before = build_config(s, reg, 1, 60000);
  CHECK(config_changes(*before, *build_config(s, reg, 2, 60000)).empty());
  must(join_lbset(s, {"webset", "vm2", std::nullopt, std::nullopt, std::nullopt}));
  must(join_lbset(s, {"webset", "vm3", std::nullopt, std::nullopt, std::nullopt}));
  must(add_endpoint(s, {"vm3", spec("api", 8081, 81), std::nullopt, "", {}, std::nullopt}));
  auto after = build_config(s, reg, 3, 60000);
  auto changes = config_changes(*before, *after);
  auto has = [&](const std::string& line) { return std::find(changes.begin(), changes.end(), line) != changes.end(); };
  REQUIRE(changes.size() == 2);
  CHECK(has("set web/webset: vm2 joined, vm3 joined"));
  CHECK(has("endpoint web/vm3/api added (tcp 127.0.0.1:8081)"));
  must(set_admin_state(s, "webset", "vm2", AdminState::Drain));
  must(leave_lbset(s, "webset", "vm3"));
  SetOptions o;
  o.distribution = Distribution::SourceIp;
  o.probe_protocol = ProbeProtocol::Http;
  o.probe_path = "/health";
  must(update_lbset(s, {"webset", ""}, o));
  must(remove_endpoint(s, "vm3", "api"));
  changes = config_changes(*after, *build_config(s, reg, 4, 60000));
  CHECK(has("endpoint web/vm3/api removed (tcp 127.0.0.1:8081)"));
  CHECK(std::any_of(changes.begin(), changes.end(), [](auto& c) {
    return c.rfind("set web/webset: distribution source-ip, vm2 drained, vm3 left, probe http :80/health every", 0) == 0;
  }));
}
