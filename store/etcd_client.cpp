#include "store/etcd_client.hpp"

#include <unistd.h>

#include <algorithm>
#include <array>
#include <charconv>
#include <cstdlib>
#include <mutex>
#include <cstring>

#include "model/text.hpp"
#include "store/curl_api.hpp"
#include "store/etcd_relay.hpp"
#include "store/prefault.hpp"

namespace azlb::store {

using model::Result;
using model::Status;

namespace {

constexpr char kB64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

// gRPC's codes, as etcd's gateway reports them.
enum GrpcCode : int {
  kInvalidArgument = 3,
  kDeadlineExceeded = 4,
  kPermissionDenied = 7,
  kResourceExhausted = 8,
  kUnavailable = 14,
  kUnauthenticated = 16,
};

std::string env(const char* name) {
  const char* v = std::getenv(name);
  return v ? v : "";
}

// The gateway's error body: {"error": "...", "code": N, "message": "..."}.
struct GatewayError {
  int code = 0;
  std::string message;
};

std::optional<GatewayError> gateway_error(const Json& j) {
  if (!j.is_object() || !j.contains("code") || !j["code"].is_number_integer()) return std::nullopt;
  GatewayError e;
  e.code = j["code"].get<int>();
  if (j.contains("message") && j["message"].is_string()) e.message = j["message"].get<std::string>();
  else if (j.contains("error") && j["error"].is_string()) e.message = j["error"].get<std::string>();
  return e;
}

size_t on_body(char* data, size_t size, size_t n, void* user) {
  auto* f = static_cast<std::function<bool(std::string_view)>*>(user);
  return (*f)(std::string_view(data, size * n)) ? size * n : 0;
}

int on_progress(void* user, curl_off_t, curl_off_t, curl_off_t, curl_off_t) {
  auto* stop = static_cast<const std::function<bool()>*>(user);
  return stop && *stop && (*stop)() ? 1 : 0;
}

}  // namespace

std::string base64_encode(std::string_view in) {
  std::string out;
  out.reserve((in.size() + 2) / 3 * 4);
  std::size_t i = 0;
  for (; i + 2 < in.size(); i += 3) {
    const auto v = (std::uint32_t(std::uint8_t(in[i])) << 16) | (std::uint32_t(std::uint8_t(in[i + 1])) << 8) |
                   std::uint8_t(in[i + 2]);
    out += kB64[v >> 18];
    out += kB64[(v >> 12) & 63];
    out += kB64[(v >> 6) & 63];
    out += kB64[v & 63];
  }
  if (i < in.size()) {
    auto v = std::uint32_t(std::uint8_t(in[i])) << 16;
    if (i + 1 < in.size()) v |= std::uint32_t(std::uint8_t(in[i + 1])) << 8;
    out += kB64[v >> 18];
    out += kB64[(v >> 12) & 63];
    out += i + 1 < in.size() ? kB64[(v >> 6) & 63] : '=';
    out += '=';
  }
  return out;
}

bool base64_decode(std::string_view in, std::string& out) {
  static const auto table = [] {
    std::array<std::int8_t, 256> t{};
    t.fill(-1);
    for (int i = 0; i < 64; ++i) t[static_cast<unsigned char>(kB64[i])] = static_cast<std::int8_t>(i);
    return t;
  }();
  out.clear();
  if (in.size() % 4) return false;
  out.reserve(in.size() / 4 * 3);
  for (std::size_t i = 0; i < in.size(); i += 4) {
    int pad = 0;
    std::uint32_t v = 0;
    for (int k = 0; k < 4; ++k) {
      const char c = in[i + k];
      if (c == '=' && i + 4 == in.size() && k >= 2) {
        ++pad;
        v <<= 6;
        continue;
      }
      if (pad) return false;
      const auto d = table[static_cast<unsigned char>(c)];
      if (d < 0) return false;
      v = (v << 6) | static_cast<std::uint32_t>(d);
    }
    out += static_cast<char>(v >> 16);
    if (pad < 2) out += static_cast<char>((v >> 8) & 0xff);
    if (pad < 1) out += static_cast<char>(v & 0xff);
  }
  return true;
}

bool json_true(const Json& j, const char* key) {
  return j.is_object() && j.contains(key) && j[key].is_boolean() && j[key].get<bool>();
}

std::string json_text(const Json& j, const char* key) {
  if (!j.is_object() || !j.contains(key)) return "";
  const auto& v = j[key];
  if (v.is_string()) return v.get<std::string>();
  if (v.is_number_integer()) return std::to_string(v.get<std::int64_t>());
  return "";
}

std::int64_t json_i64(const Json& j, const char* key) {
  if (!j.is_object() || !j.contains(key)) return 0;  // proto3 JSON leaves zero out
  const auto& v = j[key];
  if (v.is_number_integer()) return v.get<std::int64_t>();
  std::int64_t n = 0;
  if (v.is_string()) {
    const auto& s = v.get_ref<const std::string&>();
    std::from_chars(s.data(), s.data() + s.size(), n);
  }
  return n;
}

std::string json_bytes(const Json& j, const char* key) {
  std::string out;
  if (j.is_object() && j.contains(key) && j[key].is_string()) base64_decode(j[key].get_ref<const std::string&>(), out);
  return out;
}

std::string prefix_end(std::string p) {
  while (!p.empty()) {
    if (static_cast<unsigned char>(p.back()) < 0xff) {
      ++p.back();
      return p;
    }
    p.pop_back();
  }
  return std::string(1, '\0');  // every key
}

struct EtcdClient::Conn {
  const CurlApi& c;
  CURL* h;
  curl_slist* headers = nullptr;
  explicit Conn(const CurlApi& api) : c(api), h(api.easy_init()) {}
  ~Conn() {
    if (headers) c.slist_free_all(headers);
    if (h) c.easy_cleanup(h);
  }
};

EtcdClient::EtcdClient(EtcdLocation loc) : loc_(std::move(loc)) {}

EtcdClient::~EtcdClient() = default;

Result<std::unique_ptr<EtcdClient>> EtcdClient::open(const EtcdLocation& loc) {
  std::unique_ptr<EtcdClient> client(new EtcdClient(loc));
  client->cacert_ = env("AZLB_ETCD_CACERT");
  client->cert_ = env("AZLB_ETCD_CERT");
  client->key_ = env("AZLB_ETCD_KEY");
  if (!loc.tls && (!client->cacert_.empty() || !client->cert_.empty()))
    return model::usage_error("AZLB_ETCD_CACERT or AZLB_ETCD_CERT is set but the state location " +
                              model::quote(Location(loc).display()) + " is plain HTTP: use etcd+https://");
  if (client->cert_.empty() != client->key_.empty())
    return model::usage_error("AZLB_ETCD_CERT and AZLB_ETCD_KEY go together: set both or neither");
  for (auto* f : {&client->cacert_, &client->cert_, &client->key_})
    if (!f->empty() && ::access(f->c_str(), R_OK) != 0)
      return model::runtime_error("cannot read " + model::quote(*f) + " (from AZLB_ETCD_" +
                                  (f == &client->cacert_ ? "CACERT" : f == &client->cert_ ? "CERT" : "KEY") +
                                  "): " + std::strerror(errno));
  if (auto u = env("AZLB_ETCD_USER"); !u.empty()) {
    const auto colon = u.find(':');
    if (colon == std::string::npos || colon == 0)
      return model::usage_error("AZLB_ETCD_USER must be NAME:PASSWORD (its value is not shown)");
    client->user_ = u.substr(0, colon);
    client->password_ = u.substr(colon + 1);
  }
  return client;
}

Status EtcdClient::load_curl() {
  if (c_) return model::ok();
  const char* why = nullptr;
  const CurlApi* c = curl_api(&why);
  if (!c) return model::runtime_error(std::string("cannot load libcurl to reach etcd: ") + why);
  static std::once_flag once;
  std::call_once(once, [c] { c->global_init(CURL_GLOBAL_DEFAULT); });
  std::vector<std::unique_ptr<Conn>> conns;
  for (std::size_t i = 0; i < loc_.endpoints.size(); ++i) {
    conns.push_back(std::make_unique<Conn>(*c));
    if (!conns.back()->h) return model::runtime_error("cannot make a libcurl handle");
    conns.back()->headers = c->slist_append(nullptr, "Content-Type: application/json");
  }
  conns_ = std::move(conns);
  c_ = c;
  return model::ok();
}

std::string EtcdClient::identity() const {
  auto endpoints = loc_.endpoints;  // the same members in another order are the same cluster
  std::sort(endpoints.begin(), endpoints.end());
  std::string out = "azlb-relay/1\n";
  out += loc_.tls ? "https" : "http";
  for (auto& e : endpoints) (out += '\n') += e;
  // A relative file name means another file in another folder.
  auto absolute = [](const std::string& f) {
    std::error_code ec;
    return f.empty() ? f : std::filesystem::absolute(f, ec).string();
  };
  for (const auto& f : {loc_.prefix, absolute(cacert_), absolute(cert_), absolute(key_), user_, password_})
    (((out += '\n') += std::to_string(f.size())) += ':') += f;
  return out;
}

EtcdClient::Reply EtcdClient::post(std::size_t i, std::string_view path, const std::string& body, int timeout_ms,
                                   const std::function<bool(std::string_view)>* sink,
                                   const std::function<bool()>* stop) {
  Reply r;
  auto& conn = *conns_[i];
  CURL* h = conn.h;
  const std::string url = (loc_.tls ? "https://" : "http://") + loc_.endpoints[i] + "/v3/" + std::string(path);
  std::function<bool(std::string_view)> collect = [&](std::string_view d) {
    constexpr std::size_t kMaxReply = 256u << 20;  // far above any state azlb reads at once
    const std::size_t need = r.body.size() + d.size();
    if (need > kMaxReply) return false;
    if (need > r.body.capacity()) reserve_mapped(r.body, std::min(std::max(need, 2 * r.body.capacity()), kMaxReply));
    r.body.append(d);
    return true;
  };
  char errbuf[CURL_ERROR_SIZE] = {0};
  // The token goes in a header list of this request only.
  curl_slist* headers = conn.headers;
  curl_slist* auth = nullptr;
  std::string auth_header;
  if (!token_.empty()) {
    auth_header = "Authorization: " + token_;
    auth = c_->slist_append(nullptr, "Content-Type: application/json");
    auth = c_->slist_append(auth, auth_header.c_str());
    headers = auth;
  }
  c_->easy_setopt(h, CURLOPT_URL, url.c_str());
  c_->easy_setopt(h, CURLOPT_POST, 1L);
  c_->easy_setopt(h, CURLOPT_POSTFIELDS, body.c_str());
  c_->easy_setopt(h, CURLOPT_POSTFIELDSIZE_LARGE, static_cast<curl_off_t>(body.size()));
  c_->easy_setopt(h, CURLOPT_HTTPHEADER, headers);
  c_->easy_setopt(h, CURLOPT_WRITEFUNCTION, on_body);
  c_->easy_setopt(h, CURLOPT_WRITEDATA, sink ? sink : &collect);
  c_->easy_setopt(h, CURLOPT_ERRORBUFFER, errbuf);
  c_->easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
  // A stream (timeout 0) connects within 2 s too: a member that drops packets must not hold it for curl's 300 s.
  c_->easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS, static_cast<long>(timeout_ms > 0 ? std::min(timeout_ms, 2000) : 2000));
  c_->easy_setopt(h, CURLOPT_TIMEOUT_MS, static_cast<long>(sink ? 0 : timeout_ms));
  c_->easy_setopt(h, CURLOPT_TCP_KEEPALIVE, 1L);
  c_->easy_setopt(h, CURLOPT_TCP_KEEPIDLE, 5L);
  c_->easy_setopt(h, CURLOPT_TCP_KEEPINTVL, 5L);
  c_->easy_setopt(h, CURLOPT_PROTOCOLS_STR, loc_.tls ? "https" : "http");
  c_->easy_setopt(h, CURLOPT_NOPROGRESS, stop ? 0L : 1L);
  c_->easy_setopt(h, CURLOPT_XFERINFOFUNCTION, on_progress);
  c_->easy_setopt(h, CURLOPT_XFERINFODATA, stop);
  if (loc_.tls) {
    if (!cacert_.empty()) c_->easy_setopt(h, CURLOPT_CAINFO, cacert_.c_str());
    if (!cert_.empty()) c_->easy_setopt(h, CURLOPT_SSLCERT, cert_.c_str());
    if (!key_.empty()) c_->easy_setopt(h, CURLOPT_SSLKEY, key_.c_str());
  }
  const CURLcode rc = c_->easy_perform(h);
  // Nothing of this request stays in the handle that is kept for the next.
  c_->easy_setopt(h, CURLOPT_HTTPHEADER, conn.headers);
  c_->easy_setopt(h, CURLOPT_ERRORBUFFER, nullptr);
  if (auth) c_->slist_free_all(auth);
  if (rc != CURLE_OK) {
    r.transport_failed = true;
    r.error = errbuf[0] ? errbuf : c_->easy_strerror(rc);
    if (rc == CURLE_ABORTED_BY_CALLBACK || (sink && rc == CURLE_WRITE_ERROR)) r.error.clear();  // we ended it
    if (rc == CURLE_PEER_FAILED_VERIFICATION || rc == CURLE_SSL_CACERT_BADFILE || rc == CURLE_SSL_CERTPROBLEM ||
        rc == CURLE_SSL_CONNECT_ERROR)
      r.error = "TLS: " + r.error + " (check AZLB_ETCD_CACERT, AZLB_ETCD_CERT and AZLB_ETCD_KEY)";
    return r;
  }
  c_->easy_getinfo(h, CURLINFO_RESPONSE_CODE, &r.http);
  return r;
}

