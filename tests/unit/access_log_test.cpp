#include "engine/proxy/access_log.hpp"

#include <doctest/doctest.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/resource.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "engine/config.hpp"
#include "engine/proxy/sockets.hpp"

using namespace azlb::engine;
namespace fs = std::filesystem;

namespace {

// A set's route with one member, as build_config makes it.
struct OneMember {
  std::shared_ptr<MemberState> state = std::make_shared<MemberState>(MemberKey{"web", "webset", "vm1", "http"});
  Route route;
  sockaddr_storage client{};
  OneMember() {
    route.key = {azlb::model::Protocol::Tcp, *azlb::model::parse_ip("VIP", "127.0.0.1"), 8080};
    route.service = "web";
    route.lbset = "webset";
    Upstream u;
    socklen_t len;
    fill_sockaddr(*azlb::model::parse_ip("private IP", "127.0.1.4"), 80, u.addr, len);
    u.addr_len = len;
    u.state = state.get();
    route.upstreams.push_back(u);
    fill_sockaddr(*azlb::model::parse_ip("client", "192.0.2.7"), 40000, client, len);
  }
};

fs::path temp_dir() {
  char tmpl[] = "/tmp/azlb-access-log-XXXXXX";
  REQUIRE(mkdtemp(tmpl));
  return tmpl;
}

}  // namespace

TEST_CASE("a finished connection is one JSON line naming client, VIP, service, set, member, bytes and its end") {
  OneMember m;
  auto line = format_access_record({"tcp", &m.client, &m.route, &m.route.upstreams[0], 12, 3456, 78, End::IdleTimeout});
  REQUIRE(line.back() == '\n');
  CHECK(line.find('\n') == line.size() - 1);
  auto j = nlohmann::json::parse(line);
  CHECK(j["protocol"] == "tcp");
  CHECK(j["client"] == "192.0.2.7:40000");
  CHECK(j["vip"] == "127.0.0.1:8080");
  CHECK(j["service"] == "web");
  CHECK(j["lbset"] == "webset");
  CHECK(j["vm"] == "vm1");
  CHECK(j["endpoint"] == "http");
  CHECK(j["member"] == "127.0.1.4:80");
  CHECK(j["bytes_in"] == 12);
  CHECK(j["bytes_out"] == 3456);
  CHECK(j["duration_ms"] == 78);
  CHECK(j["end"] == "idle_timeout");
  CHECK(j["time"].get<std::string>().size() == 24);  // 2026-11-29T09:05:29.988Z
}

TEST_CASE("a client no member took has null for the member") {
  OneMember m;
  auto j = nlohmann::json::parse(format_access_record({"tcp", &m.client, &m.route, nullptr, 0, 0, 0, End::NoMember}));
  CHECK(j["member"].is_null());
  CHECK(j["vm"].is_null());
  CHECK(j["end"] == "no_member");
}

TEST_CASE("the writer moves every worker's lines to the file, and its end writes what is left") {
  OneMember m;
  auto dir = temp_dir();
  {
    auto log = AccessLog::open(dir / "access.log", 2);
    REQUIRE(log.ok());
    for (int i = 0; i < 500; ++i)
      (*log)->write(static_cast<unsigned>(i % 2), {"tcp", &m.client, &m.route, nullptr, 0, 0, 0, End::Closed});
  }
  std::ifstream in(dir / "access.log");
  int lines = 0;
  for (std::string l; std::getline(in, l); ++lines) CHECK(nlohmann::json::accept(l));
  CHECK(lines == 500);
  CHECK((fs::status(dir / "access.log").permissions() & fs::perms::others_read) == fs::perms::none);
  fs::remove_all(dir);
}

TEST_CASE("a full disk loses log lines and counts them; nothing blocks or throws") {
  OneMember m;
  auto dir = temp_dir();
  // A file size limit fails writes past it as a full disk does (EFBIG).
  signal(SIGXFSZ, SIG_IGN);
  rlimit before;
  getrlimit(RLIMIT_FSIZE, &before);
  rlimit small = before;
  small.rlim_cur = 4096;
  REQUIRE(setrlimit(RLIMIT_FSIZE, &small) == 0);
  std::uint64_t written, lost;
  {
    auto log = AccessLog::open(dir / "access.log", 1);
    REQUIRE(log.ok());
    for (int i = 0; i < 200; ++i) (*log)->write(0, {"tcp", &m.client, &m.route, nullptr, 0, 0, 0, End::Closed});
    (*log)->stop();  // writes now, while the limit holds
    written = (*log)->lines_written();
    lost = (*log)->lines_lost();
  }
  setrlimit(RLIMIT_FSIZE, &before);
  CHECK(written > 0);
  CHECK(lost > 0);
  CHECK(written + lost == 200);
  CHECK(fs::file_size(dir / "access.log") <= 4096);
  fs::remove_all(dir);
}

TEST_CASE("a path that is a symbolic link is refused") {
  auto dir = temp_dir();
  fs::create_symlink("/etc/passwd", dir / "access.log");
  auto log = AccessLog::open(dir / "access.log", 1);
  REQUIRE_FALSE(log.ok());
  CHECK(log.error().message.find("symbolic link") != std::string::npos);
  fs::remove_all(dir);
}
