#include "engine/control/etcd_relay_server.hpp"
#include "engine/thread_name.hpp"

#include <malloc.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <map>

#include "engine/control/unix_listen.hpp"
#include "engine/log.hpp"
#include "store/etcd_client.hpp"
#include "store/etcd_relay.hpp"
#include "store/etcd_snapshot_wire.hpp"

namespace azlb::engine {

using store::RelayAnswer;

namespace {

constexpr const char* kHeldRefusal = "busy: the answers waiting to be read are at their bound";

// A transaction that succeeded wrote at its reply's revision: the copy
// handed out next must have seen it (a command reads its own writes).
void note_written(std::string_view reply, std::atomic<std::int64_t>& written) {
  if (reply.size() > (64u << 10)) return;  // azlb's transactions answer in a few hundred bytes
  const auto j = store::Json::parse(reply, nullptr, false);
  if (j.is_discarded() || !j.is_object() || !store::json_true(j, "succeeded") || !j.contains("header")) return;
  const auto rev = store::json_i64(j["header"], "revision");
  auto seen = written.load();
  while (rev > seen && !written.compare_exchange_weak(seen, rev)) {
  }
}

}  // namespace

struct EtcdRelayServer::Conn {
  int fd = -1;
  std::int64_t deadline_ms = 0;
  bool working = false;  // its request is with a worker
  std::string in, out;
  std::size_t out_off = 0;
  std::size_t held = 0;  // out's size, counted in Shared::held
};

model::Result<std::unique_ptr<EtcdRelayServer>> EtcdRelayServer::start(const store::EtcdLocation& loc,
                                                                       const std::filesystem::path& socket,
                                                                       std::shared_ptr<FollowedCopy> copy) {
  // The engine's own client says now whether its environment is usable.
  AZLB_TRY(store::EtcdClient::open(loc));
  auto shared = std::make_shared<Shared>();
  shared->loc = loc;
  shared->copy = std::move(copy);
  shared->wake_fd = ::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  const int stop = ::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  if (shared->wake_fd < 0 || stop < 0) {
    const int e = errno;
    if (stop >= 0) ::close(stop);
    return model::runtime_error(std::string("cannot make the etcd relay's eventfds: ") + std::strerror(e));
  }
  auto fd = listen_unix(socket, static_cast<int>(kMaxConnections), "etcd relay socket");
  if (!fd) {
    ::close(stop);
    return fd.error();
  }
  shared->alive = kWorkers;
  for (int i = 0; i < kWorkers; ++i)
    std::thread([shared] {
      name_this_thread("azlb-etcd-relay");
      shared->work();
    }).detach();
  std::unique_ptr<EtcdRelayServer> s(new EtcdRelayServer(std::move(shared), socket, *fd, stop));
  s->io_ = std::thread([p = s.get()] {
    name_this_thread("azlb-relay-io");
    p->io_loop();
  });
  return s;
}

EtcdRelayServer::EtcdRelayServer(std::shared_ptr<Shared> shared, std::filesystem::path path, int listen_fd,
                                 int stop_fd)
    : shared_(std::move(shared)), path_(std::move(path)), listen_fd_(listen_fd), stop_fd_(stop_fd) {}

EtcdRelayServer::~EtcdRelayServer() {
  const std::uint64_t one = 1;
  (void)!::write(stop_fd_, &one, sizeof one);
  io_.join();
  {
    std::unique_lock lock(shared_->mu);
    shared_->stopping = true;
    shared_->jobs.clear();
    shared_->ready.notify_all();
    shared_->gone.wait_for(lock, std::chrono::seconds(2), [this] { return shared_->alive == 0; });
  }
  ::unlink(path_.c_str());
  ::close(listen_fd_);
  ::close(stop_fd_);
}

EtcdRelayServer::Shared::~Shared() {
  if (wake_fd >= 0) ::close(wake_fd);
}

std::string EtcdRelayServer::Shared::refusal(const char* why) {
  refused.fetch_add(1, std::memory_order_relaxed);
  return store::frame_of(store::answer_head({RelayAnswer::Refused, {}}), why);
}

void EtcdRelayServer::io_loop() {
  std::map<std::uint64_t, Conn> conns;  // by id, which is the order they came in
  std::uint64_t next_id = 1;
  std::int64_t accept_paused_until = 0;
  auto close_conn = [&](std::map<std::uint64_t, Conn>::iterator it) {
    ::close(it->second.fd);
    shared_->held.fetch_sub(it->second.held);
    const bool big = it->second.out.capacity() > (1u << 20);
    auto next = conns.erase(it);
    // A state's range (megabytes, in a worker's arena and here) is given
    // back to the system, not kept by the allocator for the engine's life.
    if (big) ::malloc_trim(0);
    return next;
  };
  // Queued for a worker, or refused at once.
  auto submit = [&](std::uint64_t id, Conn& c) {
    // Taken: said at once (one byte into an empty socket buffer), so that a
    // command knows a live engine from a frozen one before etcd's longest wait.
    (void)!::send(c.fd, &store::kRelayAck, 1, MSG_NOSIGNAL | MSG_DONTWAIT);
    auto payload = std::string_view(c.in).substr(4);
    std::unique_lock lock(shared_->mu);
    if (shared_->jobs.size() >= kQueued || shared_->held.load() >= kMaxHeldBytes) {
      lock.unlock();
      c.out = shared_->refusal("busy");
      c.deadline_ms = store::monotonic_ms() + kAnswerMs;
      return;
    }
    shared_->jobs.push_back({id, std::string(payload)});
    lock.unlock();
    shared_->ready.notify_one();
    c.working = true;
    c.in.clear();
    c.in.shrink_to_fit();
  };
  for (;;) {
    const auto now = store::monotonic_ms();
    std::vector<pollfd> fds = {{stop_fd_, POLLIN, 0}, {shared_->wake_fd, POLLIN, 0}};
    const bool room = conns.size() < kMaxConnections || std::any_of(conns.begin(), conns.end(), [](auto& kv) {
                        return !kv.second.working && kv.second.out.empty();
                      });
    const bool accepting = room && now >= accept_paused_until;
    if (accepting) fds.push_back({listen_fd_, POLLIN, 0});
    std::vector<std::uint64_t> ids;
    std::int64_t wait = 1000;
    for (auto& [id, c] : conns) {
      if (c.working) continue;
      fds.push_back({c.fd, static_cast<short>(c.out.empty() ? POLLIN : POLLOUT), 0});
      ids.push_back(id);
      wait = std::min(wait, std::max<std::int64_t>(0, c.deadline_ms - now));
    }
    if (accept_paused_until > now) wait = std::min(wait, accept_paused_until - now);
    if (::poll(fds.data(), fds.size(), static_cast<int>(wait)) < 0 && errno != EINTR) continue;
    if (fds[0].revents) {
      for (auto& [id, c] : conns) ::close(c.fd);  // waiting commands go to etcd themselves
      return;
    }
    if (fds[1].revents) {
      std::uint64_t n;
      (void)!::read(shared_->wake_fd, &n, sizeof n);
      std::deque<Done> done;
      {
        std::lock_guard lock(shared_->mu);
        done.swap(shared_->done);
      }
      for (auto& d : done)
        if (auto it = conns.find(d.id); it != conns.end()) {
          it->second.working = false;
          it->second.out = std::move(d.answer);
          it->second.held = it->second.out.size();
          shared_->held.fetch_add(it->second.held);
          it->second.deadline_ms = store::monotonic_ms() + kAnswerMs;
        }
    }
    // The connections polled, by their place in fds after the fixed ones.
    const std::size_t first = fds.size() - ids.size();
    for (std::size_t i = 0; i < ids.size(); ++i) {
      if (!fds[first + i].revents) continue;
      auto it = conns.find(ids[i]);
      Conn& c = it->second;
      if (!c.out.empty()) {
        const ssize_t w = ::send(c.fd, c.out.data() + c.out_off, c.out.size() - c.out_off, MSG_NOSIGNAL | MSG_DONTWAIT);
        if (w > 0) c.out_off += static_cast<std::size_t>(w);
        if ((w < 0 && errno != EAGAIN && errno != EINTR) || c.out_off == c.out.size()) close_conn(it);
        continue;
      }
      char buf[65536];
      const ssize_t r = ::recv(c.fd, buf, sizeof buf, MSG_DONTWAIT);
      if (r == 0 || (r < 0 && errno != EAGAIN && errno != EINTR)) {
        close_conn(it);  // gone before its request was whole: nothing forwarded
        continue;
      }
      if (r < 0) continue;
      c.in.append(buf, static_cast<std::size_t>(r));
      if (c.in.size() < 4) continue;
      const std::size_t n = store::frame_length(c.in);
      if (n > store::kRelayMaxRequest || c.in.size() > 4 + n) {
        close_conn(it);  // more than a request: nothing forwarded
        continue;
      }
      if (c.in.size() == 4 + n) submit(it->first, c);
    }
    // Past their deadline: closed (a request with a worker has none).
    const auto later = store::monotonic_ms();
    for (auto it = conns.begin(); it != conns.end();)
      it = !it->second.working && later >= it->second.deadline_ms ? close_conn(it) : std::next(it);
    if (accepting && fds[2].revents) {
      const int fd = ::accept4(listen_fd_, nullptr, nullptr, SOCK_CLOEXEC | SOCK_NONBLOCK);
      if (fd < 0) {
        // Out of descriptors: the listening socket stays readable; a pause
        // keeps this thread from spinning on it (commands go to etcd meanwhile).
        if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS || errno == ENOMEM) accept_paused_until = later + 250;
        continue;
      }
      if (conns.size() >= kMaxConnections) {
        // The one waiting longest for its request makes room.
        for (auto it = conns.begin(); it != conns.end(); ++it)
          if (!it->second.working && it->second.out.empty()) {
            close_conn(it);
            break;
          }
      }
      Conn c;
      c.fd = fd;
      c.deadline_ms = later + kRequestMs;
      if (!store::peer_is_own_user(fd)) {
        c.out = shared_->refusal("the relay serves its own user only");
        c.out.insert(c.out.begin(), store::kRelayAck);
      }
      conns.emplace(next_id++, std::move(c));
    }
  }
}

