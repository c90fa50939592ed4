#include "model/ops_support.hpp"

#include <algorithm>

#include "model/text.hpp"

namespace azlb::model {

Result<std::uint16_t> free_public_port(const State& s, const CloudService& svc, Protocol proto,
                                       std::uint16_t preferred, std::uint16_t start) {
  if (preferred && public_port_free(s, svc, proto, preferred)) return preferred;
  for (unsigned p = start; p <= 65535; ++p)
    if (public_port_free(s, svc, proto, static_cast<std::uint16_t>(p))) return static_cast<std::uint16_t>(p);
  for (unsigned p = 1024; p < start; ++p)
    if (public_port_free(s, svc, proto, static_cast<std::uint16_t>(p))) return static_cast<std::uint16_t>(p);
  return conflict("cloud service " + quote(svc.name) + " has no free public port");
}

Endpoint endpoint_from(const EndpointSpec& spec) {
  Endpoint e;
  e.name = spec.name;
  e.protocol = spec.protocol;
  e.public_port = spec.public_port;
  e.private_port = spec.private_port;
  return e;
}

Detached detach(Vm& vm, const Endpoint* ep) {
  auto it = vm.endpoints.begin() + (ep - vm.endpoints.data());
  Detached d{std::move(*it), static_cast<std::size_t>(it - vm.endpoints.begin())};
  vm.endpoints.erase(it);
  return d;
}

Status reattach(State& s, std::string_view vm_name, Detached d) {
  AZLB_TRY(insert_endpoint(s, vm_name, std::move(d.endpoint)));
  auto& eps = find_vm(s, vm_name)->endpoints;
  std::rotate(eps.begin() + static_cast<std::ptrdiff_t>(d.index), eps.end() - 1, eps.end());
  return ok();
}

}  // namespace azlb::model
