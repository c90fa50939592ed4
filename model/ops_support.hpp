// What the operations of ops.cpp and lbset_ops.cpp share: taking an
// endpoint out of its VM and putting it back through the rules, and finding
// a free public port. Internal to the model.
#pragma once

#include "model/ops.hpp"

namespace azlb::model {

Endpoint endpoint_from(const EndpointSpec& spec);

// Takes an endpoint out of its VM so that it can be changed and put back
// through insert_endpoint, which checks every rule again.
struct Detached {
  Endpoint endpoint;
  std::size_t index;
};
Detached detach(Vm& vm, const Endpoint* ep);
// Puts a changed endpoint back where it was, so the state file reads the same.
Status reattach(State& s, std::string_view vm_name, Detached d);

// `preferred` if free, else the lowest free port from `start` up, then from 1024.
Result<std::uint16_t> free_public_port(const State& s, const CloudService& svc, Protocol proto,
                                       std::uint16_t preferred, std::uint16_t start);

}  // namespace azlb::model