Status EtcdClient::authenticate() {
  token_.clear();
  Json body = {{"name", user_}, {"password", password_}};
  auto reply = call("auth/authenticate", body);
  if (!reply) {
    if (reply.error().message.find("invalid user ID or password") != std::string::npos ||
        reply.error().message.find("authentication failed") != std::string::npos)
      return model::runtime_error("etcd refused user " + model::quote(user_) +
                                  ": wrong name or password (AZLB_ETCD_USER; the password is not shown)");
    return reply.error();
  }
  if (json_text(*reply, "token").empty())
    return model::runtime_error("etcd at " + endpoint() + " gave no auth token for user " + model::quote(user_) +
                                " (is auth enabled? etcdctl auth enable)");
  token_ = (*reply)["token"].get<std::string>();
  return model::ok();
}

Result<Json> EtcdClient::call(std::string_view path, const Json& body, int timeout_ms) {
  return exchange(path, body.dump(), timeout_ms, nullptr);
}

Status EtcdClient::forward(std::string_view path, const std::string& body, int timeout_ms, std::string& into) {
  const std::size_t at = into.size();
  const std::function<bool(std::string_view)> take = [&](std::string_view reply) {
    into.resize(at);  // a reply from an endpoint tried before does not count
    reserve_mapped(into, at + reply.size());
    into.append(reply);
    return true;
  };
  AZLB_TRY(exchange(path, body, timeout_ms, &take));
  return model::ok();
}

