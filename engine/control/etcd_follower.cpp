#include "engine/control/etcd_follower.hpp"
#include "engine/thread_name.hpp"

#include <sys/eventfd.h>
#include <unistd.h>

#include <algorithm>
#include <charconv>
#include <chrono>
#include <ctime>

#include "engine/log.hpp"

namespace azlb::engine {

using model::Result;
namespace etcd = store::etcd;

namespace {
// Short: a watch that is re-established costs etcd little, and a VIP's
// changes wait for it.
constexpr int kMaxBackoffMs = 5000;
}

Result<std::unique_ptr<EtcdFollower>> EtcdFollower::start(const store::EtcdLocation& loc) {
  AZLB_ASSIGN(client, store::EtcdClient::open(loc));
  AZLB_ASSIGN(snap, etcd::read(*client));
  std::unique_ptr<EtcdFollower> f(new EtcdFollower(std::move(client), std::move(snap)));
  if (f->event_fd_ < 0) return model::runtime_error("eventfd: cannot make one");
  f->publish(true);
  f->thread_ = std::thread([p = f.get()] {
    name_this_thread("azlb-etcd-watch");
    p->run();
  });
  return f;
}

EtcdFollower::EtcdFollower(std::unique_ptr<store::EtcdClient> c, etcd::Snapshot s)
    : client_(std::move(c)),
      prefix_(client_->location().prefix),
      copy_(std::make_shared<FollowedCopy>()),
      snap_(copy_->snap) {
  snap_ = std::move(s);
  copy_->exact = snap_.revision;
  event_fd_ = ::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  health_.etcd = true;
}

EtcdFollower::~EtcdFollower() {
  stop_ = true;
  wait_cv_.notify_all();
  if (thread_.joinable()) thread_.join();
  if (event_fd_ >= 0) ::close(event_fd_);
}

void EtcdFollower::drain_events() {
  std::uint64_t n;
  while (::read(event_fd_, &n, sizeof n) == sizeof n) {
  }
}

Result<store::StateText> EtcdFollower::read_now() {
  auto client = store::EtcdClient::open(client_->location());
  if (!client) return client.error();
  // On the control thread: a member that does not answer costs it 2 s, not 5 or 30.
  (*client)->cap_timeout(2000);
  auto snap = etcd::read(**client);
  if (!snap) return snap.error();
  if (!snap->meta && had_meta_)
    return model::runtime_error("the state's key " + etcd::meta_key(prefix_) +
                                " is gone (deleted by hand?): the engine keeps what is in force");
  return etcd::assemble(*snap, prefix_);
}

Result<store::StateText> EtcdFollower::latest() const {
  std::lock_guard lock(mu_);
  if (text_error_) return *text_error_;
  return text_;
}

StoreHealth EtcdFollower::health() const {
  std::lock_guard lock(mu_);
  return health_;
}

void EtcdFollower::publish(bool changed) {
  // A prefix never written is an empty state; one whose state key has gone
  // (etcdctl del) is a missing state, as a deleted file is: never "serve
  // nothing", the engine keeps what is in force.
  if (snap_.meta) had_meta_ = true;
  {
    std::lock_guard lock(copy_->mu);
    copy_->usable = snap_.meta.has_value();
  }
  copy_->changed.notify_all();
  auto text = had_meta_ && !snap_.meta
                  ? Result<store::StateText>(model::runtime_error(
                        "the state's key " + etcd::meta_key(prefix_) +
                        " is gone (deleted by hand?): the engine keeps what is in force; 'azlb state undo' or an "
                        "import puts a state back"))
                  : etcd::assemble(snap_, prefix_);
  {
    std::lock_guard lock(mu_);
    // A key that is not azlb's is a broken state, as a broken file is: the
    // engine's reload fails naming it and keeps what it serves.
    text_error_.reset();
    if (text) text_ = std::move(*text);
    else text_error_ = text.error();
    health_.revision = snap_.revision;
    if (!health_.reachable) {
      log("etcd reachable again at %s (revision %ld): following the state", client_->endpoint().c_str(),
          static_cast<long>(snap_.revision));
      health_.reachable = true;
      health_.error.clear();
      changed = true;
    }
  }
  if (changed) {
    const std::uint64_t one = 1;
    (void)!::write(event_fd_, &one, sizeof one);
  }
}

void EtcdFollower::set_unreachable(const std::string& why) {
  bool first = false;
  {
    std::lock_guard lock(copy_->mu);
    copy_->usable = false;
  }
  copy_->changed.notify_all();  // a relay waiting on it refuses now, not at its deadline
  {
    std::lock_guard lock(mu_);
    first = health_.reachable || health_.error != why;
    if (health_.reachable) health_.since = std::time(nullptr);
    health_.reachable = false;
    health_.error = why;
  }
  if (first) log("etcd: %s; the engine keeps serving what is in force and retries", why.c_str());
  const std::uint64_t one = 1;
  (void)!::write(event_fd_, &one, sizeof one);
}

void EtcdFollower::run() {
  int backoff_ms = 500;
  bool need_read = false;
  auto wait = [&](int ms) {
    std::unique_lock lock(wait_mu_);
    wait_cv_.wait_for(lock, std::chrono::milliseconds(ms), [&] { return stop_.load(); });
  };
  // A restart ends this connection only: the client goes on to the next member.
  const std::function<bool()> stop = [&] { return stop_.load() || restart_.exchange(false); };
  while (!stop_) {
    if (need_read) {
      auto snap = etcd::read(*client_);
      if (!snap) {
        set_unreachable(snap.error().message);
        wait(backoff_ms);
        backoff_ms = std::min(backoff_ms * 2, kMaxBackoffMs);
        continue;
      }
      {
        std::lock_guard lock(copy_->mu);
        snap_ = std::move(*snap);
        copy_->exact = snap_.revision;
      }
      need_read = false;
      publish(true);
    }
    const std::string from = prefix_ + "/";
    store::Json body = {{"create_request",
                         {{"key", store::base64_encode(from)},
                          {"range_end", store::base64_encode(store::prefix_end(from))},
                          {"start_revision", std::to_string(snap_.revision + 1)},
                          {"progress_notify", true}}}};
    std::string ended;
    auto st = client_->stream("watch", body, [&](const store::Json& j) {
      if (j.contains("error")) {
        ended = j["error"].is_object() && !store::json_text(j["error"], "message").empty()
                    ? store::json_text(j["error"], "message")
                    : "an error";
        need_read = true;
        return false;
      }
      if (!j.contains("result")) return true;
      const auto& r = j["result"];
      if (r.contains("compact_revision") || store::json_true(r, "canceled")) {
        ended = r.contains("compact_revision")
                    ? "revision " + std::to_string(snap_.revision + 1) + " was compacted"
                    : "the watch was cancelled by etcd" +
                          (store::json_text(r, "cancel_reason").empty() ? "" : ": " + store::json_text(r, "cancel_reason"));
        need_read = true;
        return false;
      }
      backoff_ms = 500;
      if (r.contains("created")) {
        publish(false);  // reachable again, if it was not
        return true;
      }
      bool changed = false, reread = false;
      std::unique_lock lock(copy_->mu);
      if (r.contains("events"))
        for (const auto& e : r["events"]) {
          changed |= snap_.apply(e, reread);
          if (e.contains("kv")) copy_->exact = std::max(copy_->exact, store::json_i64(e["kv"], "mod_revision"));
        }
      if (r.contains("header") && r["header"].contains("revision")) {
        const auto& h = r["header"]["revision"];
        std::int64_t rev = 0;
        if (h.is_number_integer()) rev = h.get<std::int64_t>();
        else if (h.is_string()) std::from_chars(h.get_ref<const std::string&>().data(),
                                                h.get_ref<const std::string&>().data() + h.get_ref<const std::string&>().size(), rev);
        if (rev > snap_.revision) snap_.revision = rev;
      }
      lock.unlock();
      if (!changed && !reread) copy_->changed.notify_all();  // an event outside the copy: still newer
      if (reread) {
        ended = "a new generation of the state";
        need_read = true;
        return false;
      }
      if (changed) publish(true);
      return true;
    }, stop);
    if (stop_) break;
    if (!ended.empty()) {
      if (ended != "a new generation of the state") log("etcd watch ended (%s): reading the state again", ended.c_str());
      continue;
    }
    // The stream broke (a member died, the network): watch again from the
    // next revision through whichever member answers, without reading the
    // whole state again (etcd says so if that revision was compacted
    // meanwhile). Out of reach when no member takes the watch.
    if (!st && st.error().message.rfind("cannot reach etcd", 0) == 0) {
      set_unreachable(st.error().message);
      wait(backoff_ms);
      backoff_ms = std::min(backoff_ms * 2, kMaxBackoffMs);
      continue;
    }
    log("etcd watch: %s; watching again from revision %ld", st ? "ended" : st.error().message.c_str(),
        static_cast<long>(snap_.revision + 1));
    wait(100);
  }
}

}  // namespace azlb::engine
