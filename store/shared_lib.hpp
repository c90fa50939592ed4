// A shared library loaded on first use, for what only some commands need:
// libcurl (HTTP: etcd, `status`, probes) and the NAT plane's libnftables and
// libnetfilter_conntrack. Linked normally, each is loaded by every command:
// where a page fault costs ~12 us (a VM), libcurl's thirty libraries take
// ~13 ms and the NAT plane's eight ~2 ms, which `azlb vm list` paid as much
// as the engine did. The handle is never closed: the functions live as long
// as the process.
#pragma once

#include <dlfcn.h>

#include <string>

namespace azlb::store {

class SharedLib {
 public:
  explicit SharedLib(const char* soname) : soname_(soname), handle_(::dlopen(soname, RTLD_NOW | RTLD_LOCAL)) {
    if (!handle_) {
      const char* why = ::dlerror();
      error_ = why ? why : std::string(soname) + " cannot be loaded";
    }
  }
  // Sets `fn` to the library's function `name` (nullptr if it has none).
  template <class Fn>
  void get(Fn& fn, const char* name) {
    fn = handle_ ? reinterpret_cast<Fn>(::dlsym(handle_, name)) : nullptr;
    if (!fn && error_.empty()) error_ = soname_ + " lacks " + name + ", which azlb needs (an older version?)";
  }
  // "" when the library loaded and had every function asked for.
  const std::string& error() const { return error_; }

 private:
  std::string soname_;
  void* handle_;
  std::string error_;
};

}  // namespace azlb::store
