#include "model/rules.hpp"

#include "fixtures.hpp"

using namespace azlb::test;

TEST_CASE("validate accepts what the operations build and catches a hand-made violation") {
  State s = web_farm();
  CHECK(validate(s).ok());
  s.vms[1].endpoints.push_back({"dup", Protocol::Tcp, 8080, 80, 4, "", {}});
  CHECK(kind_of(validate(s)) == ErrorKind::Conflict);
}

TEST_CASE("validate finds a port taken on an overlapping VIP however far apart the two endpoints are") {
  // validate() skips the scan for ports it has not seen yet: the conflicts it
  // must still find are the ones between endpoints far apart in the state.
  State s;
  auto ip = [](const char* t) { return parse_ip("VIP", t).value(); };
  must(create_service(s, {"a", ip("127.0.0.20"), std::nullopt}));
  must(create_service(s, {"b", ip("127.0.0.21"), std::nullopt}));
  must(create_service(s, {"any", ip("0.0.0.0"), std::nullopt}));
  make_vm(s, "vma", "a");
  make_vm(s, "vmb", "b");
  make_vm(s, "vmw", "any");
  for (std::uint16_t p = 1000; p < 1200; ++p) {
    std::string name = "e";
    name += std::to_string(p);
    must(add_endpoint(s, {"vma", spec(name.c_str(), p, 80), std::nullopt, "", {}, std::nullopt}));
  }
  // The same port on another VIP is no conflict.
  must(add_endpoint(s, {"vmb", spec("same", 1000, 80), std::nullopt, "", {}, std::nullopt}));
  // A set's members share their port.
  must(add_endpoint(s, {"vmb", spec("web", 8080, 80), std::nullopt, "", {}, std::nullopt}));
  make_set(s, "farm", "vmb", "web");
  make_vm(s, "vmb2", "b");
  must(join_lbset(s, {"farm", "vmb2", std::nullopt, std::nullopt, std::nullopt}));
  CHECK(validate(s).ok());
  // By hand: the wildcard VIP overlaps a's, and its endpoint comes last.
  s.vms[2].endpoints.push_back({"late", Protocol::Tcp, 1199, 80, 4, "", {}});
  auto st = validate(s);
  REQUIRE_FALSE(st.ok());
  CHECK(st.error().message.find("public port tcp/1199 is already used by endpoint 'e1199' of VM 'vma'") !=
        std::string::npos);
  // The other protocol is another port.
  s.vms[2].endpoints.back().protocol = Protocol::Udp;
  CHECK(validate(s).ok());
}

TEST_CASE("members of a set are derived from the endpoints that name it, in VM order") {
  State s = web_farm();
  must(join_lbset(s, {"webset", "vm3", std::nullopt, std::nullopt, std::nullopt}));
  must(join_lbset(s, {"webset", "vm2", std::nullopt, std::nullopt, std::nullopt}));
  auto m = members_of(s, s.services[0], s.services[0].lbsets[0]);
  REQUIRE(m.size() == 3);
  CHECK(m[0].vm->name == "vm1");
  CHECK(m[1].vm->name == "vm2");
  CHECK(m[2].vm->name == "vm3");
}

TEST_CASE("lookups suggest the nearest name") {
  State s = web_farm();
  auto r = vm_or_error(s, "vm4");
  REQUIRE_FALSE(r.ok());
  CHECK(r.error().message.find("did you mean") != std::string::npos);
  auto e = endpoint_or_error(*find_vm(s, "vm1"), "htp");
  REQUIRE_FALSE(e.ok());
  CHECK(e.error().message == "no endpoint 'htp' on VM 'vm1'; did you mean 'http'?");
}

TEST_CASE("text a user gives is UTF-8 without control characters, and bounded") {
  CHECK(check_text("image label", "Ubuntu 22.04 caf\xC3\xA9", 256).ok());
  CHECK(kind_of(check_text("image label", "\xFF", 256)) == ErrorKind::Usage);
  CHECK(kind_of(check_text("probe path", "/a\r\nb", 1024)) == ErrorKind::Usage);
  CHECK(kind_of(check_text("ACL description", std::string("a\0b", 3), 256)) == ErrorKind::Usage);
  CHECK(kind_of(check_text("ACL description", std::string(257, 'a'), 256)) == ErrorKind::Usage);
  // The message stays on one line whatever the value holds.
  auto st = check_text("probe path", "/a\r\nb", 1024);
  CHECK(st.error().message.find('\n') == std::string::npos);
  CHECK(st.error().message.find("\\x0d\\x0a") != std::string::npos);
}

TEST_CASE("a whole state built through the index catches every conflict the scans catch") {
  State base = web_farm();
  must(join_lbset(base, {"webset", "vm2", std::nullopt, std::nullopt, std::nullopt}));
  REQUIRE(validate(base).ok());
  auto conflict_in = [](State s) { return kind_of(validate(s)); };
  {
    State s = base;  // a second VM of the same name
    s.vms.push_back(s.vms[2]);
    s.vms.back().private_ip = *parse_ip("ip", "127.0.1.200");
    CHECK(conflict_in(s) == ErrorKind::Conflict);
  }
  {
    State s = base;  // two VMs of one service on one private IP
    s.vms[2].private_ip = s.vms[0].private_ip;
    CHECK(conflict_in(s) == ErrorKind::Conflict);
  }
  {
    State s = base;  // one VM twice in a set
    auto ep = s.vms[0].endpoints.back();
    ep.name = "http2";
    s.vms[0].endpoints.push_back(ep);
    CHECK(conflict_in(s) == ErrorKind::Conflict);
  }
  {
    State s = base;  // members with different ACLs
    s.vms[1].endpoints.back().acl.push_back({1, AclAction::Deny, *parse_cidr("s", "10.0.0.0/8"), ""});
    CHECK(conflict_in(s) == ErrorKind::Conflict);
  }
  {
    State s = base;  // a plain endpoint on the set's public port
    s.vms[2].endpoints.push_back({"other", Protocol::Tcp, 8080, 81, 4, "", {}});
    CHECK(conflict_in(s) == ErrorKind::Conflict);
  }
  {
    State s = base;  // two plain endpoints on one port
    s.vms[1].endpoints.push_back({"a", Protocol::Udp, 9000, 81, 4, "", {}});
    s.vms[2].endpoints.push_back({"b", Protocol::Udp, 9000, 81, 4, "", {}});
    CHECK(conflict_in(s) == ErrorKind::Conflict);
  }
  {
    State s = base;  // the same port over another protocol is free
    s.vms[2].endpoints.push_back({"dns", Protocol::Udp, 8080, 53, 4, "", {}});
    CHECK(validate(s).ok());
  }
}
