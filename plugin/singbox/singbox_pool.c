/* SPDX-License-Identifier: Apache-2.0
 * Copyright (c) 2026 vpp-singbox authors
 */

/* Connection pooling: per endpoint, up to max-pool-size upstream
 * connections that completed greeting and authentication and wait for a
 * CONNECT. A SOCKS5 connection carries one CONNECT, so pooling saves the
 * TCP handshake and the auth round trips, not connections. HTTP CONNECT
 * endpoints are not pooled: their credentials travel with the CONNECT
 * itself, so a pooled connection would save the TCP handshake only.
 *
 * A pooled connection is a client-mode session with no client leg yet
 * (pooled); singbox_client.c runs its handshake and gives it to a flow. */

#include <singbox/singbox.h>

/* An endpoint's pool (pool_ready, pool_pending) is shared by every thread:
 * a flow on one worker takes a connection whose record and legs may be on
 * another. sm->pool_lock guards it and is only ever taken inside a
 * session's lock or alone, never the other way round. */

/* The record's lock held. Drop a pooled connection from its endpoint's
 * books. */
void
singbox_pool_forget (singbox_session_t *ss)
{
  singbox_main_t *sm = &singbox_main;
  singbox_endpoint_t *ep;
  u64 id = singbox_session_id (ss);
  u32 i;

  if (!ss->pooled || ss->endpoint_index == ~0 ||
      pool_is_free_index (sm->endpoints, ss->endpoint_index))
    return;
  ep = pool_elt_at_index (sm->endpoints, ss->endpoint_index);
  clib_spinlock_lock_if_init (&sm->pool_lock);
  if (ss->pool_ready)
    {
      vec_foreach_index (i, ep->pool_ready)
	if (ep->pool_ready[i] == id)
	  {
	    vec_del1 (ep->pool_ready, i);
	    break;
	  }
    }
  else if (ep->pool_pending)
    ep->pool_pending--;
  clib_spinlock_unlock_if_init (&sm->pool_lock);
  ss->pooled = 0;
  ss->pool_ready = 0;
}

/* The id of a ready pooled connection, or 0; it is no longer in the pool. */
static u64
singbox_pool_pop (singbox_endpoint_t *ep)
{
  u64 id = 0;

  clib_spinlock_lock_if_init (&singbox_main.pool_lock);
  if (vec_len (ep->pool_ready))
    id = vec_pop (ep->pool_ready);
  clib_spinlock_unlock_if_init (&singbox_main.pool_lock);
  return id;
}

/* Any thread, no record's lock held: a ready pooled connection to ep,
 * returned with its record's lock held (singbox_session_unlock (ss->index)),
 * or 0. */
singbox_session_t *
singbox_pool_take (singbox_endpoint_t *ep)
{
  singbox_session_t *ss;
  u64 id;
  u32 h;

  while ((id = singbox_pool_pop (ep)))
    {
      h = singbox_session_id_handle (id);
      singbox_session_lock (h);
      ss = singbox_session_get_by_id (id);
      if (ss && ss->pool_ready)
	{
	  ss->pool_ready = 0;
	  ss->pooled = 0;
	  if (ss->ao_handle != SESSION_INVALID_HANDLE && !ss->ao_closed &&
	      ss->state == SINGBOX_SESSION_STATE_SOCKS5_REPLY && ss->cproto &&
	      socks5_client_state (ss->cproto) == SOCKS5_CLIENT_READY)
	    return ss;
	}
      singbox_session_unlock (h);
    }
  return 0;
}

/* The record's lock held, on the upstream's thread: a pooled connection
 * finished greeting and authentication and waits for a flow's CONNECT. */
void
singbox_pool_ready (singbox_session_t *ss)
{
  singbox_main_t *sm = &singbox_main;
  singbox_endpoint_t *ep;

  if (!ss->pooled || ss->pool_ready || pool_is_free_index (sm->endpoints, ss->endpoint_index))
    return;
  ep = pool_elt_at_index (sm->endpoints, ss->endpoint_index);
  ss->pool_ready = 1;
  clib_spinlock_lock_if_init (&sm->pool_lock);
  if (ep->pool_pending)
    ep->pool_pending--;
  vec_add1 (ep->pool_ready, singbox_session_id (ss));
  clib_spinlock_unlock_if_init (&sm->pool_lock);
}

