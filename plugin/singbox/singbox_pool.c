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
 * sm->pool_lock guards it (it is not a session pool's lock: no record is
 * touched under it). A pooled connection's record lives on the thread the
 * pool chose for it (singbox_pool_thread), and only a flow of that thread
 * takes it (singbox_pool_take), so the record stays in its client leg's
 * thread as every record does. */

/* On the record's thread. Drop a pooled connection from its endpoint's
 * books. */
void
singbox_pool_forget (singbox_session_t *ss)
{
  singbox_main_t *sm = &singbox_main;
  singbox_endpoint_t *ep;
  u64 id = singbox_session_id (ss);
  u32 i;

  SINGBOX_ASSERT_OWNER (ss->index);
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

/* The id of a ready pooled connection whose record is on `thread` (any
 * thread's: ~0), or 0; it is no longer in the pool. */
static u64
singbox_pool_pop (singbox_endpoint_t *ep, clib_thread_index_t thread)
{
  u64 id = 0;
  u32 i;

  clib_spinlock_lock_if_init (&singbox_main.pool_lock);
  for (i = vec_len (ep->pool_ready); i > 0; i--)
    if (thread == (clib_thread_index_t) ~0 ||
	singbox_session_handle_thread (singbox_session_id_handle (ep->pool_ready[i - 1])) ==
	  thread)
      {
	id = ep->pool_ready[i - 1];
	vec_del1 (ep->pool_ready, i - 1);
	break;
      }
  clib_spinlock_unlock_if_init (&singbox_main.pool_lock);
  return id;
}

/* A ready pooled connection to ep whose record is on this thread, or 0. */
singbox_session_t *
singbox_pool_take (singbox_endpoint_t *ep)
{
  singbox_session_t *ss;
  u64 id;

  while ((id = singbox_pool_pop (ep, vlib_get_thread_index ())))
    {
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
    }
  return 0;
}

/* On the record's thread: a pooled connection finished greeting and
 * authentication and waits for a flow's CONNECT. */
void
singbox_pool_ready (singbox_session_t *ss)
{
  singbox_main_t *sm = &singbox_main;
  singbox_endpoint_t *ep;

  SINGBOX_ASSERT_OWNER (ss->index);
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

/* On the record's thread: close a pooled connection no longer wanted. */
static void
singbox_pool_close_rpc (void *arg)
{
  singbox_session_t *ss = singbox_session_get_by_id (pointer_to_uword (arg));

  if (ss && ss->pool_ready)
    {
      ss->pool_ready = 0;
      ss->pooled = 0;
      ss->state = SINGBOX_SESSION_STATE_CLOSING;
      singbox_ao_close (ss);
    }
}

static void
singbox_pool_close (u64 id)
{
  singbox_rpc (singbox_session_handle_thread (singbox_session_id_handle (id)),
	       singbox_pool_close_rpc, uword_to_pointer (id, void *));
}

/* The thread a new pooled connection's record goes to: the workers' in
 * turn, so that each worker's flows find some (its upstream leg lands on
 * whichever worker gets the proxy's SYN-ACK). */
static clib_thread_index_t
singbox_pool_thread (void)
{
  singbox_main_t *sm = &singbox_main;

  if (!vlib_num_workers ())
    return 0;
  return 1 + (sm->pool_next_thread++ % vlib_num_workers ());
}

/* On the record's thread chosen by singbox_pool_poll: a new pooled
 * connection to endpoint `arg`, already counted in its pool_pending. */
static void
singbox_pool_start_rpc (void *arg)
{
  singbox_main_t *sm = &singbox_main;
  u32 ei = pointer_to_uword (arg);
  singbox_endpoint_t *ep;
  singbox_session_t *ss;

  if (pool_is_free_index (sm->endpoints, ei))
    return; /* gone, and its books with it */
  ep = pool_elt_at_index (sm->endpoints, ei);
  if (!sm->pooling || sm->upstream_app_index == APP_INVALID_INDEX)
    {
      clib_spinlock_lock_if_init (&sm->pool_lock);
      if (ep->pool_pending)
	ep->pool_pending--;
      clib_spinlock_unlock_if_init (&sm->pool_lock);
      return;
    }
  ss = singbox_session_alloc (SINGBOX_MODE_CLIENT);
  ss->pooled = 1;
  ss->upstream_proto = SINGBOX_PROTO_SOCKS5;
  ss->state = SINGBOX_SESSION_STATE_SOCKS5_REQUEST;
  ss->endpoint_index = ei;
  ss->sw_if_index = ~0;
  ss->created = ss->last_active = vlib_time_now (vlib_get_main ());
  singbox_session_connect_to (ss, &ep->addr, ep->is_ip4, ep->port, ep->fib_index);
}

/* singbox-process (main, without the barrier): keep each used endpoint's
 * pool filled. Only while client mode runs: pooled connections serve
 * intercepted flows, and before the first interface is enabled the upstream
 * app they connect from does not exist (pooling enabled first, as the
 * manual's order has it, crashed VPP in vnet_connect). The records are made
 * on their threads (singbox_pool_start_rpc). */
void
singbox_pool_poll (f64 now)
{
  singbox_main_t *sm = &singbox_main;
  singbox_endpoint_t *ep;
  u32 want, have, n_started = 0;
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
	  while ((id = singbox_pool_pop (ep, ~0)))
	    singbox_pool_close (id);
	  continue;
	}
      clib_spinlock_lock_if_init (&sm->pool_lock);
      have = vec_len (ep->pool_ready) + ep->pool_pending;
      clib_spinlock_unlock_if_init (&sm->pool_lock);
      while (have < want && n_started < 16)
	{
	  clib_spinlock_lock_if_init (&sm->pool_lock);
	  ep->pool_pending++;
	  clib_spinlock_unlock_if_init (&sm->pool_lock);
	  have++;
	  n_started++;
	  singbox_rpc (singbox_pool_thread (), singbox_pool_start_rpc,
		       uword_to_pointer (ep - sm->endpoints, void *));
	}
    }
}

/* Main thread, the endpoint going away: close its pooled connections. */
void
singbox_pool_flush (singbox_endpoint_t *ep)
{
  u64 id;

  while ((id = singbox_pool_pop (ep, ~0)))
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
