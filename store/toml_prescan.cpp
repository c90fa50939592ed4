#include "store/toml_prescan.hpp"

#include <algorithm>
#include <cstdint>
#include <cstdio>

#include "model/text.hpp"

namespace azlb::store {

namespace {

enum class Ctx { Plain, Comment, Basic, Literal, MultiBasic, MultiLiteral };

// Per context (Plain, Comment, Basic), the bytes the fast path stops at:
// controls (tab and line feed included), DEL and beyond ASCII, and what
// opens or ends something there.
struct Stops {
  bool plain[256]{}, comment[256]{}, basic[256]{};
  constexpr Stops() {
    for (int b = 0; b < 256; ++b) {
      const bool always = b < 0x20 || b >= 0x7f;
      plain[b] = always || b == '#' || b == '"' || b == '\'';
      comment[b] = always;
      basic[b] = always || b == '"' || b == '\\';
    }
  }
};
constexpr Stops kStopTables;
// Indexed by Ctx: Plain, Comment, Basic.
constexpr const bool (*kStops[3])[256] = {&kStopTables.plain, &kStopTables.comment, &kStopTables.basic};

bool starts(std::string_view text, std::size_t i, std::string_view what) { return text.substr(i, what.size()) == what; }

// A multi-line string ends at its last three quotes: up to two more before
// them are its content ("""a""""" is a"").
std::size_t closing_run(std::string_view text, std::size_t i, char quote) {
  std::size_t n = 0;
  while (n < 5 && i + n < text.size() && text[i + n] == quote) ++n;
  return n;
}

std::uint32_t code_point(std::string_view seq) {
  const auto b = [&](std::size_t k) { return static_cast<std::uint32_t>(static_cast<unsigned char>(seq[k])); };
  switch (seq.size()) {
    case 2: return (b(0) & 0x1F) << 6 | (b(1) & 0x3F);
    case 3: return (b(0) & 0x0F) << 12 | (b(1) & 0x3F) << 6 | (b(2) & 0x3F);
    default: return (b(0) & 0x07) << 18 | (b(1) & 0x3F) << 12 | (b(2) & 0x3F) << 6 | (b(3) & 0x3F);
  }
}

// The copy toml++ gets, made only once something must change.
class Out {
 public:
  Out(std::string_view text, std::string& out) : text_(text), out_(out) { out_.clear(); }
  // Bytes [from, to) of the text go on unchanged.
  void keep(std::size_t from, std::size_t to) {
    if (changed_) out_.append(text_.substr(from, to - from));
  }
  // The bytes from `from` that the caller steps over become `with`.
  void replace(std::size_t from, std::string_view with) {
    if (!changed_) {
      out_.reserve(text_.size() + text_.size() / 8);
      out_.assign(text_.substr(0, from));
      changed_ = true;
    }
    out_.append(with);
  }

