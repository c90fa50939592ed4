// A reply of etcd's kv/range, read without building a JSON document: a
// whole state's range is one reply of ~1.6x its TOML (base64), and the
// document nlohmann builds of it (a node and a string per field) cost more
// than the state's own parse, in allocations and page faults. Whatever the
// scanner does not know (an escape in a string, a field etcd 3.4 does not
// send, bad JSON) it leaves to the document path: it answers "not mine",
// never a different reading of the same reply.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

namespace azlb::store {

struct KeyValue {
  std::string key, value;  // decoded from base64
  std::int64_t mod_revision = 0;
};

struct RangeReply {
  std::int64_t revision = 0;  // the header's: the store's revision the range was read at
  bool more = false;          // a limit left keys out
  std::vector<KeyValue> kvs;
};

// true with `out` filled, or false: read the reply as a document.
bool scan_range(std::string_view body, RangeReply& out);
// The document path: the same fields from a parsed reply (absent ones: 0, "").
RangeReply range_from_json(const nlohmann::json& reply);

}  // namespace azlb::store
