#include "engine/nat_plane.hpp"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <linux/capability.h>
#include <nftables/libnftables.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <nlohmann/json.hpp>

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
const char* family(const Route& r) { return v6(r) ? "ip6" : "ip"; }
const char* l4(const Route& r) { return r.key.protocol == Protocol::Tcp ? "tcp" : "udp"; }


// What selects a route's new flows: its VIP (any address of this host for a
// wildcard VIP) and public port.
std::string match(const Route& r) {
  std::string m = r.key.address.is_unspecified() ? std::string("meta nfproto ") + (v6(r) ? "ipv6" : "ipv4")
                                             : std::string(family(r)) + " daddr " + r.key.address.to_string();
  return m + " " + l4(r) + " dport " + std::to_string(r.key.port);
}

// The members a new flow may go to now, in route order.
std::vector<const Upstream*> usable(const Route& r) {
  std::vector<const Upstream*> up, all;
  for (auto& u : r.upstreams) {
    if (u.drained) continue;
    // A member of the other family than the VIP cannot be a DNAT target.
    if ((u.addr.ss_family == AF_INET6) != v6(r)) continue;
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

std::string replace_all(std::string s, const std::string& from, const std::string& to) {
  for (auto at = s.find(from); at != std::string::npos; at = s.find(from, at + to.size())) s.replace(at, from.size(), to);
  return s;
}

std::uint32_t seed_of(const std::string& table) {
  std::uint32_t h = 2166136261u;
  for (unsigned char c : table) h = (h ^ c) * 16777619u;
  return h;
}

}  // namespace

std::string nat_table_name(const std::string& state_path) {
  char buf[16];
  std::snprintf(buf, sizeof buf, "%08x", seed_of(state_path));
  return std::string("azlb_") + buf;
}

std::string nat_counter_name(const MemberKey& k, bool in) {
  std::uint64_t h = 1469598103934665603ull;
  for (auto* part : {&k.service, &k.set, &k.vm, &k.endpoint}) {
    for (unsigned char c : *part) h = (h ^ c) * 1099511628211ull;
    h = (h ^ '/') * 1099511628211ull;
  }
  char buf[24];
  std::snprintf(buf, sizeof buf, "m%016llx", static_cast<unsigned long long>(h));
  return std::string(buf) + (in ? "_in" : "_out");
}

std::string nat_script(const std::string& table, const std::vector<const Route*>& routes, bool draining,
                       const CounterValues& carried) {
  std::string timeouts, timeout_rules, acl, nat, counters, counting;
  for (std::size_t i = 0; i < routes.size(); ++i) {
    const Route& r = *routes[i];
    const std::string m = match(r);
    const std::string id = std::to_string(i);
    // A set's members may differ: its flows get the longest, so that none
    // is cut before its endpoint's own timeout.
    std::uint32_t idle_s = 1;
    for (auto& u : r.upstreams) idle_s = std::max(idle_s, (u.idle_timeout_ms + 999) / 1000);
    const std::string l3 = v6(r) ? "ip6" : "ip";
    if (r.key.protocol == Protocol::Tcp)
      timeouts += "  ct timeout t" + id + " {\n    protocol tcp; l3proto " + l3 + "\n    policy = { established: " +
                  std::to_string(idle_s) + ", close_wait: 10, last_ack: 10, time_wait: 10, close: 10 }\n  }\n";
    else
      timeouts += "  ct timeout t" + id + " {\n    protocol udp; l3proto " + l3 + "\n    policy = { unreplied: " +
                  std::to_string(std::min<std::uint32_t>(idle_s, 30)) + ", replied: " + std::to_string(idle_s) +
                  " }\n  }\n";
    timeout_rules += "    ct state new " + m + " ct timeout set \"t" + id + "\"\n";

    // Each member's packets and bytes, both ways, told apart by the flow's
    // two tuples (what the client reached, what it was rewritten to).
    for (auto& u : r.upstreams) {
      if ((u.addr.ss_family == AF_INET6) != v6(r)) continue;
      const auto t = target_of(u);
      std::string dip = t.addr;
      if (dip.front() == '[') dip = dip.substr(1, dip.size() - 2);
      const std::string flow = std::string("meta l4proto ") + l4(r) +
                               (r.key.address.is_unspecified() ? std::string()
                                                           : " ct original " + std::string(family(r)) + " daddr " +
                                                                 r.key.address.to_string()) +
                               " ct original proto-dst " + std::to_string(r.key.port) + " ct reply " + family(r) +
                               " saddr " + dip + " ct reply proto-src " + std::to_string(t.port);
      for (bool in : {true, false}) {
        const auto name = nat_counter_name(u.state->key, in);
        if (counters.find("counter " + name + " ") != std::string::npos) continue;  // one member, two routes
        auto it = carried.find(name);
        const auto [packets, bytes] = it == carried.end() ? std::pair<std::uint64_t, std::uint64_t>{0, 0} : it->second;
        counters += "  counter " + name + " { packets " + std::to_string(packets) + " bytes " + std::to_string(bytes) +
                    " }\n";
        counting += "    " + flow + " ct direction " + (in ? "original" : "reply") + " counter name \"" + name + "\"\n";
      }
    }

    // The ACL, in order: the first rule that matches decides, for a new flow
    // only (as the proxy plane checks a client once, when it connects).
    const std::string fresh = "ct state new " + m;
    bool any_permit = false;
    for (auto& rule : r.acl) {
      any_permit = any_permit || rule.action == model::AclAction::Permit;
      const auto c = cidr_match(r, rule.remote_subnet);
      if (c.empty()) continue;
      acl += "    " + fresh + " " + c + " counter " + (rule.action == model::AclAction::Permit ? "accept" : "drop") + "\n";
    }
    if (any_permit) acl += "    " + fresh + " counter drop\n";  // permit rules: whoever matched none is denied

    const auto members = draining ? std::vector<const Upstream*>{} : usable(r);
    if (members.empty()) {
      // refuse: a TCP client learns at once (a reset), as from the proxy plane.
      // Established flows keep their member, as Azure kept them.
      acl += "    " + fresh + (r.key.protocol == Protocol::Tcp ? " counter reject with tcp reset\n" : " counter drop\n");
      continue;
    }
    std::string map;
    for (std::size_t k = 0; k < members.size(); ++k) {
      const auto t = target_of(*members[k]);
      map += (k ? ", " : "") + std::to_string(k) + " : " + t.addr + " . " + std::to_string(t.port);
    }
    std::string pick;
    const auto n = std::to_string(members.size());
    char seed[16];
    std::snprintf(seed, sizeof seed, "0x%08x", seed_of(table));
    if (r.distribution == model::Distribution::FiveTuple)
      pick = "numgen random mod " + n;
    else if (r.distribution == model::Distribution::SourceIp)
      pick = "jhash " + std::string(family(r)) + " saddr mod " + n + " seed " + seed;
    else
      pick = "jhash " + std::string(family(r)) + " saddr . meta l4proto mod " + n + " seed " + seed;
    nat += "    " + m + " counter dnat " + family(r) + " to " + pick + " map { " + map + " }\n";
  }
  auto chain = [](const char* name, const char* type, const char* hook, const char* prio, const std::string& rules) {
    return std::string("  chain ") + name + " {\n    type " + type + " hook " + hook + " priority " + prio +
           "; policy accept;\n" + rules + "  }\n";
  };
  // `add` then `delete` then the table: one transaction, whether the table
  // was there (an engine restarting adopts it) or not.
  // Every packet is counted once: at output if this host sent it, at
  // prerouting if it came from another (what comes back on lo was counted
  // at output).
  return "add table inet " + table + "\ndelete table inet " + table + "\ntable inet " + table + " {\n" + timeouts +
         counters + chain("count_output", "filter", "output", "10", counting) +
         chain("count_prerouting", "filter", "prerouting", "10", replace_all(counting, "    meta", "    iifname != \"lo\" meta")) +
         // Right after conntrack (-200) has made the new flow's entry: a
         // timeout is attached to an entry, so before it there is none.
         chain("timeout_prerouting", "filter", "prerouting", "-199", timeout_rules) +
         chain("timeout_output", "filter", "output", "-199", timeout_rules) +
         chain("acl_prerouting", "filter", "prerouting", "mangle", acl) +
         chain("acl_output", "filter", "output", "mangle", acl) +
         chain("nat_prerouting", "nat", "prerouting", "dstnat", nat) +
         chain("nat_output", "nat", "output", "-100", nat) + "}\n";
}

NatTable::NatTable(std::string name) : name_(std::move(name)) {}

NatTable::~NatTable() {
  if (ctx_) nft_ctx_free(ctx_);
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

model::Status NatTable::run(const std::string& script) {
  if (!has_net_admin())
    return model::runtime_error(
        "the NAT data plane needs CAP_NET_ADMIN, which this process lacks: run 'azlb engine start' as root, or grant "
        "it (setcap cap_net_admin,cap_net_bind_service+ep \"$(command -v azlb)\", or add CAP_NET_ADMIN to "
        "azlb.service's capability lines)");
  if (!ctx_) {
    ctx_ = nft_ctx_new(NFT_CTX_DEFAULT);
    if (!ctx_) return model::runtime_error("cannot program NAT: libnftables could not start");
    nft_ctx_buffer_output(ctx_);
    nft_ctx_buffer_error(ctx_);
  }
  // Each read of a buffer empties it: what a command wrote is read (or
  // dropped) at once, so that the next command's output stands alone.
  const int rc = nft_run_cmd_from_buffer(ctx_, script.c_str());
  (void)nft_ctx_get_output_buffer(ctx_);
  std::string err = nft_ctx_get_error_buffer(ctx_);
  if (rc == 0) return model::ok();
  // The first line says it; the rest quotes the script.
  if (auto nl = err.find('\n'); nl != std::string::npos) err.resize(nl);
  if (err.find("Operation not permitted") != std::string::npos)
    return model::runtime_error(
        "the NAT data plane needs CAP_NET_ADMIN, which this process lacks: run 'azlb engine start' as root, or grant "
        "it (setcap cap_net_admin,cap_net_bind_service+ep \"$(command -v azlb)\", or add CAP_NET_ADMIN to "
        "azlb.service's capability lines)");
  if (err.find("Protocol not supported") != std::string::npos ||
      err.find("No such file or directory") != std::string::npos)
    return model::runtime_error("the NAT data plane needs nf_tables with NAT in the kernel (modprobe nf_tables "
                                "nft_nat nft_ct nf_conntrack): " + err);
  return model::runtime_error("cannot program the NAT data plane: " + err);
}

CounterValues NatTable::counters() {
  CounterValues out;
  if (!has_net_admin()) return out;
  if (!ctx_ && !run("list tables\n")) return out;
  nft_ctx_output_set_flags(ctx_, NFT_CTX_OUTPUT_JSON);
  const int rc = nft_run_cmd_from_buffer(ctx_, ("list counters table inet " + name_ + "\n").c_str());
  nft_ctx_output_set_flags(ctx_, 0);
  const std::string text = nft_ctx_get_output_buffer(ctx_);
  (void)nft_ctx_get_error_buffer(ctx_);
  if (rc != 0) return out;
  auto j = nlohmann::json::parse(text, nullptr, false);
  if (!j.is_object() || !j.contains("nftables")) return out;
  for (auto& item : j["nftables"]) {
    if (!item.contains("counter")) continue;
    auto& c = item["counter"];
    out[c.value("name", "")] = {c.value("packets", std::uint64_t{0}), c.value("bytes", std::uint64_t{0})};
  }
  return out;
}

model::Status NatTable::apply(const std::vector<const Route*>& routes, bool draining) {
  // The counters go on from what the table in force has (a reload, or the
  // table of an engine that died).
  const CounterValues carried = counters();
  AZLB_TRY(run(nat_script(name_, routes, draining, carried)));
  present_ = true;
  return model::ok();
}

void NatTable::remove() {
  (void)run("add table inet " + name_ + "\ndelete table inet " + name_ + "\n");
  present_ = false;
}

}  // namespace azlb::engine
