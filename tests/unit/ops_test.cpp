#include "model/ops.hpp"

#include "fixtures.hpp"

using namespace azlb::test;

TEST_CASE("the first VM of a new service gets .4 of a fresh 127.0.N.0/24 and an SSH endpoint on 22") {
  State s;
  VmRequest r;
  r.name = "vm1";
  r.cloud_service = "web";
  auto c = create_vm(s, r);
  REQUIRE(c.ok());
  CHECK(c->service_created);
  CHECK(s.services.at(0).subnet.to_string() == "127.0.1.0/24");
  CHECK(s.services.at(0).vip.to_string() == "127.0.0.1");
  auto& vm = s.vms.at(0);
  CHECK(vm.private_ip.to_string() == "127.0.1.4");
  REQUIRE(vm.endpoints.size() == 1);
  CHECK(vm.endpoints[0].name == "SSH");
  CHECK(vm.endpoints[0].public_port == 22);
}

TEST_CASE("the 2nd and 3rd linux VM of a service get distinct free public ports for SSH") {
  State s;
  for (auto* n : {"vm1", "vm2", "vm3"}) make_vm(s, n, "web", true);
  CHECK(s.vms[0].endpoints[0].public_port == 22);
  CHECK(s.vms[1].endpoints[0].public_port == 50000);
  CHECK(s.vms[2].endpoints[0].public_port == 50001);
  CHECK(s.vms[2].endpoints[0].private_port == 22);
  CHECK(s.vms[2].private_ip.to_string() == "127.0.1.6");
}

TEST_CASE("a windows VM gets RemoteDesktop and PowerShell endpoints on free public ports") {
  State s;
  make_vm(s, "w1", "win", true, Os::Windows);
  make_vm(s, "w2", "win", true, Os::Windows);
  auto& a = s.vms[0].endpoints;
  auto& b = s.vms[1].endpoints;
  REQUIRE(a.size() == 2);
  CHECK(a[0].name == "RemoteDesktop");
  CHECK(a[0].private_port == 3389);
  CHECK(a[1].name == "PowerShell");
  CHECK(a[1].private_port == 5986);
  CHECK(b[0].public_port != a[0].public_port);
  CHECK(b[1].public_port != a[1].public_port);
}

TEST_CASE("a second service gets its own default subnet") {
  State s;
  make_vm(s, "a", "one");
  make_vm(s, "b", "two");
  CHECK(s.services[1].subnet.to_string() == "127.0.2.0/24");
  CHECK(s.vms[1].private_ip.to_string() == "127.0.2.4");
}

TEST_CASE("Quick Create names the service after the VM and records how the VM was made") {
  State s;
  VmRequest r;
  r.name = "quick1";
  r.quick = true;
  REQUIRE(create_vm(s, r).ok());
  CHECK(s.services[0].name == "quick1");
  CHECK(s.vms[0].created_by == CreatedBy::Quick);
  r.cloud_service = "web";
  r.name = "quick2";
  CHECK(kind_of(create_vm(s, r)) == ErrorKind::Usage);
}

TEST_CASE("a private IP is unique within its service and must lie in its subnet") {
  State s;
  make_vm(s, "vm1", "web");
  VmRequest r;
  r.name = "vm2";
  r.cloud_service = "web";
  r.private_ip = *parse_ip("ip", "127.0.1.4");
  CHECK(kind_of(create_vm(s, r)) == ErrorKind::Conflict);
  r.private_ip = *parse_ip("ip", "10.9.9.9");
  CHECK(kind_of(create_vm(s, r)) == ErrorKind::Usage);
  r.private_ip = *parse_ip("ip", "127.0.1.77");
  CHECK(create_vm(s, r).ok());
}

TEST_CASE("a VM named on its own private IP makes a service around that subnet") {
  State s;
  VmRequest r;
  r.name = "db";
  r.cloud_service = "data";
  r.private_ip = *parse_ip("ip", "10.20.30.40");
  r.default_endpoints = false;
  REQUIRE(create_vm(s, r).ok());
  CHECK(s.services[0].subnet.to_string() == "10.20.30.0/24");
}

TEST_CASE("a public port is shared only inside one load-balanced set") {
  State s = web_farm();
  // Outside the set, 8080 is taken.
  CHECK(kind_of(add_endpoint(s, {"vm2", spec("other", 8080, 80), std::nullopt, "", {}, std::nullopt})) == ErrorKind::Conflict);
  // The same port over UDP is a different public port.
  CHECK(add_endpoint(s, {"vm2", spec("dns", 8080, 53, Protocol::Udp), std::nullopt, "", {}, std::nullopt}).ok());
  // Inside the set, it is shared.
  CHECK(add_endpoint(s, {"vm2", spec("http", 8080, 81), std::nullopt, "webset", {}, std::nullopt}).ok());
  // Another service on the same VIP may not take it either.
  make_vm(s, "x1", "other");
  CHECK(kind_of(add_endpoint(s, {"x1", spec("http", 8080, 80), std::nullopt, "", {}, std::nullopt})) == ErrorKind::Conflict);
}

