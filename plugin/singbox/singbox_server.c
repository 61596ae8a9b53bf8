/* SPDX-License-Identifier: Apache-2.0
 * Copyright (c) 2026 vpp-singbox authors
 */

/* SOCKS5 server mode in the session layer.
 *
 * Two builtin applications: "singbox-server" accepts SOCKS clients (the
 * passive-open leg, "po"), "singbox-upstream" (IS_PROXY) opens the
 * connection to the destination (the active-open leg, "ao"). The handshake
 * is parsed from the po rx fifo by the sans-IO core (socks5_proto.c); once
 * the upstream is connected both legs share the po fifos, crossed, so the
 * relay never copies payload. The success reply is written while the
 * upstream fifos are being attached, before the destination can send
 * anything, so it always precedes relayed data.
 *
 * Each leg may live on a different thread. Session records are in one pool
 * under a spinlock (taken only with workers); actions on a leg owned by
 * another thread go through session RPCs. */

#include <singbox/singbox.h>
#include <vnet/tcp/tcp.h>

#define SINGBOX_TCP_MSS 1460

/* Data enqueued in f is for the leg `to`: make it transmit. */
static void
singbox_relay_kick (svm_fifo_t *f, session_handle_t to)
{
  if (to != SESSION_INVALID_HANDLE && svm_fifo_max_dequeue (f) && svm_fifo_set_event (f))
    session_program_tx_io_evt (to, SESSION_IO_EVT_TX);
}

/* A leg received into f, the other leg's tx fifo: relay, and when f is
 * about full ask to hear when `to` drains it, to reopen the window then
 * (singbox_leg_tx). */
static void
singbox_relay_rx (svm_fifo_t *f, session_handle_t to)
{
  if (to == SESSION_INVALID_HANDLE)
    return;
  singbox_relay_kick (f, to);
  if (svm_fifo_max_enqueue (f) <= SINGBOX_TCP_MSS)
    svm_fifo_add_want_deq_ntf (f, SVM_FIFO_WANT_DEQ_NOTIF);
}

static const char *singbox_session_state_strings[] = {
#define _(sym, str) str,
  foreach_singbox_session_state
#undef _
};

u8 *
format_singbox_session_state (u8 *s, va_list *args)
{
  u32 state = va_arg (*args, u32);
  if (state < SINGBOX_SESSION_N_STATE)
    return format (s, "%s", singbox_session_state_strings[state]);
  return format (s, "unknown(%u)", state);
}

/*
 * Session records
 */

singbox_session_t *
singbox_session_alloc (void)
{
  singbox_main_t *sm = &singbox_main;
  singbox_session_t *ss;

  pool_get_zero (sm->sessions, ss);
  ss->index = ss - sm->sessions;
  ss->generation = ++sm->generation;
  ss->po_handle = SESSION_INVALID_HANDLE;
  ss->ao_handle = SESSION_INVALID_HANDLE;
  ss->udp_listen_handle = SESSION_INVALID_HANDLE;
  ss->user_index = ~0;
  return ss;
}

/* Stop counting the session against max-sessions or its interface's
 * max-connections and in the active gauges (see singbox_po_ending). */
void
singbox_session_release_active (singbox_session_t *ss)
{
  singbox_main_t *sm = &singbox_main;

  if (!ss->counted_active)
    return;
  ss->counted_active = 0;
  if (ss->mode != SINGBOX_MODE_CLIENT)
    clib_atomic_fetch_sub (&sm->n_active, 1);
  else if (ss->sw_if_index < vec_len (sm->interfaces))
    clib_atomic_fetch_sub (&vec_elt (sm->interfaces, ss->sw_if_index).active, 1);
}

static void
singbox_session_free (singbox_session_t *ss)
{
  singbox_main_t *sm = &singbox_main;

  singbox_session_release_active (ss);
  singbox_http_server_free (ss);
  vec_free (ss->udp_peers);
  singbox_udp_names_free (ss);
  if (CLIB_DEBUG > 0)
    clib_memset (ss, 0xfe, sizeof (*ss));
  pool_put (sm->sessions, ss);
}

/* Look a session up by id; the generation guards against a reused slot. */
singbox_session_t *
singbox_session_get_by_id (u64 id)
{
  singbox_main_t *sm = &singbox_main;
  u32 index = id & 0xffffffff;
  singbox_session_t *ss;

  if (pool_is_free_index (sm->sessions, index))
    return 0;
  ss = pool_elt_at_index (sm->sessions, index);
  if (ss->generation != (u32) (id >> 32))
    return 0;
  return ss;
}

/*
 * Acting on legs, possibly on another thread
 */

/* The leg's session if it still exists, and the app that owns it. */
static session_t *
singbox_leg_session (void *arg, u32 *app_index)
{
  session_t *s = session_get_from_handle_if_valid (pointer_to_uword (arg));

  if (s)
    *app_index = app_worker_get (s->app_wrk_index)->app_index;
  return s;
}

static void
singbox_leg_close_rpc (void *arg)
{
  vnet_disconnect_args_t a = { .handle = pointer_to_uword (arg) };

  if (singbox_leg_session (arg, &a.app_index))
    vnet_disconnect_session (&a);
}

static void
singbox_leg_shutdown_rpc (void *arg)
{
  vnet_shutdown_args_t a = { .handle = pointer_to_uword (arg) };

  if (singbox_leg_session (arg, &a.app_index))
    vnet_shutdown_session (&a);
}

static void
singbox_leg_reset_rpc (void *arg)
{
  session_handle_t sh = pointer_to_uword (arg);
  session_t *s = session_get_from_handle_if_valid (sh);

  if (s)
    session_reset (s);
}

static void
singbox_leg_do (session_handle_t sh, void (*fn) (void *))
{
  if (sh == SESSION_INVALID_HANDLE)
    return;
  if (session_thread_from_handle (sh) == vlib_get_thread_index ())
    fn (uword_to_pointer (sh, void *));
  else
    session_send_rpc_evt_to_thread_force (session_thread_from_handle (sh), fn,
					  uword_to_pointer (sh, void *));
}

/* VPP's TCP sends the FIN of a closing leg only once everything before it is
 * acknowledged (FINPNDG, see plugin/API.md). A client in interactive mode —
 * every SOCKS5 client after its handshake — delays the ACK of our last
 * segment (Linux: 40 ms, its delayed-ACK timer), so the destination's EOF
 * reached it that much late (origin-closing sessions at 0.36x hs_apps proxy,
 * whose bench client sends before receiving anything and so ACKs at once;
 * with the same exchanges hs_apps proxy is as slow). An unacceptable segment must
 * be answered with an ACK at once (RFC 793 3.9; the keepalive probe of
 * RFC 1122 4.2.3.6): once the data before the pending FIN is all sent, send
 * one bare ACK whose sequence number is one below what the client has
 * acknowledged. Its answer acknowledges the data and the FIN follows. At
 * most one probe per leg: Linux answers such segments once per 500 ms. */

/* times the probe waits for the shutdown and the data to be sent: one per
 * dispatch of the session queue, which sends them on its next run */
#define SINGBOX_ACK_PROBE_TRIES	    16
#define SINGBOX_ACK_PROBE_TRY_SHIFT 56

static void
singbox_ack_probe_rpc (void *arg)
{
  uword a = pointer_to_uword (arg);
  session_handle_t sh = a & ((1ULL << SINGBOX_ACK_PROBE_TRY_SHIFT) - 1);
  u32 tries = a >> SINGBOX_ACK_PROBE_TRY_SHIFT;
  session_t *s = session_get_from_handle_if_valid (sh);
  tcp_connection_t *tc;
  u32 unacked, queued, snd_nxt;

  if (!s || session_get_transport_proto (s) != TRANSPORT_PROTO_TCP ||
      !(tc = (tcp_connection_t *) session_get_transport (s)))
    return;
  /* the close is still queued in the session layer */
  if (tc->state == TCP_STATE_ESTABLISHED)
    goto again;
  if (!(tc->flags & TCP_CONN_FINPNDG) ||
      (tc->state != TCP_STATE_FIN_WAIT_1 && tc->state != TCP_STATE_CLOSE_WAIT))
    return; /* FIN sent, or the leg is gone */
  unacked = tc->snd_nxt - tc->snd_una;
  queued = transport_max_tx_dequeue (&tc->connection);
  if (unacked < queued)
    goto again; /* data the probe must follow is not sent yet */
  if (!unacked)
    return;
  snd_nxt = tc->snd_nxt;
  tc->snd_nxt = tc->snd_una - 1;
  tcp_send_ack (tc);
  tc->snd_nxt = snd_nxt;
  return;

again:
  if (++tries < SINGBOX_ACK_PROBE_TRIES)
    session_send_rpc_evt_to_thread_force (
      s->thread_index, singbox_ack_probe_rpc,
      uword_to_pointer (sh | ((uword) tries << SINGBOX_ACK_PROBE_TRY_SHIFT), void *));
}

/* We are closing the client leg after the destination's FIN: make sure the
 * client's ACK of the last data does not hold our FIN back. */
