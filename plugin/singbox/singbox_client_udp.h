/* SPDX-License-Identifier: Apache-2.0
 * Copyright (c) 2026 vpp-singbox authors
 */

/* Client mode, UDP: datagrams arriving on an interface with UDP relaying
 * enabled go through the interface's endpoint with SOCKS5 UDP ASSOCIATE
 * (RFC 1928 section 7), one association per client flow. */

#ifndef __included_singbox_client_udp_h__
#define __included_singbox_client_udp_h__

#include <singbox/singbox.h>

/* YANG defaults (client/interface/udp), for a plugin configured by CLI only */
#define SINGBOX_CUDP_DEFAULT_IDLE_TIMEOUT 60
#define SINGBOX_CUDP_DEFAULT_MAX_FLOWS	  4096

/* Flow states; the strings are what `show singbox udp flows` prints and the
 * order matches vl_api_singbox_udp_flow_state_t. */
#define foreach_singbox_cudp_state                                                                 \
  _ (OPENING, "opening")                                                                           \
  _ (HANDSHAKE, "handshake")                                                                       \
  _ (ASSOCIATED, "associated")                                                                     \
  _ (CLOSING, "closing")

typedef enum
{
#define _(sym, str) SINGBOX_CUDP_STATE_##sym,
  foreach_singbox_cudp_state
#undef _
    SINGBOX_CUDP_N_STATE,
} singbox_cudp_state_t;

/* One client flow (a 5-tuple) and its association. */
typedef struct
{
  u32 index;
  u32 generation;
  u8 state; /* singbox_cudp_state_t */
  u8 is_ip4;
  u32 sw_if_index;
  u32 endpoint_index;
  u32 group_index; /* the endpoint group that chose endpoint_index, ~0: none */

  /* the client leg: a connected UDP session whose local end is the
   * original destination */
  session_handle_t c_handle;
  ip46_address_t client_ip;
  ip46_address_t dst_ip;
  u16 client_port; /* host order */
  u16 dst_port;

  /* the control connection (TCP to the endpoint): the association lives
   * as long as it does (RFC 1928 section 7) */
  session_handle_t ctl_handle;
  socks5_client_t *cproto; /* during the handshake only */

  /* the relay leg: a connected UDP session to BND.ADDR:BND.PORT */
  session_handle_t relay_handle;
  u8 relay_is_ip4; /* the endpoint's family, not necessarily the flow's */
  ip46_address_t relay_lcl_ip;
  u16 relay_lcl_port;
  ip46_address_t relay_ip;
  u16 relay_port;

  u8 **pending; /* client datagrams waiting for the association */
  u32 pending_bytes;

  f64 created;
  f64 last_active;
  u64 packets_to_proxy;
  u64 bytes_to_proxy;
  u64 packets_from_proxy;
  u64 bytes_from_proxy;
} singbox_cudp_flow_t;

/* Per interface settings and counters, indexed by sw_if_index. */
typedef struct
{
  u8 enabled;
  u32 sw_if_index;
  u32 idle_timeout;
  u32 max_flows;
  volatile u32 active;
  u64 flows;
  u64 failures;
  u64 dropped;
  u64 packets_to_proxy;
  u64 bytes_to_proxy;
  u64 packets_from_proxy;
  u64 bytes_from_proxy;
  u32 stat_active; /* stats segment gauge, ~0 = none */
} singbox_cudp_itf_t;

/* Interface counters in the stats segment, [thread][sw_if_index]. */
#define foreach_singbox_cudp_counter                                                               \
  _ (FLOWS, "udp-flows")                                                                           \
  _ (FAILURES, "udp-failures")                                                                     \
  _ (DROPPED, "udp-dropped")

typedef enum
{
#define _(sym, str) SINGBOX_CUDP_CTR_##sym,
  foreach_singbox_cudp_counter
#undef _
    SINGBOX_CUDP_N_CTR,
} singbox_cudp_counter_t;

typedef struct
{
  singbox_cudp_flow_t *flows;
  clib_spinlock_t lock;
  u32 generation;
  singbox_cudp_itf_t *itfs;
  u32 n_enabled;

  u32 intercept_app_index;		/* accepts the client legs */
  u32 ctl_app_index;			/* control connections */
  u32 relay_app_index;			/* relay legs */
  session_handle_t intercept_listen[2]; /* [is_ip4] wildcard connected listeners */
  u8 **rx_buf;				/* per thread */
  /* [is_ip4][port]: ports of other owners counted once more (see
   * singbox_cudp_keep_port) */
  u8 kept_ports[2][65536];

  vlib_simple_counter_main_t counters[SINGBOX_CUDP_N_CTR];
  vlib_combined_counter_main_t to_proxy;
  vlib_combined_counter_main_t from_proxy;
} singbox_cudp_main_t;

extern singbox_cudp_main_t singbox_cudp_main;

int singbox_client_udp_enable_disable (u32 sw_if_index, int enable, u32 idle_timeout,
				       u32 max_flows);
/* the interface's client mode ends: its UDP relaying ends with it */
void singbox_client_udp_interface_disable (u32 sw_if_index);
singbox_cudp_itf_t *singbox_client_udp_itf_get (u32 sw_if_index);
void singbox_client_udp_clear_counters (u32 sw_if_index);
format_function_t format_singbox_cudp_itf;
format_function_t format_singbox_cudp_flow;

#endif /* __included_singbox_client_udp_h__ */
