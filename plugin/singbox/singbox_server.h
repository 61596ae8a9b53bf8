/* SPDX-License-Identifier: Apache-2.0
 * Copyright (c) 2026 vpp-singbox authors
 */

/* Server mode (singbox_server.c): listeners, the SOCKS5 and HTTP CONNECT
 * handshakes on the client leg, allowed client prefixes, DNS and UDP hooks. */

#ifndef __included_singbox_server_h__
#define __included_singbox_server_h__

#include <singbox/singbox_session.h>

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
  _ (HTTP_CONNECT_FAILURES, "http-connect-failures")                                               \
  _ (DNS_UNCONFIGURED, "dns-unconfigured")

typedef enum
{
#define _(sym, str) SINGBOX_SERVER_CTR_##sym,
  foreach_singbox_server_counter
#undef _
    SINGBOX_SERVER_N_CTR,
} singbox_server_counter_t;

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

/* The server's settings (singbox_server_set_config); a zero timeout is
 * its default. */
typedef struct
{
  u8 auth_required;
  u8 allow_connect;
  u8 allow_udp_associate;
  u32 max_sessions;
  u32 handshake_timeout;
  u32 idle_timeout;
  u32 connect_timeout;
  u32 udp_idle_timeout;
  ip46_address_t udp_public_address; /* zero: the address the client connected to */
  u8 udp_public_is_ip4;
  u8 dns_enabled;
  ip46_address_t dns_server;
  u8 dns_server_is_ip4;
  u16 dns_server_port;
} singbox_server_config_t;

/* singbox_server.c: configuration objects, each an action returning
 * VNET_API_ERROR_* */
void singbox_server_init (void);
int singbox_server_enable_disable (int enable);
int singbox_server_set_config (const singbox_server_config_t *cfg);
int singbox_listener_add_del (int is_add, u8 *name, ip46_address_t *addr, u8 is_ip4, u16 port,
			      u32 table_id, u32 *listener_index);
singbox_listener_t *singbox_listener_find (u8 *name);
int singbox_allowed_prefix_add_del (int is_add, ip46_address_t *addr, u8 len, u8 is_ip4);
int singbox_prefix_allowed (ip46_address_t *ip, u8 is_ip4);
int singbox_server_set_upstream (u32 sw_if_index);
void singbox_clear_server_counters (void);
u64 singbox_server_counter_get (singbox_server_counter_t c);
format_function_t format_singbox_listener;

/* singbox_server.c: the handshake's outcomes, from the HTTP server, DNS and
 * UDP ASSOCIATE */
void singbox_handle_request (singbox_session_t *ss, socks5_event_t *ev);
void singbox_server_auth_done (u64 session_id, u32 user_index, int ok);
void singbox_server_udp_ready (singbox_session_t *ss);
void singbox_session_resolved (u32 index, int rv, ip46_address_t *ip, u8 is_ip4);

/* singbox_server.c: a session chained through client mode's upstream
 * (singbox_client.c runs the handshake): the proxy answered, or failed
 * with rep */
void singbox_server_reply_connected (session_t *s, singbox_session_t *ss);
void singbox_server_upstream_failed (singbox_session_t *ss, u8 rep);

/* singbox_http_server.c: HTTP CONNECT clients of the server */
int singbox_http_server_handshake (session_t *s, singbox_session_t *ss);
void singbox_http_server_reply_failure (singbox_session_t *ss, u8 rep);
void singbox_http_server_ok (singbox_session_t *ss, socks5_out_t *out);
void singbox_http_server_free (singbox_session_t *ss);
void singbox_http_server_auth_done (singbox_session_t *ss, int ok, u32 user_index);

#endif /* __included_singbox_server_h__ */
