// The etcd backend's pure parts: locations, base64, the key layout and how a
// snapshot of keys becomes a state (the same codec as the file), and how an
// error in one value names its key.
#include <random>

#include "store/etcd_client.hpp"
#include "store/etcd_relay.hpp"
#include "store/etcd_snapshot_wire.hpp"
#include "store/etcd_state.hpp"
#include "store/location.hpp"
#include "store/toml_codec.hpp"

#include "fixtures.hpp"

using namespace azlb::test;
using azlb::store::Json;
using azlb::store::Location;
namespace etcd = azlb::store::etcd;

namespace {

// The snapshot a state written by azlb leaves in etcd (generation "g1").
etcd::Snapshot snapshot_of(const State& s, const std::string& prefix = "/p") {
  etcd::Snapshot snap;
  snap.prefix = prefix;
  snap.generation = "g1";
  snap.meta = etcd::Value{"schema_version = 2\ngeneration = \"g1\"\n", 1};
  const std::string base = etcd::objects_prefix(prefix) + "g1/";
  char seq[16];
  int n = 0;
  for (auto& svc : s.services) {
    std::snprintf(seq, sizeof seq, "%08d", ++n);
    snap.objects[base + "service/" + seq + "." + svc.name] = {azlb::store::format_service(svc), 1};
    int m = 0;
    for (auto& set : svc.lbsets) {
      std::snprintf(seq, sizeof seq, "%08d", ++m);
      snap.objects[base + "lbset/" + svc.name + "/" + seq + "." + set.name] = {azlb::store::format_lbset(set), 1};
    }
  }
  n = 0;
  for (auto& vm : s.vms) {
    // Numbers that sort differently as text and as numbers would break the order.
    std::snprintf(seq, sizeof seq, "%08d", n += 7);
    snap.objects[base + "vm/" + seq + "." + vm.name] = {azlb::store::format_vm(vm), 1};
  }
  return snap;
}

}  // namespace

TEST_CASE("a state location is a path or an etcd URL") {
  auto file = Location::parse("/var/lib/azlb/state.toml");
  REQUIRE(file);
  CHECK_FALSE(file->is_etcd());
  auto e = Location::parse("etcd://127.0.0.1:2379,[::1]:22379,etcd-2.lan:2379/azlb/prod/");
  REQUIRE(e);
  REQUIRE(e->is_etcd());
  CHECK(e->etcd().endpoints == std::vector<std::string>{"127.0.0.1:2379", "[::1]:22379", "etcd-2.lan:2379"});
  CHECK(e->etcd().prefix == "/azlb/prod");
  CHECK_FALSE(e->etcd().tls);
  CHECK(e->display() == "etcd://127.0.0.1:2379,[::1]:22379,etcd-2.lan:2379/azlb/prod");
  // One engine per host and state: the endpoints named do not matter.
  CHECK(e->identity() == Location::parse("etcd+https://10.0.0.1:2379/azlb/prod")->identity());
  CHECK(Location::parse("etcd+https://10.0.0.1:2379/x")->etcd().tls);
  for (const char* bad : {"etcd://127.0.0.1:2379", "etcd://127.0.0.1:2379/", "etcd:///x", "etcd://h/x",
                          "etcd://h:0/x", "etcd://h:70000/x", "etcd://h:1,/x", "etcd://h:1/a//b", "etcd://h:1/a b",
                          "etcd://h:1/a\n", "etcds://h:1/x", "etcd://[::1/x", ""}) {
    CAPTURE(bad);
    auto r = Location::parse(bad);
    REQUIRE_FALSE(r);
    CHECK(kind_of(r.error()) == ErrorKind::Usage);
    CHECK(r.error().message.find('\n') == std::string::npos);
  }
}

