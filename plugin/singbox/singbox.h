/* SPDX-License-Identifier: Apache-2.0
 * Copyright (c) 2026 vpp-singbox authors
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

#define SINGBOX_PLUGIN_VERSION "1.0.0"

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

/* Session states; the strings are what `show singbox sessions` prints and
 * the order matches vl_api_singbox_session_state_t. */
#define foreach_singbox_session_state                                                              \
  _ (GREETING, "greeting")                                                                         \
  _ (AUTH, "auth")                                                                                 \
  _ (REQUEST, "request")                                                                           \
  _ (RESOLVING, "resolving")                                                                       \
  _ (CONNECTING, "connecting")                                                                     \
  _ (ESTABLISHED, "established")                                                                   \
  _ (UDP_ASSOCIATED, "udp-associated")                                                             \
  _ (CLOSING, "closing")                                                                           \
  _ (SOCKS5_REQUEST, "socks5-request")                                                             \
  _ (SOCKS5_REPLY, "socks5-reply")

typedef enum
{
#define _(sym, str) SINGBOX_SESSION_STATE_##sym,
  foreach_singbox_session_state
#undef _
    SINGBOX_SESSION_N_STATE,
} singbox_session_state_t;

/* Server counters in the stats segment: symbol, stat name. */
#define foreach_singbox_server_counter                                                             \
  _ (ACCEPTED, "accepted")                                                                         \
  _ (REJECTED, "rejected")                                                                         \
  _ (REJECTED_MAX_SESSIONS, "rejected-max-sessions")                                               \
  _ (REJECTED_PREFIX, "rejected-prefix")                                                           \
  _ (AUTH_FAILURES, "auth-failures")                                                               \
  _ (CONNECT_FAILURES, "connect-failures")                                                         \
  _ (BYTES_TO_CLIENT, "bytes-to-client")                                                           \
  _ (BYTES_FROM_CLIENT, "bytes-from-client")                                                       \
  _ (UDP_DROPPED, "udp-dropped")                                                                   \
  _ (HTTP_CONNECT, "http-connect")                                                                 \
  _ (HTTP_CONNECT_FAILURES, "http-connect-failures")

typedef enum
{
#define _(sym, str) SINGBOX_SERVER_CTR_##sym,
  foreach_singbox_server_counter
#undef _
    SINGBOX_SERVER_N_CTR,
} singbox_server_counter_t;

typedef enum
{
  SINGBOX_MODE_SERVER = 1,
  SINGBOX_MODE_CLIENT = 2,
} singbox_mode_t;

typedef enum
{
  SINGBOX_LOG_ERROR,
  SINGBOX_LOG_WARNING,
  SINGBOX_LOG_INFO,
  SINGBOX_LOG_DEBUG,
} singbox_log_level_t;

typedef struct
{
  u8 *name; /* vec, NUL-terminated */
  ip46_address_t addr;
  u8 is_ip4;
  u16 port; /* host order */
  u32 table_id;
  session_handle_t listen_handle;
  u8 is_listening;
} singbox_listener_t;

typedef struct
{
  u8 *username; /* vec, not terminated */
  u8 *password; /* vec: clear text, or a crypt(3) hash when is_hash */
  u8 is_hash;
  /* Clear text that last matched the hash, so crypt_r runs once per
   * distinct password instead of once per login. */
  u8 *verified;
  u64 auth_failures;
  u64 sessions;
} singbox_user_t;

typedef struct
{
  ip46_address_t addr;
  u8 len;
  u8 is_ip4;
} singbox_prefix_t;

/* A destination a UDP association sent to: replies only from these. */
typedef struct
{
  ip46_address_t ip;
  u16 port; /* host order */
} singbox_udp_peer_t;

/* A name a UDP association sent to (ATYP 3), resolved once per association. */
typedef struct
{
  u8 *name; /* C string vec */
  u8 state; /* SINGBOX_UDP_NAME_* */
  u8 is_ip4;
  ip46_address_t ip;
  /* the datagram that started the lookup, sent once it is answered */
  u8 *pending;
  u16 pending_port;
  session_handle_t pending_via; /* the listener session it came in on */
} singbox_udp_name_t;

#define SINGBOX_UDP_NAME_RESOLVING 0
#define SINGBOX_UDP_NAME_RESOLVED  1
#define SINGBOX_UDP_NAME_FAILED	   2

/* singbox_endpoint_t.protocol, as vl_api_singbox_proxy_protocol_t */
#define SINGBOX_PROTO_SOCKS5	   0
#define SINGBOX_PROTO_HTTP_CONNECT 1

