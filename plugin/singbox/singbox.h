/* SPDX-License-Identifier: Apache-2.0
 * Copyright (c) 2026 vpp-singbox authors
 */

/* The plugin's main struct and what every file shares. Each concern has its
 * own file and header:
 *   singbox.c           registration, init, startup config, singbox-process
 *   singbox_session.c   the two-leg relay both modes share (singbox_session.h)
 *   singbox_server.c    server mode: listeners, SOCKS5 handshake (singbox_server.h)
 *   singbox_http_server.c  server mode: HTTP CONNECT handshake
 *   singbox_udp.c, singbox_dns.c  server mode: UDP ASSOCIATE, name resolution
 *   singbox_users.c     users and password checks (singbox_users.h)
 *   singbox_client.c    client mode: interception, upstream handshake (singbox_client.h)
 *   singbox_endpoint.c  client mode: endpoints and interfaces (singbox_endpoint.h)
 *   singbox_pool.c      client mode: pre-authenticated connections (singbox_pool.h)
 *   singbox_probe.c     client mode: endpoint health checks
 *   singbox_node.c      graph nodes singbox6-in, singbox4-tw
 *   singbox_api.c, singbox_cli.c  binary API and CLI handlers
 */

#ifndef __included_singbox_h__
#define __included_singbox_h__

#include <vnet/vnet.h>
#include <vnet/ip/ip.h>
#include <vnet/session/session.h>
#include <vnet/session/application_interface.h>
#include <vnet/session/application.h>
#include <vnet/session/segment_manager.h>
#include <vlib/stats/stats.h>
#include <vppinfra/lock.h>

#include <singbox/socks5_proto.h>
#include <singbox/http_connect_proto.h>
#include <singbox/singbox_session.h>
#include <singbox/singbox_server.h>
#include <singbox/singbox_users.h>
#include <singbox/singbox_endpoint.h>
#include <singbox/singbox_client.h>
#include <singbox/singbox_pool.h>

#define SINGBOX_PLUGIN_VERSION "2.0.0"

/* The YANG defaults (yang/vpp-singbox@*.yang), for a plugin configured by CLI
 * only: the agent always sends every value. Keep them equal to the module. */
#define SINGBOX_DEFAULT_HANDSHAKE_TIMEOUT 10
#define SINGBOX_DEFAULT_CONNECT_TIMEOUT	  10
#define SINGBOX_DEFAULT_IDLE_TIMEOUT	  300
#define SINGBOX_DEFAULT_UDP_IDLE_TIMEOUT  60
#define SINGBOX_DEFAULT_MAX_SESSIONS	  1024
#define SINGBOX_DEFAULT_CLIENT_TIMEOUT	  300
#define SINGBOX_DEFAULT_MAX_POOL_SIZE	  100
#define SINGBOX_DNS_TIMEOUT		  5
/* how often a client-mode session not yet accepted is checked for a client
 * leg VPP freed without telling us (seconds) */
#define SINGBOX_UNACCEPTED_CHECK_INTERVAL 1.0

typedef enum
{
  SINGBOX_LOG_ERROR,
  SINGBOX_LOG_WARNING,
  SINGBOX_LOG_INFO,
  SINGBOX_LOG_DEBUG,
} singbox_log_level_t;

/* The upstream leg of a record that lives on another thread (see "Threads"
 * in plugin/API.md): what the leg's callbacks need on the leg's own thread,
 * in that thread's pool. Everything else goes to the record's thread by
 * message (singbox_leg_msg_t). */
typedef struct
{
  u32 owner;		     /* the record's handle (no connect in flight frees it) */
  session_handle_t ao_handle; /* this leg */
  session_handle_t po_handle; /* the client leg, once crossed */
  svm_fifo_t *po_rx_fifo;     /* the client leg's fifos, once crossed */
  svm_fifo_t *po_tx_fifo;
  u8 crossed : 1;	/* uses the client leg's fifos */
  u8 cross_wanted : 1;	/* crossing waits for the handshake to be acked */
  u8 po_fin : 1;	/* pass the client's FIN on once crossed */
  u8 established : 1;	/* relaying: its tx notifications reopen the client's window */
} singbox_leg_t;

/* A message singbox_rpc could not queue yet. */
typedef struct
{
  clib_thread_index_t thread;
  void (*fn) (void *);
  void *arg;
} singbox_rpc_deferred_t;

