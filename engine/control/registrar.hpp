// An engine's key in the state's etcd (PREFIX/engines/HOST/PID): who it is
// and its view of each member's health, under a lease it keeps alive, so
// that `azlb status` on any host lists every engine of the state and one
// that dies is gone after the lease's TTL. A thread of its own: etcd being
// slow or away never holds the control thread.
#pragma once

#include <atomic>
#include <condition_variable>
#include <ctime>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "model/error.hpp"
#include "store/etcd_client.hpp"

namespace azlb::engine {

class Registrar {
 public:
  static constexpr int kTtlSeconds = 10;
  // `key` holds the registration. `peer_key`, under `peers_prefix`, holds
  // only this host's hand-off addresses (set_handoff), under the same lease:
  // what the other engines read every few seconds (peers()), a few bytes
  // each, where a registration may hold thousands of members' health.
  static model::Result<std::unique_ptr<Registrar>> start(const store::EtcdLocation&, std::string key,
                                                          std::string peers_prefix, std::string peer_key);
  // Revokes the lease: the key goes at once.
  ~Registrar();
  Registrar(const Registrar&) = delete;
  Registrar& operator=(const Registrar&) = delete;

  // The key's value from now on (written when it differs from what is there).
  void set_value(std::string json);
  // Why the key cannot be kept now ("" when it is): etcd away, or without quorum.
  // How often its requests had to go on to another etcd member.
  std::uint64_t failovers() const { return client_->failovers(); }
  // And since when.
  std::pair<std::string, std::time_t> error();

  // This host's hand-off addresses, comma-separated ("" for none).
  void set_handoff(std::string addresses);
  // The other engines' hand-off addresses, as last read.
  std::vector<std::string> peers();

 private:
  Registrar(std::unique_ptr<store::EtcdClient>, std::string key, std::string peers_prefix, std::string peer_key);
  model::Status put(const std::string& key, const std::string& value);
  model::Status put_back(const std::string& key, const std::string& value);
  // Sets what the thread is to write (`wanted`: value_ or handoff_), and wakes it when that changed.
  void want(std::string& wanted, std::string value);
  void run();
  model::Status refresh();
  model::Status read_peers();

  std::unique_ptr<store::EtcdClient> client_;
  std::string key_, peers_prefix_, peer_key_;
  std::string handoff_, handoff_written_;  // wanted, and in etcd under the current lease
  std::vector<std::string> peers_;
  std::int64_t next_peers_ms_ = 0;
  std::mutex mu_;
  std::condition_variable cv_;
  std::string value_;   // wanted
  std::string written_; // in etcd under the current lease
  std::string lease_;   // its ID, "" when none
  std::int64_t next_keepalive_ms_ = 0;
  std::string last_error_;
  std::time_t error_since_ = 0;
  bool stop_ = false;
  std::thread thread_;
};

}  // namespace azlb::engine
