/* SPDX-License-Identifier: Apache-2.0
 * Copyright (c) 2026 vpp-singbox authors
 */

/* Endpoint probes: TCP connect + SOCKS5 greeting (+ RFC 1929 auth), then
 * close. Periodic ones drive the endpoint state (failure / recovery
 * thresholds, failover in singbox_client_pick_endpoint, events); a test
 * probe (singbox_endpoint_test) only reports. Results are handled on the
 * main thread, where API replies and events are sent.
 *
 * A record's index is the connect's context and its session's opaque, so
 * it stays allocated while anything can still name it: the connect until
 * it resolves (its callback comes whatever happens, late for a target
 * that drops SYNs: VPP retries for about a minute, far beyond a probe's
 * deadline), the session until its cleanup callback, the result until
 * main took it, a close main asked another thread for until it ran
 * (singbox_probe_t.refs). Freed at its deadline with the connect pending,
 * the record was reused by the next probe, and the late connect's
 * callback then sent that probe's greeting on its own session and
 * overwrote its handle: one of the two sessions was never closed, and a
 * late failure was counted against whichever endpoint held the slot. */

#include <singbox/singbox.h>
#include <vlibmemory/api.h>

/* What keeps a probe's record allocated (singbox_probe_t.refs); the
 * record is freed when none is left. */
#define SINGBOX_PROBE_REF_PENDING (1 << 0) /* no result yet */
#define SINGBOX_PROBE_REF_CONNECT (1 << 1) /* the connect's callback is still to come */
#define SINGBOX_PROBE_REF_SESSION (1 << 2) /* its session is open: until its cleanup callback */
#define SINGBOX_PROBE_REF_RESULT  (1 << 3) /* the result is on its way to main */
#define SINGBOX_PROBE_REF_CLOSE	  (1 << 4) /* main asked the session's thread to close it */

typedef struct
{
  u32 endpoint_index;
  u64 endpoint_generation; /* endpoint slot reuse guard: its name hash */
  u8 is_test;
  u8 done;
  u8 result;
  u32 client_index; /* test: API client waiting for the reply */
  u32 context;
  f64 started;
  f64 deadline;
  u32 rtt_us;
  session_handle_t handle;
  /* pipelined greeting + auth with the request deferred: READY is success */
  socks5_client_t cproto;
  http_connect_client_t hcproto; /* HTTP CONNECT endpoints: see http_connect_probe_write */
  u8 is_http;
  u8 refs;    /* SINGBOX_PROBE_REF_* */
  u8 closing; /* its session was closed */
} singbox_probe_t;

/* First probes of new or changed endpoints. A few start at once, so that
 * an operator adding or fixing an endpoint sees its state without waiting;
 * beyond that burst (a resync adds thousands) each first probe is put at a
 * deterministic offset within the endpoint's interval. Starting thousands
 * of connects together holds the main thread, and with it the binary API,
 * for seconds, and every probe answers with a state event the agent must
 * read during its resync. Health state is then known within one interval
 * (plus the probe timeout) whatever the number of endpoints, and later
 * probes keep the spread: each is due one interval after the last start. */
#define SINGBOX_PROBE_FIRST_BURST 32 /* immediate first probes, refilled per second */
/* Whatever is due, at most this many starts per poll (100 ms): after the
 * main thread was busy, the slots that passed meanwhile are all due at once.
 * The rest stay due and start in the next polls. */
#define SINGBOX_PROBE_MAX_STARTS_PER_POLL 64

static singbox_probe_t *singbox_probes;
/* the probes' pool: the probes' legs may land on any worker */
static clib_spinlock_t singbox_probes_lock;
static f64 singbox_probe_tokens; /* immediate first probes left */
static f64 singbox_probe_tokens_at;
static u32 singbox_probe_cursor; /* endpoint index the next poll starts at */
static u32 singbox_probe_app_index = APP_INVALID_INDEX;
static u32 *singbox_event_clients; /* API client indices */

typedef void (singbox_probe_done_fn_t) (singbox_probe_t *p);
static singbox_probe_done_fn_t *singbox_probe_test_reply_fn;