Result<RangeReply> EtcdClient::range(const Json& request, int timeout_ms) {
  RangeReply out;
  bool taken = false;
  const std::function<bool(std::string_view)> take = [&](std::string_view body) {
    return taken = scan_range(body, out);
  };
  AZLB_ASSIGN(reply, exchange("kv/range", request.dump(), timeout_ms, &take));
  if (!taken) out = range_from_json(reply);
  return out;
}

std::optional<Result<Json>> EtcdClient::exchange_relayed(std::string_view path, const std::string& body,
                                                         int timeout_ms,
                                                         const std::function<bool(std::string_view)>* take) {
  // The relay may try every endpoint, each for up to timeout_ms.
  const int wait_ms = timeout_ms * static_cast<int>(std::max<std::size_t>(1, loc_.endpoints.size())) + 2000;
  auto answer = ask_relay(relay_, RelayRequest{identity(), std::string(path), body, timeout_ms}, wait_ms);
  if (!answer || answer->kind == RelayAnswer::Refused) {
    relay_.clear();  // no engine, or one that did not answer: etcd itself from now on
    return std::nullopt;
  }
  if (answer->kind == RelayAnswer::Failed) return Result<Json>(model::Error{answer->error, std::move(answer->body)});
  if (take && (*take)(answer->body)) return Result<Json>(Json());
  Json j = Json::parse(answer->body, nullptr, false);
  if (j.is_discarded() || !j.is_object() || gateway_error(j))
    return Result<Json>(model::runtime_error("etcd (through the engine's relay " + relay_.string() +
                                             ") answered what azlb cannot read: " + model::printable(answer->body, 120)));
  return Result<Json>(std::move(j));
}

