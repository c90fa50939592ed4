#include "engine/control/config_diff.hpp"

#include <map>

#include "engine/proxy/sockets.hpp"
#include "model/text.hpp"

namespace azlb::engine {

namespace {

struct Seen {
  const Route* route;
  bool nat;
};

std::map<std::string, Seen> by_name(const Config& c) {
  std::map<std::string, Seen> out;
  for (auto& r : c.routes) out[r.name] = {&r, false};
  for (auto& r : c.nat_routes) out[r.name] = {&r, true};
  return out;
}

std::string what(const Route& r) { return (r.lbset.empty() ? "endpoint " : "set ") + r.name; }

std::string describe_probe(const model::Probe& p) {
  std::string s = std::string(model::to_string(p.protocol)) + " :" + std::to_string(p.port);
  if (p.protocol == model::ProbeProtocol::Http) s += p.path;
  return s + " every " + std::to_string(p.interval_s) + " s, down after " + std::to_string(p.timeout_s) + " s";
}

// The probe of each member, by its key.
std::map<MemberKey, const model::Probe*> probes_of(const Config& c) {
  std::map<MemberKey, const model::Probe*> out;
  for (auto& p : c.probes) out[p.member->key] = &p.probe;
  return out;
}

std::string member_address(const Upstream& u) { return describe(u.addr); }

void compare_members(const Route& a, const Route& b, std::vector<std::string>& parts) {
  std::map<std::string, const Upstream*> old_members, new_members;
  for (auto& u : a.upstreams) old_members[u.state->key.vm] = &u;
  for (auto& u : b.upstreams) new_members[u.state->key.vm] = &u;
  for (auto& [vm, u] : new_members) {
    auto it = old_members.find(vm);
    if (it == old_members.end()) {
      parts.push_back(vm + " joined" + (u->drained ? " (drained)" : ""));
      continue;
    }
    const Upstream& o = *it->second;
    if (o.drained != u->drained) parts.push_back(vm + (u->drained ? " drained" : " undrained"));
    if (member_address(o) != member_address(*u))
      parts.push_back(vm + " now at " + member_address(*u) + " (was " + member_address(o) + ")");
    if (o.idle_timeout_ms != u->idle_timeout_ms)
      parts.push_back(vm + " idle timeout " + std::to_string(u->idle_timeout_ms / 1000) + " s");
  }
  for (auto& [vm, u] : old_members)
    if (!new_members.contains(vm)) parts.push_back(vm + " left");
}

}  // namespace

std::vector<std::string> config_changes(const Config& before, const Config& after) {
  std::vector<std::string> out;
  const auto old_routes = by_name(before), new_routes = by_name(after);
  const auto old_probes = probes_of(before), new_probes = probes_of(after);
  for (auto& [name, seen] : new_routes) {
    const Route& r = *seen.route;
    auto it = old_routes.find(name);
    if (it == old_routes.end()) {
      out.push_back(what(r) + " added (" + r.key.to_string() +
                    (r.lbset.empty() ? "" : ", " + model::count(r.upstreams.size(), "member", "members")) +
                    (seen.nat ? ", nat" : "") + ")");
      continue;
    }
    const Route& o = *it->second.route;
    std::vector<std::string> parts;
    if (!(o.key == r.key)) parts.push_back("now " + r.key.to_string() + " (was " + o.key.to_string() + ")");
    if (it->second.nat != seen.nat) parts.push_back(std::string("now on the ") + (seen.nat ? "nat" : "proxy") + " plane");
    if (o.distribution != r.distribution)
      parts.push_back("distribution " + std::string(model::to_string(r.distribution)));
    if (o.when_all_down != r.when_all_down)
      parts.push_back("when all down " + std::string(model::to_string(r.when_all_down)));
    if (o.proxy_protocol != r.proxy_protocol)
      parts.push_back("PROXY protocol " + std::string(model::to_string(r.proxy_protocol)));
    if (o.acl != r.acl) parts.push_back("ACL " + model::count(r.acl.size(), "rule", "rules"));
    compare_members(o, r, parts);
    // A set's probe, as its first member has it (every member has the same).
    if (!r.upstreams.empty() && !o.upstreams.empty()) {
      auto po = old_probes.find(o.upstreams.front().state->key), pn = new_probes.find(r.upstreams.front().state->key);
      const model::Probe* a = po == old_probes.end() ? nullptr : po->second;
      const model::Probe* b = pn == new_probes.end() ? nullptr : pn->second;
      if ((a == nullptr) != (b == nullptr) || (a && b && !(*a == *b)))
        parts.push_back(b ? "probe " + describe_probe(*b) : std::string("no probe"));
    }
    if (parts.empty()) continue;
    std::string line = what(r) + ": ";
    for (std::size_t i = 0; i < parts.size(); ++i) line += (i ? ", " : "") + parts[i];
    out.push_back(std::move(line));
  }
  for (auto& [name, seen] : old_routes)
    if (!new_routes.contains(name)) out.push_back(what(*seen.route) + " removed (" + seen.route->key.to_string() + ")");
  return out;
}

}  // namespace azlb::engine