static void
singbox_po_ack_probe (session_handle_t sh)
{
  ASSERT (session_thread_from_handle (sh) < (1 << (SINGBOX_ACK_PROBE_TRY_SHIFT - 32)));
  singbox_leg_do (sh, singbox_ack_probe_rpc);
}

static void
singbox_session_account_bytes (singbox_session_t *ss, session_t *po)
{
  transport_connection_t *tc;
  tcp_connection_t *tcp;

  tc = session_get_transport (po);
  if (!tc)
    return;
  tcp = (tcp_connection_t *) tc;
  ss->bytes_from_client = tcp->bytes_in > ss->hs_bytes_in ? tcp->bytes_in - ss->hs_bytes_in : 0;
  ss->bytes_to_client = tcp->bytes_out > ss->hs_bytes_out ? tcp->bytes_out - ss->hs_bytes_out : 0;
}

/* Add what the client leg moved since the last call to the counters; on
 * the leg's thread. */
static void
singbox_session_count_traffic (singbox_session_t *ss, session_t *po)
{
  u64 to_client, from_client;

  if (ss->mode == SINGBOX_MODE_CLIENT)
    {
      singbox_client_count_traffic (ss, po);
      return;
    }
  singbox_session_account_bytes (ss, po);
  /* handshake bytes are subtracted once parsed: never count backwards */
  to_client = clib_max (ss->bytes_to_client, ss->counted_to_client) - ss->counted_to_client;
  from_client = clib_max (ss->bytes_from_client, ss->counted_from_client) - ss->counted_from_client;
  ss->counted_to_client += to_client;
  ss->counted_from_client += from_client;
  singbox_server_counter_inc (SINGBOX_SERVER_CTR_BYTES_TO_CLIENT, to_client);
  singbox_server_counter_inc (SINGBOX_SERVER_CTR_BYTES_FROM_CLIENT, from_client);
}

/* We are ending the client leg: the session stops counting as active and
 * the counters get its traffic now, not at the leg's cleanup. A leg we close
 * can linger in TIME_WAIT for tcp's timewait-time (10 s): with destinations
 * that close first (HTTP/1.0) such sessions filled max-sessions at ~100/s,
 * and a monitor that saw them go missed their bytes that long. Data still
 * queued for the client is added at cleanup. On the leg's thread. */
static void
singbox_po_ending (singbox_session_t *ss, session_t *po)
{
  singbox_session_count_traffic (ss, po);
  singbox_session_release_active (ss);
}

static void
singbox_po_end_rpc (session_handle_t sh, int reset)
{
  singbox_main_t *sm = &singbox_main;
  session_t *s = session_get_from_handle_if_valid (sh);
  singbox_session_t *ss;

  if (!s)
    return;
  singbox_sessions_lock ();
  if (!pool_is_free_index (sm->sessions, s->opaque) &&
      (ss = singbox_session_get (s->opaque))->po_handle == sh)
    singbox_po_ending (ss, s);
  singbox_sessions_unlock ();
  (reset ? singbox_leg_reset_rpc : singbox_leg_close_rpc) (uword_to_pointer (sh, void *));
}

static void
singbox_po_close_rpc (void *arg)
{
  singbox_po_end_rpc (pointer_to_uword (arg), 0);
}

static void
singbox_po_reset_rpc (void *arg)
{
  singbox_po_end_rpc (pointer_to_uword (arg), 1);
}

/* End one leg once, with a FIN or a reset, on the thread that owns it. The
 * client leg takes its UDP association with it. */
static void
singbox_leg_end (singbox_session_t *ss, int is_po, int reset)
{
  session_handle_t sh = is_po ? ss->po_handle : ss->ao_handle;
  session_t *s;

  if (is_po)
    singbox_udp_release (ss);
  if ((is_po ? ss->po_closed : ss->ao_closed) || sh == SESSION_INVALID_HANDLE)
    return;
  if (!is_po)
    {
      ss->ao_closed = 1;
      singbox_leg_do (sh, reset ? singbox_leg_reset_rpc : singbox_leg_close_rpc);
      return;
    }
  ss->po_closed = 1;
  if (session_thread_from_handle (sh) != vlib_get_thread_index ())
    {
      session_send_rpc_evt_to_thread_force (session_thread_from_handle (sh),
					    reset ? singbox_po_reset_rpc : singbox_po_close_rpc,
					    uword_to_pointer (sh, void *));
      return;
    }
  if ((s = session_get_from_handle_if_valid (sh)))
    singbox_po_ending (ss, s);
  (reset ? singbox_leg_reset_rpc : singbox_leg_close_rpc) (uword_to_pointer (sh, void *));
}

static void
singbox_po_close (singbox_session_t *ss)
{
  singbox_leg_end (ss, 1 /* is_po */, 0 /* reset */);
}

static void
singbox_ao_close (singbox_session_t *ss)
{
  singbox_leg_end (ss, 0, 0);
}

void
singbox_po_reset (singbox_session_t *ss)
{
  singbox_leg_end (ss, 1, 1);
}

static void
singbox_ao_reset (singbox_session_t *ss)
{
  singbox_leg_end (ss, 0, 1);
}

void
singbox_ao_close_public (singbox_session_t *ss)
{
  singbox_ao_close (ss);
}

/* Reset the client leg from an RPC, not from inside its accept. */
void
singbox_po_reset_later (singbox_session_t *ss)
{
  ss->po_closed = 1;
  session_send_rpc_evt_to_thread_force (ss->po_thread, singbox_po_reset_rpc,
					uword_to_pointer (ss->po_handle, void *));
}

/* Write handshake bytes to the client; only before the fifos are crossed or
 * from inside the upstream fifo allocation. */
static void
singbox_po_send (singbox_session_t *ss, socks5_out_t *out)
{
  if (!out->len || ss->po_closed)
    return;
  if (svm_fifo_enqueue (ss->po_tx_fifo, out->len, out->data) == out->len)
    ss->hs_bytes_out += out->len;
  if (svm_fifo_set_event (ss->po_tx_fifo))
    session_program_tx_io_evt (ss->po_handle, SESSION_IO_EVT_TX);
}

/* Handshake over with an error: reply sent, unread bytes dropped (closing
 * with unread data would make TCP reset and lose the reply). */
void
singbox_po_fail (singbox_session_t *ss)
{
  ss->state = SINGBOX_SESSION_STATE_CLOSING;
  ss->deadline = 0;
  svm_fifo_dequeue_drop_all (ss->po_rx_fifo);
  singbox_po_close (ss);
}

/*
 * Upstream connect
 */

static void
singbox_connect_rpc (void *arg)
{
  vnet_connect_args_t *a = arg;

  vnet_connect2 (a);
  clib_mem_free (a);
}

/* Called with the sessions lock held. */
void
singbox_session_connect_to (singbox_session_t *ss, ip46_address_t *ip, u8 is_ip4, u16 port,
			    u32 fib_index)
{
  singbox_main_t *sm = &singbox_main;
  vnet_connect_args_t _a = {}, *a = &_a;

  a->sep_ext = (session_endpoint_cfg_t) SESSION_ENDPOINT_CFG_NULL;
  a->sep_ext.transport_proto = TRANSPORT_PROTO_TCP;
  a->sep_ext.is_ip4 = is_ip4;
  a->sep_ext.ip = *ip;
  a->sep_ext.port = clib_host_to_net_u16 (port);
  a->sep_ext.fib_index = fib_index;
  a->api_context = ss->index;
  a->app_index = sm->upstream_app_index;

  ss->connecting = 1;
  SINGBOX_DBG ("session %u connect %U:%u", ss->index, format_ip46_address, ip, IP46_TYPE_ANY, port);

  /* On other threads vnet_connect2 only queues the connect to the connects
   * thread. On that thread it connects right here, and allocating the
   * half-open may stop the other workers (vlib_workers_sync in
   * pool_get_aligned_safe) while one of them spins on the sessions lock we
   * hold: a deadlock that VPP ends with "worker thread deadlock". So there
   * the connect waits for an RPC, after the lock is released. The outcome
   * always comes later through singbox_ao_connected. */
  if (vlib_num_workers () && vlib_get_thread_index () == transport_cl_thread ())
    {
      vnet_connect_args_t *c = clib_mem_alloc (sizeof (*c));

      *c = *a;
      session_send_rpc_evt_to_thread_force (vlib_get_thread_index (), singbox_connect_rpc, c);
    }
  else
    vnet_connect2 (a);
}

static void
singbox_session_connect (singbox_session_t *ss)
{
  singbox_main_t *sm = &singbox_main;

  ss->state = SINGBOX_SESSION_STATE_CONNECTING;
  ss->deadline = vlib_time_now (vlib_get_main ()) + sm->connect_timeout;
  singbox_session_connect_to (ss, &ss->dst_ip, ss->dst_is_ip4, ss->dst_port, ss->fib_index);
}