std::optional<std::string> EtcdClient::relayed_snapshot() {
  if (relay_.empty()) return std::nullopt;
  // The engine waits up to 200 ms for its watch to catch up with its writes.
  auto answer = ask_relay(relay_, RelayRequest{identity(), std::string(kRelaySnapshotPath), {}, 0}, 2000);
  if (!answer) {
    relay_.clear();
    return std::nullopt;
  }
  // A refusal (an engine out of reach of etcd, behind, or older) is no reason
  // not to relay the requests that follow.
  if (answer->kind != RelayAnswer::Reply) return std::nullopt;
  return std::move(answer->body);
}

Result<Json> EtcdClient::exchange(std::string_view path, const std::string& text, int timeout_ms,
                                  const std::function<bool(std::string_view)>* take) {
  if (timeout_cap_ms_ > 0) timeout_ms = std::min(timeout_ms, timeout_cap_ms_);
  if (!relay_.empty() && path != "auth/authenticate")
    if (auto relayed = exchange_relayed(path, text, timeout_ms, take)) return std::move(*relayed);
  AZLB_TRY(load_curl());
  if (!user_.empty() && token_.empty() && path != "auth/authenticate") AZLB_TRY(authenticate());
  std::string failures;
  bool reauthenticated = false;
  for (std::size_t tried = 0; tried < conns_.size(); ++tried) {
    const std::size_t i = (current_ + tried) % conns_.size();
    auto r = post(i, path, text, timeout_ms);
    const auto& name = loc_.endpoints[i];
    if (r.transport_failed) {
      failures += (failures.empty() ? "" : "; ") + name + ": " + r.error;
      continue;
    }
    const bool taken = take && r.http == 200 && (*take)(r.body);
    Json j;  // null when `take` read the reply
    if (!taken) {
      j = Json::parse(r.body, nullptr, false);
      if (j.is_discarded() || !j.is_object())
        return model::runtime_error("etcd at " + name + " answered HTTP " + std::to_string(r.http) +
                                    " with what is not JSON: is it an etcd 3.4+ server? (" +
                                    model::printable(r.body, 120) + ")");
    }
    if (taken || (r.http == 200 && !gateway_error(j))) {
      if (tried) failovers_.fetch_add(1, std::memory_order_relaxed);
      current_ = i;
      return j;
    }
    const auto e = gateway_error(j).value_or(GatewayError{0, "HTTP " + std::to_string(r.http)});
    const std::string said = model::printable(e.message, 300);
    if (e.code == kUnavailable || e.code == kDeadlineExceeded) {  // no leader, lost quorum, leader changed
      failures += (failures.empty() ? "" : "; ") + name + ": " + said;
      continue;
    }
    if (e.code == kUnauthenticated || (e.code == kInvalidArgument && (said.find("auth token") != std::string::npos ||
                                                                   said.find("user name is empty") != std::string::npos))) {
      if (user_.empty())
        return model::runtime_error("etcd at " + name + " requires a user: set AZLB_ETCD_USER=NAME:PASSWORD (" + said +
                                    ")");
      if (!reauthenticated && path != "auth/authenticate") {  // the token expired: once more with a new one
        reauthenticated = true;
        AZLB_TRY(authenticate());
        --tried;
        continue;
      }
    }
    if (e.code == kPermissionDenied)
      return model::runtime_error("etcd at " + name + " denied user " + model::quote(user_) + " access to " +
                                  loc_.prefix + ": " + said);
    if (said.find("request is too large") != std::string::npos || e.code == kResourceExhausted)
      return model::runtime_error("etcd at " + name + " refused a request as too large (" + said +
                                  "): raise its --max-request-bytes or make the change smaller");
    return model::runtime_error("etcd at " + name + ": " + said);
  }
  return model::runtime_error("cannot reach etcd (" + failures + ")");
}