TEST_CASE("services on different VIPs may use the same public port") {
  State s;
  must(create_service(s, {"a", *parse_ip("ip", "127.0.0.2"), std::nullopt}));
  must(create_service(s, {"b", *parse_ip("ip", "127.0.0.3"), std::nullopt}));
  make_vm(s, "va", "a");
  make_vm(s, "vb", "b");
  CHECK(add_endpoint(s, {"va", spec("http", 80, 80), std::nullopt, "", {}, std::nullopt}).ok());
  CHECK(add_endpoint(s, {"vb", spec("http", 80, 80), std::nullopt, "", {}, std::nullopt}).ok());
  must(create_service(s, {"any", *parse_ip("ip", "0.0.0.0"), std::nullopt}));
  make_vm(s, "vany", "any");
  CHECK(kind_of(add_endpoint(s, {"vany", spec("http", 80, 80), std::nullopt, "", {}, std::nullopt})) == ErrorKind::Conflict);
}

TEST_CASE("a set's members have its protocol and public port, one endpoint per VM") {
  State s = web_farm();
  CHECK(kind_of(add_endpoint(s, {"vm2", spec("http", 9090, 80), std::nullopt, "webset", {}, std::nullopt})) == ErrorKind::Conflict);
  CHECK(kind_of(add_endpoint(s, {"vm2", spec("http", 8080, 80, Protocol::Udp), std::nullopt, "webset", {}, std::nullopt})) ==
        ErrorKind::Conflict);
  CHECK(kind_of(add_endpoint(s, {"vm1", spec("http2", 8080, 81), std::nullopt, "webset", {}, std::nullopt})) == ErrorKind::Conflict);
}

TEST_CASE("the default probe is tcp on the first member's private port, every 15 s, down after 31 s") {
  State s = web_farm();
  auto& set = s.services[0].lbsets.at(0);
  REQUIRE(set.probe);
  CHECK(set.probe->protocol == ProbeProtocol::Tcp);
  CHECK(set.probe->port == 80);
  CHECK(set.probe->path.empty());
  CHECK(set.probe->interval_s == 15);
  CHECK(set.probe->timeout_s == 31);
  CHECK(set.distribution == Distribution::FiveTuple);
  CHECK(set.when_all_down == WhenAllDown::Refuse);
}

TEST_CASE("probe rules: a path only with http, 1 <= interval < timeout <= 7200") {
  auto with = [](SetOptions o) { return resolve_probe(std::nullopt, o, 80); };
  SetOptions o;
  o.probe_path = "/health";
  CHECK(kind_of(with(o)) == ErrorKind::Usage);
  o.probe_protocol = ProbeProtocol::Http;
  CHECK((*with(o))->path == "/health");
  SetOptions http;
  http.probe_protocol = ProbeProtocol::Http;
  CHECK((*with(http))->path == "/");
  SetOptions i;
  i.probe_interval_s = 0;
  CHECK(kind_of(with(i)) == ErrorKind::Usage);
  i.probe_interval_s = 1;
  i.probe_timeout_s = 2;
  CHECK(with(i).ok());
  i.probe_timeout_s = 1;
  CHECK(kind_of(with(i)) == ErrorKind::Usage);
  i.probe_interval_s = 3600;
  i.probe_timeout_s = 7201;
  CHECK(kind_of(with(i)) == ErrorKind::Usage);
  SetOptions none;
  none.no_probe = true;
  CHECK_FALSE(*with(none));
  none.probe_port = 81;
  CHECK(kind_of(with(none)) == ErrorKind::Usage);
}

TEST_CASE("switching a probe from http to tcp drops its path") {
  SetOptions o;
  o.probe_protocol = ProbeProtocol::Http;
  o.probe_path = "/ready";
  auto http = *resolve_probe(std::nullopt, o, 80);
  SetOptions back;
  back.probe_protocol = ProbeProtocol::Tcp;
  auto tcp = *resolve_probe(http, back, 80);
  CHECK(tcp->path.empty());
}

TEST_CASE("joining a set makes the set's endpoint on the VM with the first member's private port") {
  State s = web_farm();
  auto j = join_lbset(s, {"webset", "vm2", std::nullopt, std::nullopt, std::nullopt});
  REQUIRE(j.ok());
  CHECK(j->endpoint == "http");
  auto* ep = find_endpoint(*find_vm(s, "vm2"), "http");
  REQUIRE(ep);
  CHECK(ep->public_port == 8080);
  CHECK(ep->private_port == 80);
  CHECK(ep->lbset == "webset");
  CHECK(kind_of(join_lbset(s, {"webset", "vm2", std::nullopt, std::nullopt, std::nullopt})) == ErrorKind::Conflict);
  CHECK(kind_of(join_lbset(s, {"nosuch", "vm3", std::nullopt, std::nullopt, std::nullopt})) == ErrorKind::NotFound);
  CHECK(members_of(s, s.services[0], s.services[0].lbsets[0]).size() == 2);
}

