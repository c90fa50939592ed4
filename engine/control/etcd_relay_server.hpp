// The engine's end of the etcd relay (store/etcd_relay.hpp): commands typed
// on this host send their etcd requests here, and the engine forwards them
// with clients that keep libcurl loaded and their connections open.
//
// Its own threads, never the control thread's (an etcd request takes
// milliseconds, and seconds when a member is gone): one reads requests and
// writes answers for every connection, without blocking on any; kWorkers
// forward whole requests, each with its own client. A connection that sends
// nothing, too little or too much, or does not read its answer, holds no
// worker: it is closed at its deadline (kRequestMs to bring the request,
// kAnswerMs to take the answer), and when kMaxConnections are open the one
// waiting longest for its request makes room. At most kQueued requests wait
// for a worker; one more is told "busy" and goes to etcd itself, as is one
// whose answer would take the answers waiting to be read past
// kMaxHeldBytes (a state's range or copy is megabytes). Only
// kv/range and kv/txn are forwarded, for a peer of the engine's own user
// whose identity (location and credentials) is the engine's; to the same
// peer the engine hands its followed copy of the state, once that copy has
// seen the last change the relay wrote (within kCopyWaitMs, or refused).
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <filesystem>
#include <memory>
#include <mutex>
#include <thread>

#include "engine/control/followed_copy.hpp"
#include "model/error.hpp"
#include "store/location.hpp"

namespace azlb::store {
class EtcdClient;
}

namespace azlb::engine {

class EtcdRelayServer {
 public:
  static constexpr int kWorkers = 4;
  static constexpr std::size_t kQueued = 16;
  static constexpr std::size_t kMaxConnections = 64;  // counted in the engine's descriptor reserve
  static constexpr std::size_t kMaxHeldBytes = 64u << 20;
  static constexpr std::int64_t kRequestMs = 2000;
  static constexpr std::int64_t kAnswerMs = 5000;
  static constexpr int kEtcdTimeoutMs = 30000;  // per endpoint, as a command's own longest
  // A watch brings a change within milliseconds; a copy longer behind is
  // not worth the wait (the command reads etcd).
  static constexpr int kCopyWaitMs = 200;

  // `copy`: the follower's (null: none to hand out).
  static model::Result<std::unique_ptr<EtcdRelayServer>> start(const store::EtcdLocation&,
                                                               const std::filesystem::path& socket,
                                                               std::shared_ptr<FollowedCopy> copy);
  // Stops accepting and removes the socket; waits a moment for the requests
  // in hand, and not longer: a worker in a long etcd request ends on its own
  // (it holds what it needs).
  ~EtcdRelayServer();
  EtcdRelayServer(const EtcdRelayServer&) = delete;
  EtcdRelayServer& operator=(const EtcdRelayServer&) = delete;

  const std::filesystem::path& socket() const { return path_; }
  std::uint64_t forwarded() const { return shared_->forwarded.load(std::memory_order_relaxed); }
  std::uint64_t refused() const { return shared_->refused.load(std::memory_order_relaxed); }
  std::uint64_t copies() const { return shared_->copies.load(std::memory_order_relaxed); }

 private:
  struct Job {
    std::uint64_t id;
    std::string request;  // a frame's payload
  };
  struct Done {
    std::uint64_t id;
    std::string answer;  // a whole frame
  };
  // What the workers use, owned by them too: a worker in a long etcd
  // request outlives the server without touching freed memory.
  struct Shared {
    store::EtcdLocation loc;
    int wake_fd = -1;  // the I/O thread's: an answer is done
    std::atomic<bool> stopping{false};
    std::mutex mu;
    std::condition_variable ready, gone;
    std::deque<Job> jobs;
    std::deque<Done> done;
    int alive = 0;  // workers
    std::atomic<std::uint64_t> forwarded{0}, refused{0}, copies{0};
    std::atomic<std::size_t> held{0};  // bytes of answers waiting for their connection to read them
    std::shared_ptr<FollowedCopy> copy;
    std::atomic<std::int64_t> written{0};  // the revision of the last change the relay wrote
    void work();
    std::string serve(const std::string& request, std::unique_ptr<store::EtcdClient>& client);
    std::string hand_copy();
    bool too_many_held(std::size_t bytes) const;
    std::string refusal(const char* why);
    ~Shared();
  };
  struct Conn;
  EtcdRelayServer(std::shared_ptr<Shared>, std::filesystem::path, int listen_fd, int stop_fd);
  void io_loop();

  std::shared_ptr<Shared> shared_;
  std::filesystem::path path_;
  int listen_fd_, stop_fd_;
  std::thread io_;
};

}  // namespace azlb::engine
