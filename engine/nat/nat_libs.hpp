// libnftables and libnetfilter_conntrack, loaded when the NAT plane first
// needs them (store/shared_lib.hpp says why): no CLI command but `engine`
// does, and a host without them still runs the proxy plane.
#pragma once

#include <libnetfilter_conntrack/libnetfilter_conntrack.h>
#include <nftables/libnftables.h>

#include <string>

namespace azlb::engine {

struct NftApi {
  decltype(&nft_ctx_new) ctx_new;
  decltype(&nft_ctx_free) ctx_free;
  decltype(&nft_ctx_buffer_output) ctx_buffer_output;
  decltype(&nft_ctx_buffer_error) ctx_buffer_error;
  decltype(&nft_ctx_get_output_buffer) ctx_get_output_buffer;
  decltype(&nft_ctx_get_error_buffer) ctx_get_error_buffer;
  decltype(&nft_ctx_output_set_flags) ctx_output_set_flags;
  decltype(&nft_run_cmd_from_buffer) run_cmd_from_buffer;
};

struct ConntrackApi {
  decltype(&nfct_open) open;
  decltype(&nfct_close) close;
  decltype(&nfct_callback_register) callback_register;
  decltype(&nfct_query) query;
  decltype(&nfct_filter_dump_create) filter_dump_create;
  decltype(&nfct_filter_dump_destroy) filter_dump_destroy;
  decltype(&nfct_filter_dump_set_attr) filter_dump_set_attr;
  decltype(&nfct_filter_dump_set_attr_u8) filter_dump_set_attr_u8;
  decltype(&nfct_get_attr_u8) get_attr_u8;
  decltype(&nfct_get_attr_u32) get_attr_u32;
};

// Loaded the first time (thread-safe); nullptr with the loader's words in
// `why` when the library is missing or lacks a function.
const NftApi* nft_api(std::string* why = nullptr);
const ConntrackApi* conntrack_api(std::string* why = nullptr);

}  // namespace azlb::engine