TEST_CASE("base64 and prefix ends") {
  for (const std::string& s : std::vector<std::string>{"", "a", "ab", "abc", "abcd", std::string("\0\xff\x10", 3)}) {
    std::string back;
    REQUIRE(azlb::store::base64_decode(azlb::store::base64_encode(s), back));
    CHECK(back == s);
  }
  std::string out;
  CHECK(azlb::store::base64_encode("azlb") == "YXpsYg==");
  CHECK_FALSE(azlb::store::base64_decode("YXpsYg=", out));
  CHECK_FALSE(azlb::store::base64_decode("YX*sYg==", out));
  CHECK_FALSE(azlb::store::base64_decode("Y=psYg==", out));
  CHECK(azlb::store::prefix_end("/azlb/") == "/azlb0");
  CHECK(azlb::store::prefix_end("a\xff") == "b");
}

TEST_CASE("keys written from the codec's pieces read back as the same state, in order") {
  State s = web_farm();
  must(join_lbset(s, {"webset", "vm2", std::nullopt, std::nullopt, std::nullopt}));
  auto snap = snapshot_of(s);
  auto text = etcd::assemble(snap, "/p");
  REQUIRE(text);
  auto back = azlb::store::parse_text(*text);
  REQUIRE(back);
  CHECK(azlb::store::format_state(*back) == azlb::store::format_state(s));
}

TEST_CASE("an error in one value names its key and the line in it") {
  State s = web_farm();
  auto snap = snapshot_of(s);
  std::string vm2_key;
  for (auto& [k, v] : snap.objects)
    if (k.ends_with(".vm2")) vm2_key = k;
  REQUIRE_FALSE(vm2_key.empty());
  auto& v = snap.objects[vm2_key].value;
  v.replace(v.find("private_ip = \""), 14, "private_ip = \"999.");
  auto text = etcd::assemble(snap, "/p");
  REQUIRE(text);
  auto r = azlb::store::parse_text(*text);
  REQUIRE_FALSE(r);
  CHECK(kind_of(r.error()) == ErrorKind::Usage);
  CHECK(r.error().message.rfind(vm2_key + ":4:", 0) == 0);
}

TEST_CASE("a value holding another object than its key names is refused, naming the key") {
  State s = web_farm();
  auto snap = snapshot_of(s);
  std::string key;
  for (auto& [k, v] : snap.objects)
    if (k.ends_with(".vm3")) key = k;
  auto& v = snap.objects[key].value;
  v.replace(v.find("\"vm3\""), 5, "\"vm9\"");
  auto r = azlb::store::parse_text(*etcd::assemble(snap, "/p"));
  REQUIRE_FALSE(r);
  CHECK(r.error().message.find(key) != std::string::npos);
  CHECK(r.error().message.find("vm9") != std::string::npos);
  // A key azlb does not write, below the generation.
  auto snap2 = snapshot_of(s);
  snap2.objects["/p/objects/g1/junk"] = {"x = 1\n", 1};
  auto t = etcd::assemble(snap2, "/p");
  REQUIRE_FALSE(t);
  CHECK(t.error().message.find("/p/objects/g1/junk") != std::string::npos);
}

TEST_CASE("watch events change the snapshot; a new generation asks for a full read") {
  State s = web_farm();
  auto snap = snapshot_of(s);
  const auto before = snap.objects.size();
  auto key = [](const std::string& k) { return azlb::store::base64_encode(k); };
  bool reread = false;
  Json put = {{"kv", {{"key", key("/p/objects/g1/vm/00000100.vm9")}, {"value", key("[[vm]]\n")}, {"mod_revision", "9"}}}};
  CHECK(snap.apply(put, reread));
  CHECK(snap.objects.size() == before + 1);
  CHECK(snap.revision == 9);
  Json del = {{"type", "DELETE"}, {"kv", {{"key", key("/p/objects/g1/vm/00000100.vm9")}, {"mod_revision", "10"}}}};
  CHECK(snap.apply(del, reread));
  CHECK(snap.objects.size() == before);
  // Another generation's keys (a writer's, being written) and the engines' are not the state's.
  Json other = {{"kv", {{"key", key("/p/objects/g2/vm/00000001.x")}, {"value", key("y")}}}};
  CHECK_FALSE(snap.apply(other, reread));
  Json engine = {{"kv", {{"key", key("/p/engines/host/12")}, {"value", key("{}")}}}};
  CHECK_FALSE(snap.apply(engine, reread));
  CHECK_FALSE(reread);
  Json meta = {{"kv", {{"key", key("/p/state")}, {"value", key("schema_version = 2\ngeneration = \"g2\"\n")}}}};
  snap.apply(meta, reread);
  CHECK(reread);
}