TEST_CASE("an existing endpoint that joins a set takes the set's public port") {
  State s = web_farm();
  must(add_endpoint(s, {"vm3", spec("http", 9000, 8000), std::nullopt, "", {}, std::nullopt}));
  auto j = join_lbset(s, {"webset", "vm3", std::nullopt, std::nullopt, std::nullopt});
  REQUIRE(j.ok());
  CHECK(j->existing);
  auto* ep = find_endpoint(*find_vm(s, "vm3"), "http");
  CHECK(ep->public_port == 8080);
  CHECK(ep->private_port == 8000);
}

TEST_CASE("leaving a set never publishes the member: its endpoint goes, unless a port is asked for") {
  State s = web_farm();
  REQUIRE(join_lbset(s, {"webset", "vm2", std::nullopt, std::nullopt, std::nullopt}).ok());
  REQUIRE(join_lbset(s, {"webset", "vm3", std::nullopt, std::nullopt, std::nullopt}).ok());
  auto m = leave_lbset(s, "webset", "vm2");
  REQUIRE(m.ok());
  CHECK(m->from == 8080);
  CHECK(m->to == 0);
  CHECK(find_endpoint(*find_vm(s, "vm2"), "http") == nullptr);
  CHECK(kind_of(leave_lbset(s, "webset", "vm2")) == ErrorKind::NotFound);
  // Asked: on that port, which must be free (the set still holds 8080).
  CHECK(kind_of(leave_lbset(s, "webset", "vm3", 8080)) == ErrorKind::Conflict);
  CHECK(kind_of(leave_lbset(s, "webset", "vm3", 0)) == ErrorKind::Usage);
  CHECK(find_endpoint(*find_vm(s, "vm3"), "http")->lbset == "webset");  // a refusal changed nothing
  auto kept = leave_lbset(s, "webset", "vm3", 9001);
  REQUIRE(kept.ok());
  CHECK(kept->to == 9001);
  auto* ep = find_endpoint(*find_vm(s, "vm3"), "http");
  REQUIRE(ep != nullptr);
  CHECK(ep->lbset.empty());
  CHECK(ep->public_port == 9001);
  CHECK(validate(s).ok());
}

TEST_CASE("deleting a set keeps its endpoints on their VMs unpublished, or publishes or removes them when asked") {
  State s = web_farm();
  REQUIRE(join_lbset(s, {"webset", "vm2", std::nullopt, std::nullopt, std::nullopt}).ok());
  REQUIRE(join_lbset(s, {"webset", "vm3", std::nullopt, std::nullopt, std::nullopt}).ok());
  State removed = s, published_each = s;
  // By default (the contract keeps them on their VMs) nothing is exposed:
  // every member's endpoint stays, with no public port.
  auto kept = delete_lbset(s, {"webset", ""});
  REQUIRE(kept.ok());
  REQUIRE(kept->size() == 3);
  for (auto& m : *kept) {
    CHECK(m.kept);
    CHECK(m.from == 8080);
    CHECK(m.to == 0);
  }
  for (auto& vm : s.vms) {
    const Endpoint* ep = find_endpoint(vm, "http");
    REQUIRE(ep != nullptr);
    CHECK(ep->lbset.empty());
    CHECK_FALSE(published(*ep));
  }
  CHECK(validate(s).ok());
  // Port 8080 is free again: a new endpoint may take it, and an unpublished one is published on it.
  must(update_endpoint(s, {"vm2", "http", std::uint16_t(8080), std::nullopt, std::nullopt}));
  CHECK(published(*find_endpoint(*find_vm(s, "vm2"), "http")));
  State copy = s;  // a refused operation leaves its state to be thrown away (callers work on a copy)
  CHECK(kind_of(update_endpoint(copy, {"vm3", "http", std::uint16_t(8080), std::nullopt, std::nullopt})) ==
        ErrorKind::Conflict);
  copy = s;
  CHECK(kind_of(update_endpoint(copy, {"vm3", "http", std::uint16_t(0), std::nullopt, std::nullopt})) ==
        ErrorKind::Usage);
  // A set cannot take its port from an unpublished endpoint.
  CHECK(kind_of(create_lbset(s, {"again", "vm3", "http", std::nullopt, std::nullopt, std::nullopt, {}, std::nullopt})) ==
        ErrorKind::Conflict);
  // Joining a set gives it the set's port.
  REQUIRE(create_lbset(s, {"again", "vm2", "http", std::nullopt, std::nullopt, std::nullopt, {}, std::nullopt}).ok());
  REQUIRE(join_lbset(s, {"again", "vm3", std::nullopt, std::nullopt, std::nullopt}).ok());
  CHECK(find_endpoint(*find_vm(s, "vm3"), "http")->public_port == 8080);
  CHECK(validate(s).ok());

  auto moves = delete_lbset(removed, {"webset", ""}, SetMembersAfterDelete::Remove);
  REQUIRE(moves.ok());
  REQUIRE(moves->size() == 3);
  for (auto& m : *moves) CHECK_FALSE(m.kept);
  for (auto& vm : removed.vms) CHECK(find_endpoint(vm, "http") == nullptr);
  CHECK(removed.services[0].lbsets.empty());
  CHECK(validate(removed).ok());
  auto published_moves = delete_lbset(published_each, {"webset", ""}, SetMembersAfterDelete::Publish);
  REQUIRE(published_moves.ok());
  CHECK((*published_moves)[0].to == 8080);
  CHECK((*published_moves)[1].to == 8081);
  CHECK((*published_moves)[2].to == 8082);
  CHECK(validate(published_each).ok());
}