static u64
singbox_ep_tag (singbox_endpoint_t *ep)
{
  return hash_memory (ep->name, vec_len (ep->name), 0);
}

/* singbox_probes_lock held: the record of index, which ref must hold
 * (a panic with -DSINGBOX_THREAD_CHECKS=1 otherwise, as a thread check). */
static singbox_probe_t *
singbox_probe_held (u32 index, u8 ref)
{
  singbox_probe_t *p;

#if SINGBOX_THREAD_CHECKS
  if (PREDICT_FALSE (pool_is_free_index (singbox_probes, index)))
    os_panic ();
#endif
  p = pool_elt_at_index (singbox_probes, index);
#if SINGBOX_THREAD_CHECKS
  if (PREDICT_FALSE (!(p->refs & ref)))
    os_panic ();
#endif
  ASSERT (p->refs & ref);
  return p;
}

/* singbox_probes_lock held: ref is no longer held; the record goes with
 * the last one. */
static void
singbox_probe_unref (singbox_probe_t *p, u8 ref)
{
  p->refs &= ~ref;
  if (!p->refs)
    {
      if (CLIB_DEBUG > 0)
	clib_memset (p, 0xfe, sizeof (*p));
      pool_put (singbox_probes, p);
    }
}

static void
singbox_probe_result_rpc (u32 *index)
{
  singbox_main_t *sm = &singbox_main;
  singbox_probe_t *p;
  singbox_endpoint_t *ep = 0;
  u8 old_state;
  u32 *ci;

  clib_spinlock_lock_if_init (&singbox_probes_lock);
  p = singbox_probe_held (*index, SINGBOX_PROBE_REF_RESULT);
  clib_spinlock_unlock_if_init (&singbox_probes_lock);

  if (!pool_is_free_index (sm->endpoints, p->endpoint_index))
    {
      ep = pool_elt_at_index (sm->endpoints, p->endpoint_index);
      if (singbox_ep_tag (ep) != p->endpoint_generation)
	ep = 0;
    }
  if (p->is_test)
    {
      if (singbox_probe_test_reply_fn)
	singbox_probe_test_reply_fn (p);
    }
  else if (ep)
    {
      ep->probing = 0;
      ep->last_result = p->result;
      old_state = ep->state;
      if (p->result == 0)
	{
	  ep->rtt_us = p->rtt_us;
	  ep->consecutive_failures = 0;
	  ep->consecutive_successes++;
	  if (ep->state != SINGBOX_EP_STATE_UP &&
	      (ep->state == SINGBOX_EP_STATE_UNKNOWN ||
	       ep->consecutive_successes >= ep->recovery_threshold))
	    ep->state = SINGBOX_EP_STATE_UP;
	}
      else
	{
	  clib_atomic_fetch_add (&ep->failures, 1);
	  ep->consecutive_successes = 0;
	  ep->consecutive_failures++;
	  if (ep->state != SINGBOX_EP_STATE_DOWN &&
	      (ep->state == SINGBOX_EP_STATE_UNKNOWN ||
	       ep->consecutive_failures >= ep->failure_threshold))
	    ep->state = SINGBOX_EP_STATE_DOWN;
	}
      if (ep->state != old_state)
	{
	  ep->last_change = vlib_time_now (vlib_get_main ());
	  SINGBOX_LOG (SINGBOX_LOG_INFO, "endpoint %s is %s", ep->name,
		       ep->state == SINGBOX_EP_STATE_UP ? "up" : "down");
	  vec_foreach (ci, singbox_event_clients)
	    singbox_endpoint_send_event (*ci, ep);
	}
    }
  clib_spinlock_lock_if_init (&singbox_probes_lock);
  singbox_probe_unref (singbox_probe_held (*index, SINGBOX_PROBE_REF_RESULT),
		       SINGBOX_PROBE_REF_RESULT);
  clib_spinlock_unlock_if_init (&singbox_probes_lock);
}

