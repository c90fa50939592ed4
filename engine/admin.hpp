// The admin socket: a Unix socket next to the state file (mode 0600) that
// speaks just enough HTTP/1.1 for curl and `azlb status`. It serves a
// read-only projection of the engine (and the reload command); requests are
// answered by a handler the engine provides.
#pragma once

#include <filesystem>
#include <functional>
#include <string>
#include <vector>

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

  static model::Result<std::unique_ptr<AdminServer>> open(const std::filesystem::path&, Handler);
  ~AdminServer();

  // Descriptors to wait on for reading.
  std::vector<int> fds() const;
  // Serves whatever is ready on `fd`.
  void on_readable(int fd);

 private:
  AdminServer(std::filesystem::path, int fd, Handler);
  struct Client {
    int fd;
    std::string request;
  };
  void respond(Client&);

  std::filesystem::path path_;
  int listen_fd_;
  Handler handler_;
  std::vector<Client> clients_;
};

}  // namespace azlb::engine
