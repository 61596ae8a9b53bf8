/* SPDX-License-Identifier: Apache-2.0
 * Copyright (c) 2026 vpp-singbox authors
 */

/* Client mode, UDP: datagrams arriving on an interface with UDP relaying
 * enabled go through the interface's endpoint with SOCKS5 UDP ASSOCIATE
 * (RFC 1928 section 7), one association per client flow. What the concern's
 * files share: singbox_client_udp.c (flow table, interfaces, expiry; its
 * comment says which thread owns a flow), singbox_client_udp_node.c
 * (interception), singbox_client_udp_assoc.c (the association, the legs'
 * callbacks), singbox_client_udp_api.c and singbox_client_udp_cli.c. */

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

/* One client flow (a 5-tuple) and its association. The record lives in the
 * pool of its owner thread, the thread of its client leg (see "Threads"
 * in singbox_client_udp.c). */
typedef struct
{
  u32 handle; /* owner thread << 24 | pool index: the legs' opaque */
  u32 generation;
  u8 state; /* singbox_cudp_state_t */
  u8 is_ip4;
  u32 sw_if_index;
  u32 endpoint_index;
  u32 group_index; /* the endpoint group that chose endpoint_index, ~0: none */

  /* the client leg: a connected UDP session whose local end is the
   * original destination; on the owner thread, for good */
  session_handle_t c_handle;
  ip46_address_t client_ip;
  ip46_address_t dst_ip;
  u16 client_port; /* host order */
  u16 dst_port;

  /* the control connection (TCP to the endpoint): the association lives
   * as long as it does (RFC 1928 section 7) */
  session_handle_t ctl_handle;
  socks5_client_t *cproto; /* during the handshake only */

  /* the relay leg: a connected UDP session to BND.ADDR:BND.PORT, with a
   * side context on its thread once ASSOCIATED (singbox_cudp_relay_t) */
  session_handle_t relay_handle;
  u8 relay_set_up; /* its side context was sent: its thread closes it */
  u8 relay_is_ip4; /* the endpoint's family, not necessarily the flow's */
  ip46_address_t relay_lcl_ip;
  u16 relay_lcl_port;
  ip46_address_t relay_ip;
  u16 relay_port;

  u8 **pending; /* client datagrams waiting for the association */
  u32 pending_bytes;

  u8 *to_relay; /* datagrams for a relay leg on another thread, one message */

  f64 created;
  f64 last_active; /* either way: the relay's thread tells its part */
  u64 packets_to_proxy;
  u64 bytes_to_proxy;
} singbox_cudp_flow_t;

/* The relay leg's side context, on the relay leg's thread: what its rx
 * needs without the record, which is the owner's. The relay session's
 * opaque is SINGBOX_LEG_HANDLE_FLAG | thread << 24 | index; the owner's
 * messages find it by flow id (relay_by_flow). When the leg moves to
 * another thread the context goes there by message, and what stays is a
 * forwarder (moved) for the owner's messages sent before it heard of the
 * move, freed on its word. */
typedef struct
{
  u64 flow_id;		     /* the flow's (generation << 32 | handle) */
  session_handle_t relay_sh; /* this leg; moved: where it went */
  session_handle_t c_handle; /* the client leg, on the owner */
  svm_fifo_t *c_tx_fifo;     /* its tx fifo: this thread is its one producer */
  ip46_address_t client_ip;
  ip46_address_t dst_ip;
  u16 client_port; /* host order */
  u16 dst_port;
  u8 is_ip4;
  u8 moved;
  u32 sw_if_index;
  /* where datagrams to the proxy go (the relay leg's ends) */
  ip46_address_t relay_lcl_ip;
  ip46_address_t relay_ip;
  u16 relay_lcl_port; /* host order */
  u16 relay_port;
  u8 relay_is_ip4;
  f64 last_active; /* a reply relayed */
  f64 last_told;   /* the last_active the owner was told */
  u64 packets_from_proxy;
  u64 bytes_from_proxy;
} singbox_cudp_relay_t;

/* Per interface settings and counters, indexed by sw_if_index. */
typedef struct
{
  u8 enabled;
  u32 sw_if_index;
  u32 idle_timeout;
  u32 max_flows;
  volatile u32 active; /* flows on every thread, atomic */
  u32 stat_active;     /* stats segment gauge, ~0 = none */
} singbox_cudp_itf_t;

/* Interface counters in the stats segment, [thread][sw_if_index]: each
 * thread counts in its own slot, readers (dumps, show, the stats segment)
 * sum them. */
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

/* A thread's flows: the records of the flows whose client leg is on it,
 * touched on this thread only (main too, under the barrier): no lock. And
 * the side contexts of the relay legs on this thread. */
