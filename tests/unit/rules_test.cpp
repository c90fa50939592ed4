#include "model/rules.hpp"

#include "fixtures.hpp"

using namespace azlb::test;

TEST_CASE("validate accepts what the operations build and catches a hand-made violation") {
  State s = web_farm();
  CHECK(validate(s).ok());
  s.vms[1].endpoints.push_back({"dup", Protocol::Tcp, 8080, 80, 4, "", {}});
  CHECK(kind_of(validate(s)) == ErrorKind::Conflict);
}

TEST_CASE("members of a set are derived from the endpoints that name it, in VM order") {
  State s = web_farm();
  must(join_lbset(s, {"webset", "vm3", std::nullopt, std::nullopt}));
  must(join_lbset(s, {"webset", "vm2", std::nullopt, std::nullopt}));
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
