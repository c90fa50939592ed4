#include "store/etcd_state.hpp"

#include <algorithm>
#include <charconv>
#include <chrono>
#include <random>
#include <thread>
#include <unordered_set>

#include "model/rules.hpp"
#include "model/text.hpp"
#include "store/etcd_snapshot_wire.hpp"
#include "store/prefault.hpp"
#include "store/toml_codec.hpp"

namespace azlb::store::etcd {

using model::Result;
using model::State;
using model::Status;

namespace {

// etcd's defaults are 128 operations and 1.5 MiB per request: stay well below.
constexpr std::size_t kMaxOps = 100;
constexpr std::size_t kMaxTxnBytes = 1u << 20;
constexpr int kMaxAttempts = 40;
constexpr std::int64_t kPageKeys = 5000;

std::string i64(std::int64_t v) { return std::to_string(v); }

Json range_request(const std::string& key, const std::string& end, std::int64_t revision, std::int64_t limit) {
  Json r = {{"key", base64_encode(key)}};
  if (!end.empty()) r["range_end"] = base64_encode(end);
  if (revision) r["revision"] = i64(revision);
  if (limit) r["limit"] = i64(limit);
  return r;
}

Json put(const std::string& key, const std::string& value) {
  return {{"request_put", {{"key", base64_encode(key)}, {"value", base64_encode(value)}}}};
}
Json delete_range(const std::string& key, const std::string& end) {
  Json d = {{"key", base64_encode(key)}};
  if (!end.empty()) d["range_end"] = base64_encode(end);
  return {{"request_delete_range", d}};
}

// "schema_version = 2" and "generation = \"g...\"": the meta key's value,
// written by azlb; a hand edit that breaks it is named.
struct Meta {
  int schema = 0;
  std::string generation;
  std::time_t written = 0;
  std::optional<std::uint64_t> hash_seed;
};

Result<Meta> parse_meta(const std::string& text, const std::string& key) {
  int schema = 0;
  std::string generation;
  std::time_t written = 0;
  std::optional<std::uint64_t> hash_seed;
  std::size_t line_no = 0;
  std::size_t pos = 0;
  while (pos <= text.size()) {
    auto nl = text.find('\n', pos);
    std::string_view line(text.data() + pos, (nl == std::string::npos ? text.size() : nl) - pos);
    pos = nl == std::string::npos ? text.size() + 1 : nl + 1;
    ++line_no;
    while (!line.empty() && (line.back() == ' ' || line.back() == '\r' || line.back() == '\t')) line.remove_suffix(1);
    while (!line.empty() && (line.front() == ' ' || line.front() == '\t')) line.remove_prefix(1);
    if (line.empty() || line.front() == '#') continue;
    auto bad = [&](const std::string& why) {
      return model::usage_error(key + ":" + std::to_string(line_no) + ":1: " + why +
                                " (azlb writes schema_version = N and generation = \"...\" here)");
    };
    auto eq = line.find('=');
    if (eq == std::string_view::npos) return bad("expected KEY = VALUE, found " + model::quote(line));
    auto name = line.substr(0, eq);
    auto value = line.substr(eq + 1);
    while (!name.empty() && name.back() == ' ') name.remove_suffix(1);
    while (!value.empty() && value.front() == ' ') value.remove_prefix(1);
    if (name == "schema_version") {
      auto [p, ec] = std::from_chars(value.data(), value.data() + value.size(), schema);
      if (ec != std::errc() || p != value.data() + value.size() || schema < 1)
        return bad("schema_version must be a positive integer");
    } else if (name == "hash_seed") {
      std::uint64_t seed = 0;
      auto [p, ec] = std::from_chars(value.data(), value.data() + value.size(), seed);
      if (ec != std::errc() || p != value.data() + value.size() || seed > model::kHashSeedMax)
        return bad("hash_seed must be an integer from 0 to " + std::to_string(model::kHashSeedMax));
      hash_seed = seed;
    } else if (name == "written") {
      // An ISO 8601 UTC time, for `state history`; a bad one is only not shown.
      std::tm tm{};
      const std::string v(value.size() >= 2 ? value.substr(1, value.size() - 2) : value);
      if (const char* end = ::strptime(v.c_str(), "%Y-%m-%dT%H:%M:%SZ", &tm); end && !*end) written = ::timegm(&tm);
    } else if (name == "generation") {
      if (value.size() < 3 || value.front() != '"' || value.back() != '"') return bad("generation must be a string");
      generation = std::string(value.substr(1, value.size() - 2));
      for (char c : generation)
        if (!std::isalnum(static_cast<unsigned char>(c))) return bad("generation may hold letters and digits only");
    } else {
      return bad("unknown key " + model::quote(name));
    }
  }
  if (!schema) return model::usage_error(key + ":1:1: no schema_version; this is not an azlb state");
  if (schema > model::kSchemaVersion)
    return model::usage_error(key + ":1:1: schema_version " + std::to_string(schema) +
                              " was written by a newer azlb (this one reads " +
                              std::to_string(model::kOldestSchemaVersion) + " to " +
                              std::to_string(model::kSchemaVersion) + ")");
  if (generation.empty()) return model::usage_error(key + ":1:1: no generation");
  return Meta{schema, generation, written, hash_seed};
}

std::string meta_value(const std::string& generation, std::optional<std::uint64_t> hash_seed) {
  char when[32];
  const std::time_t now = std::time(nullptr);
  std::tm tm{};
  ::gmtime_r(&now, &tm);
  std::strftime(when, sizeof when, "%Y-%m-%dT%H:%M:%SZ", &tm);
  return "# azlb state in etcd (see azlb-state(5)): the objects are under objects/" + generation +
         "/\nschema_version = " + std::to_string(model::kSchemaVersion) +
         (hash_seed ? "\nhash_seed = " + std::to_string(*hash_seed) : std::string()) + "\ngeneration = \"" +
         generation + "\"\nwritten = \"" + when + "\"\n";
}

std::string new_generation() {
  static std::mt19937_64 rng{std::random_device{}()};
  char buf[20];
  std::snprintf(buf, sizeof buf, "g%012llx", static_cast<unsigned long long>(rng() & 0xffffffffffffULL));
  return buf;
}

// Where an object is, below PREFIX/objects/GEN/: "service/SEQ.NAME",
// "lbset/SERVICE/SEQ.NAME", "vm/SEQ.NAME".
struct KeyParts {
  std::string kind, service, name;
  std::uint32_t seq = 0;
};

std::optional<KeyParts> split_key(std::string_view rel) {
  KeyParts k;
  auto slash = rel.find('/');
  if (slash == std::string_view::npos) return std::nullopt;
  k.kind = std::string(rel.substr(0, slash));
  rel.remove_prefix(slash + 1);
  if (k.kind == "lbset") {
    slash = rel.find('/');
    if (slash == std::string_view::npos) return std::nullopt;
    k.service = std::string(rel.substr(0, slash));
    rel.remove_prefix(slash + 1);
  } else if (k.kind != "service" && k.kind != "vm") {
    return std::nullopt;
  }
  auto dot = rel.find('.');
  if (dot == std::string_view::npos || dot == 0) return std::nullopt;
  auto [p, ec] = std::from_chars(rel.data(), rel.data() + dot, k.seq);
  if (ec != std::errc() || p != rel.data() + dot) return std::nullopt;
  k.name = std::string(rel.substr(dot + 1));
  if (k.name.empty() || k.name.find('/') != std::string::npos) return std::nullopt;
  return k;
}

std::string seq_text(std::uint32_t seq) {
  char buf[16];
  std::snprintf(buf, sizeof buf, "%08u", seq);
  return buf;
}

// The objects of a state as keys and values, in the model's order.
struct Planned {
  std::string key, value;
};

// Keys for `s` under `base` (PREFIX/objects/GEN/): existing objects keep the
// key they have in `old` (by name); new ones get the next sequence number.
// nullopt when the model's order differs from the keys' (the caller then
// writes a new generation, numbered afresh).
std::optional<std::vector<Planned>> plan(const State& s, const std::string& base,
                                         const std::map<std::string, Value>* old) {
  // Existing keys by (kind, service, name), and the highest sequence per group.
  std::map<std::string, std::pair<std::string, std::uint32_t>> existing;
  std::map<std::string, std::uint32_t> top;
  if (old)
    for (auto& [key, v] : *old) {
      auto k = split_key(std::string_view(key).substr(base.size()));
      if (!k) continue;
      const std::string group = k->kind + "/" + k->service;
      existing[group + "/" + k->name] = {key, k->seq};
      top[group] = std::max(top[group], k->seq);
    }
  std::vector<Planned> out;
  bool in_order = true;
  std::map<std::string, std::uint32_t> last;
  auto key_of = [&](const std::string& kind, const std::string& service, const std::string& name) {
    const std::string group = kind + "/" + service;
    auto it = existing.find(group + "/" + name);
    std::uint32_t seq;
    std::string key;
    if (it != existing.end()) {
      key = it->second.first;
      seq = it->second.second;
    } else {
      seq = ++top[group];
      key = base + kind + "/" + (service.empty() ? "" : service + "/") + seq_text(seq) + "." + name;
    }
    if (seq <= last[group]) in_order = false;
    last[group] = seq;
    return key;
  };
  for (auto& svc : s.services) {
    out.push_back({key_of("service", "", svc.name), format_service(svc)});
    for (auto& set : svc.lbsets) out.push_back({key_of("lbset", svc.name, set.name), format_lbset(set)});
  }
  for (auto& vm : s.vms) out.push_back({key_of("vm", "", vm.name), format_vm(vm)});
  if (!in_order) return std::nullopt;
  return out;
}

Result<Json> txn(EtcdClient& c, const Json& compare, const Json& success) {
  Json body = {{"compare", compare}, {"success", success}, {"failure", Json::array()}};
  return c.call("kv/txn", body, 10000);
}

bool succeeded(const Json& reply) { return json_true(reply, "succeeded"); }

// What a change may assume stayed as read: the meta key (every change
// writes it, so a change by any other azlb fails this one) and every key of
// the generation in force (a hand edit with etcdctl, even one that adds a
// key). Other generations are no reader's: a writer's own, being written.
Json guards(const Snapshot& snap, const std::string& prefix) {
  Json c = Json::array();
  if (snap.meta)
    c.push_back({{"target", "MOD"}, {"key", base64_encode(meta_key(prefix))}, {"result", "EQUAL"},
                 {"mod_revision", i64(snap.meta->mod_revision)}});
  else
    c.push_back({{"target", "CREATE"}, {"key", base64_encode(meta_key(prefix))}, {"result", "EQUAL"},
                 {"create_revision", "0"}});
  if (snap.generation.empty()) return c;
  const auto objects = objects_prefix(prefix) + snap.generation + "/";
  c.push_back({{"target", "MOD"},
               {"key", base64_encode(objects)},
               {"range_end", base64_encode(prefix_end(objects))},
               {"result", "LESS"},
               {"mod_revision", i64(snap.revision + 1)}});
  return c;
}

// A whole new generation: its keys in as many transactions as they take,
// then one that makes it current if nothing changed since `snap`, and
// removes every other generation (an older one, or what a writer that died
// half-way left).
Result<bool> write_generation(EtcdClient& c, const Snapshot& snap, const State& s, const std::string& prefix) {
  const std::string gen = new_generation();
  const std::string base = objects_prefix(prefix) + gen + "/";
  auto planned = plan(s, base, nullptr);
  Json batch = Json::array();
  std::size_t bytes = 0;
  auto flush = [&]() -> Status {
    if (batch.empty()) return model::ok();
    AZLB_ASSIGN(reply, txn(c, Json::array(), batch));
    (void)reply;
    batch = Json::array();
    bytes = 0;
    return model::ok();
  };
  auto discard = [&] { (void)txn(c, Json::array(), Json::array({delete_range(base, prefix_end(base))})); };
  for (auto& p : *planned) {
    const auto size = (p.key.size() + p.value.size()) * 4 / 3 + 64;
    if (size > kMaxTxnBytes)
      return model::runtime_error("the object at " + p.key + " is " + std::to_string(p.value.size()) +
                                  " bytes: more than etcd takes in one request");
    if (batch.size() >= kMaxOps || bytes + size > kMaxTxnBytes)
      if (auto st = flush(); !st) {
        discard();
        return st.error();
      }
    batch.push_back(put(p.key, p.value));
    bytes += size;
  }
  if (auto st = flush(); !st) {
    discard();
    return st.error();
  }
  const auto objects = objects_prefix(prefix);
  Json commit = Json::array({put(meta_key(prefix), meta_value(gen, s.hash_seed)), delete_range(objects, base),
                             delete_range(prefix_end(base), prefix_end(objects))});
  auto reply = txn(c, guards(snap, prefix), commit);
  if (!reply || !succeeded(*reply)) discard();
  if (!reply) return reply.error();
  return succeeded(*reply);
}

// The keys that changed, in one transaction; nullopt if they do not fit one.
std::optional<Json> small_change(const Snapshot& snap, const State& s, const std::vector<Planned>& planned,
                                 const std::string& prefix) {
  Json ops = Json::array();
  std::size_t bytes = 0;
  std::unordered_set<std::string> kept;
  for (auto& p : planned) {
    kept.insert(p.key);
    auto it = snap.objects.find(p.key);
    if (it != snap.objects.end() && it->second.value == p.value) continue;
    ops.push_back(put(p.key, p.value));
    bytes += (p.key.size() + p.value.size()) * 4 / 3 + 64;
  }
  for (auto& [key, v] : snap.objects)
    if (!kept.count(key)) ops.push_back(delete_range(key, "")), bytes += key.size() * 2;
  if (ops.empty() && s.hash_seed == snap.hash_seed) return Json::array();  // nothing changed
  ops.push_back(put(meta_key(prefix), meta_value(snap.generation, s.hash_seed)));
  if (ops.size() + 2 > kMaxOps || bytes > kMaxTxnBytes) return std::nullopt;
  return ops;
}

}  // namespace

std::string meta_key(const std::string& prefix) { return prefix + "/state"; }
std::string objects_prefix(const std::string& prefix) { return prefix + "/objects/"; }
std::string engines_prefix(const std::string& prefix) { return prefix + "/engines/"; }
std::string handoff_prefix(const std::string& prefix) { return prefix + "/handoff/"; }

Status Snapshot::set_meta(Value v) {
  AZLB_ASSIGN(parsed, parse_meta(v.value, meta_key(prefix)));
  meta = std::move(v);
  meta_revision = meta->mod_revision;
  schema_version = parsed.schema;
  generation = parsed.generation;
  written = parsed.written;
  hash_seed = parsed.hash_seed;
  return model::ok();
}

Result<Snapshot> read(EtcdClient& c, std::int64_t at) {
  const auto& prefix = c.location().prefix;
  Snapshot snap;
  snap.prefix = prefix;
  // One range from the objects to the meta key, the last key in it: which
  // generation is in force is known at its end, and the keys of another (a
  // writer's, being written) are dropped then. One round trip, not two.
  const std::string meta = meta_key(prefix);
  const std::string end = meta + '\0';
  std::string from = objects_prefix(prefix);
  std::vector<KeyValue> objects;
  std::optional<KeyValue> meta_kv;
  std::size_t bytes = 0;
  for (;;) {
    const Json request = range_request(from, end, at > 0 ? at : snap.revision, kPageKeys);
    // A member that never answers is given up on within the usual 5 s;
    // the next pages of a large state may take longer.
    AZLB_ASSIGN(page, c.range(request, snap.revision ? 30000 : 5000));
    if (page.revision <= 0)
      return model::runtime_error("etcd at " + c.endpoint() + " answered a range without a revision: is it etcd 3.4+?");
    if (!snap.revision) snap.revision = at > 0 ? at : page.revision;
    if (page.kvs.empty()) break;
    from = page.kvs.back().key + '\0';
    for (auto& kv : page.kvs) {
      bytes += kv.value.size();
      if (kv.key == meta) meta_kv = std::move(kv);
      else objects.push_back(std::move(kv));
    }
    if (!page.more) break;
  }
  if (meta_kv) AZLB_TRY(snap.set_meta(Value{std::move(meta_kv->value), meta_kv->mod_revision}));
  if (snap.generation.empty()) return snap;
  const std::string base = objects_prefix(prefix) + snap.generation + "/";
  for (auto& kv : objects)  // in key order, as etcd sends them
    if (kv.key.compare(0, base.size(), base) == 0)
      snap.objects.emplace_hint(snap.objects.end(), std::move(kv.key), Value{std::move(kv.value), kv.mod_revision});
  // What the caller does next: assemble and parse the state.
  prefault_heap(bytes * kParseBytesPerTextByte);
  return snap;
}

bool Snapshot::apply(const Json& event, bool& reread) {
  if (!event.contains("kv")) return false;
  const auto& kv = event["kv"];
  const auto key = json_bytes(kv, "key");
  const bool deleted = event.contains("type") && event["type"] == "DELETE";
  const auto rev = json_i64(kv, "mod_revision");
  if (rev > revision) revision = rev;
  if (key == meta_key(prefix)) {
    // Every change writes it (its time changes); only another generation
    // or schema means reading everything again.
    auto parsed = deleted ? Result<Meta>(model::usage_error("deleted")) : parse_meta(json_bytes(kv, "value"), key);
    if (!parsed || parsed->generation != generation || parsed->schema != schema_version ||
        parsed->hash_seed != hash_seed) {
      reread = true;
      return true;
    }
    meta = Value{json_bytes(kv, "value"), rev};
    meta_revision = rev;
    written = parsed->written;
    return false;
  }
  if (generation.empty() || key.rfind(objects_prefix(prefix) + generation + "/", 0) != 0) return false;
  if (deleted) return objects.erase(key) > 0;
  objects[key] = Value{json_bytes(kv, "value"), rev};
  return true;
}

Result<StateText> assemble(const Snapshot& snap, const std::string& prefix) {
  StateText t;
  t.source = "etcd";
  t.text = "schema_version = " + std::to_string(snap.schema_version) + "\n";
  std::size_t line = 2;
  if (snap.hash_seed) {
    t.text += "hash_seed = " + std::to_string(*snap.hash_seed) + "\n";
    ++line;
  }
  t.origins.push_back({1, meta_key(prefix)});
  const std::string base = objects_prefix(prefix) + snap.generation + "/";
  std::vector<std::pair<KeyParts, const std::pair<const std::string, Value>*>> services, vms;
  std::map<std::string, std::vector<std::pair<KeyParts, const std::pair<const std::string, Value>*>>> sets;
  for (auto& entry : snap.objects) {
    auto k = split_key(std::string_view(entry.first).substr(base.size()));
    if (!k) return model::usage_error(entry.first + ": not a key azlb writes (expected service/SEQ.NAME, "
                                                    "lbset/SERVICE/SEQ.NAME or vm/SEQ.NAME below " + base + ")");
    if (k->kind == "service") services.push_back({*k, &entry});
    else if (k->kind == "vm") vms.push_back({*k, &entry});
    else sets[k->service].push_back({*k, &entry});
  }
  std::size_t bytes = t.text.size();
  for (auto& entry : snap.objects) bytes += entry.second.value.size() + 2;
  t.text.reserve(bytes);  // one copy of each value, not one per doubling of the text
  auto by_seq = [](auto& a, auto& b) { return a.first.seq < b.first.seq; };
  std::sort(services.begin(), services.end(), by_seq);
  std::sort(vms.begin(), vms.end(), by_seq);
  auto add = [&](const std::string& kind, const KeyParts& k, const std::string& key, const std::string& value) {
    t.text += '\n';
    ++line;
    t.origins.push_back({line, key});
    t.text += value;
    if (value.empty() || value.back() != '\n') t.text += '\n';
    line += static_cast<std::size_t>(std::count(value.begin(), value.end(), '\n')) +
            (value.empty() || value.back() != '\n' ? 1 : 0);
    t.expected.push_back({kind, k.kind == "lbset" ? k.service + "/" + k.name : k.name});
  };
  for (auto& [k, entry] : services) {
    add("service", k, entry->first, entry->second.value);
    if (auto it = sets.find(k.name); it != sets.end()) {
      std::sort(it->second.begin(), it->second.end(), by_seq);
      for (auto& [sk, se] : it->second) add("lbset", sk, se->first, se->second.value);
      sets.erase(it);
    }
  }
  if (!sets.empty())
    return model::usage_error(sets.begin()->second.front().second->first + ": a set of service " +
                              model::quote(sets.begin()->first) + ", which has no key");
  for (auto& [k, entry] : vms) add("vm", k, entry->first, entry->second.value);
  return t;
}

Result<std::int64_t> last_object_revision(EtcdClient& c) {
  const auto objects = objects_prefix(c.location().prefix);
  Json r = range_request(objects, prefix_end(objects), 0, 0);
  r["keys_only"] = true;
  AZLB_ASSIGN(reply, c.range(r, 30000));
  std::int64_t last = 0;
  for (const auto& kv : reply.kvs) last = std::max(last, kv.mod_revision);
  return last;
}

Result<std::vector<std::pair<std::string, std::string>>> list(EtcdClient& c, const std::string& prefix) {
  AZLB_ASSIGN(reply, c.range(range_request(prefix, prefix_end(prefix), 0, 0)));
  std::vector<std::pair<std::string, std::string>> out;
  for (auto& kv : reply.kvs) out.push_back({std::move(kv.key), std::move(kv.value)});
  return out;
}

Result<State> load(EtcdClient& c) {
  AZLB_ASSIGN(snap, read(c));
  AZLB_ASSIGN(text, assemble(snap, c.location().prefix));
  return parse_text(text);
}

namespace {

enum class Outcome { Written, Unchanged, Conflict };

// One try of a change on `snap`: Conflict when another writer was first.
// `sent`: a transaction went to etcd (an error after it may hide a write).
Result<Outcome> attempt(EtcdClient& c, const Snapshot& snap, const std::function<Status(State&)>& change,
                        bool& sent) {
  const auto& prefix = c.location().prefix;
  AZLB_ASSIGN(text, assemble(snap, prefix));
  AZLB_ASSIGN(s, parse_text(text));
  AZLB_TRY(change(s));
  std::optional<Json> ops;
  if (!snap.generation.empty() && snap.schema_version == model::kSchemaVersion) {
    auto planned = plan(s, objects_prefix(prefix) + snap.generation + "/", &snap.objects);
    if (planned) ops = small_change(snap, s, *planned, prefix);
  }
  if (ops) {
    if (ops->empty()) return Outcome::Unchanged;
    sent = true;
    AZLB_ASSIGN(reply, txn(c, guards(snap, prefix), *ops));
    return succeeded(reply) ? Outcome::Written : Outcome::Conflict;
  }
  if (snap.generation.empty() && s.services.empty() && s.vms.empty()) return Outcome::Unchanged;
  sent = true;
  AZLB_ASSIGN(ok, write_generation(c, snap, s, prefix));
  return ok ? Outcome::Written : Outcome::Conflict;
}

// This host's engine's copy of the state, when its relay has one.
std::optional<Snapshot> engine_copy(EtcdClient& c) {
  auto wire = c.relayed_snapshot();
  if (!wire) return std::nullopt;
  // The keys' copies and then the parser's work land on pages mapped at once.
  prefault_heap(wire->size() * (kParseBytesPerTextByte + 2));
  auto snap = decode_snapshot(*wire, c.location().prefix);
  if (!snap || !snap->meta) return std::nullopt;
  return snap;
}

}  // namespace

Status update(EtcdClient& c, const std::function<Status(State&)>& change) {
  // First from this host's engine's copy (no range for etcd to produce).
  // Only a write settles it: the guards have then compared every key it
  // read, so the copy was current. Anything else (a conflict, an error of
  // the change, nothing to change) may be the copy's lag, not the state's:
  // it is done again from etcd. An error of the transaction itself is the
  // command's (etcd may have taken the write), as it is below.
  if (auto copy = engine_copy(c)) {
    bool sent = false;
    auto outcome = attempt(c, *copy, change, sent);
    if (outcome && *outcome == Outcome::Written) return model::ok();
    if (!outcome && sent) return outcome.error();
  }
  static std::mt19937 rng{std::random_device{}()};
  for (int attempt_no = 1; attempt_no <= kMaxAttempts; ++attempt_no) {
    // Linearizable, never the member's own copy (a serializable read, 0.7 ms
    // less): a member behind by a write it has not applied yet would fail a
    // change to what that write made ("no VM"), or find it already done and
    // write nothing, where the transaction's guards never get to look.
    AZLB_ASSIGN(snap, read(c));
    bool sent = false;
    AZLB_ASSIGN(outcome, attempt(c, snap, change, sent));
    if (outcome != Outcome::Conflict) return model::ok();
    // Another writer was first: read its change and apply ours to it.
    std::uniform_int_distribution<int> wait(1, 5 * std::min(attempt_no, 20));
    std::this_thread::sleep_for(std::chrono::milliseconds(wait(rng)));
  }
  return model::conflict("the state at " + Location(c.location()).display() + " kept changing under this change (" +
                         std::to_string(kMaxAttempts) + " attempts): try again");
}

}  // namespace azlb::store::etcd
