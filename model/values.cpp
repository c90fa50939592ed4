#include "model/values.hpp"

#include "model/text.hpp"

#include <algorithm>
#include <array>
#include <charconv>
#include <limits>
#include <utility>

namespace azlb::model {

namespace {

template <class E, std::size_t N>
using Table = std::array<std::pair<E, std::string_view>, N>;

constexpr Table<Protocol, 2> kProtocols{{{Protocol::Tcp, "tcp"}, {Protocol::Udp, "udp"}}};
constexpr Table<ProbeProtocol, 2> kProbeProtocols{{{ProbeProtocol::Tcp, "tcp"}, {ProbeProtocol::Http, "http"}}};
constexpr Table<Distribution, 3> kDistributions{{{Distribution::FiveTuple, "five-tuple"},
                                                 {Distribution::SourceIp, "source-ip"},
                                                 {Distribution::SourceIpProtocol, "source-ip-protocol"}}};
constexpr Table<WhenAllDown, 2> kWhenAllDown{{{WhenAllDown::Refuse, "refuse"}, {WhenAllDown::ServeAll, "serve-all"}}};
constexpr Table<Os, 2> kOs{{{Os::Linux, "linux"}, {Os::Windows, "windows"}}};
constexpr Table<CreatedBy, 2> kCreatedBy{{{CreatedBy::Gallery, "gallery"}, {CreatedBy::Quick, "quick"}}};
constexpr Table<AclAction, 2> kAclActions{{{AclAction::Permit, "permit"}, {AclAction::Deny, "deny"}}};
constexpr Table<ProxyProtocol, 3> kProxyProtocols{
    {{ProxyProtocol::None, "none"}, {ProxyProtocol::V1, "v1"}, {ProxyProtocol::V2, "v2"}}};
constexpr Table<AdminState, 2> kAdminStates{{{AdminState::Up, "up"}, {AdminState::Drain, "drain"}}};
constexpr Table<Dataplane, 2> kDataplanes{{{Dataplane::Proxy, "proxy"}, {Dataplane::Nat, "nat"}}};

template <class E, std::size_t N>
std::string_view name_of(const Table<E, N>& t, E e) {
  for (auto& [v, n] : t)
    if (v == e) return n;
  return "?";
}

template <class E, std::size_t N>
Result<E> parse_of(const Table<E, N>& t, std::string_view what, std::string_view text) {
  std::string choices;
  for (auto& [v, n] : t) {
    if (n == text) return v;
    choices += (choices.empty() ? "" : ", ") + std::string(n);
  }
  return usage_error("invalid " + std::string(what) + " " + quote(text) + ": expected one of " +
                     choices);
}

}  // namespace

std::string_view to_string(Protocol e) { return name_of(kProtocols, e); }
std::string_view to_string(ProbeProtocol e) { return name_of(kProbeProtocols, e); }
std::string_view to_string(Distribution e) { return name_of(kDistributions, e); }
std::string_view to_string(WhenAllDown e) { return name_of(kWhenAllDown, e); }
std::string_view to_string(Os e) { return name_of(kOs, e); }
std::string_view to_string(CreatedBy e) { return name_of(kCreatedBy, e); }
std::string_view to_string(AclAction e) { return name_of(kAclActions, e); }
std::string_view to_string(ProxyProtocol e) { return name_of(kProxyProtocols, e); }
std::string_view to_string(AdminState e) { return name_of(kAdminStates, e); }
std::string_view to_string(Dataplane e) { return name_of(kDataplanes, e); }

Result<Protocol> parse_protocol(std::string_view t) { return parse_of(kProtocols, "protocol", t); }
Result<ProbeProtocol> parse_probe_protocol(std::string_view t) { return parse_of(kProbeProtocols, "probe protocol", t); }
Result<Distribution> parse_distribution(std::string_view t) { return parse_of(kDistributions, "distribution", t); }
Result<WhenAllDown> parse_when_all_down(std::string_view t) { return parse_of(kWhenAllDown, "when-all-down", t); }
Result<Os> parse_os(std::string_view t) { return parse_of(kOs, "os", t); }
Result<CreatedBy> parse_created_by(std::string_view t) { return parse_of(kCreatedBy, "created_by", t); }
Result<AclAction> parse_acl_action(std::string_view t) { return parse_of(kAclActions, "ACL action", t); }
Result<ProxyProtocol> parse_proxy_protocol(std::string_view t) { return parse_of(kProxyProtocols, "PROXY protocol", t); }
Result<AdminState> parse_admin_state(std::string_view t) { return parse_of(kAdminStates, "admin state", t); }
Result<Dataplane> parse_dataplane(std::string_view t) { return parse_of(kDataplanes, "data plane", t); }

Status check_range(std::string_view what, std::int64_t v, std::int64_t lo, std::int64_t hi) {
  if (v < lo || v > hi)
    return usage_error("invalid " + std::string(what) + " " + std::to_string(v) + ": must be " +
                       std::to_string(lo) + ".." + std::to_string(hi));
  return ok();
}

Status check_port(std::string_view what, std::int64_t v) { return check_range(what, v, 1, 65535); }

Result<std::uint32_t> parse_uint(std::string_view what, std::string_view text, std::uint32_t lo,
                                 std::uint32_t hi) {
  std::uint64_t v = 0;
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), v);
  const bool digits = !text.empty() && end == text.data() + text.size();
  if (!digits || (ec != std::errc{} && ec != std::errc::result_out_of_range))
    return usage_error("invalid " + std::string(what) + " " + quote(text) + ": must be a number " +
                       std::to_string(lo) + ".." + std::to_string(hi));
  // Out of range: named as typed (all digits), however many there are.
  if (ec == std::errc::result_out_of_range || v < lo || v > hi)
    return usage_error("invalid " + std::string(what) + " " + (text.size() <= 20 ? std::string(text) : quote(text)) +
                       ": must be " + std::to_string(lo) + ".." + std::to_string(hi));
  return static_cast<std::uint32_t>(v);
}