void EtcdRelayServer::Shared::work() {
  std::unique_ptr<store::EtcdClient> client;  // kept: libcurl's connections stay open between commands
  for (;;) {
    std::unique_lock lock(mu);
    ready.wait(lock, [this] { return stopping || !jobs.empty(); });
    if (stopping) {
      --alive;
      gone.notify_all();
      return;
    }
    Job job = std::move(jobs.front());
    jobs.pop_front();
    lock.unlock();
    Done d{job.id, serve(job.request, client)};
    lock.lock();
    done.push_back(std::move(d));
    lock.unlock();
    const std::uint64_t one = 1;
    (void)!::write(wake_fd, &one, sizeof one);
  }
}

std::string EtcdRelayServer::Shared::serve(const std::string& request, std::unique_ptr<store::EtcdClient>& client) {
  auto req = store::decode_request(request);
  if (!req) return refusal("not a relay request");
  const bool copy_asked = req->path == store::kRelaySnapshotPath;
  if (req->path != "kv/range" && req->path != "kv/txn" && !copy_asked)
    return refusal("only kv/range and kv/txn are relayed");
  if (!client) {
    auto opened = store::EtcdClient::open(loc);
    if (!opened) return refusal("the engine cannot open an etcd client");
    client = std::move(*opened);
  }
  if (req->identity != client->identity()) return refusal("another location or other credentials");
  if (copy_asked) return hand_copy();
  // The reply lands after its frame's head, whose length is set after: a
  // state's range (megabytes) is not copied once more.
  std::string out = store::frame_of(store::answer_head({RelayAnswer::Reply, {}}), {});
  auto st = client->forward(req->path, req->body, std::clamp(req->timeout_ms, 1, kEtcdTimeoutMs), out);
  forwarded.fetch_add(1, std::memory_order_relaxed);
  if (!st) return store::frame_of(store::answer_head({RelayAnswer::Failed, {}, st.error().kind}), st.error().message);
  store::seal_frame(out);
  if (req->path == "kv/txn") note_written(std::string_view(out).substr(4 + 1), written);
  else if (too_many_held(out.size())) return refusal(kHeldRefusal);  // a read: the command reads etcd itself
  return out;
}

