/* SPDX-License-Identifier: Apache-2.0
 * Copyright (c) 2026 vpp-singbox authors
 */

/* The two-leg relay both modes share (singbox_session.c): a session is an
 * accepted client connection (passive open, "po") and, once connected, the
 * upstream connection (active open, "ao"), sharing one pair of fifos,
 * crossed. What differs between server and client mode is in a table of
 * callbacks, singbox_session_vft_t, chosen when the session is allocated. */

#ifndef __included_singbox_session_h__
#define __included_singbox_session_h__

#include <vnet/session/session.h>
#include <singbox/socks5_proto.h>
#include <singbox/http_connect_proto.h>

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

typedef enum
{
  SINGBOX_MODE_SERVER = 1,
  SINGBOX_MODE_CLIENT = 2,
  SINGBOX_N_MODES,
} singbox_mode_t;

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

/* The destination as the client requested it, for `show singbox sessions`
 * and the API dump: its type and, for a name, the name (a NUL-terminated
 * clib_mem_alloc copy, freed with the session); an address's value is in
 * dst_ip. A socks5_addr_t would keep 260 bytes in every session for the
 * few that ask for a name. */
typedef struct
{
  u8 atyp;    /* SOCKS5_ATYP_*, 0: none */
  u8 *domain; /* SOCKS5_ATYP_DOMAIN */
} singbox_dst_t;

#define SINGBOX_UDP_NAME_RESOLVING 0
#define SINGBOX_UDP_NAME_RESOLVED  1
#define SINGBOX_UDP_NAME_FAILED	   2

/* One session: the accepted client connection (po) and, once connected,
 * the upstream connection (ao). Both legs share one pair of fifos,
 * crossed, so payload is never copied. */
