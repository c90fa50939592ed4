// How Azure evaluated an endpoint's network ACL on a client's address.
#pragma once

#include <vector>

#include "model/state.hpp"

namespace azlb::model {

// Rules are sorted by order and the first match wins. If the list holds any
// permit rule, an address that matches nothing is denied (an allow-list);
// with only deny rules, the rest is permitted (a block-list); an empty list
// permits everything.
bool acl_permits(const std::vector<AclRule>& rules, const IpAddress& client);

}  // namespace azlb::model
