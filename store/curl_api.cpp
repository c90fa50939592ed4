#include "store/curl_api.hpp"

#include <string>

#include "store/shared_lib.hpp"

namespace azlb::store {

const CurlApi* curl_api(const char** why) {
  struct Loaded {
    CurlApi api;
    std::string error;
  };
  static const Loaded loaded = [] {
    Loaded l;
    SharedLib lib("libcurl.so.4");
    auto& a = l.api;
    lib.get(a.global_init, "curl_global_init");
    lib.get(a.global_cleanup, "curl_global_cleanup");
    lib.get(a.easy_init, "curl_easy_init");
    lib.get(a.easy_setopt, "curl_easy_setopt");
    lib.get(a.easy_perform, "curl_easy_perform");
    lib.get(a.easy_getinfo, "curl_easy_getinfo");
    lib.get(a.easy_cleanup, "curl_easy_cleanup");
    lib.get(a.easy_strerror, "curl_easy_strerror");
    lib.get(a.slist_append, "curl_slist_append");
    lib.get(a.slist_free_all, "curl_slist_free_all");
    lib.get(a.multi_init, "curl_multi_init");
    lib.get(a.multi_add_handle, "curl_multi_add_handle");
    lib.get(a.multi_remove_handle, "curl_multi_remove_handle");
    lib.get(a.multi_perform, "curl_multi_perform");
    lib.get(a.multi_info_read, "curl_multi_info_read");
    lib.get(a.multi_poll, "curl_multi_poll");
    lib.get(a.multi_cleanup, "curl_multi_cleanup");
    l.error = lib.error();
    return l;
  }();
  if (why) *why = loaded.error.empty() ? nullptr : loaded.error.c_str();
  return loaded.error.empty() ? &loaded.api : nullptr;
}

}  // namespace azlb::store