Status EtcdClient::stream(std::string_view path, const Json& body, const std::function<bool(const Json&)>& on_message,
                          const std::function<bool()>& stop) {
  AZLB_TRY(load_curl());
  if (!user_.empty() && token_.empty()) AZLB_TRY(authenticate());
  const std::string text = body.dump();
  std::string failures;
  for (std::size_t tried = 0; tried < conns_.size(); ++tried) {
    const std::size_t i = (current_ + tried) % conns_.size();
    std::string pending;
    bool ended = false;  // on_message said stop
    std::string bad;
    std::function<bool(std::string_view)> sink = [&](std::string_view d) {
      pending.append(d);
      std::size_t start = 0;
      for (auto nl = pending.find('\n', start); nl != std::string::npos; nl = pending.find('\n', start)) {
        std::string_view line(pending.data() + start, nl - start);
        start = nl + 1;
        if (line.find_first_not_of(" \r\t") == std::string_view::npos) continue;
        Json j = Json::parse(line, nullptr, false);
        if (j.is_discarded()) {
          bad = "a watch message that is not JSON: " + model::printable(line, 120);
          return false;
        }
        bool go_on = false;
        try {
          go_on = on_message(j);
        } catch (const std::exception& e) {  // a message of an unexpected shape: never through curl's C frames
          bad = std::string("a watch message azlb cannot read (") + e.what() + ")";
          return false;
        }
        if (!go_on) {
          ended = true;
          return false;
        }
      }
      pending.erase(0, start);
      return pending.size() < (64u << 20);
    };
    auto r = post(i, path, text, 0, &sink, &stop);
    if (ended || (stop && stop())) return model::ok();
    if (!bad.empty()) return model::runtime_error("etcd at " + loc_.endpoints[i] + " sent " + bad);
    if (r.transport_failed) {
      failures += (failures.empty() ? "" : "; ") + loc_.endpoints[i] + ": " + r.error;
      continue;
    }
    current_ = i;
    // The stream ended by the server: an HTTP error, or a closed connection.
    if (r.http != 200) {
      Json j = Json::parse(pending, nullptr, false);
      auto e = gateway_error(j);
      return model::runtime_error("etcd at " + loc_.endpoints[i] + " ended the watch: " +
                                  (e ? model::printable(e->message, 300) : "HTTP " + std::to_string(r.http)));
    }
    return model::runtime_error("etcd at " + loc_.endpoints[i] + " closed the watch");
  }
  return model::runtime_error("cannot reach etcd (" + failures + ")");
}

}  // namespace azlb::store