// A client that never reads holds its answer until its deadline: a read's
// answer that would take those waiting past the bound is refused. Never a
// transaction's: it has happened, and its answer is a few hundred bytes.
bool EtcdRelayServer::Shared::too_many_held(std::size_t bytes) const {
  return bytes > (64u << 10) && held.load() + bytes > kMaxHeldBytes;
}

std::string EtcdRelayServer::Shared::hand_copy() {
  if (!copy) return refusal("the engine keeps no copy");
  const auto want = written.load();
  std::unique_lock lock(copy->mu);
  copy->changed.wait_for(lock, std::chrono::milliseconds(kCopyWaitMs),
                         [&] { return copy->exact >= want || stopping.load(); });
  if (!copy->usable) return refusal("the engine's copy is not current (etcd out of reach, or no state)");
  if (copy->exact < want) return refusal("the engine's copy is behind what it wrote");
  std::string out = store::frame_of(store::answer_head({RelayAnswer::Reply, {}}), {});
  store::etcd::encode_snapshot(copy->snap, copy->exact, out);
  lock.unlock();
  if (too_many_held(out.size())) return refusal(kHeldRefusal);
  store::seal_frame(out);
  copies.fetch_add(1, std::memory_order_relaxed);
  return out;
}

}  // namespace azlb::engine
