#include "cli/render.hpp"

#include "model/text.hpp"

namespace azlb::cli {

using namespace azlb::model;

MemberLive no_engine(const std::string&, const std::string&, const std::string&, const std::string&) { return {}; }

Json to_json(const AclRule& r) {
  return {{"order", r.order},
          {"action", to_string(r.action)},
          {"remote_subnet", r.remote_subnet.to_string()},
          {"description", r.description}};
}

Json to_json(const State& s, const Vm& vm, const Endpoint& e) {
  Json acl = Json::array();
  for (auto& r : acl_of(s, vm, e)) acl.push_back(to_json(r));
  return {{"name", e.name},
          {"protocol", to_string(e.protocol)},
          {"public_port", published(e) ? Json(e.public_port) : Json(nullptr)},  // null: unpublished
          {"private_port", e.private_port},
          {"idle_timeout_min", e.idle_timeout_min},
          {"lbset", e.lbset.empty() ? Json(nullptr) : Json(e.lbset)},
          {"acl", acl},
          {"proxy_protocol", to_string(proxy_protocol_of(s, vm, e))}};
}

Json to_json(const State& s, const Vm& vm) {
  Json eps = Json::array();
  for (auto& e : vm.endpoints) eps.push_back(to_json(s, vm, e));
  return {{"name", vm.name},
          {"cloud_service", vm.cloud_service},
          {"private_ip", vm.private_ip.to_string()},
          {"os", to_string(vm.os)},
          {"image", vm.image},
          {"created_by", to_string(vm.created_by)},
          {"endpoints", eps}};
}

Json to_json(const std::optional<Probe>& p) {
  if (!p) return nullptr;
  Json j = {{"protocol", to_string(p->protocol)}, {"port", p->port}};
  j["path"] = p->protocol == ProbeProtocol::Http ? Json(p->path) : Json(nullptr);
  j["interval_s"] = p->interval_s;
  j["timeout_s"] = p->timeout_s;
  return j;
}

Json to_json(const State& s, const CloudService& svc, const LoadBalancedSet& set, const LiveOf& live) {
  Json acl = Json::array();
  for (auto& r : set.acl) acl.push_back(to_json(r));
  Json members = Json::array();
  for (auto& m : members_of(s, svc, set)) {
    const auto l = live(svc.name, set.name, m.vm->name, m.endpoint->name);
    Json j = {{"vm", m.vm->name},
              {"endpoint", m.endpoint->name},
              {"private_ip", m.vm->private_ip.to_string()},
              {"private_port", m.endpoint->private_port},
              {"weight", m.endpoint->weight},
              {"health", l.health},
              {"admin_state", to_string(m.endpoint->admin_state)}};
    if (l.active) j["active_connections"] = *l.active;
    if (l.share) j["share"] = *l.share;
    members.push_back(std::move(j));
  }
  return {{"name", set.name},
          {"cloud_service", svc.name},
          {"protocol", to_string(set.protocol)},
          {"public_port", set.public_port},
          {"distribution", to_string(set.distribution)},
          {"probe", to_json(set.probe)},
          {"when_all_down", to_string(set.when_all_down)},
          {"acl", acl},
          {"proxy_protocol", to_string(set.proxy_protocol)},
          {"direct_server_return", set.direct_server_return},
          {"members", members}};
}

Json to_json(const State& s, const CloudService& svc, const LiveOf& live) {
  Json vms = Json::array(), sets = Json::array();
  for (auto* vm : vms_of(s, svc)) vms.push_back(to_json(s, *vm));
  for (auto& set : svc.lbsets) sets.push_back(to_json(s, svc, set, live));
  return {{"name", svc.name},
          {"vip", svc.vip.to_string()},
          {"dns", svc.dns()},
          {"subnet", svc.subnet.to_string()},
          {"dataplane", to_string(svc.dataplane)},
          {"vms", vms},
          {"lbsets", sets}};
}

std::string port_mapping(const Endpoint& e) {
  if (!published(e)) return std::string(to_string(e.protocol)) + " unpublished->" + std::to_string(e.private_port);
  return std::string(to_string(e.protocol)) + " " + std::to_string(e.public_port) + "->" +
         std::to_string(e.private_port);
}

std::string public_port_text(const Endpoint& e) { return published(e) ? std::to_string(e.public_port) : "-"; }

std::string describe(const std::optional<Probe>& p) {
  if (!p) return "none (every member counts as up)";
  std::string s = std::string(to_string(p->protocol)) + ":" + std::to_string(p->port);
  if (p->protocol == ProbeProtocol::Http) s += p->path;
  return s + " every " + std::to_string(p->interval_s) + " s, down after " + std::to_string(p->timeout_s) + " s";
}

std::string describe(const std::vector<PortMove>& moves) {
  std::string s;
  for (auto& m : moves) {
    s += (s.empty() ? "" : ", ") + m.vm + "/" + m.endpoint;
    s += !m.kept          ? " removed"
         : m.to == 0      ? " unpublished"
         : m.from == m.to ? " keeps public port " + std::to_string(m.to)
                          : " moves from public port " + std::to_string(m.from) + " to " + std::to_string(m.to);
  }
  return s;
}

std::vector<std::string> shrunk_sets(const model::State& before, const model::State& after) {
  std::vector<std::string> out;
  for (auto& svc : before.services)
    for (auto& set : svc.lbsets) {
      const auto was = model::members_of(before, svc, set).size();
      const auto* svc_now = model::find_service(after, svc.name);
      const auto* set_now = svc_now ? model::find_lbset(*svc_now, set.name) : nullptr;
      const auto now = set_now ? model::members_of(after, *svc_now, *set_now).size() : 0;
      if (now >= was || !set_now) continue;  // a deleted set is said by its own command
      out.push_back("load-balanced set " + q(set.name) + " now has " +
                    (now == 0 ? std::string("no member: its port refuses every client")
                              : model::count(now, "member", "members")) +
                    " (was " + std::to_string(was) + ")");
    }
  return out;
}

}  // namespace azlb::cli