namespace {

bool same(const azlb::store::RangeReply& a, const azlb::store::RangeReply& b) {
  if (a.revision != b.revision || a.more != b.more || a.kvs.size() != b.kvs.size()) return false;
  for (std::size_t i = 0; i < a.kvs.size(); ++i)
    if (a.kvs[i].key != b.kvs[i].key || a.kvs[i].value != b.kvs[i].value ||
        a.kvs[i].mod_revision != b.kvs[i].mod_revision)
      return false;
  return true;
}

// A reply as etcd 3.4's gateway writes it.
std::string range_reply(int keys, bool more) {
  Json kvs = Json::array();
  for (int i = 0; i < keys; ++i)
    kvs.push_back({{"key", azlb::store::base64_encode("/p/objects/g1/vm/0000000" + std::to_string(i) + ".vm")},
                   {"create_revision", "5"},
                   {"mod_revision", std::to_string(7 + i)},
                   {"version", "1"},
                   {"value", azlb::store::base64_encode("[[vm]]\nname = \"vm" + std::to_string(i) + "\"\n")}});
  Json reply = {{"header", {{"cluster_id", "14841639068965178418"}, {"member_id", "10276657743932975437"},
                            {"revision", "42"}, {"raft_term", "2"}}},
                {"kvs", kvs},
                {"count", std::to_string(keys)}};
  if (more) reply["more"] = true;
  return reply.dump();
}

}  // namespace

TEST_CASE("a range reply is read without a document, as the document path reads it") {
  using azlb::store::range_from_json;
  using azlb::store::RangeReply;
  using azlb::store::scan_range;
  for (int keys : {0, 1, 3})
    for (bool more : {false, true}) {
      const auto body = range_reply(keys, more);
      RangeReply fast;
      REQUIRE(scan_range(body, fast));
      CHECK(same(fast, range_from_json(Json::parse(body))));
      CHECK(fast.revision == 42);
      CHECK(fast.more == more);
      REQUIRE(fast.kvs.size() == static_cast<std::size_t>(keys));
      if (keys) CHECK(fast.kvs.back().value == "[[vm]]\nname = \"vm" + std::to_string(keys - 1) + "\"\n");
    }
  // Numbers where proto3 JSON has strings, and whitespace between tokens.
  RangeReply r;
  CHECK(scan_range(" {\n \"header\" : {\"revision\": 9} , \"kvs\":[ {\"key\":\"YQ==\",\"mod_revision\":3} ] }\n", r));
  CHECK(r.revision == 9);
  CHECK(r.kvs.at(0).key == "a");
  CHECK(r.kvs.at(0).mod_revision == 3);
}

