// Every counter the engine keeps, declared once. Each list generates the
// per-worker struct, its totals, the `/v1/status` fields and the Prometheus
// families (as Envoy's stats macros do), so that no counter can be shown in
// one place and forgotten in another.
#pragma once

// X(field, kind, prometheus name, help). `kind` is gauge or counter.
#define AZLB_MEMBER_COUNTERS(X)                                                                             \
  X(active, gauge, "azlb_member_connections_active", "Open connections and UDP flows to the member.")      \
  X(total, counter, "azlb_member_connections_total", "Connections and UDP flows made to the member.")      \
  X(bytes_in, counter, "azlb_member_bytes_in_total", "Bytes forwarded from clients to the member.")        \
  X(bytes_out, counter, "azlb_member_bytes_out_total", "Bytes forwarded from the member to clients.")      \
  X(connect_failures, counter, "azlb_member_connect_failures_total",                                      \
    "Connects to the member that failed (then retried elsewhere).")                                        \
  X(flows_moved, counter, "azlb_member_flows_moved_total",                                                 \
    "UDP flows that left the member because it went down or left its set.")

#define AZLB_LISTENER_COUNTERS(X)                                                                           \
  X(denied, counter, "azlb_listener_denied_total", "Clients turned away by the endpoint's ACL.")           \
  X(refused, counter, "azlb_listener_refused_total", "Clients reset (TCP) or dropped (UDP) because no member was up.") \
  X(dropped, counter, "azlb_listener_dropped_total",                                                       \
    "UDP datagrams dropped: a full flow table, no descriptor left, or a full socket buffer.")              \
  X(flow_table_full, counter, "azlb_listener_flow_table_full_total",                                       \
    "New UDP clients dropped because the worker's flow table was full (also counted in dropped).")          \
  X(truncated, counter, "azlb_listener_truncated_total",                                                   \
    "UDP datagrams dropped because they arrived cut short (never forwarded).")                              \
  X(spliced, counter, "azlb_listener_spliced_total", "Bulk connection halves moved to zero-copy splice.")   \
  X(stalled, counter, "azlb_listener_stalled_total",                                                       \
    "Times a connection's reader stopped taking bytes and its half paused reading the other side.")

#define AZLB_COUNTER_FIELD(name, kind, prom, help) std::atomic<std::uint64_t> name{0};
#define AZLB_TOTAL_FIELD(name, kind, prom, help) std::uint64_t name = 0;