TEST_CASE("endpoint set changes what it is given and keeps a member's public port the set's") {
  State s = web_farm();
  REQUIRE(join_lbset(s, {"webset", "vm2", std::nullopt, std::nullopt, std::nullopt}).ok());
  auto before = update_endpoint(s, {"vm2", "http", std::nullopt, std::uint16_t(9090), std::uint32_t(10)});
  REQUIRE(before.ok());
  CHECK(before->private_port == 80);
  const Endpoint& ep = *find_endpoint(*find_vm(s, "vm2"), "http");
  CHECK(ep.private_port == 9090);
  CHECK(ep.idle_timeout_min == 10);
  for (const EndpointUpdate& bad : {EndpointUpdate{"vm2", "http", std::uint16_t(81), std::nullopt, std::nullopt},
                                    EndpointUpdate{"vm2", "http", std::nullopt, std::nullopt, std::uint32_t(99)},
                                    EndpointUpdate{"vm2", "http", std::nullopt, std::nullopt, std::nullopt}}) {
    State copy = s;
    CHECK(kind_of(update_endpoint(copy, bad)) == ErrorKind::Usage);
  }
}

TEST_CASE("a set's members share the set's ACL: a rule added through one applies to all") {
  State s = web_farm();
  REQUIRE(join_lbset(s, {"webset", "vm2", std::nullopt, std::nullopt, std::nullopt}).ok());
  auto changed = add_acl_rule(s, "vm2", "http", {10, AclAction::Permit, *parse_cidr("s", "10.0.0.0/8"), "office"});
  REQUIRE(changed.ok());
  CHECK(changed->size() == 2);
  auto acl = [&](const char* vm) {
    const Vm& v = *find_vm(s, vm);
    return acl_of(s, v, *find_endpoint(v, "http")).size();
  };
  // One list, on the set; members hold none of their own.
  CHECK(s.services[0].lbsets[0].acl.size() == 1);
  CHECK(find_endpoint(*find_vm(s, "vm1"), "http")->acl.empty());
  CHECK(acl("vm1") == 1);
  // A VM that joins later is under it.
  REQUIRE(join_lbset(s, {"webset", "vm3", std::nullopt, std::nullopt, std::nullopt}).ok());
  CHECK(acl("vm3") == 1);
  CHECK(kind_of(add_acl_rule(s, "vm1", "http", {10, AclAction::Deny, *parse_cidr("s", "10.0.0.0/8"), ""})) ==
        ErrorKind::Conflict);
  // A VM that leaves keeps the rules as its own: leaving lets nobody new in.
  auto left = leave_lbset(s, "webset", "vm3", 9000);
  REQUIRE_MESSAGE(left.ok(), (left.ok() ? "" : left.error().message));
  CHECK(find_endpoint(*find_vm(s, "vm3"), "http")->acl.size() == 1);
  CHECK(remove_acl_rule(s, "vm1", "http", 10).ok());
  CHECK(acl("vm2") == 0);
  CHECK(find_endpoint(*find_vm(s, "vm3"), "http")->acl.size() == 1);
  CHECK(kind_of(remove_acl_rule(s, "vm1", "http", 10)) == ErrorKind::NotFound);
}

