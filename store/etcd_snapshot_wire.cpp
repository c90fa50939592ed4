#include "store/etcd_snapshot_wire.hpp"

#include <iterator>

namespace azlb::store::etcd {

namespace {

constexpr std::string_view kTag = "azlb-snapshot/1\n";

template <class T>
void put_int(std::string& out, T v) {
  unsigned char b[sizeof(T)];
  for (std::size_t i = 0; i < sizeof(T); ++i) b[i] = static_cast<unsigned char>(static_cast<std::uint64_t>(v) >> (8 * i));
  out.append(reinterpret_cast<const char*>(b), sizeof b);
}

void put_bytes(std::string& out, const std::string& s) {
  put_int(out, static_cast<std::uint32_t>(s.size()));
  out += s;
}

struct Reader {
  std::string_view in;
  bool ok = true;

  template <class T>
  T get_int() {
    if (in.size() < sizeof(T)) {
      ok = false;
      return 0;
    }
    std::uint64_t v = 0;
    for (std::size_t i = 0; i < sizeof(T); ++i) v |= std::uint64_t(static_cast<unsigned char>(in[i])) << (8 * i);
    in.remove_prefix(sizeof(T));
    return static_cast<T>(v);
  }
  std::string get_bytes() {
    const auto n = get_int<std::uint32_t>();
    if (!ok || in.size() < n) {
      ok = false;
      return {};
    }
    std::string s(in.substr(0, n));
    in.remove_prefix(n);
    return s;
  }
};

}  // namespace

void encode_snapshot(const Snapshot& snap, std::int64_t revision, std::string& out) {
  std::size_t bytes = kTag.size() + 32 + (snap.meta ? snap.meta->value.size() : 0);
  for (const auto& [key, v] : snap.objects) bytes += key.size() + v.value.size() + 16;
  out.reserve(out.size() + bytes);
  out += kTag;
  put_int(out, revision);
  put_int(out, static_cast<std::uint8_t>(snap.meta ? 1 : 0));
  if (snap.meta) {
    put_int(out, snap.meta->mod_revision);
    put_bytes(out, snap.meta->value);
  }
  put_int(out, static_cast<std::uint32_t>(snap.objects.size()));
  for (const auto& [key, v] : snap.objects) {
    put_bytes(out, key);
    put_int(out, v.mod_revision);
    put_bytes(out, v.value);
  }
}

std::optional<Snapshot> decode_snapshot(std::string_view wire, const std::string& prefix) {
  if (wire.substr(0, kTag.size()) != kTag) return std::nullopt;
  Reader r{wire.substr(kTag.size())};
  Snapshot snap;
  snap.prefix = prefix;
  snap.revision = r.get_int<std::int64_t>();
  const auto has_meta = r.get_int<std::uint8_t>();
  if (!r.ok || snap.revision <= 0 || has_meta > 1) return std::nullopt;
  if (has_meta) {
    Value meta;
    meta.mod_revision = r.get_int<std::int64_t>();
    meta.value = r.get_bytes();
    if (!r.ok || meta.mod_revision <= 0 || meta.mod_revision > snap.revision || !snap.set_meta(std::move(meta)))
      return std::nullopt;
  }
  const auto count = r.get_int<std::uint32_t>();
  // Each key takes 16 bytes at least: a count the rest cannot hold is a lie.
  if (!r.ok || count > r.in.size() / 16) return std::nullopt;
  const std::string base = objects_prefix(prefix) + snap.generation + "/";
  for (std::uint32_t i = 0; i < count; ++i) {
    auto key = r.get_bytes();
    Value v;
    v.mod_revision = r.get_int<std::int64_t>();
    v.value = r.get_bytes();
    if (!r.ok || snap.generation.empty() || key.compare(0, base.size(), base) != 0 || v.mod_revision <= 0 ||
        v.mod_revision > snap.revision)
      return std::nullopt;
    auto hint = snap.objects.end();
    if (!snap.objects.empty() && !(std::prev(hint)->first < key)) return std::nullopt;  // in key order, once each
    snap.objects.emplace_hint(hint, std::move(key), std::move(v));
  }
  if (!r.in.empty()) return std::nullopt;
  return snap;
}

}  // namespace azlb::store::etcd
