/* SPDX-License-Identifier: Apache-2.0
 * Copyright (c) 2026 vpp-singbox authors
 */

/* The two-leg relay both modes share.
 *
 * The client leg (passive open, "po") is accepted by the mode's app
 * (singbox-server in server mode, singbox-intercept in client mode); the
 * upstream leg (active open, "ao") is opened by "singbox-upstream"
 * (IS_PROXY). Once the upstream is connected both legs share the client
 * leg's fifos, crossed, so the relay never copies payload. What differs
 * between the modes (handshakes, limits, counters, timeouts) is in the
 * mode's singbox_session_vft_t, chosen when the session is allocated.
 *
 * Each leg may live on a different thread. A session record lives in the
 * pool of its client leg's thread and only that thread touches it (main
 * too, under the barrier): no lock. An upstream leg that lands on another
 * thread keeps a side context there (singbox_leg_t) and sends what happens
 * to it to the record's thread by message; actions on a leg go to the
 * leg's thread (singbox.h, "Threads" in plugin/API.md). Messages between
 * threads go through singbox_rpc, which never drops one. */

#include <unistd.h>
#include <singbox/singbox.h>
#include <vnet/tcp/tcp.h>
#include <singbox/singbox_tcp_ts.h>

#define SINGBOX_TCP_MSS 1460

/*
 * Messages between threads
 */

/* Queue fn (arg) on thread's session event queue: what
 * session_send_rpc_evt_to_thread_force does, except that a full queue is
 * said (-1) instead of the message being dropped. from_foreign: the
 * caller is not a VPP thread (the crypt thread), where vlib_get_main ()
 * names the main thread's vlib_main_t: the receiver's interrupt is then
 * set atomically and the receiver woken, whichever thread it is. */
static int
singbox_rpc_try (clib_thread_index_t thread, void (*fn) (void *), void *arg, int from_foreign)
{
  session_worker_t *wrk = session_main_get_worker (thread);
  svm_msg_q_t *mq = wrk->vpp_event_queue;
  session_event_t *evt;
  svm_msg_q_msg_t msg;

  if (PREDICT_FALSE (svm_msg_q_lock (mq)))
    return -1;
  if (PREDICT_FALSE (svm_msg_q_or_ring_is_full (mq, SESSION_MQ_IO_EVT_RING)))
    {
      svm_msg_q_unlock (mq);
      return -1;
    }
  msg = svm_msg_q_alloc_msg_w_ring (mq, SESSION_MQ_IO_EVT_RING);
  evt = (session_event_t *) svm_msg_q_msg_data (mq, &msg);
  evt->rpc_args.fp = fn;
  evt->rpc_args.arg = arg;
  evt->event_type = SESSION_CTRL_EVT_RPC;
  svm_msg_q_add_and_unlock (mq, &msg);
  if (PREDICT_FALSE (wrk->state == SESSION_WRK_INTERRUPT))
    {
      if (PREDICT_FALSE (from_foreign))
	{
	  vlib_node_main_t *nm = &wrk->vm->node_main;
	  vlib_node_t *n = vec_elt (nm->nodes, session_queue_node.index);

	  clib_interrupt_set_atomic (nm->node_interrupts[n->type], n->runtime_index);
	  vlib_thread_wakeup (thread);
	}
      else
	vlib_node_set_interrupt_pending (wrk->vm, session_queue_node.index);
    }
  return 0;
}

/* From a thread that is not VPP's (the crypt thread, which has no
 * singbox_worker_t): like singbox_rpc, but a full queue is waited out
 * there, 1 ms at a time, which keeps the order too. Returns how many
 * times it had to wait. */
u32
singbox_rpc_from_foreign (clib_thread_index_t thread, void (*fn) (void *), void *arg)
{
  u32 n_waits = 0;

  while (singbox_rpc_try (thread, fn, arg, 1))
    {
      n_waits++;
      usleep (1000);
    }
  return n_waits;
}

/* Send again, oldest first, what a full queue deferred; on the sender's
 * thread (each singbox_rpc, and every 0.5 s from singbox-process's
 * expiry). */
void
singbox_rpc_flush (void)
{
  singbox_worker_t *wrk = singbox_worker_get (vlib_get_thread_index ());
  singbox_rpc_deferred_t *d;
  u32 n = 0;

  vec_foreach (d, wrk->deferred)
    {
      if (singbox_rpc_try (d->thread, d->fn, d->arg, 0))
	break;
      n++;
    }
  if (n)
    vec_delete (wrk->deferred, n, 0);
}

/* Run fn (arg) on thread, later (also when it is this thread). A thread's
 * event queue can be full (a burst of closes with workers): VPP's
 * session_send_rpc_evt_to_thread_force then drops the message, and a lost
 * close or end of a leg leaks its session for good. Here it waits in this
 * thread's deferred list, and everything this thread sends afterwards
 * waits behind it, so messages keep their order. */
void
singbox_rpc (clib_thread_index_t thread, void (*fn) (void *), void *arg)
{
  singbox_worker_t *wrk = singbox_worker_get (vlib_get_thread_index ());
  singbox_rpc_deferred_t *d;

  if (PREDICT_FALSE (vec_len (wrk->deferred)))
    singbox_rpc_flush ();
  if (PREDICT_TRUE (!vec_len (wrk->deferred)) && !singbox_rpc_try (thread, fn, arg, 0))
    return;
  vec_add2 (wrk->deferred, d, 1);
  d->thread = thread;
  d->fn = fn;
  d->arg = arg;
  wrk->n_rpc_deferred++;
}

/* Data enqueued in f is for the leg `to`: make it transmit. */
void
singbox_relay_kick (svm_fifo_t *f, session_handle_t to)
{
  if (to != SESSION_INVALID_HANDLE && svm_fifo_max_dequeue (f) && svm_fifo_set_event (f))
    session_program_tx_io_evt (to, SESSION_IO_EVT_TX);
}

/* A leg received into f, the other leg's tx fifo: relay, and when f is
 * about full ask to hear when `to` drains it, to reopen the window then
 * (singbox_leg_tx). */
void
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

/* A record in this thread's pool. The mode's table of callbacks is chosen
 * here, once. */
singbox_session_t *
singbox_session_alloc (singbox_mode_t mode)
{
  clib_thread_index_t thread = vlib_get_thread_index ();
  singbox_worker_t *wrk = singbox_worker_get (thread);
  singbox_session_t *ss;

  pool_get_zero (wrk->sessions, ss);
  ss->index = singbox_session_handle_make (thread, ss - wrk->sessions);
  ss->generation = ++wrk->generation;
  ss->mode = mode;
  ss->po_handle = SESSION_INVALID_HANDLE;
  ss->ao_handle = SESSION_INVALID_HANDLE;
  ss->udp_listen_handle = SESSION_INVALID_HANDLE;
  ss->user_index = ~0;
  ss->group_index = ~0;
  ss->ao_leg = ~0;
  return ss;
}

/* Stop counting the session against max-sessions or its interface's
 * max-connections and in the active gauges (see singbox_po_ending). */
void
singbox_session_release_active (singbox_session_t *ss)
{
  if (!ss->counted_active)
    return;
  ss->counted_active = 0;
  singbox_session_vft (ss)->release_active (ss);
}

/* On the record's thread. */
void
singbox_session_free (singbox_session_t *ss)
{
  singbox_worker_t *wrk = singbox_worker_get (singbox_session_thread (ss));
  const singbox_session_vft_t *vft = singbox_session_vft (ss);
  u32 index = ss->index & SINGBOX_SESSION_INDEX_MASK;

  SINGBOX_ASSERT_OWNER (ss->index);
  singbox_session_release_active (ss);
  if (vft->free)
    vft->free (ss);
  if (CLIB_DEBUG > 0)
    clib_memset (ss, 0xfe, sizeof (*ss));
  pool_put_index (wrk->sessions, index);
}

/* Look a session up by id, on its thread; the generation guards against a
 * reused slot. */
