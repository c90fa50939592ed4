// An engine's copy of a state in etcd, as its relay hands it to a command of
// the same host (store/etcd_relay.hpp, kRelaySnapshotPath): the keys of the
// generation in force with their mod_revisions, the meta key, and the
// revision up to which every change to them is in the copy. Binary, not
// etcd's JSON: a command reads it in microseconds, where a range's JSON and
// base64 cost it milliseconds.
//
//   "azlb-snapshot/1\n"  revision (i64)  meta: present (u8), mod_revision
//   (i64), value (u32 length, bytes)  count (u32)  each key: key (u32
//   length, bytes), mod_revision (i64), value (u32 length, bytes)
//
// Integers little endian. Both ends are one build's, on one host; the tag
// lets a newer command refuse an older engine's copy and go to etcd.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "store/etcd_state.hpp"

namespace azlb::store::etcd {

// `revision`: the revision the copy is exact at (every change to its keys
// up to it is in), which the guards of a change made from it compare.
// Appends to `out` (a relay's frame, its head already there).
void encode_snapshot(const Snapshot&, std::int64_t revision, std::string& out);
// The snapshot of the state at `prefix`, or nullopt when `wire` is not one
// (another version, cut short, a key outside the generation in force).
std::optional<Snapshot> decode_snapshot(std::string_view wire, const std::string& prefix);

}  // namespace azlb::store::etcd