TEST_CASE("deleting a set leaves each member's endpoint with the set's rules, so nobody new gets in") {
  State s = web_farm();
  REQUIRE(join_lbset(s, {"webset", "vm2", std::nullopt, std::nullopt, std::nullopt}).ok());
  REQUIRE(add_acl_rule(s, "vm1", "http", {7, AclAction::Permit, *parse_cidr("s", "10.0.0.0/8"), "office"}).ok());
  REQUIRE(delete_lbset(s, {"webset", ""}).ok());
  for (const char* vm : {"vm1", "vm2"}) {
    const Endpoint& ep = *find_endpoint(*find_vm(s, vm), "http");
    CHECK(ep.lbset.empty());
    REQUIRE(ep.acl.size() == 1);
    CHECK(ep.acl[0].description == "office");
  }
  CHECK(validate(s).ok());
}

TEST_CASE("an endpoint moving into a set gives its rules to an empty set, and must match a set's own") {
  State s = web_farm();
  must(add_endpoint(s, {"vm2", spec("SSH", 2202, 22), std::nullopt, "", {}, std::nullopt}));
  must(add_endpoint(s, {"vm3", spec("SSH", 2203, 22), std::nullopt, "", {}, std::nullopt}));
  REQUIRE(add_acl_rule(s, "vm2", "SSH", {5, AclAction::Deny, *parse_cidr("s", "10.0.0.0/8"), ""}).ok());
  // vm2's SSH endpoint makes a new set: its rule becomes the set's.
  REQUIRE(create_lbset(s, {"sshset", "vm2", "SSH", std::nullopt, std::nullopt, std::nullopt, {}, std::nullopt}).ok());
  auto& set = *find_lbset(s.services[0], "sshset");
  CHECK(set.acl.size() == 1);
  CHECK(find_endpoint(*find_vm(s, "vm2"), "SSH")->acl.empty());
  // vm3's SSH endpoint has a rule of its own that is not the set's: refused, nothing changed.
  REQUIRE(add_acl_rule(s, "vm3", "SSH", {6, AclAction::Deny, *parse_cidr("s", "10.0.0.0/8"), ""}).ok());
  auto refused = join_lbset(s, {"sshset", "vm3", std::string("SSH"), std::nullopt, std::nullopt});
  REQUIRE_FALSE(refused.ok());
  CHECK(refused.error().message ==
        "endpoint 'SSH' has other ACL rules than load-balanced set 'sshset'; a set's members share the set's ACL");
}

TEST_CASE("ACL rules are kept in order and limited to 50") {
  State s = web_farm();
  make_vm(s, "solo", "web", true);
  for (std::uint32_t i = 0; i < 50; ++i)
    REQUIRE(add_acl_rule(s, "solo", "SSH", {50 - i, AclAction::Deny, *parse_cidr("s", "10.0.0.0/8"), ""}).ok());
  auto& acl = find_endpoint(*find_vm(s, "solo"), "SSH")->acl;
  CHECK(acl.front().order == 1);
  CHECK(acl.back().order == 50);
  CHECK(kind_of(add_acl_rule(s, "solo", "SSH", {99, AclAction::Deny, *parse_cidr("s", "10.0.0.0/8"), ""})) ==
        ErrorKind::Conflict);
}

TEST_CASE("lbset create can make the endpoint first, and refuses an endpoint already in a set") {
  State s = web_farm();
  LbsetCreateRequest r;
  r.set = "api";
  r.vm = "vm2";
  r.endpoint = "api";
  r.public_port = 9000;
  r.private_port = 9001;
  auto c = create_lbset(s, r);
  REQUIRE(c.ok());
  CHECK(c->endpoint_created);
  CHECK(find_endpoint(*find_vm(s, "vm2"), "api")->lbset == "api");
  LbsetCreateRequest again;
  again.set = "other";
  again.vm = "vm1";
  again.endpoint = "http";
  CHECK(kind_of(create_lbset(s, again)) == ErrorKind::Conflict);
  again.endpoint = "nope";
  CHECK(kind_of(create_lbset(s, again)) == ErrorKind::NotFound);
}

TEST_CASE("a set name that exists in two services needs --cloud-service") {
  State s = web_farm();
  make_vm(s, "o1", "other");
  must(add_endpoint(s, {"o1", spec("http", 7000, 80), std::nullopt, "webset", {}, std::nullopt}));
  CHECK(kind_of(locate_set(s, {"webset", ""})) == ErrorKind::Usage);
  CHECK(locate_set(s, {"webset", "other"}).ok());
}

TEST_CASE("a service with VMs is deleted only when asked to take them along") {
  State s = web_farm();
  CHECK(kind_of(delete_service(s, "web", false)) == ErrorKind::Conflict);
  auto d = delete_service(s, "web", true);
  REQUIRE(d.ok());
  CHECK(d->size() == 3);
  CHECK(s.vms.empty());
  CHECK(s.services.empty());
}

