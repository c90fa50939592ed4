#include "store/toml_codec.hpp"

#include <stdexcept>
#include "store/fast_toml.hpp"
#include "store/toml_doc.hpp"
#include "store/toml_depth.hpp"
#include "store/toml_prescan.hpp"

#include <toml++/toml.h>

#include <algorithm>
#include <charconv>
#include <concepts>

#include "model/rules.hpp"
#include "model/text.hpp"

namespace azlb::store {

using namespace azlb::model;

namespace {

// Where the tables of a file are, and the file's name for messages.
struct Source {
  const doc::Doc& doc;
  std::string_view path;
};

// Reads one TOML table field by field, remembering positions for messages.
// Each kind of table names its keys once, here: a misspelt key is reported
// first, before any rule about the values (a typo of `protocol` would
// otherwise read as a missing protocol), and a reader that asks for a key
// its kind does not name is a programming error.
class Fields {
 public:
  Fields(const doc::Table& t, const Source& src, std::string_view kind, std::initializer_list<std::string_view> keys)
      : t_(t), src_(src), kind_(kind), keys_(keys) {}
  // A key that one schema version knows and another does not.
  void allow(std::string_view key) { keys_.push_back(key); }

  std::string where(std::uint32_t line, std::uint32_t column) const {
    return std::string(src_.path) + ":" + std::to_string(line) + ":" + std::to_string(column) + ": ";
  }
  std::string where(const doc::Value& n) const { return where(n.line, n.column); }
  std::string where() const { return where(t_.line, t_.column); }
  const Source& source() const { return src_; }

  Error fail(const doc::Value& n, std::string message) const { return usage_error(where(n) + message); }
  Error fail(std::string message) const { return usage_error(where() + message); }
  Error located(const Error& e) const { return {e.kind, where() + e.message}; }

  // A string value as it is in the document (or `fallback`), without a copy.
  Result<std::string_view> text(std::string_view key, std::optional<std::string_view> fallback = std::nullopt) {
    named(key);
    auto* n = doc::Doc::get(t_, key);
    if (!n) {
      if (fallback) return *fallback;
      return usage_error(where() + std::string(kind_) + " has no '" + std::string(key) + "'");
    }
    if (n->kind != doc::Kind::String) return fail(*n, "'" + std::string(key) + "' must be a string");
    return n->text;
  }

  Result<std::string> string(std::string_view key, std::optional<std::string_view> fallback = std::nullopt) {
    AZLB_ASSIGN(t, text(key, fallback));
    return std::string(t);
  }

  Result<std::int64_t> integer(std::string_view key, std::optional<std::int64_t> fallback = std::nullopt) {
    named(key);
    auto* n = doc::Doc::get(t_, key);
    if (!n) {
      if (fallback) return *fallback;
      return usage_error(where() + std::string(kind_) + " has no '" + std::string(key) + "'");
    }
    if (n->kind != doc::Kind::Integer) return fail(*n, "'" + std::string(key) + "' must be an integer");
    return n->integer;
  }

  Result<bool> boolean(std::string_view key, bool fallback) {
    named(key);
    auto* n = doc::Doc::get(t_, key);
    if (!n) return fallback;
    if (n->kind != doc::Kind::Boolean) return fail(*n, "'" + std::string(key) + "' must be true or false");
    return n->integer != 0;
  }

  // A parsed value; a parse error is placed at the value's position.
  template <class T, class Parse>
  Result<T> parsed(std::string_view key, Parse parse, std::optional<std::string_view> fallback = std::nullopt) {
    AZLB_ASSIGN(value, text(key, fallback));
    auto r = parse(value);
    if (!r) return at(key, r.error());
    return std::move(r).value();
  }

  Result<std::uint16_t> port(std::string_view key) {
    AZLB_ASSIGN(v, integer(key));
    if (auto r = check_port(key, v); !r) return at(key, r.error());
    return static_cast<std::uint16_t>(v);
  }

