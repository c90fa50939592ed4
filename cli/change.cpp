#include "cli/change.hpp"

#include <algorithm>
#include <random>
#include <iostream>
#include <set>
#include <string_view>

#include <unistd.h>

#include "cli/context.hpp"
#include "engine/config.hpp"
#include "engine/control/control.hpp"
#include "model/rules.hpp"
#include "model/text.hpp"
#include "store/state_store.hpp"
#include "store/toml_codec.hpp"

namespace azlb::cli {

namespace {

std::vector<std::string_view> lines_of(std::string_view text) {
  std::vector<std::string_view> out;
  for (std::size_t start = 0; start < text.size();) {
    auto end = text.find('\n', start);
    if (end == std::string_view::npos) end = text.size();
    out.push_back(text.substr(start, end - start));
    start = end + 1;
  }
  return out;
}

// After a change to a file, with an engine running: it applies the change
// now, and a listener the change added that it cannot bind is named.
void tell_engine(const Context& ctx, const store::Location& state, const model::State& before,
                 const model::State& after) {
  const auto path = state.absolute();
  auto r = engine::admin_request(path, "POST", "/v1/reload", 3000);
  if (!r || r->status != 200) return;  // a failed reload is the engine's to log; the file is written
  std::vector<engine::ListenKey> added;
  const auto old_keys = engine::proxy_listen_keys(before);
  for (auto& k : engine::proxy_listen_keys(after))
    if (!old_keys.contains(k)) added.push_back(k);
  if (added.empty()) return;
  auto j = nlohmann::json::parse(r->body, nullptr, false);
  if (!j.is_object() || !j.contains("unbound")) {  // an engine of a version before the reload said it
    auto st = engine::admin_request(path, "GET", "/v1/status", 3000);
    if (!st || st->status != 200) return;
    j = nlohmann::json::parse(st->body, nullptr, false);
  }
  if (!j.is_object() || !j.contains("unbound") || !j["unbound"].is_array()) return;
  for (auto& k : added)
    for (auto& u : j["unbound"])
      if (u.is_object() && u.value("address", std::string()) == k.to_string())
        ctx.warn("the engine " + u.value("error", std::string()) + "; it serves the rest and retries every 5 s");
}

// On a terminal, a change that removes something asks first; scripts (no
// terminal) and --yes go on. False: the user said no.
bool on_terminal() { return ::isatty(STDIN_FILENO) && ::isatty(STDERR_FILENO); }

bool confirmed(const std::vector<std::string>& removed) {
  if (removed.empty()) return true;
  std::cerr << "This removes ";
  for (std::size_t i = 0; i < removed.size() && i < 10; ++i) std::cerr << (i ? ", " : "") << removed[i];
  if (removed.size() > 10) std::cerr << " and " << removed.size() - 10 << " more";
  std::cerr << ". Go on? [y/N] " << std::flush;
  std::string answer;
  std::getline(std::cin, answer);
  return answer == "y" || answer == "Y" || answer == "yes";
}

}  // namespace

// What a change removes: cloud services, VMs, endpoints, load-balanced sets
// that `before` has and `after` has not, in words.
std::vector<std::string> removed_objects(const model::State& before, const model::State& after) {
  std::vector<std::string> out;
  for (auto& svc : before.services) {
    const auto* now = model::find_service(after, svc.name);
    if (!now) {
      out.push_back("cloud service '" + svc.name + "'");
      continue;
    }
    for (auto& set : svc.lbsets)
      if (!model::find_lbset(*now, set.name)) out.push_back("load-balanced set '" + set.name + "'");
  }
  for (auto& vm : before.vms) {
    const auto* now = model::find_vm(after, vm.name);
    if (!now) {
      out.push_back("VM '" + vm.name + "' with " + model::count(vm.endpoints.size(), "endpoint", "endpoints"));
      continue;
    }
    for (auto& ep : vm.endpoints)
      if (!model::find_endpoint(*now, ep.name)) out.push_back("endpoint '" + ep.name + "' of VM '" + vm.name + "'");
  }
  return out;
}


std::vector<std::string> line_diff(const std::string& before, const std::string& after) {
  const auto a = lines_of(before), b = lines_of(after);
  std::size_t head = 0;
  while (head < a.size() && head < b.size() && a[head] == b[head]) ++head;
  std::size_t tail = 0;
  while (tail < a.size() - head && tail < b.size() - head && a[a.size() - 1 - tail] == b[b.size() - 1 - tail]) ++tail;
  const std::size_t n = a.size() - head - tail, m = b.size() - head - tail;
  std::vector<std::string> out;
  if (n == 0 && m == 0) return out;
  // Longest common subsequence of the middle, when it is small enough.
  std::vector<std::pair<char, std::size_t>> ops;  // '-' index in a, '+' index in b, ' ' index in a
  if (n * m <= 4'000'000) {
    std::vector<std::vector<std::uint32_t>> lcs(n + 1, std::vector<std::uint32_t>(m + 1, 0));
    for (std::size_t i = n; i-- > 0;)
      for (std::size_t j = m; j-- > 0;)
        lcs[i][j] = a[head + i] == b[head + j] ? lcs[i + 1][j + 1] + 1 : std::max(lcs[i + 1][j], lcs[i][j + 1]);
    std::size_t i = 0, j = 0;
    while (i < n || j < m) {
      if (i < n && j < m && a[head + i] == b[head + j]) ops.push_back({' ', head + i}), ++i, ++j;
      else if (i < n && (j == m || lcs[i + 1][j] >= lcs[i][j + 1])) ops.push_back({'-', head + i++});  // old first
      else ops.push_back({'+', head + j++});
    }
  } else {
    for (std::size_t i = 0; i < n; ++i) ops.push_back({'-', head + i});
    for (std::size_t j = 0; j < m; ++j) ops.push_back({'+', head + j});
  }
  bool in_run = false;
  for (auto& [op, idx] : ops) {
    if (op == ' ') {
      in_run = false;
      continue;
    }
    if (!in_run) out.push_back("@@ line " + std::to_string(idx + 1));
    in_run = true;
    out.push_back(std::string(1, op) + std::string(op == '-' ? a[idx] : b[idx]));
  }
  return out;
}

namespace {

std::uint64_t new_hash_seed() {
  std::random_device rd;
  const std::uint64_t seed = (static_cast<std::uint64_t>(rd()) << 32) ^ rd();
  return seed & model::kHashSeedMax;
}

}  // namespace

model::Status Context::change(const std::function<model::Status(model::State&)>& fn) const {
  const auto& path = location();
  if (dry_run) {
    AZLB_ASSIGN(before, store::load(path));
    model::State after = before;
    AZLB_TRY(fn(after));
    const auto diff = line_diff(store::format_state(before), store::format_state(after));
    dry_run_diff_ = diff;
    return model::ok();
  }
  if (!yes && on_terminal()) {
    // Asked on what the change would do now, outside the writer lock (a
    // user thinking must not hold other writers back); the change is then
    // made on the state as it is when the lock is taken.
    AZLB_ASSIGN(current, store::load(path));
    model::State trial = current;
    AZLB_TRY(fn(trial));
    if (!confirmed(removed_objects(current, trial))) return model::runtime_error("cancelled: nothing changed");
  }
  // A change to etcd is done once etcd has it: every engine of the state,
  // this host's as any other's, applies it from its watch (milliseconds,
  // within a second) and `azlb status` names a listener one could not bind.
  // Waiting for this host's engine would cost each command the engine's
  // work on the whole configuration, for a view of one host in many.
  // An engine that starts meanwhile reads the state as it starts.
  const bool tell = !path.is_etcd() && engine::running_pid(path.absolute());
  model::State before, after;  // copies of the whole state: only to tell the engine
  AZLB_TRY(store::update(path, [&](model::State& s) -> model::Status {
    if (tell) before = s;
    AZLB_TRY(fn(s));
    // Every engine of the state hashes flows with this seed; a state gets
    // one, at random (so that nobody outside can aim flows at one member),
    // with its first change.
    if (!s.hash_seed) s.hash_seed = new_hash_seed();
    if (tell) after = s;
    return model::ok();
  }));
  if (tell) tell_engine(*this, path, before, after);
  return model::ok();
}

}  // namespace azlb::cli