TEST_CASE("endpoint specs read NAME:PROTOCOL:PUBLIC:PRIVATE") {
  auto e = parse_endpoint_spec("web:tcp:80:8080");
  REQUIRE(e.ok());
  CHECK(e->public_port == 80);
  CHECK(e->private_port == 8080);
  CHECK(kind_of(parse_endpoint_spec("web:tcp:80")) == ErrorKind::Usage);
  CHECK(kind_of(parse_endpoint_spec("web:icmp:80:80")) == ErrorKind::Usage);
  CHECK(kind_of(parse_endpoint_spec("web:tcp:0:80")) == ErrorKind::Usage);
}

TEST_CASE("idle timeouts are 4..30 minutes") {
  State s = web_farm();
  CHECK(kind_of(add_endpoint(s, {"vm2", spec("a", 1000, 1000), 3u, "", {}, std::nullopt})) == ErrorKind::Usage);
  CHECK(kind_of(add_endpoint(s, {"vm2", spec("a", 1000, 1000), 31u, "", {}, std::nullopt})) == ErrorKind::Usage);
  CHECK(add_endpoint(s, {"vm2", spec("a", 1000, 1000), 30u, "", {}, std::nullopt}).ok());
}

TEST_CASE("lbset set changes only what it is given, on every kind of set") {
  // Three kinds of set: the default tcp probe, an http probe, no probe.
  auto kinds = [] {
    std::vector<std::pair<const char*, SetOptions>> k;
    k.push_back({"tcp", SetOptions{}});
    SetOptions http;
    http.probe_protocol = ProbeProtocol::Http;
    http.probe_path = "/ready";
    k.push_back({"http", http});
    SetOptions none;
    none.no_probe = true;
    k.push_back({"no-probe", none});
    return k;
  }();
  std::vector<std::pair<const char*, SetOptions>> changes;
  SetOptions o;
  o.distribution = Distribution::SourceIp;
  changes.push_back({"--distribution", o});
  o = {};
  o.when_all_down = WhenAllDown::ServeAll;
  changes.push_back({"--when-all-down", o});
  o = {};
  o.probe_interval_s = 5;
  changes.push_back({"--probe-interval", o});
  o = {};
  o.probe_port = 81;
  changes.push_back({"--probe-port", o});
  o = {};
  o.no_probe = true;
  changes.push_back({"--no-probe", o});
  for (auto& [kind, setup] : kinds)
    for (auto& [flag, change] : changes) {
      const std::string k = kind, f = flag;
      CAPTURE(k);
      CAPTURE(f);
      State s = web_farm();
      SetRef ref{"webset", "web"};
      if (setup.any()) must(update_lbset(s, ref, setup));
      const LoadBalancedSet before = s.services[0].lbsets.at(0);
      must(update_lbset(s, ref, change));
      const LoadBalancedSet& after = s.services[0].lbsets.at(0);
      CHECK(after.distribution == (change.distribution ? *change.distribution : before.distribution));
      CHECK(after.when_all_down == (change.when_all_down ? *change.when_all_down : before.when_all_down));
      if (change.no_probe) {
        CHECK_FALSE(after.probe);
      } else if (!change.probe_interval_s && !change.probe_port) {
        CHECK(after.probe == before.probe);  // a --no-probe set stays without one
      } else {
        REQUIRE(after.probe);
        CHECK(after.probe->interval_s == (change.probe_interval_s ? 5u : (before.probe ? before.probe->interval_s : 15u)));
        if (before.probe) CHECK(after.probe->protocol == before.probe->protocol);
      }
    }
}

TEST_CASE("a set's PROXY protocol is the set's: given at create, changed by set, and kept by a member that leaves") {
  State s = web_farm();
  must(join_lbset(s, {"webset", "vm2", std::nullopt, std::nullopt, std::nullopt}));
  SetOptions o;
  o.proxy_protocol = ProxyProtocol::V2;
  must(update_lbset(s, {"webset", ""}, o));
  CHECK(s.services[0].lbsets[0].proxy_protocol == ProxyProtocol::V2);
  CHECK(proxy_protocol_of(s, s.vms[1], s.vms[1].endpoints.back()) == ProxyProtocol::V2);
  CHECK(s.vms[1].endpoints.back().proxy_protocol == ProxyProtocol::None);  // stored once, on the set
  must(leave_lbset(s, "webset", "vm2", 9000));
  CHECK(s.vms[1].endpoints.back().proxy_protocol == ProxyProtocol::V2);
}

TEST_CASE("an endpoint that sends another PROXY protocol than the set cannot join it") {
  State s = web_farm();
  SetOptions o;
  o.proxy_protocol = ProxyProtocol::V1;
  must(update_lbset(s, {"webset", ""}, o));
  EndpointRequest r{"vm2", spec("http", 9090, 80), std::nullopt, "", {}, std::nullopt};
  r.set_options.proxy_protocol = ProxyProtocol::V2;
  must(add_endpoint(s, r));
  CHECK(kind_of(join_lbset(s, {"webset", "vm2", std::string("http"), std::nullopt, std::nullopt})) == ErrorKind::Conflict);
}

