// The control thread's pieces that are plain functions or threads of their
// own: what each signal does, what a stop says it waits for, and the thread
// whose descriptors stay low for libnftables.
#include <doctest/doctest.h>
#include <fcntl.h>
#include <unistd.h>

#include <vector>

#include "engine/nat/low_fd_thread.hpp"
#include "engine/control/report.hpp"
#include "engine/control/signals.hpp"

using namespace azlb::engine;

TEST_CASE("every signal that would end the process is taken; only TERM, INT and QUIT stop") {
  const sigset_t taken = taken_signals();
  for (int s : {SIGTERM, SIGINT, SIGQUIT}) CHECK(signal_action(s) == SignalAction::Stop);
  CHECK(signal_action(SIGHUP) == SignalAction::Reload);
  CHECK(signal_action(SIGUSR1) == SignalAction::ReopenLogs);
  for (int s : {SIGUSR2, SIGALRM, SIGVTALRM, SIGPROF, SIGIO, SIGPWR, SIGSTKFLT, SIGXCPU, SIGTRAP, SIGSEGV, SIGBUS,
                SIGSYS, SIGABRT, SIGRTMIN, SIGRTMIN + 3, SIGRTMAX}) {
    CHECK(sigismember(&taken, s) == 1);
    CHECK(signal_action(s) == SignalAction::Ignore);
  }
  for (int s : {SIGTERM, SIGINT, SIGQUIT, SIGHUP, SIGUSR1}) CHECK(sigismember(&taken, s) == 1);
  // What cannot be taken, or ends nothing, is left to the kernel.
  for (int s : {SIGKILL, SIGSTOP, SIGCHLD, SIGCONT, SIGWINCH, SIGURG, SIGPIPE, SIGXFSZ}) CHECK(sigismember(&taken, s) == 0);
}

TEST_CASE("a stop says what it waits for, and that NAT UDP flows are not waited for") {
  DrainInfo d;
  d.connections = 1;
  d.left_ms = 10000;
  CHECK(drain_summary(d) == "1 connection or flow (up to 10 s)");
  d.connections = 3;
  d.nat_tcp = 2;
  d.nat_udp = 1;
  d.left_ms = 2500;
  CHECK(drain_summary(d) ==
        "3 connections and flows and 2 NAT TCP connections (up to 3 s; 1 NAT UDP flow is not waited for: UDP has no "
        "end but the flow's idle timeout)");
}

TEST_CASE("the low-descriptor thread keeps its own table: descriptors opened later stay out of it") {
  LowFdThread t;
  REQUIRE(t.isolated());
  std::vector<int> many;
  for (int i = 0; i < 1100; ++i) many.push_back(::open("/dev/null", O_RDONLY | O_CLOEXEC));
  REQUIRE(many.back() >= 1024);
  int inside = -1, seen = 0;
  t.call([&] {
    inside = ::open("/dev/null", O_RDONLY | O_CLOEXEC);
    seen = ::fcntl(many.back(), F_GETFD);  // not in this table
    ::close(inside);
  });
  CHECK(inside >= 0);
  CHECK(inside < 64);
  CHECK(seen == -1);
  for (int fd : many) ::close(fd);
  bool threw = false;
  try {
    t.call([] { throw std::runtime_error("x"); });
  } catch (const std::runtime_error&) {
    threw = true;
  }
  CHECK(threw);
}
