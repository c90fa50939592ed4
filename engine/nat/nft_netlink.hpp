// Two questions to nf_tables asked over netlink directly, without
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

}  // namespace azlb::engine
