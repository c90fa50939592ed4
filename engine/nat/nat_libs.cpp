#include "engine/nat/nat_libs.hpp"

#include "store/shared_lib.hpp"

namespace azlb::engine {

namespace {

template <class Api>
struct Loaded {
  Api api{};
  std::string error;
};

template <class Api>
const Api* result(const Loaded<Api>& l, std::string* why) {
  if (why) *why = l.error;
  return l.error.empty() ? &l.api : nullptr;
}

}  // namespace

const NftApi* nft_api(std::string* why) {
  static const Loaded<NftApi> loaded = [] {
    Loaded<NftApi> l;
    store::SharedLib lib("libnftables.so.1");
    auto& a = l.api;
    lib.get(a.ctx_new, "nft_ctx_new");
    lib.get(a.ctx_free, "nft_ctx_free");
    lib.get(a.ctx_buffer_output, "nft_ctx_buffer_output");
    lib.get(a.ctx_buffer_error, "nft_ctx_buffer_error");
    lib.get(a.ctx_get_output_buffer, "nft_ctx_get_output_buffer");
    lib.get(a.ctx_get_error_buffer, "nft_ctx_get_error_buffer");
    lib.get(a.ctx_output_set_flags, "nft_ctx_output_set_flags");
    lib.get(a.run_cmd_from_buffer, "nft_run_cmd_from_buffer");
    l.error = lib.error();
    return l;
  }();
  return result(loaded, why);
}

const ConntrackApi* conntrack_api(std::string* why) {
  static const Loaded<ConntrackApi> loaded = [] {
    Loaded<ConntrackApi> l;
    store::SharedLib lib("libnetfilter_conntrack.so.3");
    auto& a = l.api;
    lib.get(a.open, "nfct_open");
    lib.get(a.close, "nfct_close");
    lib.get(a.callback_register, "nfct_callback_register");
    lib.get(a.query, "nfct_query");
    lib.get(a.filter_dump_create, "nfct_filter_dump_create");
    lib.get(a.filter_dump_destroy, "nfct_filter_dump_destroy");
    lib.get(a.filter_dump_set_attr, "nfct_filter_dump_set_attr");
    lib.get(a.filter_dump_set_attr_u8, "nfct_filter_dump_set_attr_u8");
    lib.get(a.get_attr_u8, "nfct_get_attr_u8");
    lib.get(a.get_attr_u32, "nfct_get_attr_u32");
    l.error = lib.error();
    return l;
  }();
  return result(loaded, why);
}

}  // namespace azlb::engine
