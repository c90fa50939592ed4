#include "store/fast_toml.hpp"

#include <charconv>
#include <limits>

namespace azlb::store {

namespace {

using doc::Array;
using doc::Doc;
using doc::Entry;
using doc::Kind;
using doc::Table;
using doc::Value;

bool is_bare(char c) {
  return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' || c == '-';
}

void append_utf8(std::string& out, std::uint32_t cp) {
  if (cp < 0x80) {
    out += static_cast<char>(cp);
  } else if (cp < 0x800) {
    out += static_cast<char>(0xC0 | (cp >> 6));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  } else if (cp < 0x10000) {
    out += static_cast<char>(0xE0 | (cp >> 12));
    out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  } else {
    out += static_cast<char>(0xF0 | (cp >> 18));
    out += static_cast<char>(0x80 | ((cp >> 12) & 0x3F));
    out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  }
}

// One line at a time; `pos` moves along the current line.
class Parser {
 public:
  Parser(std::string_view text, Doc& doc) : text_(text), doc_(doc) {}

  bool run() {
    doc_.tables.assign(1, Table{});
    for (std::size_t start = 0; next_line(start);) {
      skip_blank();
      if (at_end_of_line()) continue;
      if (peek() == '[') {
        if (!header()) return false;
      } else if (!key_value(current_)) {
        return false;
      }
      if (array_open_) {  // a multi-line array of inline tables goes on
        if (!array_lines(start)) return false;
      }
    }
    return true;
  }

 private:
  // Makes the line at `start` the current one and moves `start` past it.
  bool next_line(std::size_t& start) {
    if (start >= text_.size()) return false;
    auto end = text_.find('\n', start);
    if (end == std::string_view::npos) end = text_.size();
    line_ = text_.substr(start, end - start);
    ++line_no_;
    pos_ = 0;
    start = end + 1;
    return true;
  }

  char peek() const { return pos_ < line_.size() ? line_[pos_] : '\0'; }
  void skip_blank() {
    while (pos_ < line_.size() && (line_[pos_] == ' ' || line_[pos_] == '\t')) ++pos_;
  }
  // Nothing left but blanks and a comment.
  bool at_end_of_line() {
    skip_blank();
    return pos_ == line_.size() || line_[pos_] == '#';
  }
  std::uint32_t column() const { return static_cast<std::uint32_t>(pos_ + 1); }

  std::string_view bare_key() {
    const auto from = pos_;
    while (pos_ < line_.size() && is_bare(line_[pos_])) ++pos_;
    return line_.substr(from, pos_ - from);
  }

  // The array of tables named `key` in `table`, made by headers; created
  // if absent. Null when the key holds anything else.
  Array* header_array(std::uint32_t table, std::string_view key, std::uint32_t line, std::uint32_t col) {
    if (const Value* v = Doc::get(doc_.tables[table], key)) {
      if (v->kind != Kind::Array || !doc_.arrays[v->index].of_headers) return nullptr;
      return &doc_.arrays[v->index];
    }
    Value v;
    v.kind = Kind::Array;
    v.line = line;
    v.column = col;
    v.index = static_cast<std::uint32_t>(doc_.arrays.size());
    doc_.arrays.emplace_back().of_headers = true;
    doc_.tables[table].entries.push_back({key, v});
    return &doc_.arrays.back();
  }

