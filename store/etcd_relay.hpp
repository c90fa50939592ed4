// The engine's etcd relay, as both ends speak it. A command typed on a host
// whose engine follows the same state hands its etcd requests to the engine,
// which has libcurl loaded and a connection open, instead of loading libcurl
// and connecting itself (most of a command's time on a small VM). It is an
// accelerator only: anything short of an answer makes the command go to etcd
// itself, and every request the relay forwards is one the command would have
// sent (the same range, the same transaction with its compares).
//
// One request per connection, on a Unix socket of the engine's (mode 0600,
// next to its admin socket): a frame (u32 length, little endian, then the
// bytes) holding `identity \0 path \0 timeout_ms \0 body`, acknowledged at
// once by one byte (kRelayAck: an engine that is frozen or gone is known in
// kRelayAckMs, not after etcd's longest wait), then answered by one frame: 'O' and etcd's reply (HTTP 200), 'E', the exit code's digit and a
// message (an error of the contract's kind, as EtcdClient words it), or 'R'
// and why the engine will not forward it (busy, another identity).
//
// A change also asks first for the engine's copy of the state (path
// kRelaySnapshotPath, store/etcd_snapshot_wire.hpp), which the engine keeps
// by its watch: no range for etcd to produce. The copy may be a moment
// behind; the change's transaction compares what it read as always, so a
// copy that was behind costs a read from etcd and nothing else (see
// etcd::update). The engine hands it only once its watch has seen what it
// last wrote for a command (this host's commands read their own writes).
//
// Trust: both ends check the other's user (SO_PEERCRED) and talk only to
// their own. The identity holds the location and the credentials' values
// (the password too): the relay forwards only for a command that would
// reach the same cluster with the same credentials, so no command gains a
// right it lacks; the peer is of the same user, who may read the engine's
// environment anyway.
#pragma once

#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <string_view>

#include "model/error.hpp"
#include "store/socket_io.hpp"

namespace azlb::store {

inline constexpr std::size_t kRelayMaxRequest = 4u << 20;  // above etcd's 1.5 MiB request limit
inline constexpr std::string_view kRelaySnapshotPath = "azlb/snapshot";
inline constexpr char kRelayAck = '\x06';
inline constexpr int kRelayAckMs = 2000;
inline constexpr std::size_t kRelayMaxReply = 256u << 20;  // EtcdClient's own limit on a reply

struct RelayRequest {
  std::string identity, path, body;
  int timeout_ms = 0;
};
std::string encode_request(const RelayRequest&);
std::optional<RelayRequest> decode_request(std::string_view frame);

struct RelayAnswer {
  enum Kind { Reply, Failed, Refused } kind = Refused;
  std::string body;  // etcd's reply, the error's message, or why refused
  model::ErrorKind error = model::ErrorKind::Runtime;
};
// An answer's frame is its head (the tag, and an error's digit) and its body.
std::string answer_head(const RelayAnswer&);
// Takes the frame's payload (a reply's body keeps its memory, mapped ahead).
std::optional<RelayAnswer> decode_answer(std::string payload);

// The other end of a connected Unix socket runs as this process's user.
bool peer_is_own_user(int fd);

// A frame: the payload's length (u32, little endian), then `head` and `body`.
std::string frame_of(std::string_view head, std::string_view body);
// Sets a frame's length to what follows its first four bytes (a frame made
// by frame_of and appended to).
void seal_frame(std::string& frame);
// The length a frame's first four bytes announce.
std::size_t frame_length(std::string_view first4);
// A whole frame's payload from a non-blocking socket, within an absolute
// deadline (store/socket_io.hpp); false on timeout, error, end or over `max`.
bool read_frame(int fd, std::string& out, std::size_t max, std::int64_t deadline_ms);

// The command's side: one request to the relay at `socket`. nullopt: no
// answer (no engine, another user's socket, refused before reading, or
// gone before answering): go to etcd directly. A refusal is an answer.
std::optional<RelayAnswer> ask_relay(const std::filesystem::path& socket, const RelayRequest&, int wait_ms);

}  // namespace azlb::store