TEST_CASE("what the range scanner does not know is left to the document path") {
  azlb::store::RangeReply r;
  using azlb::store::scan_range;
  CHECK_FALSE(scan_range(R"({"error":"etcdserver: no leader","code":14,"message":"etcdserver: no leader"})", r));
  CHECK_FALSE(scan_range(R"({"header":{"revision":"4"},"kvs":[{"key":"a\/b"}]})", r));  // an escape
  CHECK_FALSE(scan_range(R"({"header":{"revision":"4"},"newer_field":1})", r));
  CHECK_FALSE(scan_range(R"({"header":{"revision":"4"},"kvs":[{"key":"%%%="}]})", r));  // not base64
  CHECK_FALSE(scan_range(R"({"header":{"revision":"4"}} trailing)", r));
  CHECK_FALSE(scan_range(R"({"kvs":[]})", r));  // no revision
  CHECK_FALSE(scan_range("", r));
  // Bytes changed at random: whatever it takes, it reads as the document does.
  const std::string good = range_reply(3, true);
  std::mt19937 rng(7);
  int taken = 0;
  for (int i = 0; i < 20000; ++i) {
    std::string body = good;
    const int edits = 1 + static_cast<int>(rng() % 3);
    for (int e = 0; e < edits; ++e) {
      const auto at = rng() % body.size();
      switch (rng() % 3) {
        case 0: body[at] = static_cast<char>(rng()); break;
        case 1: body.erase(at, 1 + rng() % 8); break;
        default: body.insert(at, 1, "{}[]\",:0\\ "[rng() % 10]);
      }
    }
    azlb::store::RangeReply fast;
    if (!scan_range(body, fast)) continue;
    ++taken;
    const Json doc = Json::parse(body, nullptr, false);
    INFO(body);
    REQUIRE(!doc.is_discarded());
    CHECK(same(fast, azlb::store::range_from_json(doc)));
  }
  CHECK(taken > 100);  // the edits that keep it valid (a changed digit, a space) are taken
}

TEST_CASE("the relay's frames: what is encoded decodes the same, and anything else is no request") {
  using namespace azlb::store;
  using namespace std::literals;
  const RelayRequest req{"azlb-relay/1\nhttp\n127.0.0.1:2379\n5:/azlb", "kv/txn", std::string("{\"x\":\0\"y\"}"sv), 2500};
  auto back = decode_request(encode_request(req));
  REQUIRE(back);
  CHECK(back->identity == req.identity);
  CHECK(back->path == req.path);
  CHECK(back->body == req.body);  // a NUL in the body stays in it
  CHECK(back->timeout_ms == 2500);
  CHECK_FALSE(decode_request(""));
  CHECK_FALSE(decode_request("id\0kv/range\0"sv));                // no timeout field
  CHECK_FALSE(decode_request("id\0kv/range\0-5\0{}"sv));          // a negative timeout
  CHECK_FALSE(decode_request("id\0kv/range\0" "12x\0{}"sv));      // not a number
  CHECK_FALSE(decode_request("id\0\0" "100\0{}"sv));              // no path
  CHECK_FALSE(decode_request("id\0kv/range\0" "99999999999\0{}"sv));  // out of range
  for (auto kind : {azlb::model::ErrorKind::Runtime, azlb::model::ErrorKind::Usage, azlb::model::ErrorKind::NotFound,
                    azlb::model::ErrorKind::Conflict}) {
    const RelayAnswer a{RelayAnswer::Failed, "etcd at 127.0.0.1:2379: no leader", kind};
    auto b = decode_answer(answer_head(a) + a.body);
    REQUIRE(b);
    CHECK(b->kind == RelayAnswer::Failed);
    CHECK(b->error == kind);
    CHECK(b->body == a.body);
  }
  auto ok = decode_answer(answer_head({RelayAnswer::Reply, {}}) + "{\"header\":{}}");
  REQUIRE(ok);
  CHECK(ok->kind == RelayAnswer::Reply);
  CHECK(ok->body == "{\"header\":{}}");
  CHECK(decode_answer("Rbusy")->kind == RelayAnswer::Refused);
  CHECK_FALSE(decode_answer(""));
  CHECK_FALSE(decode_answer("E9no such kind"));
  CHECK_FALSE(decode_answer("E"));
  CHECK_FALSE(decode_answer("Xwhat"));
}