  // [[a]] or [[a.b]], where a (and a.b) are arrays of tables made by headers.
  bool header() {
    const auto col = column();
    if (line_.substr(pos_, 2) != "[[") return false;
    pos_ += 2;
    const auto first = bare_key();
    if (first.empty()) return false;
    std::string_view second;
    if (peek() == '.') {
      ++pos_;
      second = bare_key();
      if (second.empty()) return false;
    }
    if (line_.substr(pos_, 2) != "]]") return false;
    pos_ += 2;
    if (!at_end_of_line()) return false;
    std::uint32_t parent = 0;
    if (!second.empty()) {
      const Value* a = Doc::get(doc_.tables[0], first);
      if (!a || a->kind != Kind::Array || !doc_.arrays[a->index].of_headers || doc_.arrays[a->index].items.empty())
        return false;
      parent = doc_.arrays[a->index].items.back().index;
    }
    const auto key = second.empty() ? first : second;
    // Position as toml++ gives it: an array of tables starts at its first header.
    Array* arr = header_array(parent, key, line_no_, col);
    if (!arr) return false;
    Value t;
    t.kind = Kind::Table;
    t.line = line_no_;
    t.column = col;
    t.index = static_cast<std::uint32_t>(doc_.tables.size());
    arr->items.push_back(t);
    Table& nt = doc_.tables.emplace_back();
    nt.line = line_no_;
    nt.column = col;
    current_ = t.index;
    return true;
  }

  // `key =`, a key new to `table`: empty otherwise (a duplicate is toml++'s to refuse).
  std::string_view new_key(std::uint32_t table) {
    const auto key = bare_key();
    if (key.empty()) return key;
    skip_blank();
    if (peek() != '=') return {};
    ++pos_;
    skip_blank();
    if (Doc::get(doc_.tables[table], key)) return {};
    return key;
  }

  bool key_value(std::uint32_t table) {
    const auto key = new_key(table);
    if (key.empty()) return false;
    Value v;
    if (!value(v, /*top=*/true)) return false;
    doc_.tables[table].entries.push_back({key, v});
    if (array_open_) return true;  // the array's lines follow
    return at_end_of_line();
  }

  bool value(Value& v, bool top) {
    v.line = line_no_;
    v.column = column();
    const char c = peek();
    if (c == '"') return string(v);
    if (c == '{') return inline_table(v);
    if (c == '[' && top) return array_start(v);
    if ((c >= '0' && c <= '9') || c == '-' || c == '+') return integer(v);
    if (c == 't' || c == 'f') return boolean(v);
    return false;  // floats, dates, literal strings: toml++'s
  }

  bool boolean(Value& v) {
    const bool yes = line_.substr(pos_, 4) == "true";
    if (!yes && line_.substr(pos_, 5) != "false") return false;
    pos_ += yes ? 4 : 5;
    const char next = peek();
    if (next != '\0' && next != ' ' && next != '\t' && next != ',' && next != '}' && next != '#') return false;
    v.kind = Kind::Boolean;
    v.integer = yes;
    return true;
  }

  bool integer(Value& v) {
    const auto from = pos_;
    if (peek() == '+' || peek() == '-') ++pos_;
    const auto digits = pos_;
    while (pos_ < line_.size() && line_[pos_] >= '0' && line_[pos_] <= '9') ++pos_;
    const auto n = pos_ - digits;
    if (n == 0 || (n > 1 && line_[digits] == '0')) return false;
    // What may follow a value here; anything else (1_000, 1.5, 0x1, dates) is toml++'s.
    const char next = peek();
    if (next != '\0' && next != ' ' && next != '\t' && next != ',' && next != '}' && next != '#') return false;
    std::int64_t x = 0;
    auto text = line_.substr(line_[from] == '+' ? digits : from, pos_ - (line_[from] == '+' ? digits : from));
    auto [p, ec] = std::from_chars(text.data(), text.data() + text.size(), x);
    if (ec != std::errc() || p != text.data() + text.size()) return false;
    v.kind = Kind::Integer;
    v.integer = x;
    return true;
  }