  Error at(std::string_view key, const Error& e) const {
    auto* n = doc::Doc::get(t_, key);
    return {e.kind, (n ? where(*n) : where()) + e.message};
  }

  const doc::Value* get(std::string_view key) {
    named(key);
    return doc::Doc::get(t_, key);
  }

  // The first unknown key in key order (both parsers then name the same one).
  Status no_unknown_keys() const {
    const doc::Entry* first = nullptr;
    for (auto& e : t_.entries)
      if (std::find(keys_.begin(), keys_.end(), e.key) == keys_.end() && (!first || e.key < first->key)) first = &e;
    if (first) return fail(first->value, "unknown key " + model::quote(first->key) + " in " + std::string(kind_));
    return ok();
  }

 private:
  const doc::Table& t_;
  const Source& src_;
  void named(std::string_view key) const {
    if (std::find(keys_.begin(), keys_.end(), key) == keys_.end())
      throw std::logic_error("the reader of a " + std::string(kind_) + " asks for '" + std::string(key) +
                             "', which its keys do not name");
  }

  std::string_view kind_;  // a literal: what the table is, for messages
  std::vector<std::string_view> keys_;  // literals: nothing to own
};

// Each element of an array of tables, or an error if it is not one.
template <class Each>
Status each_table(Fields& parent, std::string_view key, std::string_view kind, Each each) {
  auto* n = parent.get(key);
  if (!n) return ok();
  const auto& doc = parent.source().doc;
  if (n->kind != doc::Kind::Array)
    return parent.fail(*n, "'" + std::string(key) + "' must be an array of tables ([[" + std::string(kind) + "]])");
  for (auto& el : doc.array(*n).items) {
    if (el.kind != doc::Kind::Table) return parent.fail(el, "each '" + std::string(key) + "' must be a table");
    AZLB_TRY(each(doc.table(el)));
  }
  return ok();
}

Result<Probe> read_probe(const doc::Table& t, const Source& source) {
  Fields f(t, source, "probe", {"protocol", "port", "path", "interval_s", "timeout_s"});
  AZLB_TRY(f.no_unknown_keys());
  Probe p;
  AZLB_ASSIGN(proto, f.parsed<ProbeProtocol>("protocol", parse_probe_protocol));
  AZLB_ASSIGN(port, f.port("port"));
  AZLB_ASSIGN(path, f.string("path", std::string(proto == ProbeProtocol::Http ? "/" : "")));
  AZLB_ASSIGN(interval, f.integer("interval_s", kProbeIntervalDefault));
  AZLB_ASSIGN(timeout, f.integer("timeout_s", kProbeTimeoutDefault));
  if (interval < 0 || timeout < 0 || interval > kProbeTimeoutMax * 2 || timeout > kProbeTimeoutMax * 2)
    return f.fail("probe interval_s and timeout_s must be small positive integers");
  p = {proto, port, path, static_cast<std::uint32_t>(interval), static_cast<std::uint32_t>(timeout)};
  if (auto r = check_probe(p); !r) return f.located(r.error());
  return p;
}

Result<AclRule> read_acl_rule(const doc::Table& t, const Source& source) {
  Fields f(t, source, "ACL rule", {"order", "action", "remote_subnet", "description"});
  AZLB_TRY(f.no_unknown_keys());
  AclRule r;
  AZLB_ASSIGN(order, f.integer("order"));
  if (auto c = check_range("ACL order", order, 0, kAclOrderMax); !c) return f.at("order", c.error());
  r.order = static_cast<std::uint32_t>(order);
  AZLB_ASSIGN(action, f.parsed<AclAction>("action", parse_acl_action));
  r.action = action;
  AZLB_ASSIGN(subnet, f.parsed<Cidr>("remote_subnet", [](auto& s) { return parse_cidr("remote subnet", s); }));
  r.remote_subnet = subnet;
  AZLB_ASSIGN(desc, f.string("description", std::string()));
  r.description = desc;
  return r;
}

// An `acl` array of rule tables, on a set or on an endpoint.
Result<std::vector<AclRule>> read_acl(Fields& f) {
  std::vector<AclRule> out;
  auto* acl = f.get("acl");
  if (!acl) return out;
  const auto& doc = f.source().doc;
  if (acl->kind != doc::Kind::Array) return f.fail(*acl, "'acl' must be an array of tables");
  for (auto& el : doc.array(*acl).items) {
    if (el.kind != doc::Kind::Table) return f.fail(el, "each ACL rule must be a table");
    AZLB_ASSIGN(rule, read_acl_rule(doc.table(el), f.source()));
    out.push_back(std::move(rule));
  }
  return out;
}

Status read_service(State& s, const doc::Table& t, const Source& source, BuildIndex& seen, int schema) {
  Fields f(t, source, "cloud service", {"name", "vip", "subnet", "dataplane", "lbset"});
  AZLB_TRY(f.no_unknown_keys());
  CloudService svc;
  AZLB_ASSIGN(name, f.string("name"));
  svc.name = name;
  AZLB_ASSIGN(vip, f.parsed<IpAddress>("vip", [](auto& v) { return parse_ip("VIP", v); }, "127.0.0.1"));
  svc.vip = vip;
  AZLB_ASSIGN(subnet, f.parsed<Cidr>("subnet", [](auto& v) { return parse_cidr("subnet", v); }));
  svc.subnet = subnet;
  AZLB_ASSIGN(plane, f.parsed<Dataplane>("dataplane", parse_dataplane, "proxy"));
  svc.dataplane = plane;
  if (auto r = insert_service(s, svc); !r) return f.located(r.error());
  AZLB_TRY(each_table(f, "lbset", "cloud_service.lbset", [&](const doc::Table& st) -> Status {
    Fields sf(st, source, "load-balanced set",
              {"name", "protocol", "public_port", "distribution", "when_all_down", "probe", "proxy_protocol",
               "direct_server_return"});
    if (schema >= 2) sf.allow("acl");  // schema 1 kept a set's ACL on its members
    AZLB_TRY(sf.no_unknown_keys());
    LoadBalancedSet set;
    AZLB_ASSIGN(set_name, sf.string("name"));
    set.name = set_name;
    AZLB_ASSIGN(proto, sf.parsed<Protocol>("protocol", parse_protocol));
    set.protocol = proto;
    AZLB_ASSIGN(port, sf.port("public_port"));
    set.public_port = port;
    AZLB_ASSIGN(dist, sf.parsed<Distribution>("distribution", parse_distribution, "five-tuple"));
    set.distribution = dist;
    AZLB_ASSIGN(wad, sf.parsed<WhenAllDown>("when_all_down", parse_when_all_down, "refuse"));
    set.when_all_down = wad;
    if (auto* p = sf.get("probe")) {
      if (p->kind != doc::Kind::Table) return sf.fail(*p, "'probe' must be a table");
      AZLB_ASSIGN(probe, read_probe(source.doc.table(*p), source));
      set.probe = probe;
    }
    if (schema >= 2) {
      AZLB_ASSIGN(acl, read_acl(sf));
      set.acl = std::move(acl);
    }
    AZLB_ASSIGN(pp, sf.parsed<ProxyProtocol>("proxy_protocol", parse_proxy_protocol, "none"));
    set.proxy_protocol = pp;
    AZLB_ASSIGN(dsr, sf.boolean("direct_server_return", false));
    set.direct_server_return = dsr;
    if (auto r = insert_lbset(s, name, std::move(set), &seen); !r) return sf.located(r.error());
    return ok();
  }));
  return ok();
}

Status read_vm(State& s, const doc::Table& t, const Source& source, BuildIndex& seen, int schema) {
  Fields f(t, source, "VM", {"name", "cloud_service", "private_ip", "os", "image", "created_by", "endpoint"});
  AZLB_TRY(f.no_unknown_keys());
  Vm vm;
  AZLB_ASSIGN(name, f.string("name"));
  vm.name = name;
  AZLB_ASSIGN(svc, f.string("cloud_service"));
  vm.cloud_service = svc;
  AZLB_ASSIGN(ip, f.parsed<IpAddress>("private_ip", [](auto& v) { return parse_ip("private IP", v); }));
  vm.private_ip = ip;
  AZLB_ASSIGN(os, f.parsed<Os>("os", parse_os, "linux"));
  vm.os = os;
  AZLB_ASSIGN(image, f.string("image", std::string()));
  vm.image = image;
  AZLB_ASSIGN(by, f.parsed<CreatedBy>("created_by", parse_created_by, "gallery"));
  vm.created_by = by;
  if (auto r = insert_vm(s, vm, &seen); !r) return f.located(r.error());
  AZLB_TRY(each_table(f, "endpoint", "vm.endpoint", [&](const doc::Table& et) -> Status {
    Fields ef(et, source, "endpoint",
              {"name", "lbset", "protocol", "public_port", "published", "acl", "proxy_protocol", "admin_state",
               "private_port", "idle_timeout_min", "weight"});
    AZLB_TRY(ef.no_unknown_keys());
    Endpoint ep;
    AZLB_ASSIGN(ep_name, ef.string("name"));
    ep.name = ep_name;
    AZLB_ASSIGN(lbset, ef.string("lbset", std::string()));
    ep.lbset = lbset;
    const LoadBalancedSet* set = nullptr;
    if (schema >= 2 && !ep.lbset.empty()) {
      // Schema 2: a member's protocol, public port and ACL are its set's.
      for (std::string_view key : {"protocol", "public_port", "acl", "proxy_protocol"})
        if (auto* n = doc::Doc::get(et, key))
          return ef.fail(*n, "'" + std::string(key) + "' of an endpoint in load-balanced set " + model::quote(ep.lbset) +
                                 " is the set's; give it on the set");
      if (auto* n = doc::Doc::get(et, "published"))
        return ef.fail(*n, "an endpoint in load-balanced set " + model::quote(ep.lbset) +
                               " is published on the set's port; 'published' is for endpoints outside a set");
      auto found = lbset_or_error(*find_service(s, vm.cloud_service), ep.lbset);  // insert_vm found the service
      if (!found) return ef.at("lbset", found.error());
      set = *found;
    }
    if (set) {
      ep.protocol = set->protocol;
      ep.public_port = set->public_port;
    } else {
      AZLB_ASSIGN(proto, ef.parsed<Protocol>("protocol", parse_protocol));
      ep.protocol = proto;
      // `published = false` instead of a public port: a deleted set's member
      // kept on its VM (model::published). Said, never implied by a missing key.
      AZLB_ASSIGN(is_published, ef.boolean("published", true));
      if (is_published) {
        AZLB_ASSIGN(pub, ef.port("public_port"));
        ep.public_port = pub;
      } else if (auto* n = doc::Doc::get(et, "public_port")) {
        return ef.fail(*n, "endpoint " + model::quote(ep.name) +
                               " has a public port and 'published = false'; give one or the other");
      }
      // Schema 1 repeated the set's ACL on each member: insert_endpoint
      // moves the first member's rules to the set and checks the others'.
      AZLB_ASSIGN(acl, read_acl(ef));
      ep.acl = std::move(acl);
    }
    if (!set) {
      AZLB_ASSIGN(pp, ef.parsed<ProxyProtocol>("proxy_protocol", parse_proxy_protocol, "none"));
      ep.proxy_protocol = pp;
    }
    AZLB_ASSIGN(admin, ef.parsed<AdminState>("admin_state", parse_admin_state, "up"));
    ep.admin_state = admin;
    AZLB_ASSIGN(priv, ef.port("private_port"));
    ep.private_port = priv;
    AZLB_ASSIGN(idle, ef.integer("idle_timeout_min", kIdleTimeoutDefault));
    if (auto c = check_range("idle timeout (minutes)", idle, kIdleTimeoutMin, kIdleTimeoutMax); !c)
      return ef.at("idle_timeout_min", c.error());
    ep.idle_timeout_min = static_cast<std::uint32_t>(idle);
    AZLB_ASSIGN(weight, ef.integer("weight", kWeightDefault));
    if (auto c = check_range("weight", weight, kWeightMin, kWeightMax); !c) return ef.at("weight", c.error());
    ep.weight = static_cast<std::uint32_t>(weight);
    if (auto r = insert_endpoint(s, name, std::move(ep), &seen); !r) return ef.located(r.error());
    return ok();
  }));
  return ok();
}

// A TOML basic string: quotes, backslashes and control characters escaped.
std::string quoted(std::string_view s) {
  std::string out = "\"";
  for (unsigned char c : s) {
    switch (c) {
      case '"': out += "\\\""; break;
      case '\\': out += "\\\\"; break;
      case '\n': out += "\\n"; break;
      case '\t': out += "\\t"; break;
      default:
        if (c < 0x20 || c == 0x7f) {
          char buf[8];
          std::snprintf(buf, sizeof buf, "\\u%04X", c);
          out += buf;
        } else {
          out += static_cast<char>(c);
        }
    }
  }
  return out + "\"";
}

// The file's text, appended to (an ostringstream took twice as long for a
// state of 1,000 endpoints, written on every change).
struct Text {
  std::string s;
  Text& operator<<(std::string_view v) {
    s += v;
    return *this;
  }
  Text& operator<<(char c) {
    s += c;
    return *this;
  }
  template <std::integral I>
  Text& operator<<(I n) {
    char buf[24];
    auto r = std::to_chars(buf, buf + sizeof buf, n);
    s.append(buf, r.ptr);
    return *this;
  }
};

void write_acl(Text& o, const std::vector<AclRule>& acl) {
  if (acl.empty()) return;
  o << "  acl = [\n";
  for (auto& r : acl) {
    o << "    { order = " << r.order << ", action = " << quoted(to_string(r.action))
      << ", remote_subnet = " << quoted(r.remote_subnet.to_string());
    if (!r.description.empty()) o << ", description = " << quoted(r.description);
    o << " },\n";
  }
  o << "  ]\n";
}

// toml++'s tree as a doc::Doc, for the files fast_toml leaves to it.
doc::Value convert(const toml::node& n, doc::Doc& d) {
  doc::Value v;
  v.line = static_cast<std::uint32_t>(n.source().begin.line);
  v.column = static_cast<std::uint32_t>(n.source().begin.column);
  if (auto* str = n.as_string()) {
    v.kind = doc::Kind::String;
    v.text = d.strings.emplace_back(str->get());
  } else if (auto* i = n.as_integer()) {
    v.kind = doc::Kind::Integer;
    v.integer = i->get();
  } else if (auto* b = n.as_boolean()) {
    v.kind = doc::Kind::Boolean;
    v.integer = b->get();
  } else if (auto* t = n.as_table()) {
    v.kind = doc::Kind::Table;
    v.index = static_cast<std::uint32_t>(d.tables.size());
    d.tables.emplace_back();
    d.tables[v.index].line = v.line;
    d.tables[v.index].column = v.column;
    for (auto& [key, child] : *t) {
      auto key_text = std::string_view(d.strings.emplace_back(key.str()));
      auto cv = convert(child, d);
      d.tables[v.index].entries.push_back({key_text, cv});
    }
  } else if (auto* a = n.as_array()) {
    v.kind = doc::Kind::Array;
    v.index = static_cast<std::uint32_t>(d.arrays.size());
    d.arrays.emplace_back();
    for (auto& child : *a) {
      auto cv = convert(child, d);
      d.arrays[v.index].items.push_back(cv);
    }
  }
  return v;
}

}  // namespace

namespace detail {

Result<State> parse_state(std::string_view text, std::string_view path, bool fast) {
  // Messages are one line of UTF-8 whatever the path's bytes and whatever
  // toml++ quotes from the document.
  const std::string source = model::printable(path, 4096);
  auto at = [&](std::size_t line, std::size_t column, std::string_view message) {
    return usage_error(source + ":" + std::to_string(line) + ":" + std::to_string(column) + ": " +
                       model::printable(message, 1024));
  };
  // A byte order mark opens the file when a Windows editor saved it: it
  // says only that the text is UTF-8, which it must be anyway.
  if (text.starts_with("\xEF\xBB\xBF")) text.remove_prefix(3);
  std::string ascii;
  if (auto bad = prescan_toml(text, ascii)) return at(bad->line, bad->column, bad->message);
  const std::string_view toml_text = ascii.empty() ? text : std::string_view(ascii);
  doc::Doc d;
  if (!fast || !parse_canonical(toml_text, d)) {
    if (auto deep = check_toml_depth(toml_text)) return at(deep->line, deep->column, deep->message);
    toml::table root;
    try {
      root = toml::parse(toml_text, source);
    } catch (const toml::parse_error& e) {
      return at(e.source().begin.line, e.source().begin.column, e.description());
    }
    d = doc::Doc{};
    convert(root, d);
    d.tables[0].line = d.tables[0].column = 1;
  }
  State s;
  BuildIndex seen;
  const Source src{d, source};
  Fields f(d.tables[0], src, "state file", {"schema_version", "hash_seed", "cloud_service", "vm"});
  auto* version = f.get("schema_version");
  if (!version) return usage_error(std::string(source) + ":1:1: no schema_version; this is not an azlb state file");
  if (version->kind != doc::Kind::Integer || version->integer < 1)
    return f.fail(*version, "schema_version must be a positive integer");
  const auto v = version->integer;
  if (v > kSchemaVersion)
    return f.fail(*version, "schema_version " + std::to_string(v) + " was written by a newer azlb (this one reads " +
                                std::to_string(kOldestSchemaVersion) + " to " + std::to_string(kSchemaVersion) + ")");
  const int schema = static_cast<int>(v);
  AZLB_TRY(f.no_unknown_keys());
  if (auto* seed = f.get("hash_seed")) {
    if (seed->kind != doc::Kind::Integer || seed->integer < 0)
      return f.fail(*seed, "hash_seed must be an integer from 0 to " + std::to_string(kHashSeedMax));
    s.hash_seed = static_cast<std::uint64_t>(seed->integer);
  }
  AZLB_TRY(each_table(f, "cloud_service", "cloud_service",
                      [&](const doc::Table& t) { return read_service(s, t, src, seen, schema); }));
  AZLB_TRY(each_table(f, "vm", "vm", [&](const doc::Table& t) { return read_vm(s, t, src, seen, schema); }));
  return s;
}

}  // namespace detail

Result<State> parse_state(std::string_view text, std::string_view path) {
  return detail::parse_state(text, path, true);
}

namespace {

void write_header(Text& o, const State& s) {
  o << "# azlb state: cloud services, VMs, endpoints and load-balanced sets.\n"
       "# You may edit this file; azlb checks every rule when it loads it (see azlb-state(5)).\n"
       "schema_version = "
    << kSchemaVersion << "\n";
  if (s.hash_seed) o << "hash_seed = " << *s.hash_seed << "\n";
}

void write_service(Text& o, const CloudService& svc) {
  o << "[[cloud_service]]\n"
    << "name = " << quoted(svc.name) << "\n"
    << "vip = " << quoted(svc.vip.to_string()) << "\n"
    << "subnet = " << quoted(svc.subnet.to_string()) << "\n";
  if (svc.dataplane != Dataplane::Proxy) o << "dataplane = " << quoted(to_string(svc.dataplane)) << "\n";
}

void write_lbset(Text& o, const LoadBalancedSet& set) {
  o << "  [[cloud_service.lbset]]\n"
    << "  name = " << quoted(set.name) << "\n"
    << "  protocol = " << quoted(to_string(set.protocol)) << "\n"
    << "  public_port = " << set.public_port << "\n"
    << "  distribution = " << quoted(to_string(set.distribution)) << "\n"
    << "  when_all_down = " << quoted(to_string(set.when_all_down)) << "\n";
  if (auto& p = set.probe) {
    o << "  probe = { protocol = " << quoted(to_string(p->protocol)) << ", port = " << p->port;
    if (p->protocol == ProbeProtocol::Http) o << ", path = " << quoted(p->path);
    o << ", interval_s = " << p->interval_s << ", timeout_s = " << p->timeout_s << " }\n";
  }
  // Written only when set, so a state that does not use it reads as before.
  if (set.proxy_protocol != ProxyProtocol::None)
    o << "  proxy_protocol = " << quoted(to_string(set.proxy_protocol)) << "\n";
  if (set.direct_server_return) o << "  direct_server_return = true\n";
  write_acl(o, set.acl);
}

void write_vm(Text& o, const Vm& vm) {
  o << "[[vm]]\n"
    << "name = " << quoted(vm.name) << "\n"
    << "cloud_service = " << quoted(vm.cloud_service) << "\n"
    << "private_ip = " << quoted(vm.private_ip.to_string()) << "\n"
    << "os = " << quoted(to_string(vm.os)) << "\n"
    << "image = " << quoted(vm.image) << "\n"
    << "created_by = " << quoted(to_string(vm.created_by)) << "\n";
  for (auto& ep : vm.endpoints) {
    o << "\n  [[vm.endpoint]]\n"
      << "  name = " << quoted(ep.name) << "\n";
    if (ep.lbset.empty()) {
      o << "  protocol = " << quoted(to_string(ep.protocol)) << "\n";
      if (published(ep))
        o << "  public_port = " << ep.public_port << "\n";
      else
        o << "  published = false\n";
    }
    o << "  private_port = " << ep.private_port << "\n"
      << "  idle_timeout_min = " << ep.idle_timeout_min << "\n";
    if (!ep.lbset.empty()) o << "  lbset = " << quoted(ep.lbset) << "\n";
    if (ep.proxy_protocol != ProxyProtocol::None)
      o << "  proxy_protocol = " << quoted(to_string(ep.proxy_protocol)) << "\n";
    if (ep.admin_state != AdminState::Up) o << "  admin_state = " << quoted(to_string(ep.admin_state)) << "\n";
    if (ep.weight != kWeightDefault) o << "  weight = " << ep.weight << "\n";
    write_acl(o, ep.acl);
  }
}

template <class T, class F>
std::string one(const T& v, F write) {
  Text o;
  write(o, v);
  return std::move(o.s);
}

}  // namespace

std::string format_state(const State& s) {
  Text o;
  write_header(o, s);
  for (auto& svc : s.services) {
    o << '\n';
    write_service(o, svc);
    for (auto& set : svc.lbsets) {
      o << '\n';
      write_lbset(o, set);
    }
  }
  for (auto& vm : s.vms) {
    o << '\n';
    write_vm(o, vm);
  }
  return std::move(o.s);
}

std::string format_service(const CloudService& svc) { return one(svc, write_service); }
std::string format_lbset(const LoadBalancedSet& set) { return one(set, write_lbset); }
std::string format_vm(const Vm& vm) { return one(vm, write_vm); }

}  // namespace azlb::store
