// The model as the contract's JSON objects and as the portal's sentences.
#pragma once

#include <functional>
#include <string>

#include "cli/context.hpp"
#include "model/ops.hpp"

namespace azlb::cli {

// Live health of a member ("up", "down", "unknown"), by service, set, VM and endpoint.
using HealthOf = std::function<std::string(const std::string& service, const std::string& set,
                                           const std::string& vm, const std::string& endpoint)>;
std::string no_engine_health(const std::string&, const std::string&, const std::string&, const std::string&);

Json to_json(const model::AclRule&);
// An endpoint with the ACL that applies to it (its set's, in a set).
Json to_json(const model::State&, const model::Vm&, const model::Endpoint&);
Json to_json(const model::State&, const model::Vm&);
Json to_json(const std::optional<model::Probe>&);
Json to_json(const model::State&, const model::CloudService&, const model::LoadBalancedSet&, const HealthOf&);
Json to_json(const model::State&, const model::CloudService&, const HealthOf&);  // with its VMs and sets

// "tcp 8080->80"
std::string port_mapping(const model::Endpoint&);
// "http:80/ every 15 s, down after 31 s", or "none (every member counts as up)"
std::string describe(const std::optional<model::Probe>&);
std::string describe(const std::vector<model::PortMove>&);

}  // namespace azlb::cli