singbox_session_t *
singbox_session_get_by_id (u64 id)
{
  singbox_session_t *ss = singbox_session_get_if_valid (singbox_session_id_handle (id));

  if (!ss || ss->generation != (u32) (id >> 32))
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

void
singbox_leg_close_rpc (void *arg)
{
  vnet_disconnect_args_t a = { .handle = pointer_to_uword (arg) };

  if (singbox_leg_session (arg, &a.app_index))
    vnet_disconnect_session (&a);
}

void
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

void
singbox_leg_do (session_handle_t sh, void (*fn) (void *))
{
  if (sh == SESSION_INVALID_HANDLE)
    return;
  if (session_thread_from_handle (sh) == vlib_get_thread_index ())
    fn (uword_to_pointer (sh, void *));
  else
    singbox_rpc (session_thread_from_handle (sh), fn, uword_to_pointer (sh, void *));
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
    singbox_rpc (s->thread_index, singbox_ack_probe_rpc,
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

/* The client leg's bytes less the handshake's (server mode's counting). */
void
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
  singbox_session_vft (ss)->count_traffic (ss, po);
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
  session_t *s = session_get_from_handle_if_valid (sh);
  singbox_session_t *ss;
  u32 h;

  if (!s)
    return;
  h = s->opaque;
  if ((ss = singbox_session_get_if_valid (h)) && ss->po_handle == sh)
    singbox_po_ending (ss, s);
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
  /* a FIN carries the ACK; a reset needs none, but the flag must not stay */
  singbox_po_ack_release (ss);
  ss->po_closed = 1;
  if (session_thread_from_handle (sh) != vlib_get_thread_index ())
    {
      singbox_rpc (session_thread_from_handle (sh),
		   reset ? singbox_po_reset_rpc : singbox_po_close_rpc, uword_to_pointer (sh, void *));
      return;
    }
  if ((s = session_get_from_handle_if_valid (sh)))
    singbox_po_ending (ss, s);
  (reset ? singbox_leg_reset_rpc : singbox_leg_close_rpc) (uword_to_pointer (sh, void *));
}

void
singbox_po_close (singbox_session_t *ss)
{
  singbox_leg_end (ss, 1 /* is_po */, 0 /* reset */);
}

void
singbox_ao_close (singbox_session_t *ss)
{
  singbox_leg_end (ss, 0, 0);
}

void
singbox_po_reset (singbox_session_t *ss)
{
  singbox_leg_end (ss, 1, 1);
}

void
singbox_ao_reset (singbox_session_t *ss)
{
  singbox_leg_end (ss, 0, 1);
}

/* Reset the client leg from an RPC, not from inside its accept. */
void
singbox_po_reset_later (singbox_session_t *ss)
{
  singbox_po_ack_release (ss);
  ss->po_closed = 1;
  singbox_rpc (ss->po_thread, singbox_po_reset_rpc, uword_to_pointer (ss->po_handle, void *));
}

/* The client leg's TCP connection, while it has one. */
static tcp_connection_t *
singbox_po_tcp (singbox_session_t *ss)
{
  session_t *s = session_get_from_handle_if_valid (ss->po_handle);

  if (!s || s->session_state >= SESSION_STATE_TRANSPORT_DELETED ||
      session_get_transport_proto (s) != TRANSPORT_PROTO_TCP)
    return 0;
  return (tcp_connection_t *) session_get_transport (s);
}

/* Hold back our ACK of what the client sends next, for our answer to
 * carry. VPP's TCP acknowledges received data with a bare segment from the
 * session queue's next run, which comes before the app hears of the data:
 * every SOCKS5 message cost a bare ACK ahead of its answer, and the
 * request's answer waits for the upstream connect. On af_packet every
 * segment VPP sends costs the peer's TCP receive path in VPP's time
 * (bench/vpp/README.md): connection rates follow the segments sent.
 * TCP_CONN_SNDACK says "an ACK is programmed", so tcp_program_ack queues
 * none while it is set; the answer's segment carries the ACK (every segment
 * VPP sends acknowledges rcv_nxt). Only while the client waits for an
 * answer: the hold lasts through the handshake's answers
 * (singbox_po_send) and ends (singbox_po_ack_release) with the reply that
 * ends the handshake, a close or reset of the leg, the client's FIN, a
 * message that comes in pieces (a client whose Nagle waits for our ACK),
 * and at singbox-process's next expiry for the rest (a slow connect, name
 * lookup or password check): at most 0.5 s, the delay RFC 1122 4.2.3.2
 * allows. A hold does nothing when an ACK is already programmed. On the
 * client leg's thread. */
void
singbox_po_ack_hold (singbox_session_t *ss)
{
  tcp_connection_t *tc;

  SINGBOX_ASSERT_THREAD (ss->po_thread);
  if (ss->ack_held || ss->po_closed || !(tc = singbox_po_tcp (ss)) ||
      tc->state != TCP_STATE_ESTABLISHED || (tc->flags & TCP_CONN_SNDACK))
    return;
  tc->flags |= TCP_CONN_SNDACK;
  ss->ack_held = 1;
}

/* The same hold before the accept, for the client's first message. It
 * comes with (or right behind) the handshake's last ACK, and TCP programs
 * its ACK as it takes the bytes, while the session layer tells the app of
 * the session only from the next dispatch, after the session queue has
 * sent that ACK bare: a segment more than the answer in nearly every
 * session under load. The client leg's app's fifo tuning callback runs as
 * TCP enqueues in-order bytes, before it programs the ACK: the hold is
 * taken there and marked in the session's opaque (no record yet), for the
 * accept to take over (singbox_po_ack_hold_taken). On the leg's thread. */
void
singbox_po_ack_hold_early (session_t *s)
{
  tcp_connection_t *tc;

  if (session_get_transport_proto (s) != TRANSPORT_PROTO_TCP ||
      (s->opaque & SINGBOX_PO_EARLY_ACK_HELD))
    return;
  tc = (tcp_connection_t *) session_get_transport (s);
  if (!tc || tc->state != TCP_STATE_ESTABLISHED || (tc->flags & TCP_CONN_SNDACK))
    return;
  tc->flags |= TCP_CONN_SNDACK;
  s->opaque = SINGBOX_PO_EARLY_ACK_HELD;
}

/* At the accept: the record takes over a hold taken before it. */
void
singbox_po_ack_hold_taken (singbox_session_t *ss, session_t *s)
{
  if (s->opaque & SINGBOX_PO_EARLY_ACK_HELD)
    ss->ack_held = 1;
}

/* End a hold: an ACK owed goes out with what is queued for the client, or
 * bare. TCP may have cleared the flag meanwhile (a FIN carries the ACK). */
void
singbox_po_ack_release (singbox_session_t *ss)
{
  tcp_connection_t *tc;

  if (PREDICT_TRUE (!ss->ack_held))
    return;
  SINGBOX_ASSERT_THREAD (ss->po_thread);
  ss->ack_held = 0;
  if (!(tc = singbox_po_tcp (ss)) || !(tc->flags & TCP_CONN_SNDACK))
    return;
  tc->flags &= ~TCP_CONN_SNDACK;
  /* something received since our last segment */
  if (tc->rcv_nxt != tc->rcv_las)
    tcp_program_ack (tc);
}

/* singbox-process's expiry: end a hold only when it delays an ACK: the
 * client sent since our last segment (a slow connect, name lookup or
 * password check), or TCP wanted a duplicate ACK (a segment out of order or
 * below the window). A hold that waits for the client's next message delays
 * nothing; ended, it left that message's ACK to TCP, which sent it bare
 * whenever the message came after an expiry (a slow client; or with
 * workers, whose session queue may run after the app's callbacks: TCP's
 * programmed ACK of the greeting then rode on the method selection, but
 * kept the request's hold from being taken). An ACK owed waits at most one
 * expiry period (0.5 s). */
static void
singbox_po_ack_release_owed (singbox_session_t *ss)
{
  tcp_connection_t *tc;

  if (PREDICT_TRUE (!ss->ack_held))
    return;
  if ((tc = singbox_po_tcp (ss)) && (tc->flags & TCP_CONN_SNDACK) && tc->rcv_nxt == tc->rcv_las &&
      !tc->pending_dupacks)
    return;
  singbox_po_ack_release (ss);
}

/* Write handshake bytes to the client; only before the fifos are crossed or
 * from inside the upstream fifo allocation. They carry the ACK held back,
 * and a hold goes on: once they are out, it is for the next message (ending
 * it here made TCP program the ACK again, after which a hold is not taken). */
void
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
  SINGBOX_ASSERT_THREAD (ss->po_thread);
  ss->state = SINGBOX_SESSION_STATE_CLOSING;
  ss->deadline = 0;
  svm_fifo_dequeue_drop_all (ss->po_rx_fifo);
  singbox_po_close (ss);
}

/*
 * Upstream connect
 */

/* Every half-open is the connects thread's (transport_cl_thread (): worker
 * 1 with workers, else main): VPP makes it there, in that thread's session
 * pool, and only there can it be closed. So the records of every thread
 * connect through that thread (singbox_connect_do, by message when the
 * record is another thread's, as vnet_connect2 itself would), which keeps
 * the half-open of each connect: by session id, to close it when the
 * session ends first (singbox_connect_cancel_do), and back, to know when
 * it is gone (singbox_ao_half_open_cleanup). Only that thread touches
 * these tables. */
typedef struct
{
  uword *ho_by_id; /* session id -> half-open handle */
  uword *id_by_ho; /* half-open handle -> session id | SINGBOX_CONNECT_CANCELLED */
} singbox_connects_t;

static singbox_connects_t singbox_connects;

/* the half-open was closed (bit 31 of a session id, its handle's, is clear) */
#define SINGBOX_CONNECT_CANCELLED (1ULL << 31)

typedef struct
{
  u64 id; /* the record's session id */
  ip46_address_t ip;
  u32 fib_index;
  u16 port; /* host order */
  u8 is_ip4;
} singbox_connect_msg_t;

static void singbox_ao_connect_failed (singbox_session_t *ss, session_error_t err);

/* On the connects thread: vnet_connect2 connects in place there (hs_apps
 * proxy does the same from its callbacks). A connect that fails at once is
 * reported from inside it (singbox_ao_connected); else the outcome comes
 * later, on the thread taking the SYN-ACK, and the half-open's cleanup
 * after it, here. */
static void
singbox_connect_do (singbox_connect_msg_t *c)
{
  singbox_connects_t *cm = &singbox_connects;
  vnet_connect_args_t _a = {}, *a = &_a;

  ASSERT (vlib_get_thread_index () == transport_cl_thread ());
  a->sep_ext = (session_endpoint_cfg_t) SESSION_ENDPOINT_CFG_NULL;
  a->sep_ext.transport_proto = TRANSPORT_PROTO_TCP;
  a->sep_ext.is_ip4 = c->is_ip4;
  a->sep_ext.ip = c->ip;
  a->sep_ext.port = clib_host_to_net_u16 (c->port);
  a->sep_ext.fib_index = c->fib_index;
  a->api_context = singbox_session_id_handle (c->id);
  a->app_index = singbox_main.upstream_app_index;
  a->sh = SESSION_INVALID_HANDLE;
  vnet_connect2 (a);
  if (a->sh == SESSION_INVALID_HANDLE)
    return;
  hash_set (cm->ho_by_id, c->id, a->sh);
  hash_set (cm->id_by_ho, a->sh, c->id);
}

static void
singbox_connect_rpc (void *arg)
{
  singbox_connect_do (arg);
  clib_mem_free (arg);
}

/* On the record's thread. */
void
singbox_session_connect_to (singbox_session_t *ss, ip46_address_t *ip, u8 is_ip4, u16 port,
			    u32 fib_index)
{
  singbox_connect_msg_t _c, *c = &_c;
  clib_thread_index_t cl_thread = transport_cl_thread ();

  SINGBOX_ASSERT_OWNER (ss->index);
  SINGBOX_DBG ("session %u connect %U:%u", ss->index, format_ip46_address, ip, IP46_TYPE_ANY, port);
  ss->connecting = 1;
  ss->connect_cancelled = 0;
  ss->cancel_acks = 0;
  if (vlib_get_thread_index () != cl_thread)
    c = clib_mem_alloc (sizeof (*c));
  c->id = singbox_session_id (ss);
  c->ip = *ip;
  c->fib_index = fib_index;
  c->port = port;
  c->is_ip4 = is_ip4;
  /* nothing of ss after this: a connect failing at once may free it */
  if (c == &_c)
    singbox_connect_do (c);
  else
    singbox_rpc (cl_thread, singbox_connect_rpc, c);
}

/* On the connects thread: close the half-open of session `id`, unless it
 * is gone (the connect was reported: the outcome reaches the record) or
 * the SYN-ACK came (reported on the thread that took it, or about to be). */
static void
singbox_connect_cancel_do (u64 id)
{
  singbox_connects_t *cm = &singbox_connects;
  vnet_disconnect_args_t a = { .app_index = singbox_main.upstream_app_index };
  session_t *ho;
  uword *p;

  ASSERT (vlib_get_thread_index () == transport_cl_thread ());
  if (!(p = hash_get (cm->ho_by_id, id)))
    return;
  a.handle = p[0];
  ho = session_get_from_handle_if_valid (a.handle);
  if (!ho || ho->session_state != SESSION_STATE_CONNECTING)
    return;
  hash_set (cm->id_by_ho, a.handle, id | SINGBOX_CONNECT_CANCELLED);
  vnet_disconnect_session (&a);
}

static void
singbox_connect_cancel_rpc (void *arg)
{
  singbox_connect_cancel_do (pointer_to_uword (arg));
}

/* The session ends while its upstream is still connecting (a connect
 * timeout to an address that never answers): close the half-open rather
 * than keep the record until TCP gives up on the SYN, a minute later.
 * The connects thread closes it (singbox_connect_cancel_do); when it is
 * gone, every thread confirms to the record's that no connect of it can
 * still come (singbox_ao_half_open_cleanup). On the record's thread. */
void
singbox_session_cancel_connect (singbox_session_t *ss)
{
  u64 id = singbox_session_id (ss);

  SINGBOX_ASSERT_OWNER (ss->index);
  if (!ss->connecting || ss->connect_cancelled)
    return;
  ss->connect_cancelled = 1;
  if (vlib_get_thread_index () == transport_cl_thread ())
    singbox_connect_cancel_do (id);
  else
    singbox_rpc (transport_cl_thread (), singbox_connect_cancel_rpc, uword_to_pointer (id, void *));
}

/* On the record's thread: one more thread has nothing more to report of
 * the closed half-open. After all of them the connect is over. */
static void
singbox_connect_cancel_ack_rpc (void *arg)
{
  singbox_session_t *ss = singbox_session_get_by_id (pointer_to_uword (arg));

  if (!ss || !ss->connecting || !ss->connect_cancelled)
    return; /* the connect was reported after all */
  SINGBOX_ASSERT_OWNER (ss->index);
  if (++ss->cancel_acks == vlib_get_n_threads ())
    singbox_ao_connect_failed (ss, SESSION_E_NONE);
}

/* On each thread, after the closed half-open left the lookup table: a
 * SYN-ACK this thread matched to it before was handled in an earlier
 * dispatch (an RPC runs in the session queue's input node, before the
 * dispatch's packets), and its report, a message to the record's thread,
 * or the record's thread's own callback, is ahead of this answer (messages
 * between two threads keep their order). */
static void
singbox_connect_sweep_rpc (void *arg)
{
  singbox_rpc (singbox_session_handle_thread (singbox_session_id_handle (pointer_to_uword (arg))),
	       singbox_connect_cancel_ack_rpc, arg);
}

static int
singbox_po_rx (session_t *s)
{
  u32 h;
  singbox_session_t *ss;
  session_handle_t ao_handle;
  svm_fifo_t *f = s->rx_fifo;

  h = s->opaque;
  ss = singbox_session_get (h);
  SINGBOX_ASSERT_THREAD (ss->po_thread);
  ss->last_active = vlib_time_now (vlib_get_main ());
  if (PREDICT_FALSE (ss->state != SINGBOX_SESSION_STATE_ESTABLISHED))
    {
      /* the mode's handshake, or data waiting for the upstream */
      ao_handle = singbox_session_vft (ss)->client_rx (s, ss);
      if (ao_handle != SESSION_INVALID_HANDLE)
	singbox_relay_kick (f, ao_handle);
      return 0;
    }
  ao_handle = ss->ao_handle;
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

/* Space was freed in s's tx fifo: once there is enough, the other leg
 * (`other`, when relaying) may reopen its window. */
static void
singbox_leg_tx (session_t *s, session_handle_t other)
{
  u32 min_free;

  min_free = clib_min (svm_fifo_size (s->tx_fifo) >> 3, 128 << 10);
  if (svm_fifo_max_enqueue (s->tx_fifo) < min_free)
    {
      svm_fifo_add_want_deq_ntf (s->tx_fifo, SVM_FIFO_WANT_DEQ_NOTIF);
      return;
    }
  if (other == SESSION_INVALID_HANDLE)
    return;
  if (session_thread_from_handle (other) == vlib_get_thread_index ())
    singbox_force_ack_rpc (uword_to_pointer (other, void *));
  else
    singbox_rpc (session_thread_from_handle (other), singbox_force_ack_rpc,
		 uword_to_pointer (other, void *));
}

static int
singbox_po_tx (session_t *s)
{
  singbox_session_t *ss = singbox_session_get (s->opaque);

  singbox_leg_tx (s, ss->state == SINGBOX_SESSION_STATE_ESTABLISHED ? ss->ao_handle :
								      SESSION_INVALID_HANDLE);
  return 0;
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
  u32 h;
  const singbox_session_vft_t *vft;
  singbox_session_t *ss;

  h = s->opaque;
  ss = singbox_session_get (h);
  SINGBOX_ASSERT_THREAD (ss->po_thread);
  SINGBOX_DBG ("session %u: client FIN (state %U)", ss->index, format_singbox_session_state,
	       (u32) ss->state);
  ss->po_fin = 1;
  /* TCP's ACK of the FIN was held back with the rest */
  singbox_po_ack_release (ss);
  vft = singbox_session_vft (ss);
  if (ss->state == SINGBOX_SESSION_STATE_ESTABLISHED)
    {
      /* The FIN notification can overtake the rx notification of the data
       * before it (and then disables rx notifications): relay that data
       * now, it must reach the destination before our FIN does. */
      singbox_relay_kick (s->rx_fifo, ss->ao_handle);
      /* half-close: pass the FIN upstream once the data before it is sent */
      singbox_leg_do (ss->ao_handle, singbox_leg_shutdown_rpc);
      singbox_session_maybe_finish (ss);
    }
  else if (vft->client_fin && vft->client_fin (s, ss))
    ; /* the mode passes it on later */
  else
    {
      /* before the relay: nothing to deliver; a pending connect finds the
       * client gone when its fifos are attached */
      svm_fifo_dequeue_drop_all (s->rx_fifo);
      ss->state = SINGBOX_SESSION_STATE_CLOSING;
      singbox_po_close (ss);
    }
}

static void
singbox_po_reset_cb (session_t *s)
{
  u32 h;
  singbox_session_t *ss;

  h = s->opaque;
  ss = singbox_session_get (h);
  SINGBOX_ASSERT_THREAD (ss->po_thread);
  ss->state = SINGBOX_SESSION_STATE_CLOSING;
  singbox_po_close (ss);
  singbox_ao_reset (ss);
}

static void
singbox_po_cleanup (session_t *s, session_cleanup_ntf_t ntf)
{
  u32 h;
  singbox_session_t *ss;

  h = s->opaque;
  ss = singbox_session_get (h);
  SINGBOX_ASSERT_THREAD (ss->po_thread);
  /* a hold went with the transport */
  ss->ack_held = 0;
  if (ntf == SESSION_CLEANUP_TRANSPORT)
    {
      singbox_session_count_traffic (ss, s);
      singbox_session_release_active (ss);
      /* The transport went before we closed the leg (the client's reset
       * after its FIN, which in CLOSE_WAIT is no reset notification, or
       * tcp's closewait-time): VPP frees the session, and calls us back
       * to free the record, only once we close it too. Marking it closed
       * without that left the record (and the session) for good. */
      if (!ss->po_closed)
	{
	  ss->po_closed = 1;
	  singbox_leg_close_rpc (uword_to_pointer (session_handle (s), void *));
	}
      /* the transport is gone: make sure the upstream leg follows */
      if (!ss->ao_fin || !ss->po_fin)
	singbox_ao_close (ss);
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
}

/* Grow a fifo that keeps filling up, shrink it as it drains, while its
 * segment has room: the TCP window follows the fifo, so a fixed fifo caps a
 * fast stream. The same policy as hs_apps proxy (its watermarks, 80 % and
 * 50 % of the segment), up to the configured max-fifo-size. */
int
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

/* The callbacks of a client leg's app that are the relay's: the mode's app
 * adds its accept (and what else it needs). */
void
singbox_session_client_leg_cbs (session_cb_vft_t *vft)
{
  vft->session_disconnect_callback = singbox_po_disconnect;
  vft->session_connected_callback = singbox_po_connected;
  vft->session_reset_callback = singbox_po_reset_cb;
  vft->session_cleanup_callback = singbox_po_cleanup;
  vft->builtin_app_rx_callback = singbox_po_rx;
  vft->builtin_app_tx_callback = singbox_po_tx;
  /* without it the upstream leg's tuning only ever shrank an intercepted
   * connection's rx fifo (its tx fifo, crossed): 4 KB windows, 38 Mbit/s */
  vft->fifo_tuning_callback = singbox_fifo_tuning;
  vft->add_segment_callback = singbox_add_segment;
  vft->del_segment_callback = singbox_del_segment;
}

/* The upstream leg s takes the client leg's fifos, crossed. Lock held. */
void
singbox_session_cross_fifos (session_t *s, singbox_session_t *ss)
{
  ss->crossed = 1;
  ss->po_rx_fifo->vpp_sh = s->handle;
  ss->po_rx_fifo->refcnt++;
  ss->po_tx_fifo->refcnt++;
  s->rx_fifo = ss->po_tx_fifo;
  s->tx_fifo = ss->po_rx_fifo;
}

/*
 * Upstream leg (active open) callbacks
 *
 * The upstream leg lands on the thread whose rx queue takes the SYN-ACK.
 * On the record's thread its callbacks work on the record directly. On
 * another thread (workers polling different interfaces, RSS) the leg gets
 * fifos of its own and a singbox_leg_t in that thread's pool, and each of
 * its callbacks becomes a message to the record's thread
 * (singbox_leg_msg_rpc), which does there what the callback does for a
 * local leg, with a stand-in for the session (singbox_ao_session). Once the
 * handshake is over the record's thread asks the leg's thread to take the
 * client's fifos, crossed (singbox_leg_cross_rpc); from then on the leg
 * relays by itself: its rx and tx notifications only kick the client leg.
 * The leg's fifos stay allocated until the record's thread has seen it
 * closed, since that thread reads them while the handshake runs.
 */

/* what a leg of another thread tells the record's thread */
typedef enum
{
  SINGBOX_LEG_EV_CONNECTED,
  SINGBOX_LEG_EV_FAILED,
  SINGBOX_LEG_EV_RX,
  SINGBOX_LEG_EV_FIN,
  SINGBOX_LEG_EV_RESET,
  SINGBOX_LEG_EV_GONE, /* its transport went */
  SINGBOX_LEG_EV_CLOSED,
} singbox_leg_event_t;

typedef struct
{
  u32 owner; /* the record's handle */
  u32 leg;   /* the leg's singbox_leg_t on its thread */
  session_handle_t ao_handle;
  u8 event;	  /* singbox_leg_event_t */
  u8 crossed;	  /* CLOSED: the leg had the client's fifos */
  u8 po_fin;	  /* CROSS: pass the client's FIN on */
  u32 err;	  /* FAILED: session_error_t */
  svm_fifo_t *rx; /* CONNECTED, CLOSED, FREE: the leg's own fifos; CROSS: the client's */
  svm_fifo_t *tx;
  session_handle_t po_handle; /* CROSS */
  transport_endpoint_t lcl;   /* CONNECTED */
} singbox_leg_msg_t;

static void singbox_leg_msg_rpc (void *arg);

static singbox_leg_msg_t *
singbox_leg_msg (u32 owner, u32 leg, session_handle_t ao_handle, u8 event)
{
  singbox_leg_msg_t *m = clib_mem_alloc (sizeof (*m));

  clib_memset (m, 0, sizeof (*m));
  m->owner = owner;
  m->leg = leg;
  m->ao_handle = ao_handle;
  m->event = event;
  return m;
}

static void
singbox_leg_send (singbox_leg_msg_t *m)
{
  singbox_rpc (singbox_session_handle_thread (m->owner), singbox_leg_msg_rpc, m);
}

/* A leg of another thread tells its record what happened to it. */
static void
singbox_leg_tell (session_t *s, u8 event)
{
  singbox_leg_t *leg = singbox_leg_get (s->opaque);

  singbox_leg_send (singbox_leg_msg (leg->owner, s->opaque, leg->ao_handle, event));
}

/* The upstream leg as the record's thread sees it: the session itself on
 * this thread; for a leg of another thread a stand-in with what the modes'
 * hooks read, its handle and its fifos (its own ones until crossed, which
 * stay allocated until its CLOSED message). 0 when the leg is gone. */
session_t *
singbox_ao_session (singbox_session_t *ss, session_t *tmp)
{
  SINGBOX_ASSERT_OWNER (ss->index);
  if (ss->ao_handle == SESSION_INVALID_HANDLE)
    return 0;
  if (!ss->ao_remote)
    return session_get_from_handle_if_valid (ss->ao_handle);
  clib_memset (tmp, 0, sizeof (*tmp));
  tmp->handle = ss->ao_handle;
  tmp->session_state = SESSION_STATE_READY;
  tmp->opaque = ss->index;
  tmp->app_wrk_index = APP_INVALID_INDEX;
  tmp->rx_fifo = ss->crossed ? ss->po_tx_fifo : ss->ao_own_rx;
  tmp->tx_fifo = ss->crossed ? ss->po_rx_fifo : ss->ao_own_tx;
  return tmp;
}

/* The upstream leg's local endpoint (the server's BND.ADDR, BND.PORT). */
void
singbox_ao_lcl (singbox_session_t *ss, session_t *s, transport_endpoint_t *lcl)
{
  transport_endpoint_t rmt = {};

  if (!ss->ao_remote)
    {
      session_get_endpoint (s, &rmt, lcl);
      return;
    }
  lcl->ip = ss->ao_lcl_ip;
  lcl->port = ss->ao_lcl_port;
  lcl->is_ip4 = ss->ao_lcl_is_ip4;
}

/* Gives an upstream leg fifos of its own from its app worker's connect
 * segment manager, on its thread (a leg attached with SESSION_F_PROXY has
 * none until the mode decides): for a handshake that must not touch the
 * client's fifos, or for a leg of another thread. */
int
singbox_session_own_fifos (session_t *s)
{
  segment_manager_t *smg;
  svm_fifo_t *rx = 0, *tx = 0;
  int rv;

  smg = app_worker_get_connect_segment_manager (app_worker_get (s->app_wrk_index));
  if ((rv = segment_manager_alloc_session_fifos (smg, s->thread_index, &rx, &tx)))
    return rv;
  rx->vpp_sh = s->handle;
  tx->vpp_sh = s->handle;
  s->rx_fifo = rx;
  s->tx_fifo = tx;
  s->flags &= ~SESSION_F_PROXY;
  return 0;
}

/* Runs on the upstream's thread right after the TCP handshake, before the
 * session is usable: the mode attaches the client's fifos crossed (server
 * mode writes its success reply first, ahead of anything the destination
 * may send) or gives the leg fifos of its own for a handshake. A leg of
 * another thread always gets fifos of its own (singbox_leg_alloc_fifos). */
static int
singbox_leg_alloc_fifos (session_t *s)
{
  singbox_worker_t *wrk = singbox_worker_get (s->thread_index);
  singbox_leg_t *leg;
  int rv;

  SINGBOX_ASSERT_THREAD (s->thread_index);
  if ((rv = singbox_session_own_fifos (s)))
    return rv;
  pool_get_zero (wrk->legs, leg);
  leg->owner = s->opaque;
  leg->ao_handle = s->handle;
  leg->po_handle = SESSION_INVALID_HANDLE;
  s->opaque = SINGBOX_LEG_HANDLE_FLAG | singbox_session_handle_make (s->thread_index, leg - wrk->legs);
  return 0;
}

/* The upstream leg is on another thread than its record (always so with
 * singbox_main.test_remote_upstream, which tests that path without workers). */
static_always_inline int
singbox_ao_is_remote (u32 owner, clib_thread_index_t thread)
{
  return singbox_session_handle_thread (owner) != thread ||
	 PREDICT_FALSE (singbox_main.test_remote_upstream);
}

static int
singbox_ao_alloc_fifos (session_t *s)
{
  u32 h;
  singbox_session_t *ss;
  u8 cross = 0;
  int rv;

  /* before TCP acks the SYN-ACK: see singbox_tcp_ts.h */
  singbox_tcp_ts_monotonic (s, 0);
  h = s->opaque;
  if (singbox_ao_is_remote (h, s->thread_index))
    return singbox_leg_alloc_fifos (s);
  ss = singbox_session_get (h);
  if (!ss->pooled && (ss->po_closed || ss->po_handle == SESSION_INVALID_HANDLE))
    return SESSION_E_ALLOC;

  rv = singbox_session_vft (ss)->upstream_fifos (s, ss, &cross);
  if (!rv && cross)
    singbox_session_cross_fifos (s, ss);
  return rv;
}

/* The connect failed; on the record's thread. */
static void
singbox_ao_connect_failed (singbox_session_t *ss, session_error_t err)
{
  ss->connecting = 0;
  SINGBOX_DBG ("session %u connect failed: %U", ss->index, format_session_error, err);
  if (ss->po_handle == SESSION_INVALID_HANDLE)
    singbox_session_free (ss);
  else if (!ss->connect_cancelled) /* a cancelled one was ended already */
    singbox_session_vft (ss)->upstream_connect_failed (ss, err);
}

/* The upstream leg s is connected and usable; on the record's thread. */
static void
singbox_ao_up (singbox_session_t *ss, session_t *s)
{
  const singbox_session_vft_t *vft = singbox_session_vft (ss);

  if (ss->po_closed)
    {
      /* the client left while we connected */
      singbox_ao_close (ss);
      return;
    }
  if (vft->upstream_connected && vft->upstream_connected (s, ss))
    return;
  ss->state = SINGBOX_SESSION_STATE_ESTABLISHED;
  ss->deadline = 0;
  ss->last_active = vlib_time_now (vlib_get_main ());

  /* server mode: its reply queued with the upstream's fifos, which carries
   * the ACK of the request */
  singbox_po_ack_release (ss);
  session_program_tx_io_evt (ss->po_handle, SESSION_IO_EVT_TX);
  /* Data the client pipelined after its request. If it filled the fifo
   * while we resolved or connected, the client saw a zero window: the
   * dequeue notification reopens it rather than the client's persist timer.
   * A leg of another thread does this once it has crossed. */
  if (!ss->ao_remote)
    singbox_relay_rx (s->tx_fifo, s->handle);
}

static int
singbox_ao_connected (u32 app_wrk_index, u32 opaque, session_t *s, session_error_t err)
{
  singbox_leg_msg_t *m;
  transport_endpoint_t rmt = {};
  singbox_session_t *ss;

  if (err)
    {
      /* on the connects thread */
      if (singbox_session_handle_thread (opaque) != vlib_get_thread_index ())
	{
	  m = singbox_leg_msg (opaque, ~0, SESSION_INVALID_HANDLE, SINGBOX_LEG_EV_FAILED);
	  m->err = err;
	  singbox_leg_send (m);
	  return 0;
	}
      singbox_ao_connect_failed (singbox_session_get (opaque), err);
      return 0;
    }

  if (s->opaque & SINGBOX_LEG_HANDLE_FLAG)
    {
      m = singbox_leg_msg (opaque, s->opaque, s->handle, SINGBOX_LEG_EV_CONNECTED);
      m->rx = s->rx_fifo;
      m->tx = s->tx_fifo;
      session_get_endpoint (s, &rmt, &m->lcl);
      singbox_leg_send (m);
      return 0;
    }

  ss = singbox_session_get (opaque);
  ss->connecting = 0;
  ss->ao_handle = session_handle (s);
  s->opaque = ss->index;
  singbox_ao_up (ss, s);
  return 0;
}

/* The upstream sent; on the record's thread. */
static void
singbox_ao_rx_owner (singbox_session_t *ss, session_t *s)
{
  const singbox_session_vft_t *vft = singbox_session_vft (ss);

  ss->last_active = vlib_time_now (vlib_get_main ());
  if (PREDICT_FALSE (ss->state != SINGBOX_SESSION_STATE_ESTABLISHED) && vft->upstream_rx &&
      vft->upstream_rx (s, ss))
    return;
  SINGBOX_DBG ("session %u: upstream rx %u", ss->index, svm_fifo_max_dequeue (s->rx_fifo));
  singbox_relay_rx (s->rx_fifo, ss->po_handle);
}

static int
singbox_ao_rx (session_t *s)
{
  singbox_leg_t *leg;

  if (s->session_state >= SESSION_STATE_APP_CLOSED)
    return -1;
  if (s->opaque & SINGBOX_LEG_HANDLE_FLAG)
    {
      leg = singbox_leg_get (s->opaque);
      if (leg->crossed)
	singbox_relay_rx (s->rx_fifo, leg->po_handle);
      else if (!leg->cross_wanted)
	/* the handshake's replies, read on the record's thread */
	singbox_leg_tell (s, SINGBOX_LEG_EV_RX);
      return 0;
    }
  singbox_ao_rx_owner (singbox_session_get (s->opaque), s);
  return 0;
}

static void singbox_leg_try_cross (session_t *s, singbox_leg_t *leg);

static int
singbox_ao_tx (session_t *s)
{
  const singbox_session_vft_t *vft;
  singbox_session_t *ss;
  singbox_leg_t *leg;

  if (s->opaque & SINGBOX_LEG_HANDLE_FLAG)
    {
      leg = singbox_leg_get (s->opaque);
      if (leg->cross_wanted)
	singbox_leg_try_cross (s, leg);
      else if (leg->crossed)
	singbox_leg_tx (s, leg->established ? leg->po_handle : SESSION_INVALID_HANDLE);
      return 0;
    }
  ss = singbox_session_get (s->opaque);
  vft = singbox_session_vft (ss);
  if (vft->upstream_tx && vft->upstream_tx (s, ss))
    return 0;
  singbox_leg_tx (s, ss->state == SINGBOX_SESSION_STATE_ESTABLISHED ? ss->po_handle :
								      SESSION_INVALID_HANDLE);
  return 0;
}

/* The destination sent FIN; on the record's thread. */
static void
singbox_ao_fin_owner (singbox_session_t *ss, session_t *s)
{
  const singbox_session_vft_t *vft;

  SINGBOX_DBG ("session %u: upstream FIN", ss->index);
  vft = singbox_session_vft (ss);
  if (vft->upstream_fin && vft->upstream_fin (s, ss))
    return;
  ss->ao_fin = 1;
  singbox_relay_kick (s->rx_fifo, ss->po_handle);
  if (!ss->po_closed)
    singbox_leg_do (ss->po_handle, singbox_leg_shutdown_rpc);
  else
    singbox_ao_close (ss);
  singbox_session_maybe_finish (ss);
  if (vft->probe_client_ack && ss->po_handle != SESSION_INVALID_HANDLE)
    singbox_po_ack_probe (ss->po_handle);
}

static void
singbox_ao_disconnect (session_t *s)
{
  if (s->opaque & SINGBOX_LEG_HANDLE_FLAG)
    singbox_leg_tell (s, SINGBOX_LEG_EV_FIN);
  else
    singbox_ao_fin_owner (singbox_session_get (s->opaque), s);
}

/* The destination reset; on the record's thread. */
static void
singbox_ao_reset_owner (singbox_session_t *ss)
{
  if (singbox_session_vft (ss)->upstream_reset)
    singbox_session_vft (ss)->upstream_reset (ss);
  ss->state = SINGBOX_SESSION_STATE_CLOSING;
  singbox_ao_close (ss);
  singbox_po_reset (ss);
}

static void
singbox_ao_reset_cb (session_t *s)
{
  if (s->opaque & SINGBOX_LEG_HANDLE_FLAG)
    singbox_leg_tell (s, SINGBOX_LEG_EV_RESET);
  else
    singbox_ao_reset_owner (singbox_session_get (s->opaque));
}

static void
singbox_postponed_free_rpc (void *arg)
{
  u32 h = pointer_to_uword (arg);
  singbox_session_t *ss;

  ss = singbox_session_get (h);
  segment_manager_dealloc_fifos (ss->po_rx_fifo, ss->po_tx_fifo);
  singbox_session_free (ss);
}

/* The upstream's transport is gone (e.g. it sent FIN, then answered our
 * data with a reset, which in CLOSE_WAIT is no reset notification): it can
 * take nothing more. A client that has not finished sending would otherwise
 * fill its rx fifo, which nobody reads now, and hang on a zero window until
 * the idle timeout. Drop that data and end the client leg, as a closed
 * socket would: reset it unless upstream data is still queued for it; then
 * a FIN keeps that data, and po_rx drops what the client still sends. On
 * the record's thread. */
static void
singbox_ao_transport_gone (singbox_session_t *ss)
{
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
}

/* The upstream leg is freed: the record goes if the client leg went too,
 * else the client leg follows. On the record's thread. */
static void
singbox_ao_closed_owner (singbox_session_t *ss)
{
  ss->ao_handle = SESSION_INVALID_HANDLE;
  ss->ao_closed = 1;
  ss->ao_remote = 0;
  ss->ao_own_rx = 0;
  ss->ao_own_tx = 0;
  if (ss->po_handle == SESSION_INVALID_HANDLE)
    singbox_session_free (ss);
  else if (!ss->po_closed)
    {
      /* upstream gone for good: finish the client leg too */
      if (!ss->ao_fin)
	singbox_po_reset (ss);
    }
}

static void
singbox_ao_cleanup (session_t *s, session_cleanup_ntf_t ntf)
{
  singbox_session_t *ss;
  singbox_leg_msg_t *m;
  singbox_leg_t *leg;
  u32 h;

  if (s->opaque & SINGBOX_LEG_HANDLE_FLAG)
    {
      if (ntf == SESSION_CLEANUP_TRANSPORT)
	{
	  singbox_leg_tell (s, SINGBOX_LEG_EV_GONE);
	  return;
	}
      leg = singbox_leg_get (s->opaque);
      m = singbox_leg_msg (leg->owner, s->opaque, leg->ao_handle, SINGBOX_LEG_EV_CLOSED);
      m->crossed = leg->crossed;
      if (leg->crossed)
	/* the client's fifos, freed by the record's thread, which allocated
	 * them; the rx one's owner was switched to this leg while crossed */
	leg->po_rx_fifo->master_thread_index = leg->po_tx_fifo->master_thread_index;
      else
	{
	  /* its own ones, which the record's thread may still read: it
	   * sends them back to be freed here (singbox_leg_free_fifos_rpc) */
	  m->rx = s->rx_fifo;
	  m->tx = s->tx_fifo;
	}
      s->rx_fifo = 0;
      s->tx_fifo = 0;
      pool_put (singbox_worker_get (s->thread_index)->legs, leg);
      singbox_leg_send (m);
      return;
    }

  h = s->opaque;
  ss = singbox_session_get (h);
  if (ntf == SESSION_CLEANUP_TRANSPORT)
    {
      singbox_ao_transport_gone (ss);
      return;
    }
  /* the fifo's owner was switched to this leg while crossed */
  if (ss->crossed)
    ss->po_rx_fifo->master_thread_index = ss->po_tx_fifo->master_thread_index;
  if (ss->po_handle == SESSION_INVALID_HANDLE && ss->crossed &&
      ss->po_tx_fifo->master_thread_index != s->thread_index)
    {
      /* fifos must be freed on the thread that allocated them */
      s->rx_fifo = 0;
      s->tx_fifo = 0;
      ss->ao_handle = SESSION_INVALID_HANDLE;
      ss->ao_closed = 1;
      singbox_rpc (ss->po_tx_fifo->master_thread_index, singbox_postponed_free_rpc,
		   uword_to_pointer (ss->index, void *));
      return;
    }
  singbox_ao_closed_owner (ss);
}

/*
 * A leg of another thread: its messages on the record's thread, and what
 * the record's thread asks of it on the leg's
 */

/* On the leg's thread: free the own fifos of a leg that is gone, once the
 * record's thread is done with them. */
static void
singbox_leg_free_fifos_rpc (void *arg)
{
  singbox_leg_msg_t *m = arg;

  segment_manager_dealloc_fifos (m->rx, m->tx);
  clib_mem_free (m);
}

/* On the leg's thread: take the client's fifos, crossed, once the
 * handshake's bytes are all acknowledged (TCP reads unacknowledged data
 * from the fifo); bytes the destination sent meanwhile move over. */
static void
singbox_leg_try_cross (session_t *s, singbox_leg_t *leg)
{
  svm_fifo_t *own_rx = s->rx_fifo, *own_tx = s->tx_fifo;
  u8 buf[4096];
  u32 n;

  if (svm_fifo_max_dequeue (own_tx))
    {
      svm_fifo_add_want_deq_ntf (own_tx, SVM_FIFO_WANT_DEQ_NOTIF);
      return;
    }
  while ((n = svm_fifo_max_dequeue (own_rx)))
    {
      n = clib_min (n, sizeof (buf));
      n = clib_min (n, svm_fifo_max_enqueue (leg->po_tx_fifo));
      if (!n)
	break;
      svm_fifo_dequeue (own_rx, n, buf);
      svm_fifo_enqueue (leg->po_tx_fifo, n, buf);
    }
  leg->po_rx_fifo->vpp_sh = s->handle;
  leg->po_rx_fifo->refcnt++;
  leg->po_tx_fifo->refcnt++;
  s->rx_fifo = leg->po_tx_fifo;
  s->tx_fifo = leg->po_rx_fifo;
  s->flags |= SESSION_F_PROXY;
  leg->crossed = 1;
  leg->cross_wanted = 0;
  leg->established = 1;
  /* its own fifos: the record's thread stopped reading them when it asked
   * for the crossing */
  segment_manager_dealloc_fifos (own_rx, own_tx);

  /* client data waiting, and destination data moved */
  singbox_relay_rx (s->tx_fifo, s->handle);
  singbox_relay_kick (s->rx_fifo, leg->po_handle);
  if (leg->po_fin)
    {
      vnet_shutdown_args_t a = {
	.handle = s->handle,
	.app_index = singbox_main.upstream_app_index,
      };
      vnet_shutdown_session (&a);
    }
}

static void
singbox_leg_cross_rpc (void *arg)
{
  singbox_leg_msg_t *m = arg;
  session_t *s = session_get_from_handle_if_valid (m->ao_handle);
  singbox_leg_t *leg;

  /* gone meanwhile: its CLOSED message tells the record */
  if (s && s->opaque == m->leg && s->session_state < SESSION_STATE_TRANSPORT_CLOSING)
    {
      leg = singbox_leg_get (m->leg);
      leg->po_rx_fifo = m->rx;
      leg->po_tx_fifo = m->tx;
      leg->po_handle = m->po_handle;
      leg->po_fin = m->po_fin;
      leg->cross_wanted = 1;
      singbox_leg_try_cross (s, leg);
    }
  clib_mem_free (m);
}

/* On the record's thread: the handshake is over, the upstream leg of
 * another thread is to relay on the client's fifos (singbox_leg_try_cross).
 * From here the record's thread no longer touches the leg's own fifos. */
void
singbox_ao_cross_remote (singbox_session_t *ss)
{
  singbox_leg_msg_t *m;

  ASSERT (ss->ao_remote);
  ss->crossed = 1;
  m = singbox_leg_msg (ss->index, ss->ao_leg, ss->ao_handle, 0);
  m->rx = ss->po_rx_fifo;
  m->tx = ss->po_tx_fifo;
  m->po_handle = ss->po_handle;
  m->po_fin = ss->po_fin;
  singbox_rpc (session_thread_from_handle (ss->ao_handle), singbox_leg_cross_rpc, m);
}

/* A leg of another thread connected (m): what singbox_ao_alloc_fifos and
 * singbox_ao_connected do for a local one. */
static void
singbox_leg_connected (singbox_session_t *ss, singbox_leg_msg_t *m)
{
  session_t _s, *s;
  u8 cross = 0;
  int rv;

  ss->connecting = 0;
  ss->ao_handle = m->ao_handle;
  ss->ao_remote = 1;
  ss->ao_leg = m->leg;
  ss->ao_own_rx = m->rx;
  ss->ao_own_tx = m->tx;
  ss->ao_lcl_ip = m->lcl.ip;
  ss->ao_lcl_port = m->lcl.port;
  ss->ao_lcl_is_ip4 = m->lcl.is_ip4;
  if (!ss->pooled && (ss->po_closed || ss->po_handle == SESSION_INVALID_HANDLE))
    {
      singbox_ao_close (ss);
      return;
    }
  s = singbox_ao_session (ss, &_s);
  /* the mode's part: the reply to write, or its handshake into the leg's
   * own tx fifo */
  if ((rv = singbox_session_vft (ss)->upstream_fifos (s, ss, &cross)))
    {
      singbox_session_vft (ss)->upstream_connect_failed (ss, rv);
      singbox_ao_reset (ss);
      return;
    }
  if (cross)
    singbox_ao_cross_remote (ss);
  singbox_ao_up (ss, singbox_ao_session (ss, &_s));
}

static void
singbox_leg_msg_rpc (void *arg)
{
  singbox_leg_msg_t *m = arg;
  singbox_session_t *ss = singbox_session_get_if_valid (m->owner);
  session_t _s, *s;

  if (m->event == SINGBOX_LEG_EV_CONNECTED || m->event == SINGBOX_LEG_EV_FAILED)
    {
      /* a record with a connect in flight is not freed */
      ASSERT (ss && ss->connecting);
      if (PREDICT_FALSE (!ss))
	{
	  clib_mem_free (m);
	  return;
	}
      if (m->event == SINGBOX_LEG_EV_CONNECTED)
	singbox_leg_connected (ss, m);
      else
	singbox_ao_connect_failed (ss, m->err);
      clib_mem_free (m);
      return;
    }
  /* the record waits for the leg's CLOSED message, the last one */
  if (PREDICT_FALSE (!ss || ss->ao_handle != m->ao_handle || !ss->ao_remote))
    {
      ASSERT (0);
      if (m->event == SINGBOX_LEG_EV_CLOSED && !m->crossed)
	singbox_rpc (session_thread_from_handle (m->ao_handle), singbox_leg_free_fifos_rpc, m);
      else
	clib_mem_free (m);
      return;
    }
  switch (m->event)
    {
    case SINGBOX_LEG_EV_RX:
      if (!ss->crossed && (s = singbox_ao_session (ss, &_s)))
	singbox_ao_rx_owner (ss, s);
      break;
    case SINGBOX_LEG_EV_FIN:
      if ((s = singbox_ao_session (ss, &_s)))
	singbox_ao_fin_owner (ss, s);
      break;
    case SINGBOX_LEG_EV_RESET:
      singbox_ao_reset_owner (ss);
      break;
    case SINGBOX_LEG_EV_GONE:
      singbox_ao_transport_gone (ss);
      break;
    case SINGBOX_LEG_EV_CLOSED:
      if (m->crossed)
	{
	  /* the leg's reference to the client's fifos */
	  segment_manager_dealloc_fifos (ss->po_rx_fifo, ss->po_tx_fifo);
	  clib_mem_free (m);
	}
      else
	/* its own fifos, which the handshake read here: freed there */
	singbox_rpc (session_thread_from_handle (m->ao_handle), singbox_leg_free_fifos_rpc, m);
      singbox_ao_closed_owner (ss);
      return;
    }
  clib_mem_free (m);
}

/* A half-open is gone (connected, failed, or closed by
 * singbox_connect_cancel_do); on the connects thread. A closed one may
 * still have been matched to a SYN-ACK on another thread in the meantime
 * (VPP reads the connects thread's half-open there): only once every
 * thread has answered (singbox_connect_sweep_rpc) does the record know
 * that no connect will be reported. */
static void
singbox_ao_half_open_cleanup (session_t *ho)
{
  singbox_connects_t *cm = &singbox_connects;
  session_handle_t sh = session_handle (ho);
  clib_thread_index_t thread;
  uword *p;
  u64 id;

  if (!(p = hash_get (cm->id_by_ho, sh)))
    return;
  id = p[0];
  hash_unset (cm->id_by_ho, sh);
  hash_unset (cm->ho_by_id, id & ~SINGBOX_CONNECT_CANCELLED);
  if (!(id & SINGBOX_CONNECT_CANCELLED))
    return;
  id &= ~SINGBOX_CONNECT_CANCELLED;
  for (thread = 0; thread < vlib_get_n_threads (); thread++)
    singbox_rpc (thread, singbox_connect_sweep_rpc, uword_to_pointer (id, void *));
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
  .half_open_cleanup_callback = singbox_ao_half_open_cleanup,
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

/* What both modes need: the session layer, the users lock and the
 * upstream leg's app. */
int
singbox_session_layer_attach (void)
{
  singbox_main_t *sm = &singbox_main;
  vlib_main_t *vm = vlib_get_main ();

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
  if (vlib_num_workers () && !sm->users_lock)
    clib_spinlock_init (&sm->users_lock);
  /* tests: every upstream leg takes the path of a leg on another thread
   * (singbox_ao_is_remote), which needs 2 workers otherwise */
  sm->test_remote_upstream = getenv ("SINGBOX_TEST_REMOTE_UPSTREAM") != 0;

  if (singbox_app_attach ("singbox-upstream", &singbox_upstream_cb_vft, APP_OPTIONS_FLAGS_IS_PROXY,
			  &sm->upstream_app_index))
    return VNET_API_ERROR_UNSPECIFIED;
  sm->is_attached = 1;
  vlib_process_signal_event (vm, singbox_process_node.index, 0, 0);
  return 0;
}

/*
 * Closing from outside: API/CLI disconnect, server stop, timeouts. Each
 * runs on the client leg's thread.
 */

static void
singbox_session_kill (singbox_session_t *ss, int timed_out)
{
  const singbox_session_vft_t *vft = singbox_session_vft (ss);

  SINGBOX_ASSERT_THREAD (ss->po_thread);
  if (!(vft->kill && vft->kill (ss, timed_out)))
    {
      ss->state = SINGBOX_SESSION_STATE_CLOSING;
      singbox_po_reset (ss);
      singbox_ao_reset (ss);
    }
  singbox_session_cancel_connect (ss);
}

static void
singbox_session_kill_rpc (void *arg)
{
  u64 id = pointer_to_uword (arg);
  singbox_session_t *ss;
  int timed_out = (id >> 63) & 1;

  id &= ~(1ULL << 63);
  ss = singbox_session_get_by_id (id);
  if (ss && ss->state != SINGBOX_SESSION_STATE_CLOSING)
    singbox_session_kill (ss, timed_out);
}

/* On the record's thread, or main under the barrier: the kill runs later,
 * on the record's thread. */
void
singbox_session_kill_on_thread (singbox_session_t *ss, int timed_out)
{
  u64 id = singbox_session_id (ss) | ((u64) (timed_out != 0) << 63);

  SINGBOX_ASSERT_OWNER (ss->index);
  singbox_rpc (ss->po_thread, singbox_session_kill_rpc, uword_to_pointer (id, void *));
}

/* API and CLI: main, under the barrier. */
int
singbox_session_disconnect (u64 session_id)
{
  singbox_session_t *ss;

  SINGBOX_ASSERT_BARRIER ();
  ss = singbox_session_get_by_id (session_id & ~(1ULL << 63));
  if (!ss || ss->po_handle == SESSION_INVALID_HANDLE || ss->state == SINGBOX_SESSION_STATE_CLOSING)
    return VNET_API_ERROR_NO_SUCH_ENTRY;
  singbox_session_kill_on_thread (ss, 0);
  return 0;
}

/* Each thread adds what its relaying sessions moved to the counters, so a
 * long transfer shows while it runs and not only when it ends. */
static void
singbox_sessions_count_traffic_rpc (void *arg)
{
  clib_thread_index_t thread_index = vlib_get_thread_index ();
  singbox_session_t *ss;
  session_t *s;

  singbox_foreach_session_of_thread (ss, thread_index)
    if (!ss->po_closed && singbox_session_vft (ss)->relaying (ss) &&
	(s = session_get_from_handle_if_valid (ss->po_handle)))
      singbox_session_count_traffic (ss, s);
}

/* Main thread (singbox-process, no barrier): each thread walks its own
 * records. */
void
singbox_sessions_count_traffic (void)
{
  clib_thread_index_t t;

  SINGBOX_ASSERT_THREAD (0);
  /* no session: the session layer may not even be enabled */
  if (!singbox_main.is_attached)
    return;
  singbox_sessions_count_traffic_rpc (0);
  for (t = 1; t <= vlib_num_workers (); t++)
    singbox_rpc (t, singbox_sessions_count_traffic_rpc, 0);
}

/* Deadlines, idle timeouts and the mode's checks of the records of this
 * thread. */
static void
singbox_sessions_expire_rpc (void *arg)
{
  clib_thread_index_t thread_index = vlib_get_thread_index ();
  f64 now = vlib_time_now (vlib_get_main ());
  const singbox_session_vft_t *vft;
  singbox_session_t *ss;

  /* what this thread could not send so far */
  singbox_rpc_flush ();
  singbox_foreach_session_of_thread (ss, thread_index)
  {
    vft = singbox_session_vft (ss);
    if (vft->poll)
      vft->poll (ss, now);
    if (ss->po_handle == SESSION_INVALID_HANDLE || ss->state == SINGBOX_SESSION_STATE_CLOSING)
      continue;
    /* the answer is slow (a connect, a name, a password): ACK now */
    singbox_po_ack_release_owed (ss);
    if (ss->deadline && now >= ss->deadline)
      {
	ss->deadline = 0;
	singbox_session_kill_on_thread (ss, 1);
      }
    else if (vft->idle (ss, now))
      {
	ss->last_active = now; /* once */
	singbox_session_kill_on_thread (ss, 1);
      }
  }
}

/* Main thread (singbox-process, no barrier): each thread expires its own
 * records. */
void
singbox_sessions_expire (f64 now)
{
  clib_thread_index_t t;

  SINGBOX_ASSERT_THREAD (0);
  if (!singbox_main.is_attached)
    return;
  singbox_sessions_expire_rpc (0);
  for (t = 1; t <= vlib_num_workers (); t++)
    singbox_rpc (t, singbox_sessions_expire_rpc, 0);
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
  /* the manual's "[0] dst=93.184.216.34:443 state=established tx=1024 rx=2048" first */
  s = format (s, "[%lu] ", singbox_session_id (ss));
  if (ss->dst.atyp == SOCKS5_ATYP_DOMAIN)
    s = format (s, "dst=%s:%u", ss->dst.domain, ss->dst_port);
  else if (ss->dst.atyp)
    s = format (s, "dst=%U:%u", format_ip46_address, &ss->dst_ip, IP46_TYPE_ANY, ss->dst_port);
  else
    s = format (s, "dst=-");
  s = format (s, " state=%U tx=%lu rx=%lu %s client=%U:%u age=%.0fs", format_singbox_session_state,
	      (u32) ss->state, tx, rx, singbox_session_vft (ss)->name, format_ip46_address,
	      &ss->client_ip, IP46_TYPE_ANY, ss->client_port, now - ss->created);
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
  if (singbox_session_vft (ss)->format_legs)
    s = singbox_session_vft (ss)->format_legs (s, ss);
  if (ss->deadline != 0)
    s = format (s, ", deadline in %.1fs", ss->deadline - vlib_time_now (vlib_get_main ()));
  return s;
}
