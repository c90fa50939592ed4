// Fuzz target: any bytes as the text values a user types. The input is split
// at NUL bytes into values, which go where the CLI puts its arguments: names,
// an image label, an --endpoint spec, ports, addresses, a probe path, an ACL
// description. Each command either refuses with one line and leaves the state
// as it was, or applies, and the state then saves and loads unchanged.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "model/ops.hpp"
#include "model/values.hpp"
#include "tests/fuzz/properties.hpp"

using namespace azlb::model;
namespace fz = azlb::fuzz;

namespace {

// Stores the value of a Result in `lhs`, or returns its error.
#define ASSIGN_TO(lhs, expr)                     \
  do {                                           \
    auto r_ = (expr);                            \
    if (!r_.ok()) return r_.error();             \
    lhs = std::move(r_).value();                 \
  } while (0)

class Values {
 public:
  Values(const std::uint8_t* data, std::size_t size) : text_(reinterpret_cast<const char*>(data), size) {}
  std::string next() {
    if (pos_ > text_.size()) return {};
    auto end = text_.find('\0', pos_);
    if (end == std::string_view::npos) end = text_.size();
    std::string v(text_.substr(pos_, end - pos_));
    pos_ = end + 1;
    return v;
  }

 private:
  std::string_view text_;
  std::size_t pos_ = 0;
};

// Runs one command on a copy; on success the copy becomes the state.
template <class Op>
void command(State& s, Op op) {
  State copy = s;
  auto r = op(copy);
  if (!r) return fz::check_refusal(r.error());
  fz::check_round_trip(copy);
  s = std::move(copy);
}

State base() {
  State s;
  VmRequest vm;
  vm.name = "vm1";
  vm.cloud_service = "web";
  if (!create_vm(s, vm)) fz::broken("the base state builds", "create_vm");
  EndpointRequest ep;
  ep.vm = "vm1";
  ep.spec = {"http", Protocol::Tcp, 8080, 80};
  ep.lbset = "webset";
  ep.set_options.probe_protocol = ProbeProtocol::Http;
  ep.set_options.probe_path = std::string(1, '/');  // from a char: GCC 12 warns (falsely, -Wrestrict) on = "/"
  if (!add_endpoint(s, ep)) fz::broken("the base state builds", "add_endpoint");
  return s;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  static const State kBase = base();
  State s = kBase;
  Values in(data, size);

  // vm create NAME --cloud-service web --image IMAGE --private-ip IP --endpoint SPEC
  const std::string vm_name = in.next(), image = in.next(), ip = in.next(), spec = in.next();
  command(s, [&](State& st) -> Status {
    VmRequest r;
    r.name = vm_name;
    r.cloud_service = "web";
    r.image = image;
    if (!ip.empty()) ASSIGN_TO(r.private_ip, parse_ip("private IP", ip));
    if (!spec.empty()) {
      AZLB_ASSIGN(e, parse_endpoint_spec(spec));
      r.endpoints.push_back(e);
    }
    AZLB_TRY(create_vm(st, r));
    return ok();
  });

  // endpoint add VM --name NAME --protocol P --public-port N --private-port N --lbset SET --probe-path PATH
  const std::string ep_vm = in.next(), ep_name = in.next(), proto = in.next(), pub = in.next(), priv = in.next(),
                    set = in.next(), path = in.next();
  command(s, [&](State& st) -> Status {
    EndpointRequest r;
    r.vm = ep_vm;
    r.spec.name = ep_name;
    ASSIGN_TO(r.spec.protocol, parse_protocol(proto));
    ASSIGN_TO(r.spec.public_port, parse_u16("public port", pub));
    ASSIGN_TO(r.spec.private_port, parse_u16("private port", priv));
    r.lbset = set;
    if (!path.empty()) {
      r.set_options.probe_protocol = ProbeProtocol::Http;
      r.set_options.probe_path = path;
    }
    AZLB_TRY(add_endpoint(st, r));
    return ok();
  });

  // endpoint acl add vm1 http --order N --action A --remote-subnet CIDR --description TEXT
  const std::string order = in.next(), action = in.next(), subnet = in.next(), description = in.next();
  command(s, [&](State& st) -> Status {
    AclRule rule;
    ASSIGN_TO(rule.order, parse_u32("ACL order", order));
    ASSIGN_TO(rule.action, parse_acl_action(action));
    ASSIGN_TO(rule.remote_subnet, parse_cidr("remote subnet", subnet));
    rule.description = description;
    AZLB_TRY(add_acl_rule(st, "vm1", "http", rule));
    return ok();
  });

  // lbset set webset --probe-path PATH --probe-interval N --probe-timeout N
  const std::string set_path = in.next(), interval = in.next(), timeout = in.next();
  command(s, [&](State& st) -> Status {
    SetOptions o;
    if (!set_path.empty()) o.probe_path = set_path;
    if (!interval.empty()) ASSIGN_TO(o.probe_interval_s, parse_u32("probe interval", interval));
    if (!timeout.empty()) ASSIGN_TO(o.probe_timeout_s, parse_u32("probe timeout", timeout));
    return update_lbset(st, SetRef{"webset", ""}, o);
  });

  // Whatever was left: a name as every lookup takes it.
  const std::string lookup = in.next();
  if (auto r = vm_or_error(s, lookup); !r) fz::check_refusal(r.error());
  return 0;
}
