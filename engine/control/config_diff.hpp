// What a new configuration changes, in words for the log, so that an
// operator reading it learns what a reload did: "set web/webset: vm2
// drained", "endpoint web/vm1/api added (tcp 127.0.0.1:8081)". Pure: the
// engine logs it, the unit tests read it.
#pragma once

#include <string>
#include <vector>

#include "engine/config.hpp"

namespace azlb::engine {

std::vector<std::string> config_changes(const Config& before, const Config& after);

}  // namespace azlb::engine
