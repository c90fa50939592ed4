// libcurl, loaded on first use (store/shared_lib.hpp says why): only a
// state in etcd, `azlb status`, `azlb engine` and the prober talk HTTP.
#pragma once

#include <curl/curl.h>

namespace azlb::store {

struct CurlApi {
  decltype(&curl_global_init) global_init;
  decltype(&curl_global_cleanup) global_cleanup;
  decltype(&curl_easy_init) easy_init;
  decltype(&curl_easy_setopt) easy_setopt;
  decltype(&curl_easy_perform) easy_perform;
  decltype(&curl_easy_getinfo) easy_getinfo;
  decltype(&curl_easy_cleanup) easy_cleanup;
  decltype(&curl_easy_strerror) easy_strerror;
  decltype(&curl_slist_append) slist_append;
  decltype(&curl_slist_free_all) slist_free_all;
  decltype(&curl_multi_init) multi_init;
  decltype(&curl_multi_add_handle) multi_add_handle;
  decltype(&curl_multi_remove_handle) multi_remove_handle;
  decltype(&curl_multi_perform) multi_perform;
  decltype(&curl_multi_info_read) multi_info_read;
  decltype(&curl_multi_poll) multi_poll;
  decltype(&curl_multi_cleanup) multi_cleanup;
};

// Loads libcurl.so.4 the first time; nullptr (with the reason in `why`) if
// it cannot be loaded.
const CurlApi* curl_api(const char** why = nullptr);

}  // namespace azlb::store