/* singbox_probes_lock held. */
static void
singbox_probe_finish (singbox_probe_t *p, u8 result)
{
  u32 index = p - singbox_probes;

  if (p->done)
    return;
  p->done = 1;
  p->refs = (p->refs & ~SINGBOX_PROBE_REF_PENDING) | SINGBOX_PROBE_REF_RESULT;
  p->result = result;
  if (result == SINGBOX_PROBE_SUCCESS)
    p->rtt_us = (vlib_time_now (vlib_get_main ()) - p->started) * 1e6;
  vl_api_force_rpc_call_main_thread (singbox_probe_result_rpc, (u8 *) &index, sizeof (index));
}

/* On the session's thread, singbox_probes_lock held (the close only
 * programs an event: no callback comes back into this file). */
static void
singbox_probe_close (singbox_probe_t *p)
{
  vnet_disconnect_args_t a = { .handle = p->handle, .app_index = singbox_probe_app_index };

  if (p->handle == SESSION_INVALID_HANDLE || p->closing)
    return;
  SINGBOX_ASSERT_THREAD (session_thread_from_handle (p->handle));
  p->closing = 1;
  vnet_disconnect_session (&a);
}

static int
singbox_probe_connected (u32 app_wrk_index, u32 opaque, session_t *s, session_error_t err)
{
  singbox_main_t *sm = &singbox_main;
  singbox_endpoint_t *ep;
  singbox_probe_t *p;
  socks5_client_cfg_t cfg = { .pipeline = 1, .defer_request = 1 };
  socks5_out_t out;

  clib_spinlock_lock_if_init (&singbox_probes_lock);
  p = singbox_probe_held (opaque, SINGBOX_PROBE_REF_CONNECT);
  if (err)
    {
      singbox_probe_finish (p, err == SESSION_E_TIMEDOUT ? SINGBOX_PROBE_TIMEOUT :
							   SINGBOX_PROBE_CONNECT_FAILED);
      singbox_probe_unref (p, SINGBOX_PROBE_REF_CONNECT);
      clib_spinlock_unlock_if_init (&singbox_probes_lock);
      return 0;
    }
  if (p->done || pool_is_free_index (sm->endpoints, p->endpoint_index))
    {
      /* too late (its deadline passed) or its endpoint is gone: refused,
       * the session layer frees the session without a cleanup callback */
      singbox_probe_unref (p, SINGBOX_PROBE_REF_CONNECT);
      clib_spinlock_unlock_if_init (&singbox_probes_lock);
      return -1;
    }
  p->handle = session_handle (s);
  p->refs = (p->refs & ~SINGBOX_PROBE_REF_CONNECT) | SINGBOX_PROBE_REF_SESSION;
  ep = pool_elt_at_index (sm->endpoints, p->endpoint_index);
  if (ep->username)
    {
      cfg.username = ep->username;
      cfg.username_len = vec_len (ep->username);
      cfg.password = ep->password;
      cfg.password_len = vec_len (ep->password);
    }
  if ((p->is_http = ep->protocol == SINGBOX_PROTO_HTTP_CONNECT))
    {
      u8 req[HTTP_CONNECT_REQUEST_MAX];
      int n = http_connect_probe_write (req, sizeof (req), ep->username, vec_len (ep->username),
					ep->password, vec_len (ep->password));
      http_connect_client_init (&p->hcproto);
      clib_spinlock_unlock_if_init (&singbox_probes_lock);
      svm_fifo_enqueue (s->tx_fifo, clib_max (n, 0), req);
      clib_memset (req, 0, sizeof (req));
      if (svm_fifo_set_event (s->tx_fifo))
	session_program_tx_io_evt (s->handle, SESSION_IO_EVT_TX);
      return 0;
    }
  socks5_client_init (&p->cproto, &cfg, &out);
  clib_spinlock_unlock_if_init (&singbox_probes_lock);
  svm_fifo_enqueue (s->tx_fifo, out.len, out.data);
  if (svm_fifo_set_event (s->tx_fifo))
    session_program_tx_io_evt (s->handle, SESSION_IO_EVT_TX);
  return 0;
}