static u8
singbox_rep_from_session_error (session_error_t err)
{
  switch (err)
    {
    case SESSION_E_REFUSED:
      return socks5_rep_from_reason (SOCKS5_REASON_CONNECTION_REFUSED);
    case SESSION_E_TIMEDOUT:
      return socks5_rep_from_reason (SOCKS5_REASON_TIMEOUT);
    case SESSION_E_NOROUTE:
    case SESSION_E_NOINTF:
    case SESSION_E_INVALID_RMT_IP:
      return socks5_rep_from_reason (SOCKS5_REASON_NETWORK_UNREACHABLE);
    default:
      return socks5_rep_from_reason (SOCKS5_REASON_OTHER);
    }
}

/* Send a failure REP and close the client leg; on the client's thread. */
static void
singbox_po_reply_failure (singbox_session_t *ss, u8 rep)
{
  socks5_out_t out;

  if (ss->hserver)
    {
      singbox_http_server_reply_failure (ss, rep);
      return;
    }
  ss->rep = rep;
  ss->reply_sent = 1;
  if (socks5_server_reply (&ss->proto, rep, 0, &out) == SOCKS5_ERR_NONE || out.len)
    singbox_po_send (ss, &out);
  singbox_po_fail (ss);
}

static void
singbox_po_reply_failure_rpc (void *arg)
{
  u64 packed = pointer_to_uword (arg);
  singbox_session_t *ss;
  u32 index = packed & 0xffffffff;
  u8 rep = packed >> 56;
  u32 gen = (packed >> 32) & 0xffffff;

  singbox_sessions_lock ();
  if (!pool_is_free_index (singbox_main.sessions, index))
    {
      ss = singbox_session_get (index);
      if ((ss->generation & 0xffffff) == gen && !ss->reply_sent && !ss->po_closed)
	singbox_po_reply_failure (ss, rep);
    }
  singbox_sessions_unlock ();
}

static void
singbox_po_reply_failure_on_thread (singbox_session_t *ss, u8 rep)
{
  u64 packed = ((u64) rep << 56) | ((u64) (ss->generation & 0xffffff) << 32) | ss->index;

  if (ss->po_thread == vlib_get_thread_index ())
    singbox_po_reply_failure (ss, rep);
  else
    session_send_rpc_evt_to_thread_force (ss->po_thread, singbox_po_reply_failure_rpc,
					  uword_to_pointer (packed, void *));
}

/*
 * Handshake
 */

void
singbox_handle_request (singbox_session_t *ss, socks5_event_t *ev)
{
  singbox_main_t *sm = &singbox_main;

  ss->cmd = ev->cmd;
  ss->dst = ev->addr;
  ss->dst_port = ev->addr.port;

  if (ev->cmd == SOCKS5_CMD_UDP_ASSOCIATE)
    {
      singbox_udp_associate (ss, &ev->addr);
      return;
    }
  if (ev->cmd != SOCKS5_CMD_CONNECT)
    {
      /* the core answers BIND and disabled commands itself */
      singbox_po_reply_failure (ss, socks5_rep_from_reason (SOCKS5_REASON_BAD_COMMAND));
      return;
    }

  switch (ev->addr.atyp)
    {
    case SOCKS5_ATYP_IPV4:
      ss->dst_is_ip4 = 1;
      ip46_address_reset (&ss->dst_ip);
      clib_memcpy (&ss->dst_ip.ip4, ev->addr.ip4, 4);
      singbox_session_connect (ss);
      break;
    case SOCKS5_ATYP_IPV6:
      ss->dst_is_ip4 = 0;
      clib_memcpy (&ss->dst_ip.ip6, ev->addr.ip6, 16);
      singbox_session_connect (ss);
      break;
    case SOCKS5_ATYP_DOMAIN:
      if (!sm->dns_enabled || !sm->dns_resolve_name_ptr)
	{
	  singbox_po_reply_failure (ss, socks5_rep_from_reason (SOCKS5_REASON_BAD_ADDRESS_TYPE));
	  return;
	}
      ss->state = SINGBOX_SESSION_STATE_RESOLVING;
      ss->deadline = vlib_time_now (vlib_get_main ()) + SINGBOX_DNS_TIMEOUT;
      singbox_dns_start (ss->index, ev->addr.domain);
      break;
    default:
      singbox_po_reply_failure (ss, socks5_rep_from_reason (SOCKS5_REASON_BAD_ADDRESS_TYPE));
    }
}

/* Feed the bytes received so far to the SOCKS5 core; with the lock held. */
static void
singbox_po_handshake (session_t *s, singbox_session_t *ss)
{
  u8 buf[SOCKS5_MAX_MSG_LEN];
  socks5_event_type_t t;
  socks5_event_t ev;
  socks5_out_t out;
  u32 n, avail, consumed, user_index;
  int ok;

  /* the first byte tells: 0x05 SOCKS5, a letter HTTP CONNECT */
  if (singbox_http_server_handshake (s, ss))
    return;
  while (!ss->po_closed)
    {
      avail = svm_fifo_max_dequeue_cons (s->rx_fifo);
      n = clib_min (avail, sizeof (buf));
      if (n)
	svm_fifo_peek (s->rx_fifo, 0, n, buf);
      consumed = 0;
      out.len = 0;
      t = socks5_server_feed (&ss->proto, buf, n, &consumed, &ev, &out);
      if (consumed)
	{
	  svm_fifo_dequeue_drop (s->rx_fifo, consumed);
	  ss->hs_bytes_in += consumed;
	}
      singbox_po_send (ss, &out);

      switch (t)
	{
	case SOCKS5_EV_NEED_DATA:
	  /* The core took every byte offered. Greeting + auth + request may
	   * exceed one peek and arrive in a single segment, after which no
	   * further rx notification comes: go on while the fifo holds more. */
	  if (consumed < n || avail <= n)
	    return;
	  break;
	case SOCKS5_EV_AUTH_REQUEST:
	  ss->state = SINGBOX_SESSION_STATE_AUTH;
	  ok = singbox_user_check ((u8 *) ev.username, ev.username_len, (u8 *) ev.password,
				   ev.password_len, &user_index);
	  if (ok)
	    ss->user_index = user_index;
	  out.len = 0;
	  socks5_server_auth_result (&ss->proto, ok, &out);
	  singbox_po_send (ss, &out);
	  if (!ok)
	    {
	      singbox_server_counter_inc (SINGBOX_SERVER_CTR_AUTH_FAILURES, 1);
	      singbox_po_fail (ss);
	      return;
	    }
	  ss->state = SINGBOX_SESSION_STATE_REQUEST;
	  break;
	case SOCKS5_EV_REQUEST:
	  singbox_handle_request (ss, &ev);
	  return;
	case SOCKS5_EV_ERROR:
	  if (ev.error == SOCKS5_ERR_NO_ACCEPTABLE_METHOD)
	    singbox_server_counter_inc (SINGBOX_SERVER_CTR_AUTH_FAILURES, 1);
	  else
	    singbox_server_counter_inc (SINGBOX_SERVER_CTR_REJECTED, 1);
	  SINGBOX_DBG ("session %u: %s", ss->index, socks5_error_name (ev.error));
	  ss->rep = ev.rep;
	  singbox_po_fail (ss);
	  return;
	case SOCKS5_EV_PAUSED:
	default:
	  return;
	}
      if (socks5_server_state (&ss->proto) == SOCKS5_SERVER_AUTH)
	ss->state = SINGBOX_SESSION_STATE_AUTH;
      else if (socks5_server_state (&ss->proto) == SOCKS5_SERVER_REQUEST)
	ss->state = SINGBOX_SESSION_STATE_REQUEST;
    }
}

/*
 * Client leg (passive open) callbacks
 */

