// A state in etcd: one key per object, its value in the state file's format
// (toml_codec writes both), read at one revision and changed by transactions
// that fail when anything read has changed since. See man/azlb-state.5.
//
//   PREFIX/state                          schema_version and the generation in force
//   PREFIX/objects/GEN/service/SEQ.NAME   a cloud service without its sets
//   PREFIX/objects/GEN/lbset/SERVICE/SEQ.NAME
//   PREFIX/objects/GEN/vm/SEQ.NAME        a VM with its endpoints
//   PREFIX/engines/HOST/PID               an engine following the state (under a lease)
//
// SEQ (8 digits) keeps the order objects were made in, which the model needs
// (a set's first member). A change that fits one transaction (etcd allows 128
// operations and 1.5 MiB) writes only the keys that changed; a larger one (an
// import, a set of thousands of members deleted) writes a new generation in
// as many transactions as it takes and makes it current in a last one.
#pragma once

#include <cstdint>
#include <ctime>
#include <functional>
#include <map>
#include <optional>
#include <string>

#include "model/error.hpp"
#include "model/state.hpp"
#include "store/etcd_client.hpp"
#include "store/state_text.hpp"

namespace azlb::store::etcd {

std::string meta_key(const std::string& prefix);
std::string objects_prefix(const std::string& prefix);  // ends with '/'
std::string engines_prefix(const std::string& prefix);  // ends with '/'
// Each engine's hand-off addresses (engine/nat/handoff.hpp), under its lease: "ADDR[,ADDR]".
std::string handoff_prefix(const std::string& prefix);  // ends with '/'

struct Value {
  std::string value;
  std::int64_t mod_revision = 0;
};

// The keys of a state at one revision.
struct Snapshot {
  std::string prefix;
  std::int64_t revision = 0;
  std::optional<Value> meta;
  int schema_version = model::kSchemaVersion;
  std::string generation;                 // "" for a state never written
  std::time_t written = 0;                // when the meta key was last written (0: not said)
  std::optional<std::uint64_t> hash_seed;  // the state's (model::State::hash_seed)
  std::int64_t meta_revision = 0;         // its mod_revision: the state before it is at this minus one
  std::map<std::string, Value> objects;   // of that generation, by key
  // An event of a watch: true if it changed the state. A new generation (or
  // a meta key that does not parse) sets `reread`: read the whole state again.
  bool apply(const Json& event, bool& reread);
  // The meta key's value: which generation and schema are in force (a
  // value azlb did not write is an error naming the key).
  model::Status set_meta(Value);
};

// At `revision` (0: the latest); an earlier one etcd has compacted is an error.
model::Result<Snapshot> read(EtcdClient&, std::int64_t revision = 0);
// The state's text to parse, with the key each piece came from.
model::Result<StateText> assemble(const Snapshot&, const std::string& prefix);

model::Result<model::State> load(EtcdClient&);
// The revision of the last write to any object key (0: none): where a state
// whose state key was deleted by hand can still be read.
model::Result<std::int64_t> last_object_revision(EtcdClient&);
// Every key below `prefix` with its value, in key order.
model::Result<std::vector<std::pair<std::string, std::string>>> list(EtcdClient&, const std::string& prefix);
// Reads, applies `change`, and writes what changed in a transaction that
// fails if anything read changed meanwhile; then reads again and retries
// (a bounded number of times, with a random backoff).
model::Status update(EtcdClient&, const std::function<model::Status(model::State&)>& change);

}  // namespace azlb::store::etcd