/* Any well-formed answer but 407 is an up proxy that took the credentials. */
static void
singbox_probe_http_rx (singbox_probe_t *p, session_t *s)
{
  http_connect_event_type_t t;
  http_connect_event_t ev;
  u8 buf[256];
  u32 n, consumed;

  while (!p->done && (n = clib_min (svm_fifo_max_dequeue_cons (s->rx_fifo), sizeof (buf))))
    {
      svm_fifo_peek (s->rx_fifo, 0, n, buf);
      t = http_connect_client_feed (&p->hcproto, buf, n, &consumed, &ev);
      svm_fifo_dequeue_drop (s->rx_fifo, consumed);
      if (t == HTTP_CONNECT_EV_CONNECTED ||
	  (t == HTTP_CONNECT_EV_ERROR && ev.error == HTTP_CONNECT_ERR_REFUSED))
	singbox_probe_finish (p, SINGBOX_PROBE_SUCCESS);
      else if (t == HTTP_CONNECT_EV_ERROR)
	singbox_probe_finish (p, ev.error == HTTP_CONNECT_ERR_AUTH_REQUIRED ?
				   SINGBOX_PROBE_AUTH_FAILED :
				   SINGBOX_PROBE_PROTOCOL_ERROR);
      else if (consumed < n)
	break;
    }
  if (p->done)
    {
      svm_fifo_dequeue_drop_all (s->rx_fifo);
      singbox_probe_close (p);
    }
}

static int
singbox_probe_rx (session_t *s)
{
  singbox_probe_t *p;
  u8 buf[4]; /* method choice + auth status: all a probe reads */
  u32 consumed, n = svm_fifo_max_dequeue_cons (s->rx_fifo);
  socks5_event_type_t t;
  socks5_event_t ev;
  socks5_out_t out;

  clib_spinlock_lock_if_init (&singbox_probes_lock);
  p = singbox_probe_held (s->opaque, SINGBOX_PROBE_REF_SESSION);
  if (p->done)
    svm_fifo_dequeue_drop_all (s->rx_fifo);
  else if (n && p->is_http)
    singbox_probe_http_rx (p, s);
  else if (n)
    {
      n = clib_min (n, sizeof (buf));
      svm_fifo_peek (s->rx_fifo, 0, n, buf);
      t = socks5_client_feed (&p->cproto, buf, n, &consumed, &ev, &out);
      svm_fifo_dequeue_drop (s->rx_fifo, consumed);
      if (t == SOCKS5_EV_READY)
	singbox_probe_finish (p, SINGBOX_PROBE_SUCCESS);
      else if (t == SOCKS5_EV_ERROR)
	/* refused credentials, or no method it accepts: what an operator must fix */
	singbox_probe_finish (p, ev.error == SOCKS5_ERR_AUTH_FAILED ||
				     ev.error == SOCKS5_ERR_NO_ACCEPTABLE_METHOD ?
				   SINGBOX_PROBE_AUTH_FAILED :
				   SINGBOX_PROBE_PROTOCOL_ERROR);
    }
  if (p->done)
    {
      svm_fifo_dequeue_drop_all (s->rx_fifo);
      singbox_probe_close (p);
    }
  clib_spinlock_unlock_if_init (&singbox_probes_lock);
  return 0;
}

static void
singbox_probe_disconnect (session_t *s)
{
  singbox_probe_t *p;

  clib_spinlock_lock_if_init (&singbox_probes_lock);
  p = singbox_probe_held (s->opaque, SINGBOX_PROBE_REF_SESSION);
  if (!p->done)
    /* closed before answering: the greeting was refused */
    singbox_probe_finish (p, SINGBOX_PROBE_PROTOCOL_ERROR);
  svm_fifo_dequeue_drop_all (s->rx_fifo);
  singbox_probe_close (p);
  clib_spinlock_unlock_if_init (&singbox_probes_lock);
}

static void
singbox_probe_reset (session_t *s)
{
  singbox_probe_t *p;

  clib_spinlock_lock_if_init (&singbox_probes_lock);
  p = singbox_probe_held (s->opaque, SINGBOX_PROBE_REF_SESSION);
  if (!p->done)
    singbox_probe_finish (p, SINGBOX_PROBE_CONNECT_FAILED);
  singbox_probe_close (p);
  clib_spinlock_unlock_if_init (&singbox_probes_lock);
}