/* Client mode: an upstream proxy (SOCKS5 or HTTP CONNECT). */
typedef struct
{
  u8 *name; /* vec, NUL-terminated */
  ip46_address_t addr;
  u8 is_ip4;
  u16 port;
  u8 protocol;
  u8 *username; /* vec, not terminated; 0 = no auth */
  u8 *password;
  u32 priority;
  u16 connect_timeout;
  u8 hc_enabled;
  u16 hc_interval;
  u16 hc_timeout;
  u8 failure_threshold;
  u8 recovery_threshold;
  u32 table_id;
  u32 fib_index;

  /* state */
  u8 state; /* SINGBOX_EP_STATE_* */
  u8 last_result;
  f64 last_change;
  f64 next_probe;
  u8 probing;
  u64 failures;
  u32 consecutive_failures;
  u32 consecutive_successes;
  u32 rtt_us;
  u64 connections;
  u32 n_users;	    /* interfaces referring to it */
  u64 *pool_ready;  /* session ids of pre-authenticated connections */
  u32 pool_pending; /* pooled connections still connecting */
  u32 stat_state;   /* stats segment gauges */
  u32 stat_rtt;
  u32 stat_failures;
  u32 stat_connections;
} singbox_endpoint_t;

/* probe results, as vl_api_singbox_probe_result_t */
#define SINGBOX_PROBE_SUCCESS	     0
#define SINGBOX_PROBE_CONNECT_FAILED 1
#define SINGBOX_PROBE_TIMEOUT	     2
#define SINGBOX_PROBE_AUTH_FAILED    3
#define SINGBOX_PROBE_PROTOCOL_ERROR 4
#define SINGBOX_PROBE_NOT_RUN	     5

#define SINGBOX_EP_STATE_UNKNOWN 0
#define SINGBOX_EP_STATE_UP	 1
#define SINGBOX_EP_STATE_DOWN	 2

/* Client mode: an interface whose arriving TCP is intercepted. */
typedef struct
{
  u32 sw_if_index;
  u8 enabled;
  u32 endpoint_index; /* ~0: the default endpoint */
  u8 adhoc_endpoint;  /* endpoint created by "proxy <addr>:<port>" */
  u32 max_connections;
  singbox_prefix_t *bypass;
  volatile u32 active;
  u64 total;
  u64 failures;
  u64 packets;
  u64 bytes;
  u32 stat_active; /* stats segment gauge, ~0 = none */
} singbox_interface_t;

/* One SOCKS session: the accepted client connection (passive open, "po")
 * and, once connected, the upstream connection (active open, "ao"). Both
 * legs share one pair of fifos, crossed, so payload is never copied. */
typedef struct
{
  u32 index;
  u32 generation;
  u8 state;	    /* singbox_session_state_t */
  u8 mode;	    /* singbox_mode_t */
  u8 cmd;	    /* SOCKS5_CMD_* */
  u8 rep;	    /* REP sent */
  u8 po_closed : 1; /* we closed or reset the client leg */
  u8 ao_closed : 1; /* we closed or reset the upstream leg */
  u8 connecting : 1;
  u8 po_fin : 1; /* client sent FIN */
  u8 ao_fin : 1; /* upstream sent FIN */
  u8 reply_sent : 1;
  u8 counted_active : 1;
  /* client mode: the client leg's accept came. Until then VPP frees the leg
   * without a word to us when its handshake fails (a SYN then RST, a SYN-ACK
   * never answered): the session layer drops a session it has not yet
   * announced. po_check_at is when to look whether it still exists. */
  u8 po_accepted : 1;
  u8 is_http : 1; /* server mode: the client speaks HTTP CONNECT */
  f64 po_check_at;

  session_handle_t po_handle;
  session_handle_t ao_handle;
  svm_fifo_t *po_rx_fifo;
  svm_fifo_t *po_tx_fifo;
  clib_thread_index_t po_thread;

  socks5_server_t proto;
  http_connect_server_t *hserver; /* server mode, HTTP: while its handshake runs */
  /* client mode */
  socks5_client_t cproto;
  u8 upstream_proto; /* SINGBOX_PROTO_*: which of cproto/hcproto runs */
  http_connect_client_t hcproto;
  u32 sw_if_index;
  u32 endpoint_index;
  u8 bypass;
  u8 crossed;		 /* client mode: both legs share the client's fifos */
  u8 pooled;		 /* pre-authenticated upstream connection, no client yet */
  u8 pool_ready;	 /* pooled and waiting in its endpoint's pool */
  u8 from_pool;		 /* client session that took a pooled upstream */
  svm_fifo_t *ao_own_tx; /* upstream's own tx fifo until crossed */

  ip46_address_t client_ip;
  u16 client_port;
  u8 client_is_ip4;
  ip46_address_t lcl_ip; /* address the client connected to */
  u8 lcl_is_ip4;
  u32 fib_index;

  socks5_addr_t dst;	 /* as requested */
  ip46_address_t dst_ip; /* resolved */
  u8 dst_is_ip4;
  u16 dst_port;

  u32 listener_index;
  u32 user_index;

  f64 created;
  f64 last_active;
  f64 deadline; /* handshake, resolve or connect deadline, 0 = none */

  /* UDP ASSOCIATE */
  session_handle_t udp_listen_handle;
  u16 udp_port;	       /* host order, the relay's port */
  u8 udp_client_known; /* client's UDP source learned */
  ip46_address_t udp_client_ip;
  u16 udp_client_port; /* host order; 0 = any until learned */
  singbox_udp_peer_t *udp_peers;
  singbox_udp_name_t *udp_names;
  u64 udp_from_client;
  u64 udp_to_client;

  /* handshake bytes, subtracted from the transport's byte counts */
  u32 hs_bytes_in;
  u32 hs_bytes_out;
  u64 bytes_to_client;
  u64 bytes_from_client;
  /* what the client leg had moved when last added to the counters */
  u64 counted_to_client;
  u64 counted_from_client;
  u64 counted_segments;
} singbox_session_t;

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

  /* Sessions, shared by all threads: the two legs of a session may live on
   * different workers, like hs_apps proxy. */
  singbox_session_t *sessions;
  clib_spinlock_t sessions_lock;
  u32 generation;
  volatile u32 n_active;

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

