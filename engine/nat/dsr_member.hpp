// What a member of a direct-server-return set needs on its own host: the
// VIP on its loopback (it receives packets addressed to the VIP and answers
// from it), and for IPv4 ARP kept to the addresses of each interface, so
// that the member never answers for the VIP on the shared link (where the
// balancer hosts must get the VIP's packets from the routers).
#pragma once

#include <string>
#include <vector>

#include "model/address.hpp"
#include "model/error.hpp"

namespace azlb::engine {

// The shell commands, one a line, that set it up by hand.
std::vector<std::string> dsr_member_commands(const model::IpAddress& vip);
// The same, done here (needs CAP_NET_ADMIN); what was there already is kept.
model::Status apply_dsr_member(const model::IpAddress& vip);

}  // namespace azlb::engine