static int
singbox_po_accept (session_t *s)
{
  singbox_main_t *sm = &singbox_main;
  transport_endpoint_t rmt = {}, lcl = {};
  socks5_server_cfg_t cfg = {};
  singbox_session_t *ss;
  session_t *listener;
  u32 n_active;
  int refused = 0;

  session_get_endpoint (s, &rmt, &lcl);
  if (!singbox_prefix_allowed (&rmt.ip, rmt.is_ip4))
    {
      singbox_server_counter_inc (SINGBOX_SERVER_CTR_REJECTED_PREFIX, 1);
      refused = 1;
    }
  else
    {
      n_active = clib_atomic_add_fetch (&sm->n_active, 1);
      if (sm->max_sessions && n_active > sm->max_sessions)
	{
	  clib_atomic_fetch_sub (&sm->n_active, 1);
	  singbox_server_counter_inc (SINGBOX_SERVER_CTR_REJECTED_MAX_SESSIONS, 1);
	  refused = 1;
	}
    }

  cfg.methods = sm->auth_required ? SOCKS5_METHOD_F_USERPASS : SOCKS5_METHOD_F_NO_AUTH;
  cfg.commands = sm->allow_connect ? SOCKS5_CMD_F_CONNECT : 0;
  if (sm->allow_udp_associate)
    cfg.commands |= SOCKS5_CMD_F_UDP_ASSOCIATE;

  listener = listen_session_get_from_handle (s->listener_handle);

  singbox_sessions_lock ();
  ss = singbox_session_alloc ();
  ss->counted_active = !refused;
  ss->mode = SINGBOX_MODE_SERVER;
  ss->state = refused ? SINGBOX_SESSION_STATE_CLOSING : SINGBOX_SESSION_STATE_GREETING;
  ss->po_handle = session_handle (s);
  ss->po_thread = s->thread_index;
  ss->po_rx_fifo = s->rx_fifo;
  ss->po_tx_fifo = s->tx_fifo;
  ss->client_ip = rmt.ip;
  ss->client_port = clib_net_to_host_u16 (rmt.port);
  ss->client_is_ip4 = rmt.is_ip4;
  ss->lcl_ip = lcl.ip;
  ss->lcl_is_ip4 = lcl.is_ip4;
  ss->fib_index = lcl.fib_index;
  ss->listener_index = listener->opaque;
  ss->created = ss->last_active = vlib_time_now (vlib_get_main ());
  ss->deadline = ss->created + sm->handshake_timeout;
  socks5_server_init (&ss->proto, &cfg);
  s->opaque = ss->index;
  singbox_sessions_unlock ();

  s->session_state = SESSION_STATE_READY;
  if (refused)
    {
      /* Refuse with an orderly close (FIN) rather than a reset during the
       * TCP handshake, which clients retry and we would count twice. Bytes
       * the client sends meanwhile are dropped in singbox_po_rx. */
      singbox_server_counter_inc (SINGBOX_SERVER_CTR_REJECTED, 1);
      ss->deadline = 0;
      ss->po_closed = 1;
      /* not from inside the accept notification: the session layer has
       * not finished setting the session up */
      session_send_rpc_evt_to_thread_force (s->thread_index, singbox_leg_close_rpc,
					    uword_to_pointer (session_handle (s), void *));
      return 0;
    }
  singbox_server_counter_inc (SINGBOX_SERVER_CTR_ACCEPTED, 1);
  return 0;
}

static int
singbox_po_rx (session_t *s)
{
  singbox_session_t *ss;
  session_handle_t ao_handle;
  svm_fifo_t *f = s->rx_fifo;

  singbox_sessions_lock ();
  ss = singbox_session_get (s->opaque);
  ss->last_active = vlib_time_now (vlib_get_main ());
  if (ss->mode == SINGBOX_MODE_CLIENT && ss->state != SINGBOX_SESSION_STATE_CLOSING &&
      ss->state != SINGBOX_SESSION_STATE_ESTABLISHED)
    {
      /* client data waits in this fifo until the proxy has replied and the
       * legs are crossed (or, bypassed, until the upstream is connected) */
      ao_handle = ss->crossed ? ss->ao_handle : SESSION_INVALID_HANDLE;
      singbox_sessions_unlock ();
      if (ao_handle != SESSION_INVALID_HANDLE)
	singbox_relay_kick (f, ao_handle);
      return 0;
    }
  if (PREDICT_FALSE (ss->state != SINGBOX_SESSION_STATE_ESTABLISHED))
    {
      if (ss->state <= SINGBOX_SESSION_STATE_REQUEST && !ss->po_closed)
	singbox_po_handshake (s, ss);
      else if ((ss->state == SINGBOX_SESSION_STATE_RESOLVING ||
		ss->state == SINGBOX_SESSION_STATE_CONNECTING) &&
	       ss->cmd == SOCKS5_CMD_CONNECT && !ss->po_closed)
	/* payload pipelined behind the request: it stays in this fifo,
	 * which becomes the upstream's tx fifo once connected */
	;
      else
	/* refused, closing, or a UDP association's control connection */
	svm_fifo_dequeue_drop_all (f);
      singbox_sessions_unlock ();
      return 0;
    }
  ao_handle = ss->ao_handle;
  singbox_sessions_unlock ();
  singbox_relay_rx (f, ao_handle);
  return 0;
}

static void
singbox_force_ack_rpc (void *arg)
{
  session_t *s = session_get_from_handle_if_valid (pointer_to_uword (arg));

  if (s && session_get_transport_proto (s) == TRANSPORT_PROTO_TCP)
    tcp_send_ack ((tcp_connection_t *) session_get_transport (s));
}

/* Space was freed in a tx fifo: the other leg may reopen its window. */
static int
singbox_leg_tx (session_t *s, int is_po)
{
  singbox_session_t *ss;
  session_handle_t other;
  u32 min_free;

  min_free = clib_min (svm_fifo_size (s->tx_fifo) >> 3, 128 << 10);
  if (svm_fifo_max_enqueue (s->tx_fifo) < min_free)
    {
      svm_fifo_add_want_deq_ntf (s->tx_fifo, SVM_FIFO_WANT_DEQ_NOTIF);
      return 0;
    }
  singbox_sessions_lock ();
  ss = singbox_session_get (s->opaque);
  other = ss->state == SINGBOX_SESSION_STATE_ESTABLISHED ? (is_po ? ss->ao_handle : ss->po_handle) :
							   SESSION_INVALID_HANDLE;
  singbox_sessions_unlock ();
  if (other != SESSION_INVALID_HANDLE)
    session_send_rpc_evt_to_thread (session_thread_from_handle (other), singbox_force_ack_rpc,
				    uword_to_pointer (other, void *));
  return 0;
}

static int
singbox_po_tx (session_t *s)
{
  return singbox_leg_tx (s, 1);
}

/* Both directions have seen FIN: close what is still open. */
static void
singbox_session_maybe_finish (singbox_session_t *ss)
{
  if (ss->po_fin && ss->ao_fin)
    {
      ss->state = SINGBOX_SESSION_STATE_CLOSING;
      singbox_po_close (ss);
      singbox_ao_close (ss);
    }
}

/* The client sent FIN. */
static void
singbox_po_disconnect (session_t *s)
{
  singbox_session_t *ss;

  singbox_sessions_lock ();
  ss = singbox_session_get (s->opaque);
  SINGBOX_DBG ("session %u: client FIN (state %U)", ss->index, format_singbox_session_state,
	       (u32) ss->state);
  ss->po_fin = 1;
  if (ss->mode == SINGBOX_MODE_CLIENT && ss->state != SINGBOX_SESSION_STATE_CLOSING &&
      ss->state != SINGBOX_SESSION_STATE_ESTABLISHED)
    {
      /* before the upstream reply: the FIN is passed on when the legs are
       * crossed (singbox_client_cross) */
      if (ss->crossed && ss->ao_handle != SESSION_INVALID_HANDLE)
	{
	  singbox_relay_kick (s->rx_fifo, ss->ao_handle);
	  singbox_leg_do (ss->ao_handle, singbox_leg_shutdown_rpc);
	}
    }
  else if (ss->state == SINGBOX_SESSION_STATE_ESTABLISHED)
    {
      /* The FIN notification can overtake the rx notification of the data
       * before it (and then disables rx notifications): relay that data
       * now, it must reach the destination before our FIN does. */
      singbox_relay_kick (s->rx_fifo, ss->ao_handle);
      /* half-close: pass the FIN upstream once the data before it is sent */
      singbox_leg_do (ss->ao_handle, singbox_leg_shutdown_rpc);
      singbox_session_maybe_finish (ss);
    }
  else
    {
      /* before the relay: nothing to deliver; a pending connect finds the
       * client gone when its fifos are attached */
      svm_fifo_dequeue_drop_all (s->rx_fifo);
      ss->state = SINGBOX_SESSION_STATE_CLOSING;
      singbox_po_close (ss);
    }
  singbox_sessions_unlock ();
}

static void
singbox_po_reset_cb (session_t *s)
{
  singbox_session_t *ss;

  singbox_sessions_lock ();
  ss = singbox_session_get (s->opaque);
  ss->state = SINGBOX_SESSION_STATE_CLOSING;
  singbox_po_close (ss);
  singbox_ao_reset (ss);
  singbox_sessions_unlock ();
}

static void
singbox_po_cleanup (session_t *s, session_cleanup_ntf_t ntf)
{
  singbox_session_t *ss;

  singbox_sessions_lock ();
  ss = singbox_session_get (s->opaque);
  if (ntf == SESSION_CLEANUP_TRANSPORT)
    {
      singbox_session_count_traffic (ss, s);
      singbox_session_release_active (ss);
      /* the transport is gone: make sure the upstream leg follows */
      ss->po_closed = 1;
      if (!ss->ao_fin || !ss->po_fin)
	singbox_ao_close (ss);
      singbox_sessions_unlock ();
      return;
    }
  ss->po_handle = SESSION_INVALID_HANDLE;
  ss->po_closed = 1;
  ss->state = SINGBOX_SESSION_STATE_CLOSING;
  singbox_udp_release (ss);
  /* the upstream leg may linger in TIME_WAIT */
  singbox_session_release_active (ss);
  if (ss->ao_handle == SESSION_INVALID_HANDLE && !ss->connecting)
    singbox_session_free (ss);
  singbox_sessions_unlock ();
}

/* Grow a fifo that keeps filling up, shrink it as it drains, while its
 * segment has room: the TCP window follows the fifo, so a fixed fifo caps a
 * fast stream. The same policy as hs_apps proxy (its watermarks, 80 % and
 * 50 % of the segment), up to the configured max-fifo-size. */
