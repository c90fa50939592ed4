// What every mutating command shares once its change is made: --dry-run
// (the change shown as a diff of the state, nothing written), and, when an
// engine runs, the change applied at once and any new listener the engine
// cannot bind named here, where the operator looks.
#pragma once

#include <string>
#include <vector>

#include "model/state.hpp"

namespace azlb::cli {

// The lines that differ between two texts, in order: "-old" and "+new",
// each run of changes after "@@ line N" (its first line: in `before` when
// the run starts with a removal, else in `after`). Lines both
// share at the start and the end are skipped first; what is left between is
// compared line by line when small enough, and shown whole otherwise.
std::vector<std::string> line_diff(const std::string& before, const std::string& after);

// What `before` has and `after` has not, in words ("VM 'vm2' with 1
// endpoint", "load-balanced set 'webset'"...): what a change removes.
std::vector<std::string> removed_objects(const model::State& before, const model::State& after);

}  // namespace azlb::cli
