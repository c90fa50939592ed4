// The NAT data plane: the routes of every `nat` cloud service compiled into
// one nftables table of the engine's own, replaced whole in one transaction
// (so no packet ever sees half a change), as Azure's load balancer rewrote
// packets instead of proxying them. The members see each client's own
// address. Health and drain come from the same MemberState the proxy plane
// reads; the control thread applies the table again when they change.
#pragma once

#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "engine/config.hpp"
#include "engine/nat/low_fd_thread.hpp"

struct nft_ctx;

namespace azlb::engine {

// Named counters of the table, by name ("m<16 hex>_in"), as nftables keeps them.
using CounterValues = std::map<std::string, std::pair<std::uint64_t, std::uint64_t>>;
// The counter names of a member: stable for its service, set, VM and
// endpoint, so that a new table (a reload, a new engine) carries them on.
std::string nat_counter_name(const MemberKey&, bool in);

// Every flow the table maps carries its member's mark in conntrack (ct
// mark): the tag in the high byte says it is azlb's, the low 24 bits which
// member, so that counting a packet, or a member's flows, is one lookup.
inline constexpr std::uint32_t kNatMarkTag = 0xa2000000u, kNatMarkMask = 0xff000000u;
using NatMarks = std::map<const MemberState*, std::uint32_t>;
// Each member's mark: stable for the table (one per state file) and the
// member's key (service, set, VM, endpoint), so that a flow marked before a
// reload still counts for its member after it, and never for another
// engine's member of the same names.
NatMarks nat_marks(const std::string& table, const std::vector<const Route*>& routes);

// The nftables script that makes `table` hold `routes` (nat routes only),
// replacing whatever the table held. Pure: what the engine applies, and what
// the unit tests read. A new flow finds its route in a verdict map (by VIP,
// protocol and port; a wildcard VIP by the last two, for this host's own
// addresses only), then:
//  - right after conntrack (-199): the route's conntrack timeout (the
//    endpoint's idle timeout when established; short after a close, so that
//    a high rate of new connections does not fill conntrack), then the ACL,
//    first match wins (a set's permit rules deny what they do not match, as
//    in the proxy plane), and with no member to take it, a TCP reset
//    (refuse) or a drop (UDP);
//  - dstnat: the member's mark by numgen random (five-tuple) or jhash of the
//    client's address (and protocol), then DNAT to the marked member;
//    serve-all uses every member when all are down; a drained member is
//    never picked;
//  - every packet of a marked flow is counted for its member, by direction.
// Prerouting carries traffic from other hosts, output this host's own.
// Established flows pass one compare per hook besides the kernel's NAT.
// `draining`: every route refuses new flows, while the established ones keep
// their member (the NAT hooks stay while the table has NAT chains).
// Each member's counters start from `carried` (what the table in force had).
std::string nat_script(const std::string& table, const std::vector<const Route*>& routes, bool draining = false,
                       const CounterValues& carried = {});

// Direct server return pins each flow to its member on this host (conntrack
// cannot: it sees one direction only), in maps that must outlive the main
// table's replacement: a table of their own, `table`_pins, made once and
// kept (its chains rewritten), removed when no route returns directly. A
// flow's first packet gets its member's mark in the main table; the pins'
// chains record it (-149) and give it back to the flow's next packets
// (-151), for the route's idle timeout after its last packet.
std::string nat_pins_script(const std::string& table, const std::vector<const Route*>& routes);

// The table name for an engine's state file: one table per engine.
std::string nat_table_name(const std::string& state_path);

// What a failed libnftables command (its error text) means for the user:
// the missing privilege or kernel support, and how to get it.
model::Error nft_failure(std::string err);

// The engine's table in the kernel. libnftables runs on a thread of its own
// (low_fd_thread.hpp), made with the NatTable, before any listener: the
// engine makes the NatTable first. The library is loaded into use only when
// a table is applied or removed.
class NatTable {
 public:
  explicit NatTable(std::string name);
  ~NatTable();
  NatTable(const NatTable&) = delete;
  NatTable& operator=(const NatTable&) = delete;

  const std::string& name() const { return name_; }
  // Replaces the table in one transaction. The error says what is missing
  // (CAP_NET_ADMIN, nf_tables) and how to get it.
  model::Status apply(const std::vector<const Route*>& routes, bool draining = false);
  // Deletes the table, if it is there.
  void remove();
  // The table's member counters now; nullopt when it cannot be read (no
  // table in the kernel, no privilege).
  std::optional<CounterValues> counters();
  bool present() const { return present_; }
  // Another table's script (the proxy plane's hand-off, handoff.hpp), run
  // on the same thread.
  model::Status run_script(const std::string& script) { return run(script); }

  // Whether the kernel still holds the table as last applied. Another
  // program may delete or change it (nft flush ruleset, a firewall reload):
  // asked cheaply (the ruleset's generation, nft_netlink.hpp), and only when
  // some program changed the ruleset is the table's make-up (its chains,
  // rules and sets, not their counters or elements) read and compared.
  enum class Check { Intact, Changed, Unknown };
  Check check();

 private:
  model::Status run(const std::string& script);
  // A listing command's output with libnftables' output `flags`; nullopt
  // when it fails (no table, no privilege).
  std::optional<std::string> list(const std::string& command, unsigned flags);
  void remember_applied();
  std::string name_;
  LowFdThread thread_;  // every libnftables call runs there
  nft_ctx* ctx_ = nullptr;  // made, used and freed on thread_
  bool present_ = false;
  std::optional<std::uint32_t> applied_generation_;
  std::optional<std::uint64_t> applied_fingerprint_;
};

}  // namespace azlb::engine
