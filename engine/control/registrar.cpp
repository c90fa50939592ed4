#include "engine/control/registrar.hpp"
#include "engine/thread_name.hpp"

#include <chrono>
#include <ctime>
#include <tuple>

#include "engine/log.hpp"
#include "engine/proxy/loop.hpp"
#include "model/text.hpp"
#include "store/etcd_state.hpp"

namespace azlb::engine {

using model::Status;

model::Result<std::unique_ptr<Registrar>> Registrar::start(const store::EtcdLocation& loc, std::string key,
                                                           std::string peers_prefix, std::string peer_key) {
  AZLB_ASSIGN(client, store::EtcdClient::open(loc));
  std::unique_ptr<Registrar> r(
      new Registrar(std::move(client), std::move(key), std::move(peers_prefix), std::move(peer_key)));
  r->thread_ = std::thread([p = r.get()] {
    name_this_thread("azlb-registrar");
    p->run();
  });
  return r;
}

Registrar::Registrar(std::unique_ptr<store::EtcdClient> c, std::string key, std::string peers_prefix,
                     std::string peer_key)
    : client_(std::move(c)), key_(std::move(key)), peers_prefix_(std::move(peers_prefix)), peer_key_(std::move(peer_key)) {}

Registrar::~Registrar() {
  {
    std::lock_guard lock(mu_);
    stop_ = true;
  }
  cv_.notify_all();
  if (thread_.joinable()) thread_.join();
  if (!lease_.empty()) (void)client_->call("lease/revoke", {{"ID", lease_}}, 2000);
}

std::pair<std::string, std::time_t> Registrar::error() {
  std::lock_guard lock(mu_);
  return {last_error_, error_since_};
}

std::vector<std::string> Registrar::peers() {
  std::lock_guard lock(mu_);
  return peers_;
}

void Registrar::want(std::string& wanted, std::string value) {
  {
    std::lock_guard lock(mu_);
    if (value == wanted) return;
    wanted = std::move(value);
  }
  cv_.notify_all();  // the thread writes it at once
}

void Registrar::set_handoff(std::string addresses) { want(handoff_, std::move(addresses)); }

Status Registrar::read_peers() {
  AZLB_ASSIGN(keys, store::etcd::list(*client_, peers_prefix_));
  std::vector<std::string> peers;
  for (auto& [key, value] : keys) {
    if (key == peer_key_) continue;
    // Another program's key, or another version's: whatever is not an
    // address is dropped by the engine.
    for (auto piece : model::split(value, ','))
      if (!piece.empty()) peers.emplace_back(piece);
  }
  std::lock_guard lock(mu_);
  peers_ = std::move(peers);
  return model::ok();
}

Status Registrar::put(const std::string& key, const std::string& value) {
  AZLB_ASSIGN(reply, client_->call("kv/put",
                                   {{"key", store::base64_encode(key)},
                                    {"value", store::base64_encode(value)},
                                    {"lease", lease_}},
                                   3000));
  (void)reply;
  return model::ok();
}

Status Registrar::put_back(const std::string& key, const std::string& value) {
  // One transaction that writes only when the key is absent.
  const auto k = store::base64_encode(key);
  store::Json put = {{"request_put", {{"key", k}, {"value", store::base64_encode(value)}, {"lease", lease_}}}};
  store::Json absent = {{"target", "CREATE"}, {"key", k}, {"create_revision", "0"}};
  store::Json txn = {{"compare", store::Json::array({absent})},
                     {"success", store::Json::array({put})},
                     {"failure", store::Json::array()}};
  AZLB_ASSIGN(reply, client_->call("kv/txn", txn, 3000));
  if (store::json_true(reply, "succeeded"))
    log("etcd: this engine's key %s was deleted by another program: put back", key.c_str());
  return model::ok();
}

void Registrar::set_value(std::string json) { want(value_, std::move(json)); }

Status Registrar::refresh() {
  std::string value, handoff;
  {
    std::lock_guard lock(mu_);
    value = value_;
    handoff = handoff_;
  }
  if (value.empty()) return model::ok();
  const auto now = monotonic_ms();
  bool kept_alive = false;
  if (!lease_.empty() && now >= next_keepalive_ms_) {
    kept_alive = true;
    AZLB_ASSIGN(reply, client_->call("lease/keepalive", {{"ID", lease_}}, 3000));
    // TTL absent or 0: the lease expired (etcd was away longer than the TTL).
    const auto& r = reply.contains("result") ? reply["result"] : reply;
    const auto ttl = store::json_text(r, "TTL");
    const bool alive = !ttl.empty() && ttl != "0";
    if (!alive) lease_.clear(), written_.clear(), handoff_written_.clear();
    next_keepalive_ms_ = now + kTtlSeconds * 1000 / 3;
  }
  if (lease_.empty()) {
    AZLB_ASSIGN(grant, client_->call("lease/grant", {{"TTL", std::to_string(kTtlSeconds)}}, 3000));
    lease_ = store::json_text(grant, "ID");
    if (lease_.empty()) return model::runtime_error("etcd granted no lease");
    written_.clear();
    handoff_written_.clear();
    next_keepalive_ms_ = now + kTtlSeconds * 1000 / 3;
  }
  // Each key written when it changed; else, with each keepalive, put back
  // if another program deleted it (etcdctl del).
  for (auto [key, wanted, written] : {std::tuple{&key_, &value, &written_}, {&peer_key_, &handoff, &handoff_written_}}) {
    if (wanted->empty()) continue;
    if (*wanted != *written) {
      AZLB_TRY(put(*key, *wanted));
      *written = *wanted;
    } else if (kept_alive) {
      AZLB_TRY(put_back(*key, *wanted));
    }
  }
  // Every 2 s: a peer that starts is handed packets within seconds, as one
  // that dies leaves with its key's lease.
  if (now >= next_peers_ms_) {
    AZLB_TRY(read_peers());
    next_peers_ms_ = now + 2000;
  }
  return model::ok();
}

void Registrar::run() {
  std::unique_lock lock(mu_);
  while (!stop_) {
    lock.unlock();
    auto st = refresh();
    if (!st && st.error().message != last_error_) {
      log("etcd: cannot keep this engine's key %s: %s (retrying)", key_.c_str(), st.error().message.c_str());
    } else if (st && !last_error_.empty()) {
      log("etcd: this engine's key %s is back", key_.c_str());
    }
    lock.lock();
    if (!st && last_error_.empty()) error_since_ = std::time(nullptr);
    last_error_ = st ? "" : st.error().message;
    // A changed value is written at once, the lease kept alive every TTL/3;
    // after a failure, tried again a second later (never at once: etcd away
    // must not make this thread spin).
    if (st)
      cv_.wait_for(lock, std::chrono::seconds(1),
                   [&] { return stop_ || value_ != written_ || (!handoff_.empty() && handoff_ != handoff_written_); });
    else
      cv_.wait_for(lock, std::chrono::seconds(1), [&] { return stop_; });
  }
}

}  // namespace azlb::engine