Result<std::uint16_t> parse_u16(std::string_view what, std::string_view text) {
  AZLB_ASSIGN(v, parse_uint(what, text, 0, 65535));
  return static_cast<std::uint16_t>(v);
}

Result<std::uint32_t> parse_u32(std::string_view what, std::string_view text) {
  return parse_uint(what, text, 0, std::numeric_limits<std::uint32_t>::max());
}

Status check_name(std::string_view what, std::string_view name) {
  auto bad = [&](std::string why) {
    return usage_error("invalid " + std::string(what) + " " + quote(name) + ": " + why);
  };
  if (name.empty() || name.size() > 63) return bad("must be 1 to 63 characters");
  auto alnum = [](char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9'); };
  if (!alnum(name[0])) return bad("must start with a letter or digit");
  for (char c : name)
    if (!alnum(c) && c != '-' && c != '_' && c != '.')
      return bad("only letters, digits, '-', '_' and '.' are allowed");
  return ok();
}

namespace {

std::size_t edit_distance(std::string_view a, std::string_view b) {
  std::vector<std::size_t> row(b.size() + 1);
  for (std::size_t j = 0; j <= b.size(); ++j) row[j] = j;
  for (std::size_t i = 1; i <= a.size(); ++i) {
    std::size_t diag = row[0];
    row[0] = i;
    for (std::size_t j = 1; j <= b.size(); ++j) {
      std::size_t up = row[j];
      row[j] = std::min({row[j] + 1, row[j - 1] + 1, diag + (a[i - 1] == b[j - 1] ? 0 : 1)});
      diag = up;
    }
  }
  return row[b.size()];
}

}  // namespace

std::optional<std::string> closest_name(std::string_view name, const std::vector<std::string>& candidates) {
  std::optional<std::string> best;
  std::size_t best_d = std::max<std::size_t>(2, name.size() / 3) + 1;
  for (auto& c : candidates) {
    auto d = edit_distance(name, c);
    if (d < best_d) best_d = d, best = c;
  }
  return best;
}

Error not_found_with_hint(std::string_view what, std::string_view name,
                          const std::vector<std::string>& candidates, std::string_view where) {
  std::string m = "no " + std::string(what) + " " + quote(name) + std::string(where);
  if (auto c = closest_name(name, candidates)) m += "; did you mean '" + *c + "'?";
  return not_found(std::move(m));
}

}  // namespace azlb::model