  bool string(Value& v) {
    ++pos_;  // the opening quote
    const auto from = pos_;
    std::string* copy = nullptr;
    while (true) {
      if (pos_ >= line_.size()) return false;  // unterminated, or a multi-line string
      const char c = line_[pos_];
      if (c == '"') break;
      if (static_cast<unsigned char>(c) < 0x20 && c != '\t') return false;
      if (c == 0x7f) return false;
      if (c != '\\') {
        if (copy) *copy += c;
        ++pos_;
        continue;
      }
      if (!copy) copy = &doc_.strings.emplace_back(line_.substr(from, pos_ - from));
      ++pos_;
      const char e = peek();
      ++pos_;
      switch (e) {
        case '"': *copy += '"'; break;
        case '\\': *copy += '\\'; break;
        case 'b': *copy += '\b'; break;
        case 't': *copy += '\t'; break;
        case 'n': *copy += '\n'; break;
        case 'f': *copy += '\f'; break;
        case 'r': *copy += '\r'; break;
        case 'u':
        case 'U': {
          const std::size_t len = e == 'u' ? 4 : 8;
          if (pos_ + len > line_.size()) return false;
          std::uint32_t cp = 0;
          auto hex = line_.substr(pos_, len);
          auto [p, ec] = std::from_chars(hex.data(), hex.data() + len, cp, 16);
          if (ec != std::errc() || p != hex.data() + len) return false;
          // Surrogates and what Unicode does not have are toml++'s to refuse.
          if ((cp >= 0xD800 && cp <= 0xDFFF) || cp > 0x10FFFF) return false;
          append_utf8(*copy, cp);
          pos_ += len;
          break;
        }
        default: return false;
      }
    }
    v.kind = Kind::String;
    v.text = copy ? std::string_view(*copy) : line_.substr(from, pos_ - from);
    ++pos_;  // the closing quote
    return true;
  }

  // { k = v, k = v }: strings and integers, on one line.
  bool inline_table(Value& v) {
    ++pos_;
    const auto index = static_cast<std::uint32_t>(doc_.tables.size());
    {
      Table& t = doc_.tables.emplace_back();
      t.line = v.line;
      t.column = v.column;
    }
    skip_blank();
    if (peek() != '}') {
      while (true) {
        const auto key = new_key(index);
        if (key.empty()) return false;
        // A table in a table is not azlb's layout: toml++'s, which bounds the
        // depth (never recurse here: a million levels would overflow the stack).
        if (peek() == '{') return false;
        Value inner;
        if (!value(inner, false)) return false;
        doc_.tables[index].entries.push_back({key, inner});
        skip_blank();
        if (peek() == ',') {
          ++pos_;
          skip_blank();
          continue;
        }
        if (peek() == '}') break;
        return false;
      }
    }
    ++pos_;
    v.kind = Kind::Table;
    v.index = index;
    return true;
  }

  // `[` at the end of its line: inline tables follow, one a line, then `]`.
  bool array_start(Value& v) {
    ++pos_;
    if (!at_end_of_line()) return false;  // one-line arrays ([], [1, 2]) are toml++'s
    v.kind = Kind::Array;
    v.index = static_cast<std::uint32_t>(doc_.arrays.size());
    doc_.arrays.emplace_back();
    array_open_ = true;
    open_array_ = v.index;
    return true;
  }

  bool array_lines(std::size_t& start) {
    array_open_ = false;
    bool comma = true;  // TOML wants a comma between two items
    while (next_line(start)) {
      if (at_end_of_line()) continue;
      if (peek() == ']') {
        ++pos_;
        return at_end_of_line();
      }
      if (!comma) return false;
      Value item;
      item.line = line_no_;
      item.column = column();
      if (peek() != '{' || !inline_table(item)) return false;
      doc_.arrays[open_array_].items.push_back(item);
      skip_blank();
      comma = peek() == ',';
      if (comma) ++pos_;
      if (!at_end_of_line()) return false;
    }
    return false;  // no closing bracket
  }

  std::string_view text_;
  Doc& doc_;
  std::string_view line_;
  std::size_t pos_ = 0;
  std::uint32_t line_no_ = 0;
  std::uint32_t current_ = 0;  // the table that takes key = value lines
  bool array_open_ = false;
  std::uint32_t open_array_ = 0;
};

}  // namespace

bool parse_canonical(std::string_view text, doc::Doc& out) {
  out = Doc{};
  if (text.find('\r') != std::string_view::npos) return false;  // CRLF files: toml++'s
  Parser p(text, out);
  if (p.run()) return true;
  out = Doc{};
  return false;
}

}  // namespace azlb::store
