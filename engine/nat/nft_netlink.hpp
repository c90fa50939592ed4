// Questions to nf_tables asked over netlink directly, without
// libnftables (which waits with select() and must never see a large
// descriptor, low_fd_thread.hpp): cheap enough to ask every second.
#pragma once

#include <cstdint>
#include <optional>
#include <string>

namespace azlb::engine {

// Whether table `name` of family inet exists; nullopt when the kernel cannot
// be asked (no nf_tables, no CAP_NET_ADMIN).
std::optional<bool> nft_inet_table_exists(const std::string& name);

// The ruleset's generation: every committed change of any table, by any
// program, makes a new one. nullopt when the kernel cannot be asked.
std::optional<std::uint32_t> nft_generation();

// What the table `name` of `family` (NFPROTO_INET, _IPV4, _IPV6) is made of,
// as one number: its chains (name,
// handle, hook, policy), rules (chain, handle) and sets (name, handle,
// flags). Any rule added, deleted or replaced, any chain or set made or
// deleted, changes it; counters and set elements do not (a table with a
// 65,537-slot map is read in a millisecond, where libnftables' listing takes
// a second). nullopt when the table is missing or the kernel cannot be asked.
std::optional<std::uint64_t> nft_table_fingerprint(const std::string& name, std::uint8_t family = 1 /* NFPROTO_INET */);

}  // namespace azlb::engine
