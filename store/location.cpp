#include "store/location.hpp"

#include <charconv>
#include <cstdlib>

#include "model/text.hpp"
#include "store/state_file.hpp"

namespace azlb::store {

namespace fs = std::filesystem;
using model::Result;

namespace {

constexpr std::size_t kMaxPrefix = 200;

bool prefix_char(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '/' || c == '-' ||
         c == '_' || c == '.';
}

bool host_char(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' || c == '.';
}

// "host:port" or "[v6]:port".
bool valid_endpoint(std::string_view e) {
  std::string_view host, port;
  if (!e.empty() && e.front() == '[') {
    auto close = e.find(']');
    if (close == std::string_view::npos || close + 1 >= e.size() || e[close + 1] != ':') return false;
    host = e.substr(1, close - 1);
    port = e.substr(close + 2);
    if (host.empty()) return false;
    for (char c : host)
      if (!std::isxdigit(static_cast<unsigned char>(c)) && c != ':' && c != '.') return false;
  } else {
    auto colon = e.rfind(':');
    if (colon == std::string_view::npos) return false;
    host = e.substr(0, colon);
    port = e.substr(colon + 1);
    if (host.empty()) return false;
    for (char c : host)
      if (!host_char(c)) return false;
  }
  unsigned p = 0;
  auto [ptr, ec] = std::from_chars(port.data(), port.data() + port.size(), p);
  return ec == std::errc() && ptr == port.data() + port.size() && p >= 1 && p <= 65535;
}

}  // namespace

Result<Location> Location::parse(const std::string& text) {
  bool tls = false;
  std::string_view rest;
  if (text.rfind("etcd://", 0) == 0 || text.rfind("etcd+http://", 0) == 0) {
    rest = std::string_view(text).substr(text.find("://") + 3);
  } else if (text.rfind("etcd+https://", 0) == 0) {
    tls = true;
    rest = std::string_view(text).substr(13);
  } else if (text.rfind("etcd", 0) == 0 && text.find("://") != std::string::npos) {
    return model::usage_error("invalid state location " + model::quote(text) +
                              ": the schemes are etcd:// and etcd+https://");
  } else {
    if (text.empty()) return model::usage_error("the state location is empty");
    return Location(fs::path(text));
  }
  auto bad = [&](const std::string& why) {
    return model::usage_error("invalid state location " + model::quote(text) + ": " + why +
                              " (expected etcd://HOST:PORT[,HOST:PORT...]/PREFIX)");
  };
  const auto slash = rest.find('/');
  if (slash == std::string_view::npos) return bad("no key prefix");
  EtcdLocation e;
  e.tls = tls;
  std::string_view hosts = rest.substr(0, slash);
  if (hosts.empty()) return bad("no endpoint");
  while (!hosts.empty()) {
    auto comma = hosts.find(',');
    auto one = hosts.substr(0, comma);
    if (!valid_endpoint(one)) return bad("endpoint " + model::quote(one) + " is not HOST:PORT");
    e.endpoints.emplace_back(one);
    if (comma == std::string_view::npos) break;
    hosts.remove_prefix(comma + 1);
    if (hosts.empty()) return bad("an empty endpoint after ','");
  }
  if (e.endpoints.size() > 16) return bad("more than 16 endpoints");
  std::string prefix(rest.substr(slash));
  while (prefix.size() > 1 && prefix.back() == '/') prefix.pop_back();
  if (prefix == "/") return bad("no key prefix");
  if (prefix.size() > kMaxPrefix) return bad("a key prefix longer than " + std::to_string(kMaxPrefix) + " bytes");
  for (char c : prefix)
    if (!prefix_char(c)) return bad("the key prefix may hold letters, digits, '/', '-', '_' and '.' only");
  if (prefix.find("//") != std::string::npos) return bad("an empty part in the key prefix");
  e.prefix = std::move(prefix);
  return Location(std::move(e));
}

std::string Location::display() const {
  if (!is_etcd()) return file().string();
  const auto& e = etcd();
  std::string s = e.tls ? "etcd+https://" : "etcd://";
  for (std::size_t i = 0; i < e.endpoints.size(); ++i) s += (i ? "," : "") + e.endpoints[i];
  return s + e.prefix;
}

std::string Location::identity() const {
  if (!is_etcd()) return fs::absolute(file()).string();
  return "etcd:" + etcd().prefix;
}

Location Location::absolute() const { return is_etcd() ? *this : Location(fs::absolute(file())); }

Result<Location> resolve_location(const std::string& flag) {
  std::string text = flag;
  if (text.empty())
    if (const char* e = std::getenv("AZLB_STATE"); e && *e) text = e;
  if (text.empty()) return Location(resolve_state_path(""));
  return Location::parse(text);
}

}  // namespace azlb::store