static int
singbox_fifo_tuning (session_t *s, svm_fifo_t *f, session_ft_action_t act, u32 bytes)
{
  segment_manager_t *sm = segment_manager_get (f->segment_manager);
  fifo_segment_t *fs = segment_manager_get_segment (sm, f->segment_index);
  u8 seg_usage = fifo_segment_get_mem_usage (fs);
  u32 in_use = svm_fifo_max_dequeue_prod (f);
  u32 size = svm_fifo_size (f);
  u8 usage = (u64) in_use * 100 / size;
  u32 delta = 0;

  if (act == SESSION_FT_ACTION_ENQUEUED)
    {
      if ((seg_usage < 50 && usage > 50) || (seg_usage < 80 && usage > 80))
	delta = clib_min (in_use, sm->max_fifo_size - size);
      if (delta)
	svm_fifo_set_size (f, size + delta);
    }
  else
    {
      if (seg_usage > 80 || usage < 20)
	delta = bytes;
      else if (seg_usage > 50 && usage < 50)
	delta = bytes / 2;
      delta = clib_min (delta, size - 4096);
      if (delta)
	svm_fifo_set_size (f, size - delta);
    }
  return 0;
}

static int
singbox_add_segment (u32 app_wrk_index, u64 segment_handle)
{
  return 0;
}

static int
singbox_del_segment (u32 app_wrk_index, u64 segment_handle)
{
  return 0;
}

static int
singbox_po_connected (u32 app_wrk_index, u32 opaque, session_t *s, session_error_t err)
{
  return -1;
}

static session_cb_vft_t singbox_server_cb_vft = {
  .session_accept_callback = singbox_po_accept,
  .session_disconnect_callback = singbox_po_disconnect,
  .session_connected_callback = singbox_po_connected,
  .session_reset_callback = singbox_po_reset_cb,
  .session_cleanup_callback = singbox_po_cleanup,
  .builtin_app_rx_callback = singbox_po_rx,
  .builtin_app_tx_callback = singbox_po_tx,
  .fifo_tuning_callback = singbox_fifo_tuning,
  .add_segment_callback = singbox_add_segment,
  .del_segment_callback = singbox_del_segment,
};

/* Client mode's intercepting listener: the client leg behaves like the
 * server's, only accept and the early request differ. */
session_cb_vft_t singbox_intercept_cb_vft_base = {
  .session_accept_callback = singbox_client_accept,
  .proxy_write_early_data = singbox_client_write_early_data,
  .session_disconnect_callback = singbox_po_disconnect,
  .session_connected_callback = singbox_po_connected,
  .session_reset_callback = singbox_po_reset_cb,
  .session_cleanup_callback = singbox_po_cleanup,
  .builtin_app_rx_callback = singbox_po_rx,
  .builtin_app_tx_callback = singbox_po_tx,
  /* without it the upstream leg's tuning only ever shrank the intercepted
   * connection's rx fifo (its tx fifo, crossed): 4 KB windows, 38 Mbit/s */
  .fifo_tuning_callback = singbox_fifo_tuning,
  .add_segment_callback = singbox_add_segment,
  .del_segment_callback = singbox_del_segment,
};

/*
 * Upstream leg (active open) callbacks
 */

/* Runs on the upstream's thread right after the TCP handshake, before the
 * session is usable: attach the client's fifos crossed and write the
 * success reply ahead of anything the destination may send. */
static int
singbox_ao_alloc_fifos (session_t *s)
{
  transport_endpoint_t rmt = {}, lcl = {};
  singbox_session_t *ss;
  socks5_addr_t bnd;
  socks5_out_t out;

  singbox_sessions_lock ();
  ss = singbox_session_get (s->opaque);
  if (!ss->pooled && (ss->po_closed || ss->po_handle == SESSION_INVALID_HANDLE))
    {
      singbox_sessions_unlock ();
      return SESSION_E_ALLOC;
    }

  if (ss->mode == SINGBOX_MODE_CLIENT && !ss->bypass)
    {
      int rv = singbox_client_alloc_fifos (s, ss);
      singbox_sessions_unlock ();
      return rv;
    }
  if (ss->mode == SINGBOX_MODE_CLIENT)
    goto cross;
  session_get_endpoint (s, &rmt, &lcl);
  if (lcl.is_ip4)
    socks5_addr_set_ip4 (&bnd, lcl.ip.ip4.as_u8, clib_net_to_host_u16 (lcl.port));
  else
    socks5_addr_set_ip6 (&bnd, lcl.ip.ip6.as_u8, clib_net_to_host_u16 (lcl.port));
  out.len = 0;
  if (ss->hserver)
    singbox_http_server_ok (ss, &out);
  else
    socks5_server_reply (&ss->proto, SOCKS5_REP_SUCCEEDED, &bnd, &out);
  ss->rep = SOCKS5_REP_SUCCEEDED;
  ss->reply_sent = 1;
  /* Enqueue only; the tx event is programmed once the session is ready
   * (singbox_ao_connected), on the client's thread via the fifo's owner. */
  if (out.len && svm_fifo_enqueue (ss->po_tx_fifo, out.len, out.data) == out.len)
    ss->hs_bytes_out += out.len;

cross:
  ss->crossed = 1;
  ss->po_rx_fifo->vpp_sh = s->handle;
  ss->po_rx_fifo->refcnt++;
  ss->po_tx_fifo->refcnt++;
  s->rx_fifo = ss->po_tx_fifo;
  s->tx_fifo = ss->po_rx_fifo;
  singbox_sessions_unlock ();
  return 0;
}

static int
singbox_ao_connected (u32 app_wrk_index, u32 opaque, session_t *s, session_error_t err)
{
  singbox_session_t *ss;
  session_handle_t po_handle;

  singbox_sessions_lock ();
  ss = singbox_session_get (opaque);
  ss->connecting = 0;

  if (err)
    {
      u8 rep = singbox_rep_from_session_error (err);
      SINGBOX_DBG ("session %u connect failed: %U", ss->index, format_session_error, err);
      if (ss->po_handle == SESSION_INVALID_HANDLE)
	{
	  singbox_client_pool_forget (ss);
	  singbox_session_free (ss);
	}
      else if (ss->mode == SINGBOX_MODE_CLIENT)
	singbox_client_connect_failed (ss);
      else if (!ss->po_closed && !ss->reply_sent)
	{
	  singbox_server_counter_inc (SINGBOX_SERVER_CTR_CONNECT_FAILURES, 1);
	  singbox_po_reply_failure_on_thread (ss, rep);
	}
      singbox_sessions_unlock ();
      return 0;
    }

  ss->ao_handle = session_handle (s);
  s->opaque = ss->index;
  if (ss->po_closed)
    {
      /* the client left while we connected */
      singbox_ao_close (ss);
      singbox_sessions_unlock ();
      return 0;
    }
  if (ss->mode == SINGBOX_MODE_CLIENT)
    {
      /* request (and any client data) is already in our tx fifo */
      ss->state =
	ss->bypass ? SINGBOX_SESSION_STATE_ESTABLISHED : SINGBOX_SESSION_STATE_SOCKS5_REPLY;
      ss->last_active = vlib_time_now (vlib_get_main ());
      if (ss->bypass)
	ss->deadline = 0;
      if (svm_fifo_max_dequeue (s->tx_fifo) && svm_fifo_set_event (s->tx_fifo))
	session_program_tx_io_evt (s->handle, SESSION_IO_EVT_TX);
      if (ss->po_fin && ss->crossed)
	singbox_leg_do (ss->ao_handle, singbox_leg_shutdown_rpc);
      singbox_sessions_unlock ();
      return 0;
    }
  ss->state = SINGBOX_SESSION_STATE_ESTABLISHED;
  ss->deadline = 0;
  ss->last_active = vlib_time_now (vlib_get_main ());
  po_handle = ss->po_handle;
  singbox_sessions_unlock ();

  /* reply queued in singbox_ao_alloc_fifos */
  session_program_tx_io_evt (po_handle, SESSION_IO_EVT_TX);
  /* Data the client pipelined after its request. If it filled the fifo
   * while we resolved or connected, the client saw a zero window: the
   * dequeue notification reopens it rather than the client's persist timer. */
  singbox_relay_rx (s->tx_fifo, s->handle);
  return 0;
}

static int
singbox_ao_rx (session_t *s)
{
  svm_fifo_t *f = s->rx_fifo; /* the client's tx fifo */
  singbox_session_t *ss;
  session_handle_t po_handle;

  if (s->session_state >= SESSION_STATE_APP_CLOSED)
    return -1;
  singbox_sessions_lock ();
  ss = singbox_session_get (s->opaque);
  ss->last_active = vlib_time_now (vlib_get_main ());
  if (ss->mode == SINGBOX_MODE_CLIENT && ss->state == SINGBOX_SESSION_STATE_SOCKS5_REPLY)
    {
      singbox_client_upstream_rx (s, ss);
      singbox_sessions_unlock ();
      return 0;
    }
  po_handle = ss->po_handle;
  SINGBOX_DBG ("session %u: upstream rx %u", ss->index, svm_fifo_max_dequeue (f));
  singbox_sessions_unlock ();
  singbox_relay_rx (f, po_handle);
  return 0;
}