typedef struct
{
  CLIB_CACHE_LINE_ALIGN_MARK (cacheline0);
  singbox_cudp_flow_t *flows;
  singbox_cudp_relay_t *relays;
  uword *relay_by_flow; /* flow id -> index in relays */
  u32 generation;
  u8 *rx_buf; /* one datagram, for this thread's callbacks */
} singbox_cudp_worker_t;

typedef struct
{
  singbox_cudp_worker_t *workers; /* [thread_index] */
  singbox_cudp_itf_t *itfs;
  u32 n_enabled;

  u32 intercept_app_index;		/* accepts the client legs */
  u32 ctl_app_index;			/* control connections */
  u32 relay_app_index;			/* relay legs */
  session_handle_t intercept_listen[2]; /* [is_ip4] wildcard connected listeners */
  /* [is_ip4] with workers: the frame queues to the -hold nodes, for a
   * flow's datagrams that land on another thread than its owner; ~0 none */
  u32 fq_index[2];
  /* [is_ip4][port]: ports of other owners counted once more (see
   * singbox_cudp_keep_port) */
  u8 kept_ports[2][65536];

  vlib_simple_counter_main_t counters[SINGBOX_CUDP_N_CTR];
  vlib_combined_counter_main_t to_proxy;
  vlib_combined_counter_main_t from_proxy;
} singbox_cudp_main_t;

extern singbox_cudp_main_t singbox_cudp_main;
extern vlib_node_registration_t singbox_cudp4_hold_node;
extern vlib_node_registration_t singbox_cudp6_hold_node;

/* A flow's handle is (owner thread << 24) | index, as a TCP session's
 * (singbox.h); its API id generation << 32 | handle. */
static_always_inline clib_thread_index_t
singbox_cudp_handle_thread (u32 handle)
{
  return handle >> SINGBOX_SESSION_THREAD_SHIFT;
}

static_always_inline singbox_cudp_worker_t *
singbox_cudp_worker_get (clib_thread_index_t thread)
{
  return vec_elt_at_index (singbox_cudp_main.workers, thread);
}

static_always_inline u64
singbox_cudp_flow_id (singbox_cudp_flow_t *f)
{
  return ((u64) f->generation << 32) | f->handle;
}

/* Every live record of thread t: on t, or under the barrier. */
#define singbox_cudp_foreach_flow_of_thread(f, t)                                                  \
  pool_foreach (f, singbox_cudp_worker_get (t)->flows)

static_always_inline void
singbox_cudp_count (singbox_cudp_counter_t c, u32 sw_if_index, u64 n)
{
  singbox_cudp_main_t *cm = &singbox_cudp_main;

  if (sw_if_index < vec_len (cm->itfs))
    vlib_increment_simple_counter (&cm->counters[c], vlib_get_thread_index (), sw_if_index, n);
}

/* singbox_client_udp.c: the flow table */
singbox_cudp_flow_t *singbox_cudp_flow_alloc (void);
singbox_cudp_flow_t *singbox_cudp_flow_get_if_valid (u32 handle);
u32 singbox_cudp_ctx (singbox_cudp_flow_t *f);
u32 singbox_cudp_ctx_handle (u32 ctx);
singbox_cudp_flow_t *singbox_cudp_flow_from_ctx (u32 ctx);
void singbox_cudp_close (singbox_cudp_flow_t *f, int failed);
void singbox_cudp_disconnect (session_handle_t h);
u64 singbox_cudp_itf_counter (singbox_cudp_itf_t *citf, singbox_cudp_counter_t c);
void singbox_cudp_itf_traffic (singbox_cudp_itf_t *citf, vlib_counter_t *to_proxy,
			       vlib_counter_t *from_proxy);
u32 singbox_cudp_n_flows (clib_thread_index_t thread);

/* singbox_client_udp_assoc.c: the relay leg's side context */
void singbox_cudp_relay_end (singbox_cudp_flow_t *f);
void singbox_cudp_relays_tell (void);
void singbox_cudp_flow_from_proxy (singbox_cudp_flow_t *f, u64 *packets, u64 *bytes,
				   f64 *last_active);

/* singbox_client_udp_assoc.c: the apps, the legs' callbacks */
int singbox_cudp_start (void);

int singbox_client_udp_enable_disable (u32 sw_if_index, int enable, u32 idle_timeout,
				       u32 max_flows);
/* the interface's client mode ends: its UDP relaying ends with it */
void singbox_client_udp_interface_disable (u32 sw_if_index);
singbox_cudp_itf_t *singbox_client_udp_itf_get (u32 sw_if_index);
void singbox_client_udp_clear_counters (u32 sw_if_index);
format_function_t format_singbox_cudp_itf;
format_function_t format_singbox_cudp_flow;

#endif /* __included_singbox_client_udp_h__ */
