#include "store/etcd_relay.hpp"

#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <algorithm>
#include <charconv>
#include <cstring>

#include "store/prefault.hpp"
#include "store/socket_io.hpp"

namespace azlb::store {

std::string encode_request(const RelayRequest& r) {
  std::string out;
  out.reserve(r.identity.size() + r.path.size() + r.body.size() + 16);
  out.append(r.identity).push_back('\0');
  out.append(r.path).push_back('\0');
  out.append(std::to_string(r.timeout_ms)).push_back('\0');
  out.append(r.body);
  return out;
}

std::optional<RelayRequest> decode_request(std::string_view f) {
  RelayRequest r;
  std::string_view field[3];
  for (auto& v : field) {
    const auto nul = f.find('\0');
    if (nul == std::string_view::npos) return std::nullopt;
    v = f.substr(0, nul);
    f.remove_prefix(nul + 1);
  }
  const auto [end, ec] = std::from_chars(field[2].data(), field[2].data() + field[2].size(), r.timeout_ms);
  if (ec != std::errc() || end != field[2].data() + field[2].size() || r.timeout_ms < 0 || field[1].empty())
    return std::nullopt;
  r.identity = field[0];
  r.path = field[1];
  r.body = f;
  return r;
}

std::string answer_head(const RelayAnswer& a) {
  std::string out;
  if (a.kind == RelayAnswer::Reply) out += 'O';
  if (a.kind == RelayAnswer::Failed) {
    out += 'E';
    out += static_cast<char>('0' + static_cast<int>(a.error));
  }
  if (a.kind == RelayAnswer::Refused) out += 'R';
  return out;
}

std::optional<RelayAnswer> decode_answer(std::string f) {
  RelayAnswer a;
  if (f.empty()) return std::nullopt;
  std::size_t head = 1;
  if (f[0] == 'O') {
    a.kind = RelayAnswer::Reply;
  } else if (f[0] == 'R') {
    a.kind = RelayAnswer::Refused;
  } else if (f[0] == 'E' && f.size() > 1 && f[1] >= '1' && f[1] <= '4') {
    a.kind = RelayAnswer::Failed;
    a.error = static_cast<model::ErrorKind>(f[1] - '0');
    head = 2;
  } else {
    return std::nullopt;
  }
  f.erase(0, head);
  a.body = std::move(f);
  return a;
}

bool peer_is_own_user(int fd) {
  ucred cred{};
  socklen_t len = sizeof cred;
  return ::getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) == 0 && len == sizeof cred &&
         cred.uid == ::geteuid();
}

std::string frame_of(std::string_view head, std::string_view body) {
  std::string out(4, '\0');
  out.reserve(4 + head.size() + body.size());
  out.append(head);
  out.append(body);
  seal_frame(out);
  return out;
}

void seal_frame(std::string& f) {
  const auto n = static_cast<std::uint32_t>(f.size() - 4);  // far below 4 GiB: kRelayMaxReply
  for (int i = 0; i < 4; ++i) f[i] = static_cast<char>((n >> (8 * i)) & 0xff);
}

std::size_t frame_length(std::string_view b) {
  const auto* p = reinterpret_cast<const unsigned char*>(b.data());
  return p[0] | (std::size_t(p[1]) << 8) | (std::size_t(p[2]) << 16) | (std::size_t(p[3]) << 24);
}

bool read_frame(int fd, std::string& out, std::size_t max, std::int64_t deadline_ms) {
  char len[4];
  if (!recv_exact(fd, len, 4, deadline_ms)) return false;
  const std::size_t n = frame_length(std::string_view(len, 4));
  if (n > max) return false;
  out.clear();
  if (n > (64u << 10)) reserve_mapped(out, n);  // a state's range: its pages mapped at once, not fault by fault
  out.resize(n);
  return recv_exact(fd, out.data(), n, deadline_ms);
}

std::optional<RelayAnswer> ask_relay(const std::filesystem::path& socket, const RelayRequest& req, int wait_ms) {
  sockaddr_un sa{};
  sa.sun_family = AF_UNIX;
  if (socket.native().size() >= sizeof sa.sun_path) return std::nullopt;
  std::memcpy(sa.sun_path, socket.c_str(), socket.native().size());
  const int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
  if (fd < 0) return std::nullopt;
  std::optional<RelayAnswer> out;
  const auto deadline = monotonic_ms() + wait_ms;
  std::string frame;
  // A full backlog (EAGAIN) or no engine: at once to etcd, never a wait.
  char ack = 0;
  if (::connect(fd, reinterpret_cast<sockaddr*>(&sa), sizeof sa) == 0 && peer_is_own_user(fd) &&
      send_all(fd, frame_of(encode_request(req), {}), monotonic_ms() + 2000) &&
      recv_exact(fd, &ack, 1, std::min(deadline, monotonic_ms() + kRelayAckMs)) && ack == kRelayAck &&
      read_frame(fd, frame, kRelayMaxReply + 2, deadline)) {
    out = decode_answer(std::move(frame));
  }
  ::close(fd);
  return out;
}

}  // namespace azlb::store