static int
singbox_ao_tx (session_t *s)
{
  singbox_session_t *ss;

  singbox_sessions_lock ();
  ss = singbox_session_get (s->opaque);
  if (ss->mode == SINGBOX_MODE_CLIENT && !ss->crossed)
    {
      singbox_client_upstream_tx (s, ss);
      singbox_sessions_unlock ();
      return 0;
    }
  singbox_sessions_unlock ();
  return singbox_leg_tx (s, 0);
}

/* The destination sent FIN. */
static void
singbox_ao_disconnect (session_t *s)
{
  singbox_session_t *ss;

  singbox_sessions_lock ();
  ss = singbox_session_get (s->opaque);
  SINGBOX_DBG ("session %u: upstream FIN", ss->index);
  if (ss->pooled && ss->pool_ready)
    {
      /* an idle pooled connection closed by the proxy: not a failure */
      singbox_client_pool_forget (ss);
      ss->state = SINGBOX_SESSION_STATE_CLOSING;
      singbox_ao_close (ss);
      singbox_sessions_unlock ();
      return;
    }
  if (ss->mode == SINGBOX_MODE_CLIENT && !ss->crossed && !ss->bypass)
    {
      /* the proxy closed during the handshake (e.g. after refusing our
       * credentials): its last bytes may have come with the FIN */
      if (ss->state == SINGBOX_SESSION_STATE_SOCKS5_REPLY)
	singbox_client_upstream_rx (s, ss);
      if (!ss->crossed && ss->state != SINGBOX_SESSION_STATE_CLOSING)
	singbox_client_connect_failed (ss);
      singbox_ao_close (ss);
      singbox_sessions_unlock ();
      return;
    }
  ss->ao_fin = 1;
  singbox_relay_kick (s->rx_fifo, ss->po_handle);
  if (!ss->po_closed)
    singbox_leg_do (ss->po_handle, singbox_leg_shutdown_rpc);
  else
    singbox_ao_close (ss);
  singbox_session_maybe_finish (ss);
  /* not in client mode yet: with it, intercepted clients that reuse their
   * ports at once found our leg's TIME_WAIT in the way more often ("no
   * listener for dst port" in tests/vpp/test_vpp_client.py, 2 workers) */
  if (ss->mode != SINGBOX_MODE_CLIENT && ss->po_handle != SESSION_INVALID_HANDLE)
    singbox_po_ack_probe (ss->po_handle);
  singbox_sessions_unlock ();
}

static void
singbox_ao_reset_cb (session_t *s)
{
  singbox_session_t *ss;

  singbox_sessions_lock ();
  ss = singbox_session_get (s->opaque);
  if (ss->mode == SINGBOX_MODE_CLIENT && !ss->crossed && ss->state != SINGBOX_SESSION_STATE_CLOSING)
    singbox_client_connect_failed (ss);
  ss->state = SINGBOX_SESSION_STATE_CLOSING;
  singbox_ao_close (ss);
  singbox_po_reset (ss);
  singbox_sessions_unlock ();
}

static void
singbox_postponed_free_rpc (void *arg)
{
  u32 index = pointer_to_uword (arg);
  singbox_session_t *ss;

  singbox_sessions_lock ();
  ss = singbox_session_get (index);
  segment_manager_dealloc_fifos (ss->po_rx_fifo, ss->po_tx_fifo);
  singbox_session_free (ss);
  singbox_sessions_unlock ();
}

/* The upstream's transport is gone (e.g. it sent FIN, then answered our
 * data with a reset, which in CLOSE_WAIT is no reset notification): it can
 * take nothing more. A client that has not finished sending would otherwise
 * fill its rx fifo, which nobody reads now, and hang on a zero window until
 * the idle timeout. Drop that data and end the client leg, as a closed
 * socket would: reset it unless upstream data is still queued for it; then
 * a FIN keeps that data, and po_rx drops what the client still sends. */
static void
singbox_ao_transport_gone (session_t *s)
{
  singbox_session_t *ss;

  singbox_sessions_lock ();
  ss = singbox_session_get (s->opaque);
  if (ss->crossed && !ss->po_closed && !ss->po_fin && ss->po_handle != SESSION_INVALID_HANDLE)
    {
      SINGBOX_DBG ("session %u: upstream gone, client still sending", ss->index);
      ss->state = SINGBOX_SESSION_STATE_CLOSING;
      /* we are its consumer while crossed; the transport that read it is
       * gone */
      svm_fifo_dequeue_drop_all (ss->po_rx_fifo);
      if (svm_fifo_max_dequeue (ss->po_tx_fifo))
	singbox_po_close (ss);
      else
	singbox_po_reset (ss);
    }
  singbox_sessions_unlock ();
}

static void
singbox_ao_cleanup (session_t *s, session_cleanup_ntf_t ntf)
{
  singbox_session_t *ss;

  if (ntf == SESSION_CLEANUP_TRANSPORT)
    {
      singbox_ao_transport_gone (s);
      return;
    }

  singbox_sessions_lock ();
  ss = singbox_session_get (s->opaque);
  ss->ao_handle = SESSION_INVALID_HANDLE;
  ss->ao_closed = 1;
  /* the fifo's owner was switched to this leg while crossed */
  if (ss->crossed)
    ss->po_rx_fifo->master_thread_index = ss->po_tx_fifo->master_thread_index;
  if (ss->po_handle == SESSION_INVALID_HANDLE)
    {
      singbox_client_pool_forget (ss);
      if (ss->crossed && ss->po_tx_fifo->master_thread_index != s->thread_index)
	{
	  /* fifos must be freed on the thread that allocated them */
	  s->rx_fifo = 0;
	  s->tx_fifo = 0;
	  session_send_rpc_evt_to_thread (ss->po_tx_fifo->master_thread_index,
					  singbox_postponed_free_rpc,
					  uword_to_pointer (ss->index, void *));
	}
      else
	singbox_session_free (ss);
    }
  else if (!ss->po_closed)
    {
      /* upstream gone for good: finish the client leg too */
      if (!ss->ao_fin)
	singbox_po_reset (ss);
    }
  singbox_sessions_unlock ();
}

static int
singbox_ao_accept (session_t *s)
{
  return -1;
}

static session_cb_vft_t singbox_upstream_cb_vft = {
  .session_accept_callback = singbox_ao_accept,
  .session_connected_callback = singbox_ao_connected,
  .session_disconnect_callback = singbox_ao_disconnect,
  .session_reset_callback = singbox_ao_reset_cb,
  .session_cleanup_callback = singbox_ao_cleanup,
  .builtin_app_rx_callback = singbox_ao_rx,
  .builtin_app_tx_callback = singbox_ao_tx,
  .proxy_alloc_session_fifos = singbox_ao_alloc_fifos,
  .fifo_tuning_callback = singbox_fifo_tuning,
  .add_segment_callback = singbox_add_segment,
  .del_segment_callback = singbox_del_segment,
};

/*
 * Attach, listen
 */

int
singbox_app_attach (char *name, session_cb_vft_t *vft, u64 flags, u32 *app_index)
{
  singbox_main_t *sm = &singbox_main;
  vnet_app_attach_args_t _a = {}, *a = &_a;
  u64 options[APP_OPTIONS_N_OPTIONS] = {};
  int rv;

  a->name = format (0, "%s", name);
  a->api_client_index = APP_INVALID_INDEX;
  a->session_cb_vft = vft;
  a->options = options;
  options[APP_OPTIONS_SEGMENT_SIZE] = sm->segment_size;
  options[APP_OPTIONS_ADD_SEGMENT_SIZE] = sm->segment_size;
  options[APP_OPTIONS_RX_FIFO_SIZE] = sm->fifo_size;
  options[APP_OPTIONS_TX_FIFO_SIZE] = sm->fifo_size;
  options[APP_OPTIONS_MAX_FIFO_SIZE] = sm->max_fifo_size;
  options[APP_OPTIONS_FLAGS] = APP_OPTIONS_FLAGS_IS_BUILTIN | flags;

  rv = vnet_application_attach (a);
  vec_free (a->name);
  if (rv)
    return rv;
  *app_index = a->app_index;
  return 0;
}

int
singbox_server_attach (void)
{
  singbox_main_t *sm = &singbox_main;
  vlib_main_t *vm = vlib_get_main ();
  int rv;

  if (sm->is_attached)
    return 0;

  if (!session_main_is_enabled ())
    {
      session_enable_disable_args_t args = { .is_en = 1,
					     .rt_engine_type = RT_BACKEND_ENGINE_RULE_TABLE };
      vlib_worker_thread_barrier_sync (vm);
      vnet_session_enable_disable (vm, &args);
      vlib_worker_thread_barrier_release (vm);
    }
  if (vlib_num_workers () && !sm->sessions_lock)
    {
      clib_spinlock_init (&sm->sessions_lock);
      clib_spinlock_init (&sm->users_lock);
    }

  if ((rv =
	 singbox_app_attach ("singbox-server", &singbox_server_cb_vft, 0, &sm->server_app_index)))
    return VNET_API_ERROR_UNSPECIFIED;
  if ((rv = singbox_app_attach ("singbox-upstream", &singbox_upstream_cb_vft,
				APP_OPTIONS_FLAGS_IS_PROXY, &sm->upstream_app_index)))
    return VNET_API_ERROR_UNSPECIFIED;
  sm->is_attached = 1;
  vlib_process_signal_event (vm, singbox_process_node.index, 0, 0);
  return 0;
}

