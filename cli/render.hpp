// The model as the contract's JSON objects and as the portal's sentences.
#pragma once

#include <functional>
#include <string>

#include "cli/context.hpp"
#include "model/ops.hpp"

namespace azlb::cli {

// What the engine reports of a member while it runs.
struct MemberLive {
  std::string health = "unknown";           // "up", "down", "unknown"
  std::optional<std::uint64_t> active;      // connections and UDP flows; none without an engine
  std::optional<double> share;              // of the set's new flows now (consistent hash and health)
};
// A member's live view, by service, set, VM and endpoint.
using LiveOf = std::function<MemberLive(const std::string& service, const std::string& set, const std::string& vm,
                                        const std::string& endpoint)>;
MemberLive no_engine(const std::string&, const std::string&, const std::string&, const std::string&);

Json to_json(const model::AclRule&);
// An endpoint with the ACL that applies to it (its set's, in a set).
Json to_json(const model::State&, const model::Vm&, const model::Endpoint&);
Json to_json(const model::State&, const model::Vm&);
Json to_json(const std::optional<model::Probe>&);
Json to_json(const model::State&, const model::CloudService&, const model::LoadBalancedSet&, const LiveOf&);
Json to_json(const model::State&, const model::CloudService&, const LiveOf&);  // with its VMs and sets

// "tcp 8080->80"
std::string port_mapping(const model::Endpoint&);
// The public port as a table shows it: "-" when unpublished.
std::string public_port_text(const model::Endpoint&);
// "http:80/ every 15 s, down after 31 s", or "none (every member counts as up)"
std::string describe(const std::optional<model::Probe>&);
std::string describe(const std::vector<model::PortMove>&);
// The sets a change took members from, said as "load-balanced set 'webset'
// now has 2 members (was 3)"; empty when none shrank.
std::vector<std::string> shrunk_sets(const model::State& before, const model::State& after);

}  // namespace azlb::cli
