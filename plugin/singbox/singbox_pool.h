/* SPDX-License-Identifier: Apache-2.0
 * Copyright (c) 2026 vpp-singbox authors
 */

/* Client mode's connection pool (singbox_pool.c): per endpoint, upstream
 * SOCKS5 connections that completed greeting and authentication and wait
 * for a flow's CONNECT. */

#ifndef __included_singbox_pool_h__
#define __included_singbox_pool_h__

#include <singbox/singbox_session.h>
#include <singbox/singbox_endpoint.h>

int singbox_set_pooling (u8 enable, u32 max_pool_size);
singbox_session_t *singbox_pool_take (singbox_endpoint_t *ep);
void singbox_pool_ready (singbox_session_t *ss);
void singbox_pool_forget (singbox_session_t *ss);
void singbox_pool_poll (f64 now);
void singbox_pool_flush (singbox_endpoint_t *ep);

#endif /* __included_singbox_pool_h__ */