int
singbox_server_listen (singbox_listener_t *l)
{
  singbox_main_t *sm = &singbox_main;
  vnet_listen_args_t _a = {}, *a = &_a;
  u32 fib_index;
  int rv;

  fib_index = fib_table_find (l->is_ip4 ? FIB_PROTOCOL_IP4 : FIB_PROTOCOL_IP6, l->table_id);
  if (fib_index == ~0)
    return VNET_API_ERROR_NO_SUCH_FIB;

  a->sep_ext = (session_endpoint_cfg_t) SESSION_ENDPOINT_CFG_NULL;
  a->sep_ext.transport_proto = TRANSPORT_PROTO_TCP;
  a->sep_ext.is_ip4 = l->is_ip4;
  a->sep_ext.ip = l->addr;
  a->sep_ext.port = clib_host_to_net_u16 (l->port);
  a->sep_ext.fib_index = fib_index;
  /* the listener's index lands in the listen session's opaque */
  a->sep_ext.opaque = l - sm->listeners;
  a->app_index = sm->server_app_index;

  rv = vnet_listen (a);
  if (rv)
    {
      SINGBOX_LOG (SINGBOX_LOG_WARNING, "listen on %U:%u failed: %U", format_ip46_address, &l->addr,
		   IP46_TYPE_ANY, l->port, format_session_error, rv);
      return rv == SESSION_E_ALREADY_LISTENING ? VNET_API_ERROR_ADDRESS_IN_USE :
						 VNET_API_ERROR_UNSPECIFIED;
    }
  l->listen_handle = a->handle;
  l->is_listening = 1;
  return 0;
}

int
singbox_server_unlisten (singbox_listener_t *l)
{
  singbox_main_t *sm = &singbox_main;
  vnet_unlisten_args_t a = {
    .handle = l->listen_handle,
    .app_index = sm->server_app_index,
    .wrk_map_index = 0,
  };
  int rv;

  rv = vnet_unlisten (&a);
  l->is_listening = 0;
  l->listen_handle = SESSION_INVALID_HANDLE;
  return rv ? VNET_API_ERROR_UNSPECIFIED : 0;
}

/*
 * Closing from outside: API/CLI disconnect, server stop, timeouts. Each
 * runs on the client leg's thread.
 */

static void
singbox_session_kill (singbox_session_t *ss, int timed_out)
{
  if (ss->state < SINGBOX_SESSION_STATE_CONNECTING || ss->state == SINGBOX_SESSION_STATE_RESOLVING)
    {
      /* handshake timeout: no reply owed (RFC 1928 allows closing) unless
       * the request was complete */
      if (ss->state == SINGBOX_SESSION_STATE_RESOLVING && !ss->reply_sent)
	{
	  singbox_po_reply_failure (ss, socks5_rep_from_reason (SOCKS5_REASON_DNS_FAILURE));
	  return;
	}
      ss->state = SINGBOX_SESSION_STATE_CLOSING;
      singbox_po_fail (ss);
      return;
    }
  if (ss->state == SINGBOX_SESSION_STATE_CONNECTING)
    {
      if (timed_out)
	singbox_server_counter_inc (SINGBOX_SERVER_CTR_CONNECT_FAILURES, 1);
      if (!ss->reply_sent)
	singbox_po_reply_failure (
	  ss, socks5_rep_from_reason (timed_out ? SOCKS5_REASON_TIMEOUT : SOCKS5_REASON_OTHER));
      else
	singbox_po_fail (ss);
      return;
    }
  if (ss->state == SINGBOX_SESSION_STATE_UDP_ASSOCIATED)
    {
      /* the association ends with its TCP connection: close it */
      ss->state = SINGBOX_SESSION_STATE_CLOSING;
      singbox_po_close (ss);
      return;
    }
  ss->state = SINGBOX_SESSION_STATE_CLOSING;
  singbox_po_reset (ss);
  singbox_ao_reset (ss);
}

static void
singbox_session_kill_rpc (void *arg)
{
  u64 id = pointer_to_uword (arg);
  singbox_session_t *ss;
  int timed_out = (id >> 63) & 1;

  id &= ~(1ULL << 63);
  singbox_sessions_lock ();
  ss = singbox_session_get_by_id (id);
  if (ss && ss->state != SINGBOX_SESSION_STATE_CLOSING)
    singbox_session_kill (ss, timed_out);
  singbox_sessions_unlock ();
}

static void
singbox_session_kill_on_thread (singbox_session_t *ss, int timed_out)
{
  u64 id = singbox_session_id (ss) | ((u64) (timed_out != 0) << 63);

  session_send_rpc_evt_to_thread_force (ss->po_thread, singbox_session_kill_rpc,
					uword_to_pointer (id, void *));
}

int
singbox_session_disconnect (u64 session_id)
{
  singbox_session_t *ss;
  int rv = 0;

  singbox_sessions_lock ();
  ss = singbox_session_get_by_id (session_id & ~(1ULL << 63));
  if (!ss || ss->po_handle == SESSION_INVALID_HANDLE || ss->state == SINGBOX_SESSION_STATE_CLOSING)
    rv = VNET_API_ERROR_NO_SUCH_ENTRY;
  else
    singbox_session_kill_on_thread (ss, 0);
  singbox_sessions_unlock ();
  return rv;
}

void
singbox_server_close_all (void)
{
  singbox_main_t *sm = &singbox_main;
  singbox_session_t *ss;

  singbox_sessions_lock ();
  pool_foreach (ss, sm->sessions)
    if (ss->mode == SINGBOX_MODE_SERVER && ss->po_handle != SESSION_INVALID_HANDLE &&
	ss->state != SINGBOX_SESSION_STATE_CLOSING)
      singbox_session_kill_on_thread (ss, 0);
  singbox_sessions_unlock ();
}

/* Each thread adds what its relaying sessions moved to the counters, so a
 * long transfer shows while it runs and not only when it ends. */
static void
singbox_sessions_count_traffic_rpc (void *arg)
{
  singbox_main_t *sm = &singbox_main;
  clib_thread_index_t thread_index = vlib_get_thread_index ();
  singbox_session_t *ss;
  session_t *s;

  singbox_sessions_lock ();
  pool_foreach (ss, sm->sessions)
    if (ss->po_thread == thread_index && !ss->po_closed &&
	(ss->mode == SINGBOX_MODE_CLIENT ? ss->crossed :
					   ss->state == SINGBOX_SESSION_STATE_ESTABLISHED) &&
	(s = session_get_from_handle_if_valid (ss->po_handle)))
      singbox_session_count_traffic (ss, s);
  singbox_sessions_unlock ();
}

/* Main thread. */
void
singbox_sessions_count_traffic (void)
{
  clib_thread_index_t t;

  /* no session: the session layer may not even be enabled */
  if (!pool_elts (singbox_main.sessions))
    return;
  singbox_sessions_count_traffic_rpc (0);
  for (t = 1; t <= vlib_num_workers (); t++)
    session_send_rpc_evt_to_thread_force (t, singbox_sessions_count_traffic_rpc, 0);
}

/* On the client leg's thread: a client-mode session whose client leg VPP
 * freed before accepting it (see po_accepted) is ended here, or it would
 * count against max-connections and keep its upstream leg forever. */
static void
singbox_client_leg_check_rpc (void *arg)
{
  singbox_session_t *ss;
  session_t *s;

  singbox_sessions_lock ();
  ss = singbox_session_get_by_id (pointer_to_uword (arg));
  if (!ss || ss->po_accepted || ss->po_handle == SESSION_INVALID_HANDLE)
    goto done;
  s = session_get_from_handle_if_valid (ss->po_handle);
  /* the slot may hold another session by now */
  if (s && s->opaque == ss->index && session_handle (s) != ss->ao_handle)
    goto done;
  SINGBOX_DBG ("session %u: client leg gone before its accept", ss->index);
  ss->po_handle = SESSION_INVALID_HANDLE;
  ss->po_closed = 1;
  ss->state = SINGBOX_SESSION_STATE_CLOSING;
  ss->deadline = 0;
  singbox_session_release_active (ss);
  if (ss->ao_handle != SESSION_INVALID_HANDLE)
    singbox_ao_close (ss); /* its cleanup frees the session */
  else if (!ss->connecting)
    singbox_session_free (ss);
done:
  singbox_sessions_unlock ();
}

