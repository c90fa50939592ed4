// The admin socket: a Unix socket next to the state file (mode 0600) that
// speaks just enough HTTP/1.1 for curl and `azlb status`. It serves a
// read-only projection of the engine (and the reload command); requests are
// answered by a handler the engine provides.
//
// It runs on the control thread beside the probes, so it must never stall
// it: every socket is non-blocking, and a client gets kIdleMs to send its
// request and read the answer. A monitoring script that connects and never
// sends (or thousands of them) must not take the operator's view away: the
// backlog holds kBacklog clients (the kernel's somaxconn may cap it), up to
// kMaxClients are served at once, and when all are taken a new client makes
// room by closing the one that has waited longest without sending its
// request. When no descriptor is left for accept() it stops polling the
// listening socket for a while instead of spinning on it.
#pragma once

#include <cstdint>
#include <filesystem>
#include <functional>
#include <string>
#include <vector>

#include "model/address.hpp"
#include "model/error.hpp"

namespace azlb::engine {

struct HttpResponse {
  int status = 200;
  std::string content_type = "application/json";
  std::string body;
};

class AdminServer {
 public:
  using Handler = std::function<HttpResponse(const std::string& method, const std::string& path)>;
  static constexpr std::size_t kMaxClients = 128;
  static constexpr int kBacklog = 4096;
  static constexpr std::int64_t kIdleMs = 5000;
  static constexpr std::int64_t kAcceptBackoffMs = 250;

  static model::Result<std::unique_ptr<AdminServer>> open(const std::filesystem::path&, Handler);
  // The same server on a TCP address (`engine start --metrics-listen`):
  // whoever can reach it is served, so its handler answers read-only paths.
  static model::Result<std::unique_ptr<AdminServer>> open_tcp(const model::IpAddress&, std::uint16_t port, Handler);
  ~AdminServer();

  struct Want {
    int fd;
    short events;  // POLLIN or POLLOUT
  };
  // What to wait for now.
  std::vector<Want> wants(std::int64_t now_ms) const;
  // Serves whatever is ready on `fd`.
  void on_ready(int fd, std::int64_t now_ms);
  // Closes clients past their deadline.
  void on_tick(std::int64_t now_ms);
  // Milliseconds until on_tick has something to do.
  std::int64_t next_due_ms(std::int64_t now_ms) const;

 private:
  AdminServer(std::filesystem::path, int fd, Handler);
  struct Client {
    int fd;
    std::int64_t deadline_ms;
    std::int64_t accepted_ms;
    std::string in, out;
    std::size_t out_off = 0;
  };
  void accept_clients(std::int64_t now_ms);
  // Closes the client that has waited longest without a whole request;
  // false when every other one is being answered.
  bool evict_idle(const Client& keep);
  // False once the client is done with (answered, gone or broken).
  bool serve(Client&);
  std::string respond(const std::string& request);

  std::filesystem::path path_;
  int listen_fd_;
  Handler handler_;
  std::vector<Client> clients_;
  std::int64_t accept_paused_until_ms_ = 0;
};

}  // namespace azlb::engine