/* A thread's session records. A record stays in the pool of the thread
 * that allocated it, which is its client leg's (for a pooled connection,
 * the thread the pool chose, which is the thread of the flow that takes
 * it); its handle, (thread << 24) | index, is the opaque of its client leg
 * and of an upstream leg on the same thread, and the low half of its API
 * id. Only that thread touches the pool and its records (the main thread
 * too under the barrier): there is no lock. An upstream leg that lands on
 * another thread gets a singbox_leg_t in that thread's `legs` pool
 * (opaque: SINGBOX_LEG_HANDLE_FLAG | thread << 24 | index) and talks to the
 * record by message. */
typedef struct
{
  CLIB_CACHE_LINE_ALIGN_MARK (cacheline0);
  singbox_session_t *sessions;
  singbox_leg_t *legs;
  u32 generation;
  /* messages to other threads whose event queue was full, sent again in
   * order before anything newer to the same thread (singbox_rpc) */
  singbox_rpc_deferred_t *deferred; /* vec, oldest first */
  u64 n_rpc_deferred; /* how many were deferred, for show */
} singbox_worker_t;

#define SINGBOX_SESSION_THREAD_SHIFT 24
#define SINGBOX_SESSION_INDEX_MASK   ((1 << SINGBOX_SESSION_THREAD_SHIFT) - 1)
/* an upstream leg's side context, not a record: bit 30 */
#define SINGBOX_LEG_HANDLE_FLAG (1U << 30)
/* handles keep bit 31 clear: the agent marks UDP flows' ids with it; bit 30
 * tells leg contexts from records */
#define SINGBOX_SESSION_MAX_THREADS (1 << (30 - SINGBOX_SESSION_THREAD_SHIFT))
/* a client leg's opaque before its accept, when its ACK is held already
 * (singbox_po_ack_hold_early); a handle never has bit 31 */
#define SINGBOX_PO_EARLY_ACK_HELD (1U << 31)

typedef struct
{
  /* API */
  u16 msg_id_base;

  /* Server configuration */
  singbox_listener_t *listeners;
  singbox_user_t *users;
  uword *user_by_name;
  singbox_prefix_t *allowed_prefixes;
  /* per-user counters and the crypt cache change on workers */
  clib_spinlock_t users_lock;
  u8 server_enabled;
  u8 auth_required;
  u8 allow_connect;
  u8 allow_udp_associate;
  u32 max_sessions;
  u32 handshake_timeout;
  u32 idle_timeout;
  u32 connect_timeout;
  u32 udp_idle_timeout;
  ip46_address_t udp_public_address;
  u8 udp_public_is_ip4;
  u8 dns_enabled;
  ip46_address_t dns_server;
  u8 dns_server_is_ip4;
  u16 dns_server_port;
  /* the client-mode interface whose upstream every CONNECT takes; ~0: the
   * one the destination is routed out of, if any (singbox_server.c) */
  u32 server_upstream_sw_if_index;

  /* Session layer */
  u32 udp_app_index;
  uword *udp_assoc_by_port; /* (is_ip4 << 16 | port) -> session index */
  u16 udp_next_port;
  u8 **udp_rx_buf;			     /* per thread */
  vlib_combined_counter_main_t udp_counters; /* [0] from, [1] to client */
  u32 server_app_index;
  u32 upstream_app_index;
  u32 fifo_size;
  u32 max_fifo_size;
  u64 segment_size;

  /* Session records, one pool per thread (see "Threads" in plugin/API.md) */
  singbox_worker_t *workers; /* [thread_index] */
  volatile u32 n_active;
  /* what the sessions' threads share, off the relay's path: endpoints'
   * pooled connections (pool_ready, pool_pending) and the UDP
   * associations' ports */
  clib_spinlock_t pool_lock;
  clib_spinlock_t udp_lock;
  u32 pool_next_thread;
  /* tests: every upstream leg as if on another thread (singbox_session.c) */
  u8 test_remote_upstream;

  /* Counters */
  vlib_simple_counter_main_t server_counters[SINGBOX_SERVER_N_CTR];
  u32 active_sessions_gauge;

  /* Globals */
  u8 log_level;

  /* Client mode */
  u32 intercept_app_index;
  session_handle_t intercept_listen4;
  session_handle_t intercept_listen6;
  void *hsi_intercept_proto_ptr;
  /* tcp listener (connection) index of the [::]:0 wildcard listener, ~0
   * while there is none: singbox6-in then lets everything pass */
  u32 intercept_tcp6_listener;
  u32 n_enabled_interfaces;
  vlib_simple_counter_main_t itf_connections; /* [sw_if_index] */
  vlib_simple_counter_main_t itf_failures;
  vlib_combined_counter_main_t itf_redirected;
  singbox_endpoint_t *endpoints;
  uword *endpoint_by_name;	   /* ep->name -> pool index: resyncs add thousands */
  u32 default_endpoint;		   /* ~0: none */
  singbox_interface_t *interfaces; /* vec indexed by sw_if_index */
  u32 client_timeout;
  u8 pooling;
  u32 max_pool_size;

  /* DNS plugin entry point, resolved at init */
  void *dns_resolve_name_ptr;
  /* sessions waiting for a name, polled by the process node */
  u32 *resolving;

  vlib_main_t *vlib_main;
  u32 process_node_index;
  u8 is_attached;
} singbox_main_t;

