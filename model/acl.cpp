#include "model/acl.hpp"

#include <algorithm>

namespace azlb::model {

bool acl_permits(const std::vector<AclRule>& rules, const IpAddress& client) {
  for (auto& r : rules)
    if (r.remote_subnet.contains(client)) return r.action == AclAction::Permit;
  return std::none_of(rules.begin(), rules.end(), [](auto& r) { return r.action == AclAction::Permit; });
}

}  // namespace azlb::model
