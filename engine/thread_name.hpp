// Names the calling thread, so that `top -H`, `ps -L` and perf tell an
// engine's workers from its helpers (the kernel keeps 15 bytes of it).
#pragma once

#include <pthread.h>

#include <string>

namespace azlb::engine {

inline void name_this_thread(const std::string& name) {
  ::pthread_setname_np(::pthread_self(), name.substr(0, 15).c_str());
}

}  // namespace azlb::engine