void
singbox_sessions_expire (f64 now)
{
  singbox_main_t *sm = &singbox_main;
  singbox_session_t *ss;

  singbox_sessions_lock ();
  pool_foreach (ss, sm->sessions)
    {
      if (ss->mode == SINGBOX_MODE_CLIENT && !ss->po_accepted &&
	  ss->po_handle != SESSION_INVALID_HANDLE && now >= ss->po_check_at)
	{
	  ss->po_check_at = now + SINGBOX_UNACCEPTED_CHECK_INTERVAL;
	  session_send_rpc_evt_to_thread_force (ss->po_thread, singbox_client_leg_check_rpc,
						uword_to_pointer (singbox_session_id (ss), void *));
	}
      if (ss->po_handle == SESSION_INVALID_HANDLE || ss->state == SINGBOX_SESSION_STATE_CLOSING)
	continue;
      if (ss->deadline && now >= ss->deadline)
	{
	  ss->deadline = 0;
	  singbox_session_kill_on_thread (ss, 1);
	}
      else if (ss->mode == SINGBOX_MODE_CLIENT)
	{
	  if (ss->state == SINGBOX_SESSION_STATE_ESTABLISHED && sm->client_timeout &&
	      now - ss->last_active >= sm->client_timeout)
	    {
	      ss->last_active = now;
	      singbox_session_kill_on_thread (ss, 1);
	    }
	}
      else if (ss->state == SINGBOX_SESSION_STATE_ESTABLISHED && sm->idle_timeout &&
	       now - ss->last_active >= sm->idle_timeout)
	{
	  ss->last_active = now; /* once */
	  singbox_session_kill_on_thread (ss, 1);
	}
      else if (ss->state == SINGBOX_SESSION_STATE_UDP_ASSOCIATED &&
	       now - ss->last_active >= sm->udp_idle_timeout)
	{
	  ss->last_active = now;
	  singbox_session_kill_on_thread (ss, 1);
	}
    }
  singbox_sessions_unlock ();
}

/*
 * UDP association set up (main thread): reply on the client's thread.
 */

static void
singbox_udp_ready_rpc (void *arg)
{
  u64 id = pointer_to_uword (arg);
  singbox_main_t *sm = &singbox_main;
  singbox_session_t *ss;
  socks5_addr_t bnd;
  socks5_out_t out;
  ip46_address_t *ip;

  singbox_sessions_lock ();
  ss = singbox_session_get_by_id (id);
  if (!ss || ss->po_closed || ss->state != SINGBOX_SESSION_STATE_CONNECTING ||
      ss->cmd != SOCKS5_CMD_UDP_ASSOCIATE)
    goto done;
  if (ss->rep)
    {
      singbox_po_reply_failure (ss, ss->rep);
      goto done;
    }
  ip = (!ip46_address_is_zero (&sm->udp_public_address) &&
	sm->udp_public_is_ip4 == ss->client_is_ip4) ?
	 &sm->udp_public_address :
	 &ss->lcl_ip;
  if (ss->client_is_ip4)
    socks5_addr_set_ip4 (&bnd, ip->ip4.as_u8, ss->udp_port);
  else
    socks5_addr_set_ip6 (&bnd, ip->ip6.as_u8, ss->udp_port);
  out.len = 0;
  socks5_server_reply (&ss->proto, SOCKS5_REP_SUCCEEDED, &bnd, &out);
  ss->rep = SOCKS5_REP_SUCCEEDED;
  ss->reply_sent = 1;
  singbox_po_send (ss, &out);
  ss->state = SINGBOX_SESSION_STATE_UDP_ASSOCIATED;
  ss->deadline = 0;
  ss->last_active = vlib_time_now (vlib_get_main ());
  svm_fifo_dequeue_drop_all (ss->po_rx_fifo);
done:
  singbox_sessions_unlock ();
}

void
singbox_server_udp_ready (singbox_session_t *ss)
{
  session_send_rpc_evt_to_thread_force (ss->po_thread, singbox_udp_ready_rpc,
					uword_to_pointer (singbox_session_id (ss), void *));
}

/*
 * Name resolution finished (main thread): connect on the client's thread.
 */

static void
singbox_session_resolved_rpc (void *arg)
{
  u64 id = pointer_to_uword (arg);
  singbox_session_t *ss;

  singbox_sessions_lock ();
  ss = singbox_session_get_by_id (id);
  if (ss && ss->state == SINGBOX_SESSION_STATE_RESOLVING && !ss->po_closed)
    {
      if (ss->rep)
	{
	  singbox_server_counter_inc (SINGBOX_SERVER_CTR_CONNECT_FAILURES, 1);
	  singbox_po_reply_failure (ss, ss->rep);
	}
      else
	singbox_session_connect (ss);
    }
  singbox_sessions_unlock ();
}

void
singbox_session_resolved (u32 index, int rv, ip46_address_t *ip, u8 is_ip4)
{
  singbox_main_t *sm = &singbox_main;
  singbox_session_t *ss;
  u64 id;

  singbox_sessions_lock ();
  if (pool_is_free_index (sm->sessions, index))
    {
      singbox_sessions_unlock ();
      return;
    }
  ss = singbox_session_get (index);
  if (ss->state != SINGBOX_SESSION_STATE_RESOLVING || ss->po_closed)
    {
      singbox_sessions_unlock ();
      return;
    }
  if (rv)
    ss->rep = socks5_rep_from_reason (SOCKS5_REASON_DNS_FAILURE);
  else
    {
      ss->dst_ip = *ip;
      ss->dst_is_ip4 = is_ip4;
    }
  id = singbox_session_id (ss);
  session_send_rpc_evt_to_thread_force (ss->po_thread, singbox_session_resolved_rpc,
					uword_to_pointer (id, void *));
  singbox_sessions_unlock ();
}

/*
 * Show
 */

void
singbox_session_bytes (singbox_session_t *ss, u64 *to_client, u64 *from_client)
{
  session_t *s;

  *to_client = ss->bytes_to_client;
  *from_client = ss->bytes_from_client;
  /* live numbers: only safe when the owning thread is stopped */
  if (ss->po_handle != SESSION_INVALID_HANDLE && vlib_thread_is_main_w_barrier () &&
      (s = session_get_from_handle_if_valid (ss->po_handle)) &&
      s->session_state < SESSION_STATE_TRANSPORT_DELETED)
    {
      singbox_session_account_bytes (ss, s);
      *to_client = ss->bytes_to_client;
      *from_client = ss->bytes_from_client;
    }
}

u8 *
format_singbox_session (u8 *s, va_list *args)
{
  singbox_session_t *ss = va_arg (*args, singbox_session_t *);
  f64 now = vlib_time_now (vlib_get_main ());
  u64 tx, rx;

  singbox_session_bytes (ss, &tx, &rx);
  s = format (s, "[%lu] %s client=%U:%u ", singbox_session_id (ss),
	      ss->mode == SINGBOX_MODE_SERVER ? "server" : "client", format_ip46_address,
	      &ss->client_ip, IP46_TYPE_ANY, ss->client_port);
  if (ss->dst.atyp == SOCKS5_ATYP_DOMAIN)
    s = format (s, "dst=%s:%u", ss->dst.domain, ss->dst_port);
  else if (ss->dst.atyp)
    s = format (s, "dst=%U:%u", format_ip46_address, &ss->dst_ip, IP46_TYPE_ANY, ss->dst_port);
  else
    s = format (s, "dst=-");
  s = format (s, " state=%U tx=%lu rx=%lu age=%.0fs", format_singbox_session_state, (u32) ss->state,
	      tx, rx, now - ss->created);
  if (ss->user_index != ~0 && !pool_is_free_index (singbox_main.users, ss->user_index))
    s = format (s, " user=%v", pool_elt_at_index (singbox_main.users, ss->user_index)->username);
  return s;
}

/* What each leg is doing, for a session that does not end as it should. */
u8 *
format_singbox_session_legs (u8 *s, va_list *args)
{
  singbox_session_t *ss = va_arg (*args, singbox_session_t *);

  s = format (s, "client leg 0x%lx (thread %u)%s%s, upstream leg 0x%lx%s%s%s", ss->po_handle,
	      ss->po_thread, ss->po_fin ? " fin" : "", ss->po_closed ? " closed" : "",
	      ss->ao_handle, ss->connecting ? " connecting" : "", ss->ao_fin ? " fin" : "",
	      ss->ao_closed ? " closed" : "");
  if (ss->mode == SINGBOX_MODE_CLIENT)
    s = format (s, ", %s%s%s%s", ss->po_accepted ? "" : "not accepted, ",
		ss->crossed ? "crossed" : "not crossed", ss->from_pool ? ", from pool" : "",
		ss->pooled ? ", pooled" : "");
  if (ss->deadline != 0)
    s = format (s, ", deadline in %.1fs", ss->deadline - vlib_time_now (vlib_get_main ()));
  return s;
}

u8 *
format_singbox_listener (u8 *s, va_list *args)
{
  singbox_listener_t *l = va_arg (*args, singbox_listener_t *);

  if (l->is_ip4)
    s = format (s, "%s %U:%u", l->name, format_ip4_address, &l->addr.ip4, l->port);
  else
    s = format (s, "%s [%U]:%u", l->name, format_ip6_address, &l->addr.ip6, l->port);
  if (l->table_id)
    s = format (s, " table %u", l->table_id);
  return format (s, " (%s)", l->is_listening ? "listening" : "not listening");
}