/* The session is gone: nothing names the record through it any more. */
static void
singbox_probe_cleanup (session_t *s, session_cleanup_ntf_t ntf)
{
  singbox_probe_t *p;

  if (ntf != SESSION_CLEANUP_SESSION)
    return;
  clib_spinlock_lock_if_init (&singbox_probes_lock);
  p = singbox_probe_held (s->opaque, SINGBOX_PROBE_REF_SESSION);
  if (!p->done)
    singbox_probe_finish (p, SINGBOX_PROBE_CONNECT_FAILED);
  p->handle = SESSION_INVALID_HANDLE;
  singbox_probe_unref (p, SINGBOX_PROBE_REF_SESSION);
  clib_spinlock_unlock_if_init (&singbox_probes_lock);
}

static int
singbox_probe_accept (session_t *s)
{
  return -1;
}

static int
singbox_probe_segment (u32 a, u64 b)
{
  return 0;
}

static session_cb_vft_t singbox_probe_cb_vft = {
  .session_accept_callback = singbox_probe_accept,
  .session_connected_callback = singbox_probe_connected,
  .session_disconnect_callback = singbox_probe_disconnect,
  .session_reset_callback = singbox_probe_reset,
  .session_cleanup_callback = singbox_probe_cleanup,
  .builtin_app_rx_callback = singbox_probe_rx,
  .add_segment_callback = singbox_probe_segment,
  .del_segment_callback = singbox_probe_segment,
};

/* Main thread. Returns the probe index or ~0. */
u32
singbox_probe_start (singbox_endpoint_t *ep, int is_test, u32 client_index, u32 context)
{
  singbox_main_t *sm = &singbox_main;
  vnet_connect_args_t _a = {}, *a = &_a;
  singbox_probe_t *p;
  f64 now = vlib_time_now (vlib_get_main ());
  u32 index;

  if (ep->host && !ep->resolved)
    return ~0; /* its name has no address yet */
  if (singbox_probe_app_index == APP_INVALID_INDEX)
    {
      if (singbox_session_layer_attach () ||
	  singbox_app_attach ("singbox-probe", &singbox_probe_cb_vft, 0, &singbox_probe_app_index))
	return ~0;
    }
  clib_spinlock_lock_if_init (&singbox_probes_lock);
  pool_get_zero (singbox_probes, p);
  index = p - singbox_probes;
  p->endpoint_index = ep - sm->endpoints;
  p->endpoint_generation = singbox_ep_tag (ep);
  p->is_test = is_test;
  p->client_index = client_index;
  p->context = context;
  p->started = now;
  p->deadline = now + ep->hc_timeout;
  p->handle = SESSION_INVALID_HANDLE;
  /* every connect resolves in its callback, an error included
   * (vnet_connect2 reports even a refused connect there) */
  p->refs = SINGBOX_PROBE_REF_PENDING | SINGBOX_PROBE_REF_CONNECT;
  clib_spinlock_unlock_if_init (&singbox_probes_lock);

  a->sep_ext = (session_endpoint_cfg_t) SESSION_ENDPOINT_CFG_NULL;
  a->sep_ext.transport_proto = TRANSPORT_PROTO_TCP;
  a->sep_ext.is_ip4 = ep->is_ip4;
  a->sep_ext.ip = ep->addr;
  a->sep_ext.port = clib_host_to_net_u16 (ep->port);
  a->sep_ext.fib_index = ep->fib_index;
  a->api_context = index;
  a->app_index = singbox_probe_app_index;
  vnet_connect2 (a);
  return index;
}

/* Main thread, when an endpoint's settings are set. */
void
singbox_probe_schedule_first (singbox_endpoint_t *ep)
{
  f64 now = vlib_time_now (vlib_get_main ());
  f64 offset;

  if (!ep->hc_enabled)
    return;
  singbox_probe_tokens =
    clib_min (SINGBOX_PROBE_FIRST_BURST,
	      singbox_probe_tokens + (now - singbox_probe_tokens_at) * SINGBOX_PROBE_FIRST_BURST);
  singbox_probe_tokens_at = now;
  if (singbox_probe_tokens >= 1)
    {
      singbox_probe_tokens -= 1;
      ep->next_probe = now;
      return;
    }
  /* golden-ratio sequence: consecutive pool indices land evenly apart */
  offset = (ep - singbox_main.endpoints) * 0.6180339887498949;
  ep->next_probe = now + (offset - (u64) offset) * ep->hc_interval;
}

