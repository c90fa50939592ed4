// etcd's v3 API through its JSON gateway (POST /v3/...), over libcurl: the
// endpoints are tried in turn, TLS and user/password auth come from the
// environment (AZLB_ETCD_CACERT, AZLB_ETCD_CERT, AZLB_ETCD_KEY,
// AZLB_ETCD_USER=NAME:PASSWORD), and every failure is one line naming the
// endpoint and what to do. No secret is ever put in a message.
#pragma once

#include <atomic>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <memory>
#include <optional>
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>
#include <vector>

#include "model/error.hpp"
#include "store/etcd_range.hpp"
#include "store/location.hpp"

namespace azlb::store {

using Json = nlohmann::json;

struct CurlApi;

// etcd's keys and values are bytes, base64 in JSON.
std::string base64_encode(std::string_view);
// nullopt-like: false when `in` is not base64.
bool base64_decode(std::string_view in, std::string& out);
// A field of a reply that may be absent or of another type (a server that
// is not etcd, or a newer one): false or "" then, never an exception.
bool json_true(const Json&, const char* key);
std::string json_text(const Json&, const char* key);
// An int64 (proto3 JSON writes it as a string; 0 when absent) and bytes (base64).
std::int64_t json_i64(const Json&, const char* key);
std::string json_bytes(const Json&, const char* key);
// The end of the range of every key starting with `prefix` (etcd's range_end).
std::string prefix_end(std::string prefix);

class EtcdClient {
 public:
  // Reads the environment; contacts nothing yet. libcurl is loaded by the
  // first request that goes to etcd itself.
  static model::Result<std::unique_ptr<EtcdClient>> open(const EtcdLocation&);
  ~EtcdClient();
  EtcdClient(const EtcdClient&) = delete;
  EtcdClient& operator=(const EtcdClient&) = delete;

  // POST /v3/<path>: the reply, or an error of the contract's kind (runtime:
  // unreachable, no quorum, auth or certificate refused; usage: a request
  // etcd finds too large). An endpoint that cannot be reached or has lost
  // its quorum is skipped for the next one.
  model::Result<Json> call(std::string_view path, const Json& body, int timeout_ms = 5000);
  // kv/range with `request`, its reply read by scan_range (call()'s errors).
  model::Result<RangeReply> range(const Json& request, int timeout_ms = 5000);

  // A streamed call (a watch): `on_message` gets each JSON message and
  // returns false to end it; `stop` is asked about once a second and ends it
  // when true. Returns when the stream ends (ok) or fails.
  model::Status stream(std::string_view path, const Json& body, const std::function<bool(const Json&)>& on_message,
                       const std::function<bool()>& stop);

  // Requests go through the engine's relay at `socket` (store/etcd_relay.hpp)
  // while it answers; the first time it does not, to etcd itself.
  void relay_through(std::filesystem::path socket) { relay_ = std::move(socket); }
  // For the relay: kv/range or kv/txn with `body` as the command sent it;
  // etcd's reply as it came is appended to `into` (call()'s errors).
  model::Status forward(std::string_view path, const std::string& body, int timeout_ms, std::string& into);
  // The relay's engine's copy of the state (store/etcd_snapshot_wire.hpp),
  // nullopt when there is no relay or it has none to give.
  std::optional<std::string> relayed_snapshot();
  // The location and the credentials' values: what the relay compares.
  std::string identity() const;

  const EtcdLocation& location() const { return loc_; }
  // No request of this client waits longer than this for one endpoint (a
  // thread that must not block long: the engine's control thread).
  void cap_timeout(int ms) { timeout_cap_ms_ = ms; }
  // The endpoint that answered last.
  const std::string& endpoint() const { return loc_.endpoints[current_]; }
  // How many times a request went on to another endpoint after one failed
  // (read from other threads: the engine watches it).
  std::uint64_t failovers() const { return failovers_.load(std::memory_order_relaxed); }

 private:
  struct Conn;
  explicit EtcdClient(EtcdLocation);
  model::Status load_curl();
  model::Status authenticate();
  // call(), where `take` may read a successful reply's body itself (it
  // returns true): the result is then null.
  model::Result<Json> exchange(std::string_view path, const std::string& body, int timeout_ms,
                               const std::function<bool(std::string_view)>* take);
  // The same through the relay; nullopt when it did not answer.
  std::optional<model::Result<Json>> exchange_relayed(std::string_view path, const std::string& body, int timeout_ms,
                                                      const std::function<bool(std::string_view)>* take);
  // One POST on one endpoint. `transport` false: an HTTP reply came (maybe an error).
  struct Reply {
    bool transport_failed = false;
    std::string error;  // curl's words when transport_failed
    long http = 0;
    std::string body;
  };
  Reply post(std::size_t endpoint, std::string_view path, const std::string& body, int timeout_ms,
             const std::function<bool(std::string_view)>* sink = nullptr, const std::function<bool()>* stop = nullptr);

  EtcdLocation loc_;
  const CurlApi* c_ = nullptr;  // loaded by the first request to etcd itself
  std::filesystem::path relay_;
  std::vector<std::unique_ptr<Conn>> conns_;
  std::size_t current_ = 0;
  std::atomic<std::uint64_t> failovers_{0};
  int timeout_cap_ms_ = 0;
  std::string cacert_, cert_, key_;
  std::string user_, password_;
  std::string token_;
};

}  // namespace azlb::store
