#include "engine/nat/nat_plane.hpp"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <linux/capability.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cstdio>
#include <nlohmann/json.hpp>
#include <set>

#include "engine/nat/nat_libs.hpp"
#include "engine/nat/nft_netlink.hpp"

namespace azlb::engine {

namespace {

using model::Protocol;

struct Target {
  std::string addr;  // as nftables writes it: 10.0.0.1 or [2001:db8::1]
  std::uint16_t port;
};

Target target_of(const Upstream& u) {
  char buf[INET6_ADDRSTRLEN] = "";
  if (u.addr.ss_family == AF_INET6) {
    auto& sa = reinterpret_cast<const sockaddr_in6&>(u.addr);
    inet_ntop(AF_INET6, &sa.sin6_addr, buf, sizeof buf);
    std::string addr = "[";  // appended: `"[" + std::string(buf)` trips GCC 12's false -Wrestrict
    addr += buf;
    addr += ']';
    return {addr, ntohs(sa.sin6_port)};
  }
  auto& sa = reinterpret_cast<const sockaddr_in&>(u.addr);
  inet_ntop(AF_INET, &sa.sin_addr, buf, sizeof buf);
  return {buf, ntohs(sa.sin_port)};
}

bool v6(const Route& r) { return r.key.address.family == model::Family::V6; }
// A member of the other family than the VIP cannot be a DNAT target (the
// model refuses one in a nat service; an edited file is checked the same).
bool same_family(const Route& r, const Upstream& u) { return (u.addr.ss_family == AF_INET6) == v6(r); }
const char* family(const Route& r) { return v6(r) ? "ip6" : "ip"; }
const char* l4(const Route& r) { return r.key.protocol == Protocol::Tcp ? "tcp" : "udp"; }

// The members a new flow may go to now, in route order.
std::vector<const Upstream*> usable(const Route& r) {
  std::vector<const Upstream*> up, all;
  for (auto& u : r.upstreams) {
    if (u.drained || !same_family(r, u)) continue;
    all.push_back(&u);
    if (u.state->eligible()) up.push_back(&u);
  }
  if (up.empty() && r.when_all_down == model::WhenAllDown::ServeAll) return all;
  return up;
}

std::string cidr_match(const Route& r, const model::Cidr& c) {
  const bool rule_v6 = c.base.family == model::Family::V6;
  if (rule_v6 != v6(r)) return "";  // a rule of the other family never matches this route
  return std::string(family(r)) + " saddr " + c.to_string();
}

std::uint32_t seed_of(const std::string& table) {
  std::uint32_t h = 2166136261u;
  for (unsigned char c : table) h = (h ^ c) * 16777619u;
  return h;
}

std::uint64_t key_hash(const MemberKey& k) {
  std::uint64_t h = 1469598103934665603ull;
  for (auto* part : {&k.service, &k.set, &k.vm, &k.endpoint}) {
    for (unsigned char c : *part) h = (h ^ c) * 1099511628211ull;
    h = (h ^ '/') * 1099511628211ull;
  }
  return h;
}

std::string hex(std::uint32_t v) {
  char buf[16];
  std::snprintf(buf, sizeof buf, "0x%08x", v);
  return buf;
}

// A new flow finds its route in one lookup, however many routes there are:
// by VIP, protocol and port, or for a wildcard VIP (any address of this
// host, never one it forwards to) by protocol and port. One map per family
// and kind, each with the rule that looks a packet up in it.
struct Dispatch {
  const char* name;
  const char* type;
  const char* lookup;
  std::string to_new, to_pick;  // elements: verdicts of the new-flow and the DNAT chains
  std::string to_dsr, dsr_dests;  // direct server return: verdicts of its chains, and its destinations
};

std::array<Dispatch, 4> dispatch_maps() {
  return {{{"v4", "ipv4_addr . inet_proto . inet_service", "meta nfproto ipv4 ip daddr . meta l4proto . th dport", "", "", "", ""},
           {"v6", "ipv6_addr . inet_proto . inet_service", "meta nfproto ipv6 ip6 daddr . meta l4proto . th dport", "", "", "", ""},
           {"any4", "inet_proto . inet_service", "meta nfproto ipv4 fib daddr type local meta l4proto . th dport", "", "", "", ""},
           {"any6", "inet_proto . inet_service", "meta nfproto ipv6 fib daddr type local meta l4proto . th dport", "", "", "", ""}}};
}

Dispatch& dispatch_of(std::array<Dispatch, 4>& maps, const Route& r) {
  return maps[(r.key.address.is_unspecified() ? 2 : 0) + (v6(r) ? 1 : 0)];
}

std::string dispatch_key(const Route& r) {
  const std::string tail = std::string(l4(r)) + " . " + std::to_string(r.key.port);
  return r.key.address.is_unspecified() ? tail : r.key.address.to_string() + " . " + tail;
}

void append(std::string& list, const std::string& item) {
  if (!list.empty()) list += ", ";
  list += item;
}

// A route's conntrack timeout policy: the members' longest idle timeout
// (none is cut before its endpoint's own), short once a TCP flow closes, so
// that a high rate of new connections does not fill conntrack.
std::string timeout_policy(const Route& r, const std::string& id) {
  std::uint32_t idle_s = 1;
  for (auto& u : r.upstreams) idle_s = std::max(idle_s, (u.idle_timeout_ms + 999) / 1000);
  const std::string head = "  ct timeout t" + id + " {\n    protocol " + l4(r) + "; l3proto " + family(r) +
                           "\n    policy = { ";
  if (r.key.protocol == Protocol::Tcp)
    return head + "established: " + std::to_string(idle_s) +
           ", close_wait: 10, last_ack: 10, time_wait: 10, close: 10 }\n  }\n";
  return head + "unreplied: " + std::to_string(std::min<std::uint32_t>(idle_s, 30)) +
         ", replied: " + std::to_string(idle_s) + " }\n  }\n";
}

// A route's new flow: its timeout, then the ACL in order, the first rule
// that matches deciding (as the proxy plane checks a client once, when it
// connects); with no member to take it, refused.
std::string new_flow_rules(const Route& r, const std::string& id, bool no_member) {
  std::string rules = "    ct timeout set \"t" + id + "\"\n";
  bool any_permit = false;
  for (auto& rule : r.acl) {
    any_permit = any_permit || rule.action == model::AclAction::Permit;
    const auto c = cidr_match(r, rule.remote_subnet);
    if (c.empty()) continue;
    rules += "    " + c + " counter " + (rule.action == model::AclAction::Permit ? "accept" : "drop") + "\n";
  }
  if (any_permit) rules += "    counter drop\n";  // permit rules: whoever matched none is denied
  // refuse: a TCP client learns at once (a reset), as from the proxy plane.
  if (no_member) rules += r.key.protocol == Protocol::Tcp ? "    counter reject with tcp reset\n" : "    counter drop\n";
  return rules;
}

// jhash's 32-bit seed from the state's.
std::uint32_t jhash_seed(std::uint64_t seed) { return static_cast<std::uint32_t>(seed ^ (seed >> 32)); }

// The member of a new flow: the mark of its slot in the route's Maglev
// table (a jhash of the five-tuple, of the client's address, or of the
// address and protocol, with the state's seed, into a map of slots that
// holds each slot's member, or while that one may not take flows the next
// slot's that may), then the DNAT to the marked member. One member: its mark.
// The mark a new flow gets: its slot's member's in the route's slot map
// (added to `objects`), keyed on `mark_key` ("ct mark", "meta mark").
std::string slot_mark(const Route& r, const std::vector<const Upstream*>& members, const NatMarks& marks,
                      const std::string& id, std::string& objects, const char* mark_key) {
  std::string mark;
  if (members.size() == 1 || !r.table || r.table->empty()) {
    mark = hex(marks.at(members.front()->state));
  } else {
    const auto effective = r.table->effective([&](std::uint32_t i) {
      return std::find(members.begin(), members.end(), &r.upstreams[i]) != members.end();
    });
    std::string slots;
    slots.reserve(effective.size() * 18);
    for (std::size_t s = 0; s < effective.size(); ++s)
      append(slots, std::to_string(s) + " : " + hex(marks.at(r.upstreams[static_cast<std::size_t>(effective[s])].state)));
    const auto size = std::to_string(r.table->size());
    objects += "  map slots" + id + " {\n    typeof numgen random mod " + size + " : " + mark_key + "\n    elements = { " +
               slots + " }\n  }\n";
    const std::string f = family(r), p = l4(r);
    std::string key;
    if (r.distribution == model::Distribution::FiveTuple)
      key = f + " saddr . " + p + " sport . " + f + " daddr . " + p + " dport";
    else if (r.distribution == model::Distribution::SourceIp)
      key = f + " saddr";
    else
      key = f + " saddr . meta l4proto";
    mark = "jhash " + key + " mod " + size + " seed " + hex(jhash_seed(r.seed)) + " map @slots" + id;
  }
  return mark;
}

std::string pick_rules(const Route& r, const std::vector<const Upstream*>& members, const NatMarks& marks,
                       const std::string& id, std::string& objects) {
  std::string by_mark;
  for (auto* u : members) {
    const auto t = target_of(*u);
    append(by_mark, hex(marks.at(u->state)) + " : " + t.addr + " . " + std::to_string(t.port));
  }
  return "    ct mark set " + slot_mark(r, members, marks, id, objects, "ct mark") + "\n    meta l4proto " + l4(r) +
         " counter dnat " + family(r) + " to ct mark map { " + by_mark + " }\n";
}

// A direct-server-return route's packet, every one (conntrack does not see
// them: the host sees one direction only). A flow pinned to a member of the
// route (the pins table, nat_pins_script) keeps it; the others pass the ACL
// and get their slot's member's mark, which policy routing (dsr_routes.hpp)
// turns into that member as next hop, the packet unchanged. Counted for
// its member, by the mark.
std::string dsr_rules(const Route& r, const std::vector<const Upstream*>& members, const NatMarks& marks,
                      const std::string& id, std::string& objects) {
  std::string all, names;
  for (auto& u : r.upstreams) {
    if (!same_family(r, u)) continue;
    append(all, hex(marks.at(u.state)));
    append(names, hex(marks.at(u.state)) + " : \"" + nat_counter_name(u.state->key, true) + "\"");
  }
  if (all.empty()) return "    counter drop\n";
  const std::string count = "counter name meta mark map { " + names + " }";
  std::string rules = "    meta mark { " + all + " } " + count + " return\n";
  bool any_permit = false;
  for (auto& rule : r.acl) {
    any_permit = any_permit || rule.action == model::AclAction::Permit;
    const auto c = cidr_match(r, rule.remote_subnet);
    if (c.empty()) continue;
    rules += "    " + c + (rule.action == model::AclAction::Permit ? " goto dsr_pick" + id : " counter drop") + "\n";
  }
  // Permit rules: whoever matched none is denied; the permitted went on to dsr_pick.
  rules += any_permit ? "    counter drop\n" : "    goto dsr_pick" + id + "\n";
  std::string pick = members.empty() ? "    counter drop\n"
                                     : "    meta mark set " + slot_mark(r, members, marks, id, objects, "meta mark") +
                                           " " + count + "\n";
  return rules + "  }\n  chain dsr_pick" + id + " {\n" + pick;
}

std::string base_chain(const char* name, const char* type, const char* hook, const char* prio, const std::string& rules) {
  return std::string("  chain ") + name + " {\n    type " + type + " hook " + hook + " priority " + prio +
         "; policy accept;\n" + rules + "  }\n";
}

}  // namespace

std::string nat_table_name(const std::string& state_path) {
  char buf[16];
  std::snprintf(buf, sizeof buf, "%08x", seed_of(state_path));
  return std::string("azlb_") + buf;
}

std::string nat_counter_name(const MemberKey& k, bool in) {
  char buf[24];
  std::snprintf(buf, sizeof buf, "m%016llx", static_cast<unsigned long long>(key_hash(k)));
  return std::string(buf) + (in ? "_in" : "_out");
}

NatMarks nat_marks(const std::string& table, const std::vector<const Route*>& routes) {
  // Stable for the table and a member's key, so that a flow marked before a
  // reload is still its member's after it, and another engine's members
  // (another state file, maybe the same names) have marks of their own; a
  // clash of the low 24 bits takes the next free value, in the keys' order.
  std::map<MemberKey, std::uint32_t> by_key;
  for (auto* r : routes)
    for (auto& u : r->upstreams) by_key.emplace(u.state->key, 0);
  std::set<std::uint32_t> taken;
  for (auto& [key, mark] : by_key) {
    const std::uint64_t h = key_hash(key) ^ (std::uint64_t{seed_of(table)} * 0x9e3779b97f4a7c15ull);
    std::uint32_t low = static_cast<std::uint32_t>(h ^ (h >> 32)) & ~kNatMarkMask;
    while (low == 0 || taken.contains(low)) low = (low + 1) & ~kNatMarkMask;
    taken.insert(low);
    mark = kNatMarkTag | low;
  }
  NatMarks out;
  for (auto* r : routes)
    for (auto& u : r->upstreams) out[u.state] = by_key[u.state->key];
  return out;
}

std::string nat_script(const std::string& table, const std::vector<const Route*>& routes, bool draining,
                       const CounterValues& carried) {
  const NatMarks marks = nat_marks(table, routes);
  auto maps = dispatch_maps();
  std::string objects, counted_by, chains;
  std::set<std::string> counted;
  for (std::size_t i = 0; i < routes.size(); ++i) {
    const Route& r = *routes[i];
    const std::string id = std::to_string(i);
    objects += timeout_policy(r, id);
    // Each member's packets and bytes, both ways, found by its flows' mark.
    for (auto& u : r.upstreams) {
      if (!same_family(r, u) || !counted.insert(nat_counter_name(u.state->key, true)).second) continue;
      for (bool in : {true, false}) {
        const auto name = nat_counter_name(u.state->key, in);
        auto it = carried.find(name);
        const auto [packets, bytes] = it == carried.end() ? std::pair<std::uint64_t, std::uint64_t>{0, 0} : it->second;
        objects += "  counter " + name + " { packets " + std::to_string(packets) + " bytes " +
                   std::to_string(bytes) + " }\n";
        append(counted_by, hex(marks.at(u.state)) + " . " + (in ? "original" : "reply") + " : \"" + name + "\"");
      }
    }
    const auto members = draining ? std::vector<const Upstream*>{} : usable(r);
    auto& d = dispatch_of(maps, r);
    if (r.dsr) {
      chains += "  chain dsr" + id + " {\n" + dsr_rules(r, members, marks, id, objects) + "  }\n";
      append(d.to_dsr, dispatch_key(r) + " : jump dsr" + id);
      append(d.dsr_dests, dispatch_key(r));
      continue;
    }
    chains += "  chain new" + id + " {\n" + new_flow_rules(r, id, members.empty()) + "  }\n";
    append(d.to_new, dispatch_key(r) + " : jump new" + id);
    if (members.empty()) continue;  // established flows keep their member, as Azure kept them
    chains += "  chain pick" + id + " {\n" + pick_rules(r, members, marks, id, objects) + "  }\n";
    append(d.to_pick, dispatch_key(r) + " : jump pick" + id);
  }
  std::string new_lookups, pick_lookups, dsr_lookups, untracked;
  for (auto& d : maps) {
    if (!d.to_dsr.empty()) {
      objects += std::string("  map dsr_") + d.name + " {\n    type " + d.type + " : verdict\n    elements = { " +
                 d.to_dsr + " }\n  }\n  set dsr_dests_" + d.name + " {\n    type " + d.type + "\n    elements = { " +
                 d.dsr_dests + " }\n  }\n";
      dsr_lookups += std::string("    ") + d.lookup + " vmap @dsr_" + d.name + "\n";
      untracked += std::string("    ") + d.lookup + " @dsr_dests_" + d.name + " notrack\n";
    }
    for (auto [kind, elements, lookups] : {std::tuple{"new_", &d.to_new, &new_lookups},
                                           std::tuple{"pick_", &d.to_pick, &pick_lookups}}) {
      if (elements->empty()) continue;
      objects += std::string("  map ") + kind + d.name + " {\n    type " + d.type + " : verdict\n    elements = { " +
                 *elements + " }\n  }\n";
      *lookups += std::string("    ") + d.lookup + " vmap @" + kind + d.name + "\n";
    }
  }
  if (!counted_by.empty())
    objects += "  map count {\n    type mark . ct_dir : counter\n    elements = { " + counted_by + " }\n  }\n";
  // Every packet of the host passes the counting chains: a mask and a compare
  // let other flows by before the map lookup. A packet is counted once: at
  // output if this host sent it, at prerouting if it came from another
  // (what comes back on lo was counted at output).
  const std::string ours = "ct mark and " + hex(kNatMarkMask) + " == " + hex(kNatMarkTag);
  const std::string count = counted_by.empty() ? "" : ours + " counter name ct mark . ct direction map @count\n";
  // `add` then `delete` then the table: one transaction, whether the table
  // was there (an engine restarting adopts it) or not. The NAT chains stay
  // even with no route taking new flows: established flows are rewritten by
  // the kernel's NAT only while some NAT chain is registered.
  return "add table inet " + table + "\ndelete table inet " + table + "\ntable inet " + table + " {\n" + objects +
         chains +
         // Right after conntrack (-200) has made the new flow's entry: a
         // timeout is attached to an entry, so before it there is none.
         (new_lookups.empty() ? ""
                              : base_chain("new_prerouting", "filter", "prerouting", "-199",
                                           "    ct state new jump new_flow\n") +
                                    base_chain("new_output", "filter", "output", "-199", "    ct state new jump new_flow\n") +
                                    "  chain new_flow {\n" + new_lookups + "  }\n") +
         // Direct server return: no conntrack (it would see one direction
         // only), the member's mark after the pins' lookup (-151), before
         // their record (-149) and the routing decision.
         (dsr_lookups.empty() ? ""
                              : base_chain("dsr_raw", "filter", "prerouting", "raw", untracked) +
                                    base_chain("dsr_prerouting", "filter", "prerouting", "-150", dsr_lookups)) +
         base_chain("nat_prerouting", "nat", "prerouting", "dstnat", pick_lookups) +
         base_chain("nat_output", "nat", "output", "-100", pick_lookups) +
         (count.empty() ? ""
                        : base_chain("count_output", "filter", "output", "10", "    " + count) +
                              base_chain("count_prerouting", "filter", "prerouting", "10",
                                         "    iif != \"lo\" " + count)) +
         "}\n";
}

std::string nat_pins_script(const std::string& table, const std::vector<const Route*>& routes) {
  const std::string pins = table + "_pins";
  std::uint32_t idle_s = 0;
  for (auto* r : routes)
    if (r->dsr)
      for (auto& u : r->upstreams) idle_s = std::max(idle_s, (u.idle_timeout_ms + 999) / 1000);
  if (idle_s == 0) return "add table inet " + pins + "\ndelete table inet " + pins + "\n";
  const std::string t = "inet " + pins;
  // Keyed by the client's address and ports: a pin that another VIP's flow
  // of the same ports finds is no member of that flow's route, which then
  // picks afresh. IPv6 keys hold the address's low 64 bits (@nh,128,64),
  // not all of it: nft 1.0.6 (bookworm) puts an update's data in the
  // register after the first 16 bytes of its key, so a key longer than 16
  // bytes is stored overwritten (address last), or nft aborts, the engine
  // with it (address first). Two clients of one flow's ports whose addresses
  // differ only in their prefix share a pin; the next flow of the second
  // is then given the first's member here, if the first's flow is alive.
  const std::string ours = "meta mark and " + hex(kNatMarkMask) + " == " + hex(kNatMarkTag);
  std::string out = "add table " + t + "\n";
  std::string lookup, record;
  for (const bool v6 : {false, true}) {
    for (const char* p : {"tcp", "udp"}) {
      const std::string map = std::string(v6 ? "pins6_" : "pins4_") + p;
      const std::string ports = std::string(p) + " sport . " + p + " dport";
      const std::string key = v6 ? "@nh,128,64 . " + ports : "ip saddr . " + ports;
      // `add` keeps what is there: the maps' elements (the pins) survive.
      out += "add map " + t + " " + map + " { typeof " + key +
             " : meta mark; flags dynamic,timeout; timeout 30m; size 1048576; }\n";
      const std::string match = std::string(" meta nfproto ") + (v6 ? "ipv6" : "ipv4") + " meta l4proto " + p;
      lookup += "add rule " + t + " lookup" + match + " meta mark set " + key + " map @" + map + "\n";
      record += "add rule " + t + " record " + ours + match + " update @" + map + " { " + key + " timeout " +
                std::to_string(idle_s) + "s : meta mark }\n";
    }
  }
  return out + "add chain " + t + " lookup { type filter hook prerouting priority -151; policy accept; }\n" +
         "add chain " + t + " record { type filter hook prerouting priority -149; policy accept; }\n" +
         "flush chain " + t + " lookup\nflush chain " + t + " record\n" + lookup + record;
}

NatTable::NatTable(std::string name) : name_(std::move(name)) {}

NatTable::~NatTable() {
  if (ctx_) thread_.call([this] { nft_api()->ctx_free(ctx_); });
}

namespace {

// Asked before libnftables is, which would otherwise print its own line on
// the process's stderr.
bool has_net_admin() {
  __user_cap_header_struct header{_LINUX_CAPABILITY_VERSION_3, 0};
  __user_cap_data_struct data[2]{};
  if (::syscall(SYS_capget, &header, data) != 0) return true;  // let the kernel say
  return data[CAP_NET_ADMIN / 32].effective & (1u << (CAP_NET_ADMIN % 32));
}

}  // namespace

namespace {

const char* const kNeedsNetAdmin =
    "the NAT data plane needs CAP_NET_ADMIN, which this process lacks: run 'azlb engine start' as root, or grant "
    "it (setcap cap_net_admin,cap_net_bind_service+ep \"$(command -v azlb)\", or add CAP_NET_ADMIN to "
    "azlb.service's capability lines)";

}  // namespace

model::Error nft_failure(std::string err) {
  // The first line says it; the rest quotes the script.
  if (auto nl = err.find('\n'); nl != std::string::npos) err.resize(nl);
  if (err.find("Operation not permitted") != std::string::npos) return model::runtime_error(kNeedsNetAdmin);
  // No nf_tables (the netlink family is missing), or no NAT, conntrack or
  // timeout support in it (a chain or expression type the kernel lacks).
  if (err.find("Protocol not supported") != std::string::npos ||
      err.find("Operation not supported") != std::string::npos ||
      err.find("No such file or directory") != std::string::npos)
    return model::runtime_error(
        "the NAT data plane needs nf_tables with NAT and conntrack in the kernel (modprobe nf_tables nft_nat nft_ct "
        "nf_conntrack, or a kernel built with them): " + err);
  return model::runtime_error("cannot program the NAT data plane: " + err);
}

model::Status NatTable::run(const std::string& script) {
  if (!has_net_admin()) return model::runtime_error(kNeedsNetAdmin);
  model::Status st = model::ok();
  thread_.call([&] {
    std::string why;
    const NftApi* nft = nft_api(&why);
    if (!nft) {
      st = model::runtime_error("cannot program the NAT data plane: " + why + " (Debian's libnftables1)");
      return;
    }
    if (!ctx_) {
      ctx_ = nft->ctx_new(NFT_CTX_DEFAULT);
      if (!ctx_) {
        st = model::runtime_error("cannot program NAT: libnftables could not start");
        return;
      }
      nft->ctx_buffer_output(ctx_);
      nft->ctx_buffer_error(ctx_);
    }
    // Each read of a buffer empties it: what a command wrote is read (or
    // dropped) at once, so that the next command's output stands alone.
    const int rc = nft->run_cmd_from_buffer(ctx_, script.c_str());
    (void)nft->ctx_get_output_buffer(ctx_);
    std::string err = nft->ctx_get_error_buffer(ctx_);
    if (rc != 0) st = nft_failure(err);
  });
  return st;
}

std::optional<std::string> NatTable::list(const std::string& command, unsigned flags) {
  if (!has_net_admin()) return std::nullopt;
  if (!ctx_ && !run("list tables\n")) return std::nullopt;
  int rc = -1;
  std::string text;
  thread_.call([&] {
    const NftApi* nft = nft_api();  // loaded: ctx_ was made with it
    nft->ctx_output_set_flags(ctx_, flags);
    rc = nft->run_cmd_from_buffer(ctx_, command.c_str());
    nft->ctx_output_set_flags(ctx_, 0);
    text = nft->ctx_get_output_buffer(ctx_);
    (void)nft->ctx_get_error_buffer(ctx_);
  });
  if (rc != 0) return std::nullopt;
  return text;
}

std::optional<CounterValues> NatTable::counters() {
  const auto text = list("list counters table inet " + name_ + "\n", NFT_CTX_OUTPUT_JSON);
  if (!text) return std::nullopt;
  CounterValues out;
  auto j = nlohmann::json::parse(*text, nullptr, false);
  if (!j.is_object() || !j.contains("nftables")) return out;
  for (auto& item : j["nftables"]) {
    if (!item.contains("counter")) continue;
    auto& c = item["counter"];
    out[c.value("name", "")] = {c.value("packets", std::uint64_t{0}), c.value("bytes", std::uint64_t{0})};
  }
  return out;
}

void NatTable::remember_applied() {
  applied_generation_ = nft_generation();
  applied_fingerprint_ = nft_table_fingerprint(name_);
}

NatTable::Check NatTable::check() {
  if (!present_) return Check::Intact;
  const auto generation = nft_generation();
  if (!generation) return Check::Unknown;
  if (generation == applied_generation_) return Check::Intact;
  // Some program changed the ruleset: ours, or only another table?
  const auto now = nft_table_fingerprint(name_);
  if (now && now == applied_fingerprint_) {
    applied_generation_ = generation;
    return Check::Intact;
  }
  return Check::Changed;
}

model::Status NatTable::apply(const std::vector<const Route*>& routes, bool draining) {
  // The counters go on from what the table in force has (a reload, or the
  // table of an engine that died).
  const CounterValues carried = counters().value_or(CounterValues{});
  AZLB_TRY(run(nat_script(name_, routes, draining, carried) + nat_pins_script(name_, routes)));
  present_ = true;
  remember_applied();
  return model::ok();
}

void NatTable::remove() {
  (void)run("add table inet " + name_ + "\ndelete table inet " + name_ + "\n" + nat_pins_script(name_, {}));
  present_ = false;
}

}  // namespace azlb::engine