/* On the session's thread: main's close of a probe past its deadline. */
static void
singbox_probe_close_rpc (void *arg)
{
  singbox_probe_t *p;

  clib_spinlock_lock_if_init (&singbox_probes_lock);
  p = singbox_probe_held (pointer_to_uword (arg), SINGBOX_PROBE_REF_CLOSE);
  if (p->refs & SINGBOX_PROBE_REF_SESSION)
    singbox_probe_close (p);
  singbox_probe_unref (p, SINGBOX_PROBE_REF_CLOSE);
  clib_spinlock_unlock_if_init (&singbox_probes_lock);
}

/* singbox-process, main thread: start due probes, time out late ones. */
void
singbox_probes_poll (f64 now)
{
  singbox_main_t *sm = &singbox_main;
  singbox_endpoint_t *ep;
  singbox_probe_t *p;
  u32 n_started = 0, n = pool_len (sm->endpoints), i, k;

  singbox_endpoints_resolve (now);

  /* the scan resumes where the cap stopped the last one, so that no
   * endpoint waits behind lower indices that are due again */
  for (k = 0; k < n && n_started < SINGBOX_PROBE_MAX_STARTS_PER_POLL; k++)
    {
      i = (singbox_probe_cursor + k) % n;
      if (pool_is_free_index (sm->endpoints, i))
	continue;
      ep = pool_elt_at_index (sm->endpoints, i);
      if (!ep->hc_enabled || ep->probing || now < ep->next_probe || (ep->host && !ep->resolved))
	continue;
      n_started++;
      ep->next_probe = now + ep->hc_interval;
      if (singbox_probe_start (ep, 0, ~0, 0) != ~0)
	ep->probing = 1;
    }
  singbox_probe_cursor = n ? (singbox_probe_cursor + k) % n : 0;
  clib_spinlock_lock_if_init (&singbox_probes_lock);
  pool_foreach (p, singbox_probes)
    if (!p->done && now >= p->deadline)
      {
	singbox_probe_finish (p, SINGBOX_PROBE_TIMEOUT);
	/* a pending connect's callback refuses the late session itself */
	if ((p->refs & SINGBOX_PROBE_REF_SESSION) && !(p->refs & SINGBOX_PROBE_REF_CLOSE))
	  {
	    p->refs |= SINGBOX_PROBE_REF_CLOSE;
	    singbox_rpc (session_thread_from_handle (p->handle), singbox_probe_close_rpc,
			 uword_to_pointer (p - singbox_probes, void *));
	  }
      }
  clib_spinlock_unlock_if_init (&singbox_probes_lock);
}

void
singbox_probe_set_test_reply (void (*fn) (void *))
{
  singbox_probe_test_reply_fn = (singbox_probe_done_fn_t *) fn;
}

void
singbox_probe_get (void *probe, u32 *client_index, u32 *context, u8 *result, u32 *rtt_us,
		   u32 *endpoint_index)
{
  singbox_probe_t *p = probe;

  *client_index = p->client_index;
  *context = p->context;
  *result = p->result;
  *rtt_us = p->rtt_us;
  *endpoint_index = p->endpoint_index;
}

int
singbox_want_endpoint_events (u32 client_index, int enable)
{
  u32 i;

  vec_foreach_index (i, singbox_event_clients)
    if (singbox_event_clients[i] == client_index)
      {
	if (!enable)
	  vec_del1 (singbox_event_clients, i);
	return 0;
      }
  if (enable)
    vec_add1 (singbox_event_clients, client_index);
  return 0;
}

void
singbox_probe_init (void)
{
  if (vlib_num_workers ())
    clib_spinlock_init (&singbox_probes_lock);
}
