// Where a state lives: a TOML file (the default, no setup) or a key prefix in
// an etcd cluster (several hosts). Everything above the store knows only this
// value and its display string.
#pragma once

#include <filesystem>
#include <string>
#include <variant>
#include <vector>

#include "model/error.hpp"

namespace azlb::store {

struct EtcdLocation {
  std::vector<std::string> endpoints;  // "host:port", tried in turn
  bool tls = false;                    // etcd+https://
  std::string prefix;                  // "/azlb/prod": every key of the state starts with it and "/"
};

class Location {
 public:
  Location() = default;
  explicit Location(std::filesystem::path file) : v_(std::move(file)) {}
  explicit Location(EtcdLocation etcd) : v_(std::move(etcd)) {}

  // A path, or etcd://HOST:PORT[,HOST:PORT...]/PREFIX (etcd+https:// for TLS).
  // A malformed URL is a usage error naming it; a path is taken as it is.
  static model::Result<Location> parse(const std::string& text);

  bool is_etcd() const { return v_.index() == 1; }
  const std::filesystem::path& file() const { return std::get<0>(v_); }
  const EtcdLocation& etcd() const { return std::get<1>(v_); }

  // The path, or the URL as the user wrote it (it holds no secret: those are
  // in the environment).
  std::string display() const;
  // What names this state on this host, for its engine's lock, socket and NAT
  // table: the absolute path, or "etcd:" and the prefix (the endpoints may be
  // listed in any order, or be other members of the same cluster).
  std::string identity() const;
  // A file's path made absolute (the engine and `engine stop` may run from
  // other folders); an etcd location as it is.
  Location absolute() const;

 private:
  std::variant<std::filesystem::path, EtcdLocation> v_;
};

// --state, else $AZLB_STATE, else $XDG_STATE_HOME/azlb/state.toml, else
// ~/.local/state/azlb/state.toml.
model::Result<Location> resolve_location(const std::string& flag);

}  // namespace azlb::store