extern singbox_main_t singbox_main;
extern vlib_node_registration_t singbox_process_node;

/* VPP's log class "singbox" (show logging, syslog) and VPP's unix { log }
 * file (singbox.c) */
void singbox_log (singbox_log_level_t level, char *fmt, ...);
#define SINGBOX_LOG(lvl, fmt, ...)                                                                 \
  do                                                                                               \
    {                                                                                              \
      if (PREDICT_FALSE (singbox_main.log_level >= (lvl)))                                         \
	singbox_log ((lvl), fmt, ##__VA_ARGS__);                                                   \
    }                                                                                              \
  while (0)
#define SINGBOX_DBG(fmt, ...) SINGBOX_LOG (SINGBOX_LOG_DEBUG, fmt, ##__VA_ARGS__)

/* Where a function must run: on a given thread, or on main with the
 * workers stopped (checked in debug builds, or with
 * -DSINGBOX_THREAD_CHECKS=1 in any build). */
#ifndef SINGBOX_THREAD_CHECKS
#define SINGBOX_THREAD_CHECKS 0
#endif
#if SINGBOX_THREAD_CHECKS
#define SINGBOX_ASSERT_THREAD(t)                                                                   \
  do                                                                                               \
    {                                                                                              \
      if (PREDICT_FALSE (vlib_get_thread_index () != (t)))                                         \
	os_panic ();                                                                               \
    }                                                                                              \
  while (0)
#define SINGBOX_ASSERT_BARRIER()                                                                   \
  do                                                                                               \
    {                                                                                              \
      if (PREDICT_FALSE (!vlib_thread_is_main_w_barrier ()))                                       \
	os_panic ();                                                                               \
    }                                                                                              \
  while (0)
#else
#define SINGBOX_ASSERT_THREAD(t) ASSERT (vlib_get_thread_index () == (t))
#define SINGBOX_ASSERT_BARRIER() ASSERT (vlib_thread_is_main_w_barrier ())
#endif

/* A record is touched on its own thread, or on main with the workers
 * stopped (API and CLI handlers). */
#if SINGBOX_THREAD_CHECKS
#define SINGBOX_ASSERT_OWNER(h)                                                                    \
  do                                                                                               \
    {                                                                                              \
      if (PREDICT_FALSE (vlib_get_thread_index () != singbox_session_handle_thread (h) &&          \
			 !vlib_thread_is_main_w_barrier ()))                                       \
	os_panic ();                                                                               \
    }                                                                                              \
  while (0)
#else
#define SINGBOX_ASSERT_OWNER(h)                                                                    \
  ASSERT (vlib_get_thread_index () == singbox_session_handle_thread (h) ||                         \
	  vlib_thread_is_main_w_barrier ())
#endif

static_always_inline u32
singbox_session_handle_make (clib_thread_index_t thread, u32 index)
{
  return (thread << SINGBOX_SESSION_THREAD_SHIFT) | index;
}

static_always_inline clib_thread_index_t
singbox_session_handle_thread (u32 handle)
{
  return handle >> SINGBOX_SESSION_THREAD_SHIFT;
}

static_always_inline singbox_worker_t *
singbox_worker_get (clib_thread_index_t thread)
{
  return vec_elt_at_index (singbox_main.workers, thread);
}

/* The thread whose pool holds the record. */
static_always_inline clib_thread_index_t
singbox_session_thread (singbox_session_t *ss)
{
  return singbox_session_handle_thread (ss->index);
}

/* The record of a handle that is known to be live (a leg's opaque), on
 * the record's thread. */
static_always_inline singbox_session_t *
singbox_session_get (u32 handle)
{
  SINGBOX_ASSERT_OWNER (handle);
  return pool_elt_at_index (singbox_worker_get (singbox_session_handle_thread (handle))->sessions,
			    handle & SINGBOX_SESSION_INDEX_MASK);
}

/* The record of a handle that may be stale, or 0; on the record's thread. */
static_always_inline singbox_session_t *
singbox_session_get_if_valid (u32 handle)
{
  clib_thread_index_t t = singbox_session_handle_thread (handle);
  singbox_worker_t *wrk;

  if (t >= vec_len (singbox_main.workers) || (handle & SINGBOX_LEG_HANDLE_FLAG))
    return 0;
  SINGBOX_ASSERT_OWNER (handle);
  wrk = singbox_worker_get (t);
  if (pool_is_free_index (wrk->sessions, handle & SINGBOX_SESSION_INDEX_MASK))
    return 0;
  return pool_elt_at_index (wrk->sessions, handle & SINGBOX_SESSION_INDEX_MASK);
}

/* An upstream leg's side context on this thread (see singbox_leg_t). */
static_always_inline singbox_leg_t *
singbox_leg_get (u32 handle)
{
  ASSERT (handle & SINGBOX_LEG_HANDLE_FLAG);
  SINGBOX_ASSERT_THREAD ((handle & ~SINGBOX_LEG_HANDLE_FLAG) >> SINGBOX_SESSION_THREAD_SHIFT);
  return pool_elt_at_index (
    singbox_worker_get ((handle & ~SINGBOX_LEG_HANDLE_FLAG) >> SINGBOX_SESSION_THREAD_SHIFT)->legs,
    handle & SINGBOX_SESSION_INDEX_MASK);
}

/* The API's id: generation << 32 | handle, unique among live sessions and
 * not reused by a thread for 2^32 sessions. */
static_always_inline u64
singbox_session_id (singbox_session_t *ss)
{
  return ((u64) ss->generation << 32) | ss->index;
}

/* The handle an id names: its thread is the record's. */
static_always_inline u32
singbox_session_id_handle (u64 id)
{
  return (u32) id & ~(1U << 31);
}

/* Every live record of thread t: on t, or on main under the barrier. */
#define singbox_foreach_session_of_thread(ss, t) pool_foreach (ss, singbox_worker_get (t)->sessions)

/* The table of the session's mode, chosen when it was allocated. */
static_always_inline const singbox_session_vft_t *
singbox_session_vft (singbox_session_t *ss)
{
  return ss->mode == SINGBOX_MODE_CLIENT ? &singbox_client_session_vft :
					   &singbox_server_session_vft;
}

static_always_inline void
singbox_server_counter_inc (singbox_server_counter_t c, u64 n)
{
  vlib_increment_simple_counter (&singbox_main.server_counters[c], vlib_get_thread_index (), 0, n);
}

/* singbox.c */
int singbox_set_log_level (u8 level);

/* singbox_session.c: messages between threads that are never lost
 * (session_send_rpc_evt_to_thread_force drops one when the thread's event
 * queue is full) */
void singbox_rpc (clib_thread_index_t thread, void (*fn) (void *), void *arg);
void singbox_rpc_flush (void);
u32 singbox_rpc_from_foreign (clib_thread_index_t thread, void (*fn) (void *), void *arg);

/* singbox_udp.c */
int singbox_udp_attach (void);
void singbox_udp_associate (singbox_session_t *ss, socks5_addr_t *client);
void singbox_udp_release (singbox_session_t *ss);
int singbox_udp_enqueue (session_t *s, ip46_address_t *lcl, u16 lcl_port, ip46_address_t *rmt,
			 u16 rmt_port, u8 is_ip4, u8 *hdr, u32 hdr_len, u8 *data, u32 len);
void singbox_udp_counters_init (void);
void singbox_udp_resolved (u64 session_id, u8 *name, int rv, ip46_address_t *ip, u8 is_ip4);
void singbox_udp_names_free (singbox_session_t *ss);

/* singbox_dns.c */
int singbox_dns_init (void);
int singbox_dns_configure (void);
int singbox_dns_config_check (const ip46_address_t *server, u8 is_ip4, u16 port);
void singbox_dns_start (u32 session_index, u8 *name);
void singbox_dns_start_udp (u64 session_id, u8 *name);
void singbox_dns_poll (f64 now);

/* singbox_probe.c */
void singbox_probe_init (void);
u32 singbox_probe_start (singbox_endpoint_t *ep, int is_test, u32 client_index, u32 context);
void singbox_probe_schedule_first (singbox_endpoint_t *ep);
void singbox_probes_poll (f64 now);
void singbox_probe_set_test_reply (void (*fn) (void *));
void singbox_probe_get (void *probe, u32 *client_index, u32 *context, u8 *result, u32 *rtt_us,
			u32 *endpoint_index);
int singbox_want_endpoint_events (u32 client_index, int enable);

/* singbox_api.c */
void singbox_endpoint_send_event (u32 client_index, singbox_endpoint_t *ep);

#endif /* __included_singbox_h__ */
