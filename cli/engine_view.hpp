// What `azlb status` knows of the engine serving this state file.
#pragma once

#include <filesystem>
#include <map>
#include <string>
#include <tuple>

#include "cli/context.hpp"
#include "cli/render.hpp"

namespace azlb::cli {

struct EngineView {
  bool running = false;
  long pid = 0;
  int listeners = 0;
  std::string error;  // why the engine could not be asked, when it runs
  Json identity;      // host, pid, version, started, announcing (status -o json's "engines")
  std::string store_error;  // etcd: why the engine cannot reach it now
  std::string announce;     // --announce: what it announces, or why not (empty: not asked)
  // (service, set, vm, endpoint) -> health and active connections
  std::map<std::tuple<std::string, std::string, std::string, std::string>, MemberLive> members;

  MemberLive member(const std::string& svc, const std::string& set, const std::string& vm,
                    const std::string& ep) const;
  Json to_json() const;
  std::string summary() const;
};

EngineView query_engine(const store::Location& state);

// Every engine of the state: over etcd, those registered (their keys, with
// their health view); over a file, the one on this host if it runs.
struct EngineList {
  Json engines = Json::array();  // {host, pid, version, started, announcing, listening, members}
  std::string error;             // why etcd could not be asked
};
EngineList engines_of(const store::Location& state, const EngineView& local);

}  // namespace azlb::cli
