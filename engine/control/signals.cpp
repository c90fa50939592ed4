#include "engine/control/signals.hpp"

#include <pthread.h>

namespace azlb::engine {

namespace {

bool left_alone(int signo) {
  switch (signo) {
    case SIGKILL:
    case SIGSTOP:
    case SIGPIPE:
    case SIGXFSZ:
    case SIGCHLD:
    case SIGCONT:
    case SIGWINCH:
    case SIGURG:
      return true;
    default:
      return false;
  }
}

}  // namespace

SignalAction signal_action(int signo) {
  switch (signo) {
    case SIGTERM:
    case SIGINT:
    case SIGQUIT:
      return SignalAction::Stop;
    case SIGHUP:
      return SignalAction::Reload;
    case SIGUSR1:
      return SignalAction::ReopenLogs;
    default:
      return SignalAction::Ignore;
  }
}

sigset_t taken_signals() {
  sigset_t set;
  sigemptyset(&set);
  for (int s = 1; s < 32; ++s)
    if (!left_alone(s)) sigaddset(&set, s);
  // glibc keeps the first real-time signals for itself; SIGRTMIN is past them.
  for (int s = SIGRTMIN; s <= SIGRTMAX; ++s) sigaddset(&set, s);
  return set;
}

void take_signals() {
  signal(SIGPIPE, SIG_IGN);
  signal(SIGXFSZ, SIG_IGN);
  const sigset_t set = taken_signals();
  pthread_sigmask(SIG_BLOCK, &set, nullptr);
}

}  // namespace azlb::engine