TEST_CASE("a udp endpoint or set refuses a PROXY protocol") {
  State s = web_farm();
  EndpointRequest r{"vm2", spec("dns", 53, 53, Protocol::Udp), std::nullopt, "", {}, std::nullopt};
  r.set_options.proxy_protocol = ProxyProtocol::V1;
  CHECK(kind_of(add_endpoint(s, r)) == ErrorKind::Usage);
  r.set_options.proxy_protocol.reset();
  r.lbset = "dnsset";
  must(add_endpoint(s, r));
  SetOptions o;
  o.proxy_protocol = ProxyProtocol::V2;
  CHECK(kind_of(update_lbset(s, {"dnsset", ""}, o)) == ErrorKind::Usage);
}

TEST_CASE("drain marks only the VM's member of the set; leaving the set ends the drain") {
  State s = web_farm();
  must(join_lbset(s, {"webset", "vm2", std::nullopt, std::nullopt, std::nullopt}));
  auto c = set_admin_state(s, "webset", "vm2", AdminState::Drain);
  must(c);
  CHECK(c->before == AdminState::Up);
  CHECK(c->endpoint == "http");
  CHECK(s.vms[1].endpoints.back().admin_state == AdminState::Drain);
  CHECK(s.vms[0].endpoints.back().admin_state == AdminState::Up);
  CHECK(kind_of(set_admin_state(s, "webset", "vm3", AdminState::Drain)) == ErrorKind::NotFound);
  CHECK(kind_of(set_admin_state(s, "nosuch", "vm2", AdminState::Drain)) == ErrorKind::NotFound);
  must(leave_lbset(s, "webset", "vm2", 9000));
  CHECK(s.vms[1].endpoints.back().admin_state == AdminState::Up);
  CHECK(validate(s).ok());
}

TEST_CASE("a NAT service's VIP and subnet are of one family, and it sends no PROXY protocol") {
  State s;
  ServiceRequest r;
  r.name = "web";
  r.dataplane = Dataplane::Nat;
  r.vip = *parse_ip("VIP", "2001:db8::1");
  r.subnet = *parse_cidr("subnet", "10.0.0.0/24");
  auto bad = create_service(s, r);
  REQUIRE_FALSE(bad.ok());
  CHECK(bad.error().kind == ErrorKind::Usage);
  CHECK(bad.error().message.find("2001:db8::1") != std::string::npos);
  CHECK(bad.error().message.find("10.0.0.0/24") != std::string::npos);
  CHECK(s.services.empty());
  // The proxy plane connects anew, so it may cross families; switching it to NAT may not.
  r.dataplane = Dataplane::Proxy;
  REQUIRE(create_service(s, r).ok());
  CHECK_FALSE(set_dataplane(s, "web", Dataplane::Nat).ok());
  r.name = "v6";
  r.dataplane = Dataplane::Nat;
  r.subnet = *parse_cidr("subnet", "2001:db8:1::/64");
  REQUIRE(create_service(s, r).ok());

  make_vm(s, "vm1", "legacy", true);  // a proxy service of its own, on 127.0.0.1
  s.vms.at(0).endpoints.at(0).proxy_protocol = ProxyProtocol::V2;
  auto pp = set_dataplane(s, "legacy", Dataplane::Nat);
  REQUIRE_FALSE(pp.ok());
  CHECK(pp.error().message.find("PROXY protocol v2") != std::string::npos);
}

TEST_CASE("a new cloud service named close to an existing one is a typo unless the request says it is new") {
  State s = web_farm();
  VmRequest r;
  r.name = "vm4";
  r.cloud_service = "wbe";
  auto typo = create_vm(s, r);
  REQUIRE_FALSE(typo.ok());
  CHECK(typo.error().kind == ErrorKind::NotFound);
  CHECK(typo.error().message.find("did you mean 'web'?") != std::string::npos);
  CHECK_FALSE(find_service(s, "wbe"));
  r.new_service = true;
  REQUIRE(create_vm(s, r).ok());
  CHECK(find_service(s, "wbe"));
}

TEST_CASE("a private address is given once on the host, whatever the service; overlapping subnets are named") {
  State s = web_farm();
  ServiceRequest r{"web2", *parse_ip("VIP", "127.0.0.2"), find_service(s, "web")->subnet};
  REQUIRE(create_service(s, r).ok());
  const auto overlaps = overlapping_services(s, *find_service(s, "web2"));
  REQUIRE(overlaps.size() == 1);
  CHECK(overlaps[0]->name == "web");
  VmRequest vm;
  vm.name = "x1";
  vm.cloud_service = "web2";
  REQUIRE(create_vm(s, vm).ok());
  for (auto& other : s.vms)
    if (other.name != "x1") CHECK(other.private_ip != find_vm(s, "x1")->private_ip);
  vm.name = "x2";
  vm.private_ip = find_vm(s, "vm1")->private_ip;
  auto taken = create_vm(s, vm);
  REQUIRE_FALSE(taken.ok());
  CHECK(taken.error().kind == ErrorKind::Conflict);
  CHECK(taken.error().message.find("VM 'vm1' in cloud service 'web'") != std::string::npos);
}

