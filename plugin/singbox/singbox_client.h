/* SPDX-License-Identifier: Apache-2.0
 * Copyright (c) 2026 vpp-singbox authors
 */

/* Client mode (singbox_client.c): interception of an interface's TCP and
 * the handshake with the upstream proxy. */

#ifndef __included_singbox_client_h__
#define __included_singbox_client_h__

#include <singbox/singbox_session.h>
#include <singbox/singbox_endpoint.h>

clib_error_t *singbox_client_init (vlib_main_t *vm);
int singbox_client_intercept_enable_disable (singbox_interface_t *itf, int enable);
void singbox_client_close_interface (u32 sw_if_index);
int singbox_set_client_timeout (u32 timeout);
void singbox_client_write_connect (singbox_session_t *ss, svm_fifo_t *tx);

/* The upstream handshake (SOCKS5 or HTTP CONNECT to ss->endpoint_index),
 * also run by server sessions chained through client mode's upstream
 * (singbox_server.c): own fifos with the handshake queued, the proxy's
 * replies, the crossing once it answered, the machines' cleanup. */
int singbox_client_alloc_fifos (session_t *s, singbox_session_t *ss);
void singbox_client_upstream_rx (session_t *s, singbox_session_t *ss);
int singbox_client_handshake_done (singbox_session_t *ss);
int singbox_client_cross (session_t *s, singbox_session_t *ss);
void singbox_client_hs_free (singbox_session_t *ss);

#endif /* __included_singbox_client_h__ */
