#include "store/toml_prescan.hpp"

#include "model/text.hpp"

namespace azlb::store {

namespace {

enum class Ctx { Plain, Comment, Basic, Literal, MultiBasic, MultiLiteral };

bool starts(std::string_view text, std::size_t i, std::string_view what) { return text.substr(i, what.size()) == what; }

// A multi-line string ends at its last three quotes: up to two more before
// them are its content ("""a""""" is a"").
std::size_t closing_run(std::string_view text, std::size_t i, char quote) {
  std::size_t n = 0;
  while (n < 5 && i + n < text.size() && text[i + n] == quote) ++n;
  return n;
}

}  // namespace

// Which string a quote opens is decided as TOML decides it: only where a
// key or a value may begin (at the start of a line, or after '=', '[', '{',
// ',' or '.'). A quote anywhere else (`2"`) is a syntax error, and toml++
// would read what follows as a bare token: it is refused here, so that a
// character this pass takes for a string's is never one toml++ scans bare.
std::optional<PrescanError> prescan_toml(std::string_view text) {
  Ctx ctx = Ctx::Plain;
  std::size_t line = 1, line_start = 0;
  char prev = 0;  // the last character outside strings on this line, blanks aside
  auto fail = [&](std::size_t i, std::string message) {
    return PrescanError{line, i - line_start + 1, std::move(message)};
  };
  auto may_open = [&] { return prev == 0 || prev == '=' || prev == '[' || prev == '{' || prev == ',' || prev == '.'; };
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
    // TOML allows no control character but tab, anywhere (line breaks aside);
    // toml++ reads on past some of them, out of step with this pass.
    if ((c < 0x20 && c != '\t' && c != '\n' && c != '\r') || c == 0x7f ||
        (c == '\r' && (i + 1 == text.size() || text[i + 1] != '\n')))
      return fail(i, "control character " + model::quote(text.substr(i, 1)) + " (TOML allows none but tab)");
    if (c == '\n') {
      // A one-line string cannot hold a line break: toml++ stops there too.
      if (ctx == Ctx::Basic || ctx == Ctx::Literal) return fail(i, "a string is not closed on its line");
      ++line;
      line_start = i + 1;
      prev = 0;
      if (ctx == Ctx::Comment) ctx = Ctx::Plain;
      ++i;
      continue;
    }
    switch (ctx) {
      case Ctx::Plain:
        if (c == '#') {
          ctx = Ctx::Comment;
        } else if (c == '"' || c == '\'') {
          if (!may_open()) return fail(i, "a quote where no key or value can begin");
          if (starts(text, i, "\"\"\"")) ctx = Ctx::MultiBasic, i += 2;
          else if (starts(text, i, "'''")) ctx = Ctx::MultiLiteral, i += 2;
          else ctx = c == '"' ? Ctx::Basic : Ctx::Literal;
        } else if (c != ' ' && c != '\t' && c != '\r') {
          prev = static_cast<char>(c);
        }
        break;
      case Ctx::Comment: break;
      case Ctx::Basic:
        if (c == '\\') ++i;  // the escaped character cannot end the string
        else if (c == '"') ctx = Ctx::Plain, prev = '"';
        break;
      case Ctx::Literal:
        if (c == '\'') ctx = Ctx::Plain, prev = '\'';
        break;
      case Ctx::MultiBasic:
        if (c == '\\' && i + 1 < text.size() && text[i + 1] != '\n') ++i;  // a line break still counts
        else if (starts(text, i, "\"\"\"")) ctx = Ctx::Plain, prev = '"', i += closing_run(text, i, '"') - 1;
        break;
      case Ctx::MultiLiteral:
        if (starts(text, i, "'''")) ctx = Ctx::Plain, prev = '\'', i += closing_run(text, i, '\'') - 1;
        break;
    }
    ++i;
  }
  return std::nullopt;
}

}  // namespace azlb::store
