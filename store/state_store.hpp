// The one interface to a state, wherever it lives (a file or etcd): the CLI
// and the engine call these and know no more of the backend than the
// location's display string.
#pragma once

#include <functional>
#include <string>

#include "model/error.hpp"
#include "model/state.hpp"
#include "store/location.hpp"
#include "store/state_file.hpp"
#include "store/state_text.hpp"

namespace azlb::store {

// A missing file, or an etcd prefix never written, is an empty state.
model::Result<model::State> load(const Location&);

// Applies `change` to the state as it is now and writes the result, so that
// two writers (two processes, or two hosts over etcd) never lose each
// other's change; on any error nothing is written.
model::Status update(const Location&, const std::function<model::Status(model::State&)>& change);

// The state's text as read, for a reader that parses it itself (the engine
// compares it with what is in force). nullopt: a missing file.
model::Result<std::optional<StateText>> read_text(const Location&);

// The values of the engines' keys (JSON), for a state in etcd; none for a file.
model::Result<std::vector<std::string>> registered_engines(const Location&);

// The files of this host that belong to the state: next to a file; for etcd
// in a folder of this host's (AZLB_RUN_DIR, else $XDG_RUNTIME_DIR/azlb, else
// /run/azlb as root, else ~/.local/state/azlb/run), named after the prefix.
Companions companions_of(const Location&);
// Makes that folder (0700) when it is missing.
model::Status make_companion_dir(const Location&);

}  // namespace azlb::store
