#include "store/state_store.hpp"

#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <charconv>
#include <cstdlib>

#include "model/text.hpp"
#include "store/etcd_client.hpp"
#include "store/etcd_state.hpp"
#include "store/files.hpp"
#include "store/toml_codec.hpp"

namespace azlb::store {

namespace fs = std::filesystem;
using model::Result;
using model::State;
using model::Status;

namespace {

fs::path run_dir() {
  if (const char* d = std::getenv("AZLB_RUN_DIR"); d && *d) return d;
  if (const char* x = std::getenv("XDG_RUNTIME_DIR"); x && *x) return fs::path(x) / "azlb";
  if (::geteuid() == 0) return "/run/azlb";
  const char* home = std::getenv("HOME");
  return fs::path(home && *home ? home : ".") / ".local" / "state" / "azlb" / "run";
}

// "etcd_azlb_prod-1a2b3c4d": readable, short enough for a socket's path,
// and distinct for distinct prefixes.
std::string companion_name(const std::string& prefix) {
  std::string name = "etcd";
  for (char c : prefix.substr(0, 48)) name += c == '/' ? '_' : c;
  std::uint32_t h = 2166136261u;
  for (unsigned char c : prefix) h = (h ^ c) * 16777619u;
  char buf[12];
  std::snprintf(buf, sizeof buf, "-%08x", h);
  return name + buf;
}

// A command's client: through the engine of this host that follows the
// same state, when one runs (store/etcd_relay.hpp).
Result<std::unique_ptr<EtcdClient>> open_client(const Location& loc) {
  AZLB_ASSIGN(client, EtcdClient::open(loc.etcd()));
  client->relay_through(companions_of(loc).engine_relay);
  return client;
}

}  // namespace

Result<State> parse_text(const StateText& t) {
  auto parsed = parse_state(t.text, t.source);
  if (t.origins.empty()) return parsed;
  if (!parsed) {
    // "etcd:LINE:COLUMN: message" -> "KEY:LINE:COLUMN: message", the line counted in the key's value.
    const auto& m = parsed.error().message;
    const std::string lead = t.source + ":";
    if (m.rfind(lead, 0) != 0) return parsed;
    std::size_t line = 0;
    auto rest = std::string_view(m).substr(lead.size());
    auto [p, ec] = std::from_chars(rest.data(), rest.data() + rest.size(), line);
    if (ec != std::errc() || *p != ':') return parsed;
    rest.remove_prefix(static_cast<std::size_t>(p - rest.data()));
    auto it = std::upper_bound(t.origins.begin(), t.origins.end(), line,
                               [](std::size_t l, const auto& o) { return l < o.first; });
    if (it == t.origins.begin()) return parsed;
    --it;
    const bool meta = it == t.origins.begin();  // the first line is azlb's, from the meta key
    return model::Error{parsed.error().kind,
                        it->second + ":" + std::to_string(meta ? 1 : line - it->first + 1) + std::string(rest)};
  }
  // Each key holds one object, the one its key names.
  std::vector<std::pair<std::string, std::string>> found;
  for (auto& svc : parsed->services) {
    found.push_back({"service", svc.name});
    for (auto& set : svc.lbsets) found.push_back({"lbset", svc.name + "/" + set.name});
  }
  for (auto& vm : parsed->vms) found.push_back({"vm", vm.name});
  for (std::size_t i = 0; i < std::max(found.size(), t.expected.size()); ++i) {
    if (i < found.size() && i < t.expected.size() && found[i] == t.expected[i]) continue;
    const std::size_t at = std::min(i, t.expected.size() - (t.expected.empty() ? 0 : 1));
    const std::string key = t.expected.empty() ? t.origins.front().second : t.origins[at + 1].second;
    const std::string holds = i < found.size() ? found[i].first + " " + model::quote(found[i].second) : "nothing";
    return model::usage_error(key + ":1:1: each key holds the one object its key names; found " + holds +
                              (i < t.expected.size() ? " where the key names " + t.expected[i].first + " " +
                                                           model::quote(t.expected[i].second)
                                                     : " with no key of its own"));
  }
  return parsed;
}

Result<State> load(const Location& loc) {
  if (!loc.is_etcd()) return load(loc.file());
  AZLB_ASSIGN(client, open_client(loc));
  return etcd::load(*client);
}

Status update(const Location& loc, const std::function<Status(State&)>& change) {
  if (!loc.is_etcd()) return update(loc.file(), change);
  AZLB_ASSIGN(client, open_client(loc));
  return etcd::update(*client, change);
}

Result<std::optional<StateText>> read_text(const Location& loc) {
  if (!loc.is_etcd()) {
    AZLB_ASSIGN(text, read_state_text(loc.file()));
    if (!text) return std::optional<StateText>{};
    return std::optional<StateText>(StateText{std::move(*text), loc.file().string(), {}, {}});
  }
  AZLB_ASSIGN(client, open_client(loc));
  AZLB_ASSIGN(snap, etcd::read(*client));
  AZLB_ASSIGN(text, etcd::assemble(snap, loc.etcd().prefix));
  return std::optional<StateText>(std::move(text));
}

Result<std::vector<std::string>> registered_engines(const Location& loc) {
  std::vector<std::string> out;
  if (!loc.is_etcd()) return out;
  AZLB_ASSIGN(client, open_client(loc));
  AZLB_ASSIGN(values, etcd::list(*client, etcd::engines_prefix(loc.etcd().prefix)));
  for (auto& [key, value] : values) out.push_back(std::move(value));
  return out;
}

Companions companions_of(const Location& loc) {
  if (!loc.is_etcd()) return companions_of(loc.file());
  return companions_of(run_dir() / companion_name(loc.etcd().prefix));
}

Status make_companion_dir(const Location& loc) {
  if (!loc.is_etcd()) return model::ok();
  const auto dir = run_dir();
  std::error_code ec;
  fs::create_directories(dir, ec);
  if (ec) return model::runtime_error("cannot create " + dir.string() + " for the engine's files: " + ec.message() +
                                      " (set AZLB_RUN_DIR to a folder of yours)");
  struct stat st {};
  if (::lstat(dir.c_str(), &st) != 0 || !S_ISDIR(st.st_mode))
    return model::runtime_error(dir.string() + " is not a folder");
  if (st.st_uid != ::geteuid())
    return model::runtime_error(dir.string() + " belongs to uid " + std::to_string(st.st_uid) +
                                ", not to this user: set AZLB_RUN_DIR to a folder of yours");
  return model::ok();
}

}  // namespace azlb::store
