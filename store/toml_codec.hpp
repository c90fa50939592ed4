// The state file's TOML form: arrays of tables in the order objects were made,
// so that "the first member" of a set survives a round trip, and every object
// shows its name as a field. See man/azlb-state.5.
#pragma once

#include <string>
#include <string_view>

#include "model/state.hpp"

namespace azlb::store {

// Parses and validates with every model rule. Errors name `path` (made printable) with the
// line and column of the offending value ("state.toml:12:15: ...").
model::Result<model::State> parse_state(std::string_view text, std::string_view path);

std::string format_state(const model::State&);

// The pieces format_state joins, each from its table line to its last line
// (format_state puts a blank line before each): a service without its sets,
// a set, a VM with its endpoints. A state in etcd keeps one per key.
std::string format_service(const model::CloudService&);
std::string format_lbset(const model::LoadBalancedSet&);
std::string format_vm(const model::Vm&);

namespace detail {
// `fast` false: always through toml++, never fast_toml (tests and the fuzzer
// check that both read every file the same).
model::Result<model::State> parse_state(std::string_view text, std::string_view path, bool fast);
}  // namespace detail

}  // namespace azlb::store
