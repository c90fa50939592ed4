// What each signal does to the engine. The control thread takes every
// signal through a signalfd, so none can end the process by its default
// action without the clean stop (drain, NAT table, pid file and socket
// removed): a stray `kill -USR2`, `kill -ALRM` or a real-time signal from a
// script is logged and ignored.
//  - TERM, INT, QUIT: stop (stop accepting, drain, exit);
//  - HUP: reload the state file;
//  - USR1: reopen the logs (logrotate);
//  - PIPE, XFSZ: ignored outright (a write fails instead: EPIPE, EFBIG);
//  - CHLD, CONT, WINCH, URG: left alone (by default they end nothing);
//  - SEGV, BUS, ILL, FPE, TRAP, SYS, ABRT: taken and ignored when another
//    process sends them; a real fault is still fatal (the kernel delivers
//    it whatever the mask), as a crash must be;
//  - KILL and STOP cannot be taken (a frozen engine is handled by the
//    prober: time it did not run proves nothing about a member).
#pragma once

#include <signal.h>

namespace azlb::engine {

enum class SignalAction { Stop, Reload, ReopenLogs, Ignore };

SignalAction signal_action(int signo);
// The signals the control thread takes (every one that signal_action names
// and that the kernel lets a process take), for its mask and signalfd.
sigset_t taken_signals();
// Sets the dispositions and blocks taken_signals() in the calling thread;
// threads it starts afterwards inherit the mask.
void take_signals();

}  // namespace azlb::engine
