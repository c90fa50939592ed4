#include "store/toml_depth.hpp"

#include <string>
#include <vector>

namespace azlb::store {

namespace {

enum class Ctx { Plain, Comment, Basic, MultiBasic };

struct Frame {
  char open;          // '{' or '['
  std::size_t depth;  // of what it holds
};

}  // namespace

// A lexer for the nesting only: strings and comments are stepped over, a
// dot counts where a key is being read (never in a value: 1.5, 07:32:00.5),
// and each inline table or array adds one to the depth of the key that
// holds it. It never refuses what it does not understand: toml++ does that.
std::optional<PrescanError> check_toml_depth(std::string_view text) {
  Ctx ctx = Ctx::Plain;
  std::vector<Frame> stack;
  std::size_t header_depth = 0;  // of the [table] the key/value lines are in
  std::size_t key_parts = 0;     // of the key being read at the current level
  bool in_key = true;            // a key (or a header's key) is being read
  bool in_header = false;
  std::size_t line = 1, line_start = 0;
  auto base = [&] { return stack.empty() ? (in_header ? 0 : header_depth) : stack.back().depth; };
  auto deeper = [&](std::size_t at) -> std::optional<PrescanError> {
    if (base() + key_parts <= kMaxTomlDepth) return std::nullopt;
    return PrescanError{line, at - line_start + 1,
                        "nested deeper than " + std::to_string(kMaxTomlDepth) +
                            " levels (tables, dotted keys, inline tables and arrays together)"};
  };
  auto start_key_part = [&](std::size_t at) {
    if (key_parts == 0) key_parts = 1;
    return deeper(at);
  };
  for (std::size_t i = 0; i < text.size(); ++i) {
    const char c = text[i];
    if (c == '\n') {
      ++line;
      line_start = i + 1;
      if (ctx == Ctx::Comment || ctx == Ctx::Basic) ctx = Ctx::Plain;
      if (ctx == Ctx::Plain && stack.empty()) {  // a new statement
        if (in_header) header_depth = key_parts;
        in_header = false;
        in_key = true;
        key_parts = 0;
      }
      continue;
    }
    switch (ctx) {
      case Ctx::Comment:
        continue;
      case Ctx::Basic:
        if (c == '\\') ++i;
        else if (c == '"') ctx = Ctx::Plain;
        continue;
      case Ctx::MultiBasic:
        if (c == '\\') ++i;
        else if (text.substr(i, 3) == "\"\"\"") ctx = Ctx::Plain, i += 2;
        continue;
      case Ctx::Plain:
        break;
    }
    switch (c) {
      case '#':
        ctx = Ctx::Comment;
        break;
      case '"':
        if (in_key)
          if (auto e = start_key_part(i)) return e;
        ctx = text.substr(i, 3) == "\"\"\"" ? (i += 2, Ctx::MultiBasic) : Ctx::Basic;
        break;
      case '.':
        if (in_key) {
          ++key_parts;
          if (auto e = deeper(i)) return e;
        }
        break;
      case '=':
        if (in_key && !in_header) in_key = false;
        break;
      case '[':
        if (in_key && stack.empty() && key_parts == 0 && !in_header) {
          in_header = true;  // [table] or [[array of tables]]
        } else if (!in_key) {
          stack.push_back({'[', base() + key_parts + 1});
          key_parts = 0;
          if (auto e = deeper(i)) return e;
        }
        break;
      case '{':
        if (!in_key) {
          stack.push_back({'{', base() + key_parts + 1});
          key_parts = 0;
          in_key = true;
          if (auto e = deeper(i)) return e;
        }
        break;
      case ']':
      case '}':
        if (!stack.empty() && !in_header) {
          stack.pop_back();
          in_key = false;
          key_parts = 0;
        }
        break;
      case ',':
        if (!stack.empty()) {
          in_key = stack.back().open == '{';
          key_parts = 0;
        }
        break;
      case ' ':
      case '\t':
      case '\r':
        break;
      default:
        if (in_key)
          if (auto e = start_key_part(i)) return e;
        break;
    }
  }
  return std::nullopt;
}

}  // namespace azlb::store
