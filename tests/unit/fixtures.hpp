// Small builders shared by the model's tests.
#pragma once

#include <doctest/doctest.h>

#include "model/ops.hpp"

namespace azlb::test {

using namespace azlb::model;

inline EndpointSpec spec(const char* name, std::uint16_t pub, std::uint16_t priv, Protocol p = Protocol::Tcp) {
  return {name, p, pub, priv};
}

// A VM in `service`, without the default endpoints unless asked.
inline void make_vm(State& s, const char* name, const char* service, bool defaults = false, Os os = Os::Linux) {
  VmRequest r;
  r.name = name;
  r.cloud_service = service;
  r.os = os;
  r.default_endpoints = defaults;
  auto res = create_vm(s, r);
  REQUIRE_MESSAGE(res.ok(), (res.ok() ? "" : res.error().message));
}

// Whether a generated script (nftables, TOML) holds `what`.
inline bool has(const std::string& text, const std::string& what) { return text.find(what) != std::string::npos; }

template <class T>
void must(const Result<T>& r) {
  REQUIRE_MESSAGE(r.ok(), (r.ok() ? "" : r.error().message));
}

// A set made from a VM's existing endpoint, its first member.
inline void make_set(State& s, const char* set, const char* vm, const char* endpoint) {
  LbsetCreateRequest r;
  r.set = set;
  r.vm = vm;
  r.endpoint = endpoint;
  must(create_lbset(s, r));
}

// Three VMs in "web"; vm1 has endpoint "http" 8080->80 as the first member of "webset".
inline State web_farm() {
  State s;
  for (auto* n : {"vm1", "vm2", "vm3"}) make_vm(s, n, "web");
  must(add_endpoint(s, {"vm1", spec("http", 8080, 80), std::nullopt, "", {}, std::nullopt}));
  make_set(s, "webset", "vm1", "http");
  return s;
}

inline ErrorKind kind_of(const Status& st) {
  REQUIRE_FALSE(st.ok());
  return st.error().kind;
}

template <class T>
ErrorKind kind_of(const Result<T>& r) {
  REQUIRE_FALSE(r.ok());
  return r.error().kind;
}

}  // namespace azlb::test
