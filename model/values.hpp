// The small vocabulary of the model: enums and checked scalars, each with the
// one parser that turns user or file text into it.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "model/error.hpp"

namespace azlb::model {

enum class Protocol : std::uint8_t { Tcp, Udp };
enum class ProbeProtocol : std::uint8_t { Tcp, Http };
enum class Distribution : std::uint8_t { FiveTuple, SourceIp, SourceIpProtocol };
enum class WhenAllDown : std::uint8_t { Refuse, ServeAll };
enum class Os : std::uint8_t { Linux, Windows };
enum class CreatedBy : std::uint8_t { Gallery, Quick };
enum class AclAction : std::uint8_t { Permit, Deny };
// HAProxy's PROXY protocol header sent to a member before the client's bytes.
enum class ProxyProtocol : std::uint8_t { None, V1, V2 };
// A member's administrative state: a drained one takes no new connections or
// flows and keeps the ones it has.
enum class AdminState : std::uint8_t { Up, Drain };
// How a cloud service's traffic reaches its VMs: through the engine's own
// connections (proxy), or rewritten by the kernel (nat), as Azure did.
enum class Dataplane : std::uint8_t { Proxy, Nat };

std::string_view to_string(Protocol);
std::string_view to_string(ProbeProtocol);
std::string_view to_string(Distribution);
std::string_view to_string(WhenAllDown);
std::string_view to_string(Os);
std::string_view to_string(CreatedBy);
std::string_view to_string(AclAction);
std::string_view to_string(ProxyProtocol);
std::string_view to_string(AdminState);
std::string_view to_string(Dataplane);

Result<Protocol> parse_protocol(std::string_view text);
Result<ProbeProtocol> parse_probe_protocol(std::string_view text);
Result<Distribution> parse_distribution(std::string_view text);
Result<WhenAllDown> parse_when_all_down(std::string_view text);
Result<Os> parse_os(std::string_view text);
Result<CreatedBy> parse_created_by(std::string_view text);
Result<AclAction> parse_acl_action(std::string_view text);
Result<ProxyProtocol> parse_proxy_protocol(std::string_view text);
Result<AdminState> parse_admin_state(std::string_view text);
Result<Dataplane> parse_dataplane(std::string_view text);

// Limits the platform enforced; named so that messages and checks agree.
inline constexpr std::uint32_t kIdleTimeoutMin = 4, kIdleTimeoutMax = 30, kIdleTimeoutDefault = 4;
inline constexpr std::uint32_t kProbeIntervalMin = 1, kProbeIntervalMax = 3600;
inline constexpr std::uint32_t kProbeTimeoutMax = 7200;
inline constexpr std::uint32_t kProbeIntervalDefault = 15, kProbeTimeoutDefault = 31;
inline constexpr std::uint32_t kAclOrderMax = 65535;
inline constexpr std::size_t kAclRulesMax = 50;
// A member's weight: its share of its set's flows (Katran's weighted Maglev,
// HAProxy's and nginx's `weight`).
inline constexpr std::uint32_t kWeightMin = 1, kWeightMax = 256, kWeightDefault = 1;

// `what` names the value in the message ("public port"). Text becomes a
// number of the value's type, over the type's whole range: which values the
// platform allows is a rule, checked where rules live (rules.hpp), so a flag
// and a state file get the same bounds and the same message.
Result<std::uint16_t> parse_u16(std::string_view what, std::string_view text);
Result<std::uint32_t> parse_u32(std::string_view what, std::string_view text);
// For options that are not the model's (engine tuning): text and bounds at once.
Result<std::uint32_t> parse_uint(std::string_view what, std::string_view text, std::uint32_t lo,
                                 std::uint32_t hi);
Status check_port(std::string_view what, std::int64_t value);
Status check_range(std::string_view what, std::int64_t value, std::int64_t lo, std::int64_t hi);

// Names of services, VMs, endpoints and sets: 1..63 of letters, digits, '-',
// '_', '.', starting with a letter or digit. `what` is e.g. "VM name".
Status check_name(std::string_view what, std::string_view name);

// The candidate nearest to `name` by edit distance, if it is near enough to be
// a plausible typo.
std::optional<std::string> closest_name(std::string_view name, const std::vector<std::string>& candidates);

// "no VM 'wbe1'; did you mean 'web1'?"
// `where` is added after the name: " in cloud service 'web'".
Error not_found_with_hint(std::string_view what, std::string_view name,
                          const std::vector<std::string>& candidates, std::string_view where = "");

}  // namespace azlb::model