#define SINGBOX_LOG(lvl, fmt, ...)                                                                 \
  do                                                                                               \
    {                                                                                              \
      if (PREDICT_FALSE (singbox_main.log_level >= (lvl)))                                         \
	clib_warning ("singbox: " fmt, ##__VA_ARGS__);                                             \
    }                                                                                              \
  while (0)
#define SINGBOX_DBG(fmt, ...) SINGBOX_LOG (SINGBOX_LOG_DEBUG, fmt, ##__VA_ARGS__)

static_always_inline void
singbox_sessions_lock (void)
{
  clib_spinlock_lock_if_init (&singbox_main.sessions_lock);
}

static_always_inline void
singbox_sessions_unlock (void)
{
  clib_spinlock_unlock_if_init (&singbox_main.sessions_lock);
}

static_always_inline singbox_session_t *
singbox_session_get (u32 index)
{
  return pool_elt_at_index (singbox_main.sessions, index);
}

static_always_inline u64
singbox_session_id (singbox_session_t *ss)
{
  return ((u64) ss->generation << 32) | ss->index;
}

static_always_inline void
singbox_server_counter_inc (singbox_server_counter_t c, u64 n)
{
  vlib_increment_simple_counter (&singbox_main.server_counters[c], vlib_get_thread_index (), 0, n);
}

/* singbox.c: configuration objects, each an action returning VNET_API_ERROR_* */
int singbox_server_enable_disable (int enable);
int singbox_server_set_config (u8 auth_required, u8 allow_connect, u8 allow_udp, u32 max_sessions,
			       u32 handshake_timeout, u32 idle_timeout, u32 connect_timeout,
			       u32 udp_idle_timeout, ip46_address_t *udp_public,
			       u8 udp_public_is_ip4, u8 dns_enabled, ip46_address_t *dns_server,
			       u8 dns_server_is_ip4, u16 dns_server_port);
int singbox_listener_add_del (int is_add, u8 *name, ip46_address_t *addr, u8 is_ip4, u16 port,
			      u32 table_id, u32 *listener_index);
int singbox_user_add_del (int is_add, u8 *username, u8 *password, u8 is_hash);
int singbox_allowed_prefix_add_del (int is_add, ip46_address_t *addr, u8 len, u8 is_ip4);
int singbox_user_check (u8 *username, u32 ulen, u8 *password, u32 plen, u32 *user_index);
int singbox_prefix_allowed (ip46_address_t *ip, u8 is_ip4);
singbox_listener_t *singbox_listener_find (u8 *name);
void singbox_clear_server_counters (void);
u64 singbox_server_counter_get (singbox_server_counter_t c);
int singbox_set_log_level (u8 level);

/* singbox_server.c: shared by both modes */
extern session_cb_vft_t singbox_intercept_cb_vft_base;
singbox_session_t *singbox_session_alloc (void);
singbox_session_t *singbox_session_get_by_id (u64 id);
void singbox_po_reset (singbox_session_t *ss);
void singbox_session_release_active (singbox_session_t *ss);
void singbox_ao_close_public (singbox_session_t *ss);
void singbox_po_reset_later (singbox_session_t *ss);
int singbox_app_attach (char *name, session_cb_vft_t *vft, u64 flags, u32 *app_index);
void singbox_session_connect_to (singbox_session_t *ss, ip46_address_t *ip, u8 is_ip4, u16 port,
				 u32 fib_index);

/* singbox_server.c */
int singbox_server_attach (void);
int singbox_server_listen (singbox_listener_t *l);
int singbox_server_unlisten (singbox_listener_t *l);
int singbox_session_disconnect (u64 session_id);
void singbox_server_close_all (void);
void singbox_sessions_expire (f64 now);
void singbox_sessions_count_traffic (void);
void singbox_session_bytes (singbox_session_t *ss, u64 *to_client, u64 *from_client);
void singbox_session_resolved (u32 index, int rv, ip46_address_t *ip, u8 is_ip4);

/* singbox_udp.c */
int singbox_udp_attach (void);
void singbox_udp_associate (singbox_session_t *ss, socks5_addr_t *client);
void singbox_udp_release (singbox_session_t *ss);
void singbox_server_udp_ready (singbox_session_t *ss);
void singbox_udp_counters_init (void);
void singbox_udp_resolved (u64 session_id, u8 *name, int rv, ip46_address_t *ip, u8 is_ip4);
void singbox_udp_names_free (singbox_session_t *ss);

/* singbox_probe.c */
u32 singbox_probe_start (singbox_endpoint_t *ep, int is_test, u32 client_index, u32 context);
void singbox_probe_schedule_first (singbox_endpoint_t *ep);
void singbox_probes_poll (f64 now);
void singbox_probe_set_test_reply (void (*fn) (void *));
void singbox_probe_get (void *probe, u32 *client_index, u32 *context, u8 *result, u32 *rtt_us,
			u32 *endpoint_index);
int singbox_want_endpoint_events (u32 client_index, int enable);
/* singbox_api.c */
void singbox_endpoint_send_event (u32 client_index, singbox_endpoint_t *ep);
/* singbox_client.c */
void singbox_client_stats_update (void);
void singbox_client_pool_poll (f64 now);
void singbox_client_pool_forget (singbox_session_t *ss);

/* singbox_dns.c */
int singbox_dns_init (void);
int singbox_dns_configure (void);
void singbox_dns_start (u32 session_index, u8 *name);
void singbox_dns_start_udp (u64 session_id, u8 *name);
void singbox_dns_poll (f64 now);

/* singbox_client.c */
clib_error_t *singbox_client_init (vlib_main_t *vm);
int singbox_client_accept (session_t *s);
int singbox_client_write_early_data (session_t *s);
void singbox_client_upstream_rx (session_t *s, singbox_session_t *ss);
/* singbox_http_server.c; singbox_po_fail and singbox_handle_request are singbox_server.c's */
int singbox_http_server_handshake (session_t *s, singbox_session_t *ss);
void singbox_http_server_reply_failure (singbox_session_t *ss, u8 rep);
void singbox_http_server_ok (singbox_session_t *ss, socks5_out_t *out);
void singbox_http_server_free (singbox_session_t *ss);
void singbox_po_fail (singbox_session_t *ss);
void singbox_handle_request (singbox_session_t *ss, socks5_event_t *ev);
int singbox_client_alloc_fifos (session_t *s, singbox_session_t *ss);
void singbox_client_upstream_tx (session_t *s, singbox_session_t *ss);
void singbox_client_connect_failed (singbox_session_t *ss);
void singbox_client_count_traffic (singbox_session_t *ss, session_t *po);
singbox_endpoint_t *singbox_endpoint_find (u8 *name);
int singbox_endpoint_add_del (int is_add, u8 *name, ip46_address_t *addr, u8 is_ip4, u16 port,
			      u8 protocol, u8 *username, u8 *password, u32 priority,
			      u16 connect_timeout, u8 hc_enabled, u16 hc_interval, u16 hc_timeout,
			      u8 failure_threshold, u8 recovery_threshold, u32 table_id);
int singbox_set_default_endpoint (u8 *name);
int singbox_interface_enable_disable (u32 sw_if_index, int enable, ip46_address_t *proxy_addr,
				      u8 proxy_is_ip4, u16 proxy_port, u8 *endpoint_name,
				      u32 max_connections);
int singbox_interface_bypass_add_del (u32 sw_if_index, int is_add, ip46_address_t *addr, u8 len,
				      u8 is_ip4);
singbox_interface_t *singbox_interface_get (u32 sw_if_index);
int singbox_set_client_timeout (u32 timeout);
int singbox_set_pooling (u8 enable, u32 max_pool_size);
void singbox_clear_interface_counters (u32 sw_if_index);
int singbox_clear_endpoint_counters (u8 *name);
u8 *singbox_endpoint_name (u32 endpoint_index);
format_function_t format_singbox_endpoint;
format_function_t format_singbox_interface;

format_function_t format_singbox_session;
format_function_t format_singbox_session_legs;
format_function_t format_singbox_session_state;
format_function_t format_singbox_listener;

#endif /* __included_singbox_h__ */