 private:
  std::string_view text_;
  std::string& out_;
  bool changed_ = false;
};

}  // namespace

// A quote opens a string only where a key or a value may begin (at the start
// of a line, or after '=', '[', '{', ',' or '.'), as in TOML; a quote
// anywhere else (`2"`) is a syntax error, refused here with a plain message.
std::optional<PrescanError> prescan_toml(std::string_view text, std::string& ascii) {
  Out out(text, ascii);
  Ctx ctx = Ctx::Plain;
  std::size_t line = 1, line_start = 0;
  char prev = 0;  // the last character outside strings on this line, blanks aside
  std::size_t i = 0;
  auto fail = [&](std::size_t at, std::string message) {
    ascii.clear();
    return PrescanError{line, at - line_start + 1, std::move(message)};
  };
  // Each step takes `n` bytes, passed on as they are or replaced.
  auto take = [&](std::size_t n) {
    n = std::min(n, text.size() - i);
    out.keep(i, i + n);
    i += n;
  };
  auto swap = [&](std::size_t n, std::string_view with) {
    out.replace(i, with);
    i += n;
  };
  auto may_open = [&] { return prev == 0 || prev == '=' || prev == '[' || prev == '{' || prev == ',' || prev == '.'; };
  while (i < text.size()) {
    // Most bytes need nothing but passing on: printable ASCII that neither
    // opens nor closes anything in this context. They go in one step, with
    // what the byte-by-byte switch below would note of them (`prev`).
    if (ctx == Ctx::Plain || ctx == Ctx::Basic || ctx == Ctx::Comment) {
      const bool* stop = *kStops[static_cast<int>(ctx)];
      std::size_t j = i;
      while (j < text.size() && !stop[static_cast<unsigned char>(text[j])]) ++j;
      if (j > i) {
        if (ctx == Ctx::Plain) {  // the last character that is not a blank
          std::size_t k = j;
          while (k > i && text[k - 1] == ' ') --k;
          if (k > i) prev = text[k - 1];
        }
        take(j - i);
        continue;
      }
    }
    const auto c = static_cast<unsigned char>(text[i]);
    if (c >= 0x80) {
      std::size_t n = 1;
      while (n < 4 && i + n < text.size() && (static_cast<unsigned char>(text[i + n]) & 0xC0) == 0x80) ++n;
      const auto seq = text.substr(i, n);
      if (!model::is_valid_utf8(seq)) return fail(i, "invalid UTF-8 (TOML files are UTF-8)");
      if (ctx == Ctx::Plain)
        return fail(i, "a character outside ASCII outside a string; quote the key (\"...\") or the value");
      if (ctx == Ctx::Comment) {
        swap(n, std::string(n, ' '));
      } else {  // in a string, which toml++ gets as a basic one: the escape
        char esc[12];
        const auto cp = code_point(seq);
        std::snprintf(esc, sizeof esc, cp <= 0xFFFF ? "\\u%04X" : "\\U%08X", static_cast<unsigned>(cp));
        swap(n, esc);
      }
      continue;
    }
    if ((c < 0x20 && c != '\t' && c != '\n' && c != '\r') || c == 0x7f ||
        (c == '\r' && (i + 1 == text.size() || text[i + 1] != '\n')))
      return fail(i, "control character " + model::quote(text.substr(i, 1)) + " (TOML allows none but tab)");
    if (c == '\n') {
      // A one-line string cannot hold a line break: toml++ stops there too.
      if (ctx == Ctx::Basic || ctx == Ctx::Literal) return fail(i, "a string is not closed on its line");
      if (ctx == Ctx::Comment) ctx = Ctx::Plain;
      take(1);
      ++line;
      line_start = i;
      prev = 0;
      continue;
    }
    // TOML escapes only ASCII characters; after a backslash anything else
    // is an error, and here it would become an escape of its own.
    const bool escapable = i + 1 < text.size() && static_cast<unsigned char>(text[i + 1]) < 0x80;
    if ((ctx == Ctx::Basic || ctx == Ctx::MultiBasic) && c == '\\' && !escapable && i + 1 < text.size())
      return fail(i, "invalid escape: a backslash before a character outside ASCII");
    switch (ctx) {
      case Ctx::Plain:
        if (c == '#') {
          ctx = Ctx::Comment;
          take(1);
        } else if (c == '"' || c == '\'') {
          if (!may_open()) return fail(i, "a quote where no key or value can begin");
          if (starts(text, i, "\"\"\"")) ctx = Ctx::MultiBasic, take(3);
          else if (starts(text, i, "'''")) ctx = Ctx::MultiLiteral, swap(3, "\"\"\"");
          else if (c == '\'') ctx = Ctx::Literal, swap(1, "\"");
          else ctx = Ctx::Basic, take(1);
        } else {
          if (c != ' ' && c != '\t' && c != '\r') prev = static_cast<char>(c);
          take(1);
        }
        break;
      case Ctx::Comment:
        take(1);
        break;
      case Ctx::Basic:
        if (c == '\\') take(escapable ? 2 : 1);  // the escaped character cannot end the string
        else if (c == '"') ctx = Ctx::Plain, prev = '"', take(1);
        else take(1);
        break;
      case Ctx::MultiBasic:
        if (c == '\\') take(escapable && text[i + 1] != '\n' ? 2 : 1);  // a line break still counts
        else if (starts(text, i, "\"\"\"")) ctx = Ctx::Plain, prev = '"', take(closing_run(text, i, '"'));
        else take(1);
        break;
      // A literal string has no escapes; as a basic string its backslashes
      // and double quotes need them.
      case Ctx::Literal:
        if (c == '\'') ctx = Ctx::Plain, prev = '"', swap(1, "\"");
        else if (c == '\\') swap(1, "\\\\");
        else if (c == '"') swap(1, "\\\"");
        else take(1);
        break;
      case Ctx::MultiLiteral:
        if (starts(text, i, "'''")) {
          const auto n = closing_run(text, i, '\'');
          ctx = Ctx::Plain, prev = '"';
          swap(n, std::string(n - 3, '\'') + "\"\"\"");
        } else if (c == '\\') {
          swap(1, "\\\\");
        } else if (c == '"') {
          swap(1, "\\\"");
        } else {
          take(1);
        }
        break;
    }
  }
  return std::nullopt;
}

}  // namespace azlb::store
