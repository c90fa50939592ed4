// A state as read, before it is parsed: TOML in the file's format, and for a
// state in etcd the key each piece came from, so that an error names the key
// (a value written with etcdctl is a hand edit, as a file edited is).
#pragma once

#include <cstddef>
#include <string>
#include <utility>
#include <vector>

#include "model/error.hpp"
#include "model/state.hpp"

namespace azlb::store {

struct StateText {
  std::string text;
  std::string source;  // the path, for messages "path:line:column: ..."
  // etcd: (first line of a piece in `text`, its key), in line order.
  std::vector<std::pair<std::size_t, std::string>> origins;
  // etcd: each object's name in order, as its key names it: a value that
  // holds another object, or two, is named by its key.
  std::vector<std::pair<std::string, std::string>> expected;  // (kind, name); kind: service, lbset, vm
  friend bool operator==(const StateText&, const StateText&) = default;
};

// Parses with every model rule (toml_codec); errors name the file or the key.
model::Result<model::State> parse_text(const StateText&);

}  // namespace azlb::store
