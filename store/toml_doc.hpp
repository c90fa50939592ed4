// The parsed form of a state file that the loader reads: tables, arrays,
// strings, integers and booleans, each with its line and column. Two parsers fill it:
// fast_toml.cpp for the layout azlb writes (views into the text, one vector
// per table), and toml++ for anything else (converted), so that the rules of
// reading a state are written once, over this.
#pragma once

#include <cstdint>
#include <deque>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace azlb::store::doc {

enum class Kind : std::uint8_t { String, Integer, Boolean, Table, Array, Other };

struct Value {
  Kind kind = Kind::Other;
  std::uint32_t line = 1, column = 1;
  std::string_view text;      // String: the value, escapes resolved
  std::int64_t integer = 0;   // Integer; Boolean: 0 or 1
  std::uint32_t index = 0;    // Table, Array: which, in the Doc
};

struct Entry {
  std::string_view key;
  Value value;
};

struct Table {
  std::uint32_t line = 1, column = 1;
  std::vector<Entry> entries;  // in the order of the text
};

struct Array {
  std::vector<Value> items;
  bool of_headers = false;  // fast_toml: made by [[headers]]
};

struct Doc {
  std::vector<Table> tables;  // [0] is the root
  std::vector<Array> arrays;
  std::deque<std::string> strings;  // text that is not a view into the input

  const Table& table(const Value& v) const { return tables[v.index]; }
  const Array& array(const Value& v) const { return arrays[v.index]; }
  // The entry's value, or null.
  static const Value* get(const Table& t, std::string_view key) {
    for (auto& e : t.entries)
      if (e.key == key) return &e.value;
    return nullptr;
  }
};

}  // namespace azlb::store::doc
