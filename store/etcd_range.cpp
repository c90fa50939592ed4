#include "store/etcd_range.hpp"

#include <charconv>
#include <cstring>
#include <utility>

#include "store/etcd_client.hpp"

namespace azlb::store {

namespace {

// A cursor over the reply; every method returns false for "not mine".
struct Scanner {
  const char* p;
  const char* end;

  void ws() {
    while (p < end && (*p == ' ' || *p == '\n' || *p == '\r' || *p == '\t')) ++p;
  }
  bool eat(char c) {
    ws();
    if (p == end || *p != c) return false;
    ++p;
    return true;
  }
  // A string of printable ASCII without escapes (etcd's base64, digits and
  // field names): anything else, valid JSON or not, is the document's.
  bool string(std::string_view& out) {
    if (!eat('"')) return false;
    const void* q = std::memchr(p, '"', static_cast<std::size_t>(end - p));
    if (!q) return false;
    out = std::string_view(p, static_cast<std::size_t>(static_cast<const char*>(q) - p));
    for (unsigned char c : out)
      if (c < 0x20 || c > 0x7e || c == '\\') return false;
    p = static_cast<const char*>(q) + 1;
    return true;
  }
  // JSON's number: -?(0|[1-9][0-9]*)(.[0-9]+)?([eE][+-]?[0-9]+)?
  bool number(std::string_view& out) {
    ws();
    const char* start = p;
    auto digits = [&] {
      const char* from = p;
      while (p < end && *p >= '0' && *p <= '9') ++p;
      return p > from;
    };
    if (p < end && *p == '-') ++p;
    if (p < end && *p == '0') ++p;
    else if (!digits()) return false;
    if (p < end && *p == '.' && (++p, !digits())) return false;
    if (p < end && (*p == 'e' || *p == 'E')) {
      ++p;
      if (p < end && (*p == '+' || *p == '-')) ++p;
      if (!digits()) return false;
    }
    out = std::string_view(start, static_cast<std::size_t>(p - start));
    return true;
  }
  // proto3 JSON writes an int64 as a string; a number is taken too.
  bool integer(std::int64_t& out) {
    ws();
    std::string_view digits;
    if (!(p < end && *p == '"' ? string(digits) : number(digits))) return false;
    auto [q, ec] = std::from_chars(digits.data(), digits.data() + digits.size(), out);
    return ec == std::errc() && q == digits.data() + digits.size();
  }
  bool word(std::string_view w) {
    ws();
    if (static_cast<std::size_t>(end - p) < w.size() || std::string_view(p, w.size()) != w) return false;
    p += w.size();
    return true;
  }
  bool boolean(bool& out) {
    if (word("true")) return out = true;
    if (word("false")) return !(out = false);
    return false;
  }
  // Any value, its content unread (a field azlb does not use).
  bool skip(int depth = 0) {
    ws();
    if (p == end || depth > 32) return false;
    if (*p == '"') {
      std::string_view s;
      return string(s);
    }
    if (*p == '{' || *p == '[') {
      const char close = *p == '{' ? '}' : ']';
      const bool object = *p == '{';
      ++p;
      if (eat(close)) return true;
      do {
        if (object) {
          std::string_view name;
          if (!string(name) || !eat(':')) return false;
        }
        if (!skip(depth + 1)) return false;
      } while (eat(','));
      return eat(close);
    }
    std::string_view n;
    return word("true") || word("false") || word("null") || number(n);
  }
  // { "name": value, ... } with `field` reading each value.
  template <class Field>
  bool object(Field&& field) {
    if (!eat('{')) return false;
    if (eat('}')) return true;
    do {
      std::string_view name;
      if (!string(name) || !eat(':') || !field(name)) return false;
    } while (eat(','));
    return eat('}');
  }
};

bool key_value(Scanner& s, KeyValue& kv) {
  return s.object([&](std::string_view name) {
    std::string_view text;
    if (name == "key") return s.string(text) && base64_decode(text, kv.key);
    if (name == "value") return s.string(text) && base64_decode(text, kv.value);
    if (name == "mod_revision") return s.integer(kv.mod_revision);
    return s.skip();  // create_revision, version, lease
  });
}

}  // namespace

bool scan_range(std::string_view body, RangeReply& out) {
  out = RangeReply{};
  Scanner s{body.data(), body.data() + body.size()};
  // A field twice is valid JSON whose last value counts: the document's.
  bool header = false, kvs = false, more = false;
  auto first = [](bool& seen) { return !std::exchange(seen, true); };
  const bool ok = s.object([&](std::string_view name) {
    if (name == "header" && first(header))
      return s.object([&](std::string_view field) { return field == "revision" ? s.integer(out.revision) : s.skip(); });
    if (name == "kvs" && first(kvs)) {
      if (!s.eat('[')) return false;
      if (s.eat(']')) return true;
      do {
        if (!key_value(s, out.kvs.emplace_back())) return false;
      } while (s.eat(','));
      return s.eat(']');
    }
    if (name == "more" && first(more)) return s.boolean(out.more);
    if (name == "count") return s.skip();
    return false;  // an error's "code", or a field of a newer etcd: the document path
  });
  s.ws();
  return ok && s.p == s.end && out.revision > 0;
}

RangeReply range_from_json(const nlohmann::json& j) {
  RangeReply r;
  if (j.contains("header")) r.revision = json_i64(j["header"], "revision");
  r.more = json_true(j, "more");
  if (j.contains("kvs") && j["kvs"].is_array())
    for (const auto& kv : j["kvs"])
      if (kv.is_object()) r.kvs.push_back({json_bytes(kv, "key"), json_bytes(kv, "value"), json_i64(kv, "mod_revision")});
  return r;
}

}  // namespace azlb::store