typedef struct
{
  u32 index;
  u32 generation;
  u8 state;	    /* singbox_session_state_t */
  u8 mode;	    /* singbox_mode_t: which singbox_session_vft_t */
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
  /* server mode: its password is being checked on the crypt thread */
  u8 auth_pending : 1;
  /* we hold back the client leg's ACK (singbox_po_ack_hold) */
  u8 ack_held : 1;
  f64 po_check_at;

  session_handle_t po_handle;
  session_handle_t ao_handle;
  /* the upstream leg is on another thread: its singbox_leg_t there, the
   * own fifos it had until crossed and its local endpoint (for the
   * server's reply), all from its CONNECTED message (singbox_session.c) */
  u8 ao_remote;
  u32 ao_leg;
  svm_fifo_t *ao_own_rx;
  ip46_address_t ao_lcl_ip;
  u16 ao_lcl_port; /* network order */
  u8 ao_lcl_is_ip4;
  /* the session ended while its upstream connected: the connects thread
   * was asked to close the half-open (singbox_session_cancel_connect), and
   * how many threads have since confirmed that no connect of it can still
   * be reported (singbox_connect_cancel_ack_rpc) */
  u8 connect_cancelled;
  u8 cancel_acks;
  svm_fifo_t *po_rx_fifo;
  svm_fifo_t *po_tx_fifo;
  clib_thread_index_t po_thread;

  /* The handshake's protocol machines, allocated while it runs and freed
   * when the session starts relaying (or ends): an idle relaying session
   * keeps none of their buffers. Server mode: */
  socks5_server_t *proto;	  /* from the accept to the reply */
  http_connect_server_t *hserver; /* HTTP: while its handshake runs */
  /* client mode: from the upstream's fifos to the crossing */
  socks5_client_t *cproto;
  http_connect_client_t *hcproto;
  u8 upstream_proto; /* SINGBOX_PROTO_*: which of cproto/hcproto runs */
  u32 sw_if_index;
  u32 endpoint_index;
  u32 group_index; /* the endpoint group that chose endpoint_index, ~0: none */
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

  singbox_dst_t dst;	 /* as requested */
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

/* What a mode adds to the relay. Every hook runs on the record's thread;
 * an upstream leg `s` of another thread is a stand-in holding its handle
 * and its fifos (singbox_ao_session). Hooks returning int return 1 when they handled the event and the
 * relay must do nothing more, 0 to let the relay go on as for a session
 * that relays; a NULL hook is the same as one returning 0. */
typedef struct
{
  const char *name; /* "server", "client": `show singbox sessions` */

  /* the session stops counting against its limit (max-sessions,
   * max-connections) */
  void (*release_active) (singbox_session_t *ss);
  /* add what the client leg po moved since last time to the counters; on
   * the leg's thread */
  void (*count_traffic) (singbox_session_t *ss, session_t *po);
  /* the session relays payload: its traffic is counted periodically */
  int (*relaying) (singbox_session_t *ss);
  /* the session record is about to be freed */
  void (*free) (singbox_session_t *ss);

  /* client leg received, sent FIN, before the session relays; client_rx
   * returns the upstream leg to kick once the lock is released, or
   * SESSION_INVALID_HANDLE */
  session_handle_t (*client_rx) (session_t *s, singbox_session_t *ss);
  int (*client_fin) (session_t *s, singbox_session_t *ss);

  /* upstream leg: set up its fifos before it is usable; *cross set means
   * use the client's fifos, crossed (returns a session_error_t) */
  int (*upstream_fifos) (session_t *s, singbox_session_t *ss, u8 *cross);
  void (*upstream_connect_failed) (singbox_session_t *ss, session_error_t err);
  int (*upstream_connected) (session_t *s, singbox_session_t *ss);
  int (*upstream_rx) (session_t *s, singbox_session_t *ss);
  int (*upstream_tx) (session_t *s, singbox_session_t *ss);
  int (*upstream_fin) (session_t *s, singbox_session_t *ss);
  void (*upstream_reset) (singbox_session_t *ss);
  /* after the destination's FIN, probe for the client's ACK of our last
   * data so our FIN is not held back (see singbox_po_ack_probe) */
  u8 probe_client_ack;

  /* ending from outside (API, timeouts), on the client leg's thread */
  int (*kill) (singbox_session_t *ss, int timed_out);
  /* singbox-process, every 0.5 s, main thread: mode checks (poll) and
   * whether the session has been idle too long (idle) */
  void (*poll) (singbox_session_t *ss, f64 now);
  int (*idle) (singbox_session_t *ss, f64 now);
  /* `show singbox sessions verbose`: the mode's part of the legs */
  u8 *(*format_legs) (u8 *s, singbox_session_t *ss);
} singbox_session_vft_t;

extern const singbox_session_vft_t singbox_server_session_vft;
extern const singbox_session_vft_t singbox_client_session_vft;

/* singbox_session.c */
int singbox_session_layer_attach (void);
int singbox_app_attach (char *name, session_cb_vft_t *vft, u64 flags, u32 *app_index);
void singbox_session_client_leg_cbs (session_cb_vft_t *vft);
singbox_session_t *singbox_session_alloc (singbox_mode_t mode);
session_t *singbox_ao_session (singbox_session_t *ss, session_t *tmp);
void singbox_ao_lcl (singbox_session_t *ss, session_t *s, transport_endpoint_t *lcl);
void singbox_ao_cross_remote (singbox_session_t *ss);
void singbox_session_cancel_connect (singbox_session_t *ss);
void singbox_session_free (singbox_session_t *ss);
singbox_session_t *singbox_session_get_by_id (u64 id);
void singbox_session_release_active (singbox_session_t *ss);
void singbox_session_connect_to (singbox_session_t *ss, ip46_address_t *ip, u8 is_ip4, u16 port,
				 u32 fib_index);
int singbox_session_disconnect (u64 session_id);
void singbox_session_kill_on_thread (singbox_session_t *ss, int timed_out);
void singbox_sessions_expire (f64 now);
void singbox_sessions_count_traffic (void);
void singbox_session_bytes (singbox_session_t *ss, u64 *to_client, u64 *from_client);
void singbox_session_account_bytes (singbox_session_t *ss, session_t *po);

void singbox_relay_kick (svm_fifo_t *f, session_handle_t to);
void singbox_relay_rx (svm_fifo_t *f, session_handle_t to);
void singbox_leg_do (session_handle_t sh, void (*fn) (void *));
void singbox_leg_close_rpc (void *arg);
void singbox_leg_shutdown_rpc (void *arg);
void singbox_po_close (singbox_session_t *ss);
void singbox_po_reset (singbox_session_t *ss);
void singbox_po_reset_later (singbox_session_t *ss);
void singbox_po_send (singbox_session_t *ss, socks5_out_t *out);
void singbox_po_ack_hold (singbox_session_t *ss);
void singbox_po_ack_hold_early (session_t *s);
int singbox_fifo_tuning (session_t *s, svm_fifo_t *f, session_ft_action_t act, u32 bytes);
void singbox_po_ack_hold_taken (singbox_session_t *ss, session_t *s);
void singbox_po_ack_release (singbox_session_t *ss);
void singbox_po_fail (singbox_session_t *ss);
void singbox_ao_close (singbox_session_t *ss);
void singbox_ao_reset (singbox_session_t *ss);
void singbox_session_cross_fifos (session_t *s, singbox_session_t *ss);
int singbox_session_own_fifos (session_t *s);

format_function_t format_singbox_session;
format_function_t format_singbox_session_legs;
format_function_t format_singbox_session_state;

#endif /* __included_singbox_session_h__ */
