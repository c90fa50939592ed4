#include "store/toml_prescan.hpp"

#include "model/text.hpp"

namespace azlb::store {

namespace {

enum class Ctx { Plain, Comment, Basic, Literal, MultiBasic, MultiLiteral };

bool starts(std::string_view text, std::size_t i, std::string_view what) { return text.substr(i, what.size()) == what; }

}  // namespace

std::optional<PrescanError> prescan_toml(std::string_view text) {
  Ctx ctx = Ctx::Plain;
  std::size_t line = 1, line_start = 0;
  auto fail = [&](std::size_t i, std::string message) {
    return PrescanError{line, i - line_start + 1, std::move(message)};
  };
  for (std::size_t i = 0; i < text.size();) {
    const auto c = static_cast<unsigned char>(text[i]);
    if (c >= 0x80) {
      // Find the whole sequence and check it is UTF-8.
      std::size_t n = 1;
      while (n < 4 && i + n < text.size() && (static_cast<unsigned char>(text[i + n]) & 0xC0) == 0x80) ++n;
      if (!model::is_valid_utf8(text.substr(i, n))) return fail(i, "invalid UTF-8 (TOML files are UTF-8)");
      if (ctx == Ctx::Plain)
        return fail(i, "a character outside ASCII outside a string; quote the key (\"...\") or the value");
      i += n;
      continue;
    }
    if (c == '\n') {
      ++line;
      line_start = i + 1;
      if (ctx == Ctx::Comment) ctx = Ctx::Plain;
      ++i;
      continue;
    }
    switch (ctx) {
      case Ctx::Plain:
        if (c == '#') ctx = Ctx::Comment;
        else if (starts(text, i, "\"\"\"")) ctx = Ctx::MultiBasic, i += 2;
        else if (starts(text, i, "'''")) ctx = Ctx::MultiLiteral, i += 2;
        else if (c == '"') ctx = Ctx::Basic;
        else if (c == '\'') ctx = Ctx::Literal;
        break;
      case Ctx::Comment: break;
      case Ctx::Basic:
        if (c == '\\') ++i;  // the escaped character cannot end the string
        else if (c == '"') ctx = Ctx::Plain;
        break;
      case Ctx::Literal:
        if (c == '\'') ctx = Ctx::Plain;
        break;
      case Ctx::MultiBasic:
        if (c == '\\') ++i;
        else if (starts(text, i, "\"\"\"")) ctx = Ctx::Plain, i += 2;
        break;
      case Ctx::MultiLiteral:
        if (starts(text, i, "'''")) ctx = Ctx::Plain, i += 2;
        break;
    }
    ++i;
  }
  return std::nullopt;
}

}  // namespace azlb::store