/* Close a pooled connection no longer wanted. */
static void
singbox_pool_close (u64 id)
{
  singbox_session_t *ss;
  u32 h = singbox_session_id_handle (id);

  singbox_session_lock (h);
  if ((ss = singbox_session_get_by_id (id)) && ss->pool_ready)
    {
      ss->pool_ready = 0;
      ss->pooled = 0;
      ss->state = SINGBOX_SESSION_STATE_CLOSING;
      singbox_ao_close (ss);
    }
  singbox_session_unlock (h);
}

/* The pool a new pooled connection's record goes to: the workers' in turn
 * (its upstream leg lands on whichever worker gets the proxy's SYN-ACK). */
static clib_thread_index_t
singbox_pool_thread (void)
{
  singbox_main_t *sm = &singbox_main;

  if (!vlib_num_workers ())
    return 0;
  return 1 + (sm->pool_next_thread++ % vlib_num_workers ());
}

/* singbox-process (main, without the barrier): keep each used endpoint's
 * pool filled. Only while client mode runs: pooled connections serve
 * intercepted flows, and before the first interface is enabled the upstream
 * app they connect from does not exist (pooling enabled first, as the
 * manual's order has it, crashed VPP in vnet_connect). */
void
singbox_pool_poll (f64 now)
{
  singbox_main_t *sm = &singbox_main;
  singbox_endpoint_t *ep;
  singbox_session_t *ss;
  u32 want, have, n_started = 0;
  clib_thread_index_t t;
  u64 id;
  static f64 last;
  int client_mode = sm->n_enabled_interfaces && sm->upstream_app_index != APP_INVALID_INDEX;

  SINGBOX_ASSERT_THREAD (0);
  if (now - last < 0.2)
    return;
  last = now;
  pool_foreach (ep, sm->endpoints)
    {
      want = sm->pooling && client_mode &&
		 (ep->n_users || ep - sm->endpoints == sm->default_endpoint) &&
		 ep->state != SINGBOX_EP_STATE_DOWN && ep->protocol == SINGBOX_PROTO_SOCKS5 ?
	       sm->max_pool_size :
	       0;
      if (!want)
	{
	  /* pooling off: close what is pooled */
	  while ((id = singbox_pool_pop (ep)))
	    singbox_pool_close (id);
	  continue;
	}
      clib_spinlock_lock_if_init (&sm->pool_lock);
      have = vec_len (ep->pool_ready) + ep->pool_pending;
      clib_spinlock_unlock_if_init (&sm->pool_lock);
      while (have < want && n_started < 16)
	{
	  t = singbox_pool_thread ();
	  singbox_session_lock (singbox_session_handle_make (t, 0));
	  ss = singbox_session_alloc_on (t, SINGBOX_MODE_CLIENT);
	  ss->pooled = 1;
	  ss->upstream_proto = SINGBOX_PROTO_SOCKS5;
	  ss->state = SINGBOX_SESSION_STATE_SOCKS5_REQUEST;
	  ss->endpoint_index = ep - sm->endpoints;
	  ss->sw_if_index = ~0;
	  ss->created = ss->last_active = now;
	  clib_spinlock_lock_if_init (&sm->pool_lock);
	  ep->pool_pending++;
	  clib_spinlock_unlock_if_init (&sm->pool_lock);
	  have++;
	  n_started++;
	  singbox_session_connect_to (ss, &ep->addr, ep->is_ip4, ep->port, ep->fib_index);
	  singbox_session_unlock (singbox_session_handle_make (t, 0));
	}
    }
}

/* Main thread, the endpoint going away: close its pooled connections. */
void
singbox_pool_flush (singbox_endpoint_t *ep)
{
  u64 id;

  while ((id = singbox_pool_pop (ep)))
    singbox_pool_close (id);
  vec_free (ep->pool_ready);
}

int
singbox_set_pooling (u8 enable, u32 max_pool_size)
{
  singbox_main.pooling = enable;
  if (max_pool_size)
    singbox_main.max_pool_size = max_pool_size;
  return 0;
}