TEST_CASE("weights: join, create and set_weight keep 1..256; leaving a set resets it") {
  State s = web_farm();
  LbsetJoinRequest j{"webset", "vm2", std::nullopt, std::nullopt, 300u};
  CHECK(kind_of(join_lbset(s, j)) == ErrorKind::Usage);
  j.weight = 4;
  must(join_lbset(s, j));
  CHECK(find_vm(s, "vm2")->endpoints.back().weight == 4);
  auto w = set_weight(s, "webset", "vm2", 9);
  REQUIRE(w.ok());
  CHECK(w->before == 4);
  CHECK(kind_of(set_weight(s, "webset", "vm2", 0)) == ErrorKind::Usage);
  CHECK(kind_of(set_weight(s, "webset", "vm3", 2)) == ErrorKind::NotFound);
  must(leave_lbset(s, "webset", "vm2", std::uint16_t{9090}));
  CHECK(find_vm(s, "vm2")->endpoints.back().weight == 1);
  CHECK(validate(s).ok());
  CHECK(kind_of(add_endpoint(s, {"vm3", spec("x", 7000, 7000), std::nullopt, "", {}, 2u})) == ErrorKind::Usage);
}

TEST_CASE("direct server return: nat services only, private port = public port, kept through changes") {
  State s = web_farm();  // a proxy service
  SetOptions dsr;
  dsr.direct_server_return = true;
  auto proxy = update_lbset(s, {"webset", ""}, dsr);
  REQUIRE_FALSE(proxy.ok());
  CHECK(proxy.error().message.find("needs a nat cloud service") != std::string::npos);
  must(set_dataplane(s, "web", Dataplane::Nat));
  // The member's private port 80 is not the public port 8080.
  auto refused = update_lbset(s, {"webset", ""}, dsr);
  REQUIRE_FALSE(refused.ok());
  CHECK(refused.error().message.find("private port 80") != std::string::npos);
  CHECK_FALSE(find_lbset(s.services[0], "webset")->direct_server_return);
  must(create_service(s, {"fast", std::nullopt, std::nullopt, Dataplane::Nat}));
  make_vm(s, "n1", "fast");
  make_vm(s, "n2", "fast");
  LbsetCreateRequest c;
  c.set = "d";
  c.vm = "n1";
  c.endpoint = "app";
  c.public_port = 9000;
  c.private_port = 9000;
  c.options.direct_server_return = true;
  must(create_lbset(s, c));
  // A member joins on the public port by default, and not on another.
  must(join_lbset(s, {"d", "n2", std::nullopt, std::nullopt, std::nullopt}));
  CHECK(find_vm(s, "n2")->endpoints.back().private_port == 9000);
  must(leave_lbset(s, "d", "n2"));
  CHECK_FALSE(join_lbset(s, {"d", "n2", std::nullopt, std::uint16_t{80}, std::nullopt}).ok());
  // A service with a DSR set cannot go back to the proxy.
  CHECK_FALSE(set_dataplane(s, "fast", Dataplane::Proxy).ok());
  SetOptions off;
  off.direct_server_return = false;
  must(update_lbset(s, {"d", ""}, off));
  must(set_dataplane(s, "fast", Dataplane::Proxy));
  CHECK(validate(s).ok());
}

TEST_CASE("direct server return needs a VIP the members can own, not the wildcard") {
  State s;
  must(create_service(s, {"any", *parse_ip("vip", "0.0.0.0"), std::nullopt, Dataplane::Nat}));
  make_vm(s, "n1", "any");
  LbsetCreateRequest c;
  c.set = "d";
  c.vm = "n1";
  c.endpoint = "app";
  c.public_port = c.private_port = 9000;
  c.options.direct_server_return = true;
  State copy = s;
  auto refused = create_lbset(copy, c);
  REQUIRE_FALSE(refused.ok());
  CHECK(refused.error().message.find("listens on the wildcard 0.0.0.0") != std::string::npos);
  // Nor can a service with such a set move to the wildcard.
  must(set_vip(s, "any", *parse_ip("vip", "127.0.0.9")));
  must(create_lbset(s, c));
  auto moved = set_vip(s, "any", *parse_ip("vip", "0.0.0.0"));
  REQUIRE_FALSE(moved.ok());
  CHECK(moved.error().message.find("listens on the wildcard") != std::string::npos);
}