TEST_CASE("a command's identity for the relay: the members in any order, every credential's value") {
  using namespace azlb::store;
  auto identity = [](std::vector<std::string> endpoints, std::string prefix) {
    auto c = EtcdClient::open(EtcdLocation{std::move(endpoints), false, std::move(prefix)});
    REQUIRE(c);
    return (*c)->identity();
  };
  CHECK(identity({"127.0.0.1:1", "127.0.0.1:2"}, "/a") == identity({"127.0.0.1:2", "127.0.0.1:1"}, "/a"));
  CHECK(identity({"127.0.0.1:1"}, "/a") != identity({"127.0.0.1:1", "127.0.0.1:2"}, "/a"));
  CHECK(identity({"127.0.0.1:1"}, "/a") != identity({"127.0.0.1:1"}, "/b"));
  // A length before each field: no two different credentials read alike.
  ::setenv("AZLB_ETCD_USER", "ops:pw", 1);
  const auto with_user = identity({"127.0.0.1:1"}, "/a");
  ::setenv("AZLB_ETCD_USER", "ops:pw2", 1);
  CHECK(identity({"127.0.0.1:1"}, "/a") != with_user);
  ::unsetenv("AZLB_ETCD_USER");
  CHECK(identity({"127.0.0.1:1"}, "/a") != with_user);
}

TEST_CASE("an engine's copy on the relay's wire: decodes to the same snapshot, and nothing else decodes") {
  State s = web_farm();
  auto snap = snapshot_of(s);
  snap.revision = 40;
  snap.objects.begin()->second.mod_revision = 37;
  std::string wire = "head";  // encoded after a frame's head
  etcd::encode_snapshot(snap, 39, wire);
  auto back = etcd::decode_snapshot(std::string_view(wire).substr(4), "/p");
  REQUIRE(back);
  CHECK(back->revision == 39);  // the revision it is exact at, not the watch's newest
  REQUIRE(back->meta);
  CHECK(back->meta->value == snap.meta->value);
  CHECK(back->generation == "g1");
  CHECK(back->objects.size() == snap.objects.size());
  for (auto& [key, v] : snap.objects) {
    REQUIRE(back->objects.count(key));
    CHECK(back->objects[key].value == v.value);
    CHECK(back->objects[key].mod_revision == v.mod_revision);
  }
  auto text = etcd::assemble(*back, "/p");
  REQUIRE(text);
  auto state = azlb::store::parse_text(*text);
  REQUIRE(state);
  CHECK(azlb::store::format_state(*state) == azlb::store::format_state(s));

  const std::string good = wire.substr(4);
  // Cut anywhere, one byte more, another version, another prefix: no copy.
  for (std::size_t n = 0; n < good.size(); n += 1 + n / 16) CHECK_FALSE(etcd::decode_snapshot(good.substr(0, n), "/p"));
  CHECK_FALSE(etcd::decode_snapshot(good + "x", "/p"));
  auto other = good;
  other[13] = '2';  // "azlb-snapshot/2"
  CHECK_FALSE(etcd::decode_snapshot(other, "/p"));
  CHECK_FALSE(etcd::decode_snapshot(good, "/q"));  // its keys are not below /q's objects
  // A key changed after the revision the copy claims, or a meta key that is not azlb's.
  auto later = snap;
  later.objects.begin()->second.mod_revision = 41;
  std::string w2;
  etcd::encode_snapshot(later, 40, w2);
  CHECK_FALSE(etcd::decode_snapshot(w2, "/p"));
  auto broken = snap;
  broken.meta->value = "schema_version = \"two\"\n";
  std::string w3;
  etcd::encode_snapshot(broken, 40, w3);
  CHECK_FALSE(etcd::decode_snapshot(w3, "/p"));
  // Random bytes after the tag never crash it.
  std::mt19937 rng(7);
  for (int i = 0; i < 2000; ++i) {
    auto fuzzed = good;
    for (int k = 0; k < 4; ++k) fuzzed[16 + rng() % (fuzzed.size() - 16)] = static_cast<char>(rng());
    (void)etcd::decode_snapshot(fuzzed, "/p");
  }
}
