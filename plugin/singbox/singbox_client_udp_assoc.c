/* SPDX-License-Identifier: Apache-2.0
 * Copyright (c) 2026 vpp-singbox authors
 */

/* Client mode, UDP: the association (RFC 1928 section 7, client side) and
 * the three apps whose sessions are a flow's legs.
 *
 * Per flow: a TCP control connection to the endpoint carries greeting,
 * auth and UDP ASSOCIATE (DST all zeros: our relay address is not known
 * yet) pipelined in one write; the reply's BND is where datagrams go. The
 * relay leg is a connected UDP session to BND: each client datagram goes
 * there behind a SOCKS5 UDP header whose DST is the flow's original
 * destination; replies come only from BND (the session is connected),
 * only FRAG 0 and only from the original destination (the client leg is
 * connected to it); anything else is dropped and counted. Datagrams the
 * client sends before the association is up wait (SINGBOX_CUDP_MAX_PENDING,
 * SINGBOX_CUDP_MAX_PENDING_BYTES).
 *
 * Threads (see singbox_client_udp.c): the record is touched on its owner
 * thread only (the client leg's), without a lock. The control connection's
 * callbacks and the relay leg's connected one run where VPP put those legs
 * and only tell the owner (singbox_cudp_msg_t: a message when the leg is on
 * another thread, a call when on the owner's); the owner's handshake bytes
 * go back to the control leg's thread by message. Once associated, the relay
 * leg gets a side context on its own thread (singbox_cudp_relay_t): its rx
 * writes the client leg's tx fifo from there, and the owner's datagrams for
 * it go there by message (unless it is on the owner's thread), so every
 * fifo has one producer, on one thread. When the relay leg moves, its side
 * context follows by message and the owner learns the new handle by message
 * (singbox_cudp_relay_migrate). A leg is closed by an RPC to its own thread
 * (singbox_cudp_close); a relay leg with a side context by its thread, which
 * then closes the client leg (singbox_cudp_relay_end). Nothing per datagram
 * runs on main. */

#include <singbox/singbox_client_udp.h>
#include <singbox/singbox_group.h>
#include <singbox/singbox_tcp_ts.h>
#include <vnet/udp/udp.h>

/* a QUIC client's first flight, or a window of a bulk flow, while the
 * association is made (about one round trip to the endpoint, three on a
 * new TCP connection) */
#define SINGBOX_CUDP_MAX_PENDING       64
#define SINGBOX_CUDP_MAX_PENDING_BYTES (64 << 10)
/* The sessions' mss: the session layer cuts a datagram longer than its
 * session's mss into several (as it cuts TCP into segments), so ours take the
 * largest payload IPv6 and IPv4 both carry (65535 - 40 - 8); IP fragments
 * what the link's MTU does not. A client datagram that no longer fits with
 * its SOCKS5 header is dropped. */
#define SINGBOX_CUDP_MSS       65487
#define SINGBOX_CUDP_MAX_DGRAM 65535
#define SINGBOX_CUDP_FIFO_SIZE (256 << 10)
/* a message of client datagrams to a relay leg on another thread is sent
 * once it holds this much (or the client leg's rx ends) */
#define SINGBOX_CUDP_TO_RELAY_MAX (32 << 10)

/*
 * Sending
 */

/* One client datagram to BND behind a header naming the original
 * destination, into relay session rs's tx fifo: on rs's thread, its only
 * producer. -1 when it was dropped (counted). A leg that moved
 * (singbox_cudp_relay_migrate) has no tx fifo on its old thread once VPP
 * switched it over, until its session is freed there. */
static int
singbox_cudp_send_to_bnd (session_t *rs, u8 is_ip4, ip46_address_t *dst_ip, u16 dst_port,
			  ip46_address_t *lcl_ip, u16 lcl_port, ip46_address_t *bnd_ip,
			  u16 bnd_port, u8 bnd_is_ip4, u32 sw_if_index, u8 *data, u32 len)
{
  u8 hdr[SOCKS5_UDP_HEADER_MAX_LEN];
  socks5_addr_t dst;
  int hlen;

  if (is_ip4)
    socks5_addr_set_ip4 (&dst, dst_ip->ip4.as_u8, dst_port);
  else
    socks5_addr_set_ip6 (&dst, dst_ip->ip6.as_u8, dst_port);
  hlen = socks5_udp_header_encode (&dst, hdr, sizeof (hdr));
  if (hlen < 0 || hlen + len > SINGBOX_CUDP_MSS || !rs || !rs->tx_fifo ||
      singbox_udp_enqueue (rs, lcl_ip, lcl_port, bnd_ip, bnd_port, bnd_is_ip4, hdr, hlen, data,
			   len))
    {
      singbox_cudp_count (SINGBOX_CUDP_CTR_DROPPED, sw_if_index, 1);
      return -1;
    }
  return 0;
}

/* On the owner, association up: one client datagram for BND. A relay leg on
 * this thread takes it at once; one on another thread from a message
 * (singbox_cudp_to_relay_flush), since only its thread may write its tx
 * fifo: VPP frees the fifo's struct on the old thread when the leg moves. */
static void
singbox_cudp_to_proxy (singbox_cudp_flow_t *f, u8 *data, u32 len)
{
  singbox_cudp_main_t *cm = &singbox_cudp_main;

  if (session_thread_from_handle (f->relay_handle) != vlib_get_thread_index ())
    {
      vec_add (f->to_relay, (u8 *) &len, sizeof (len));
      vec_add (f->to_relay, data, len);
    }
  else if (singbox_cudp_send_to_bnd (session_get_from_handle_if_valid (f->relay_handle), f->is_ip4,
				     &f->dst_ip, f->dst_port, &f->relay_lcl_ip, f->relay_lcl_port,
				     &f->relay_ip, f->relay_port, f->relay_is_ip4, f->sw_if_index,
				     data, len))
    return;
  f->packets_to_proxy++;
  f->bytes_to_proxy += len;
  if (f->sw_if_index < vec_len (cm->itfs))
    vlib_increment_combined_counter (&cm->to_proxy, vlib_get_thread_index (), f->sw_if_index, 1,
				     len);
}

static void singbox_cudp_to_relay_flush (singbox_cudp_flow_t *f);

/* vnet_connect2 connects in place on the connects thread, where allocating
 * the half-open may stop the workers: never from inside a callback there,
 * always after the callback returns. The outcome comes to the app's
 * connected callback, on the thread of the new leg. */
static void
singbox_cudp_connect_rpc (void *arg)
{
  vnet_connect_args_t *a = arg;

  vnet_connect2 (a);
  clib_mem_free (a);
}

static void
singbox_cudp_connect (vnet_connect_args_t *a)
{
  vnet_connect_args_t *c;

  if (vlib_get_thread_index () == transport_cl_thread ())
    {
      c = clib_mem_alloc (sizeof (*c));
      *c = *a;
      singbox_rpc (vlib_get_thread_index (), singbox_cudp_connect_rpc, c);
    }
  else
    vnet_connect2 (a);
}

/*
 * The client leg (intercept app): on the owner thread
 */

/* VPP's UDP counts the sessions on a local port and, when the last of them
 * goes, forgets where the port's datagrams go, even where a plugin sent
 * them with udp_register_dst_port: the dns plugin's resolver (server mode's
 * name resolution) takes its answers on 53053, VXLAN has 4789. A relayed
 * flow's session is on its destination port, so a flow to such a port took
 * the port from its owner when it ended (the resolver's answers were
 * dropped). Such a port is counted once more, for good. port in network
 * order, as the transport keeps it. */
static void
singbox_cudp_keep_port (u16 port, u8 is_ip4)
{
  singbox_cudp_main_t *cm = &singbox_cudp_main;
  u16 host_port = clib_net_to_host_u16 (port);

  if (cm->kept_ports[is_ip4][host_port] ||
      !udp_get_dst_port_info (vnet_get_udp_main (), host_port, is_ip4) ||
      !udp_is_valid_dst_port (host_port, is_ip4))
    return;
  if (clib_atomic_bool_cmp_and_swap (&cm->kept_ports[is_ip4][host_port], 0, 1))
    udp_connection_share_port (port, is_ip4);
}

/* A new client 5-tuple: udp-input made its session on this thread, and
 * left it READY, so it never moves. The flow's record goes in this
 * thread's pool. */
static int
singbox_cudp_accept (session_t *s)
{
  singbox_cudp_main_t *cm = &singbox_cudp_main;
  singbox_main_t *sm = &singbox_main;
  transport_endpoint_t rmt = {}, lcl = {};
  vnet_connect_args_t _a = {}, *a = &_a;
  singbox_interface_t *itf;
  singbox_cudp_itf_t *citf;
  singbox_endpoint_t *ep = 0;
  singbox_cudp_flow_t *f;
  u32 sw_if_index, group_index = ~0, ei, h;

  SINGBOX_ASSERT_THREAD (s->thread_index);
  s->opaque = ~0; /* no flow (yet): its rx drains */
  session_get_endpoint (s, &rmt, &lcl);
  singbox_cudp_keep_port (lcl.port, lcl.is_ip4);
  itf = singbox_interface_of_client (&rmt.ip, rmt.is_ip4, lcl.fib_index);
  citf = itf ? singbox_client_udp_itf_get (itf->sw_if_index) : 0;
  if (!citf)
    {
      /* not behind an enabled interface (asymmetric route): the first
       * enabled one decides */
      vec_foreach (citf, cm->itfs)
	if (citf->enabled)
	  break;
      if (citf == vec_end (cm->itfs))
	return -1;
    }
  sw_if_index = citf->sw_if_index;
  itf = singbox_interface_get (sw_if_index);
  /* the endpoint as for TCP: through the interface's endpoint group, if it
   * has one, the group's policy picks among its members */
  if (itf && (group_index = singbox_group_of_interface (sw_if_index, itf->endpoint_index)) == ~0)
    ep = singbox_endpoint_pick (itf);
  else if (itf && (ei = singbox_group_pick (group_index, &rmt, &lcl)) != ~0)
    ep = pool_elt_at_index (sm->endpoints, ei);
  if (!ep || ep->protocol != SINGBOX_PROTO_SOCKS5)
    {
      /* UDP ASSOCIATE is SOCKS5's: an HTTP CONNECT endpoint cannot relay it */
      if (ep && group_index != ~0)
	{
	  singbox_group_count_failure (group_index, ep - sm->endpoints);
	  singbox_group_release (group_index, ep - sm->endpoints);
	}
      singbox_cudp_count (SINGBOX_CUDP_CTR_FAILURES, sw_if_index, 1);
      return -1;
    }
  if (!(f = singbox_cudp_flow_alloc ()))
    {
      /* this thread holds as many flows as a handle can name */
      singbox_group_release (group_index, ep - sm->endpoints);
      singbox_cudp_count (SINGBOX_CUDP_CTR_DROPPED, sw_if_index, 1);
      return -1;
    }

  h = f->handle;
  f->state = SINGBOX_CUDP_STATE_OPENING;
  f->is_ip4 = rmt.is_ip4;
  f->sw_if_index = sw_if_index;
  f->endpoint_index = ep - sm->endpoints;
  f->group_index = group_index;
  f->c_handle = session_handle (s);
  f->client_ip = rmt.ip;
  f->client_port = clib_net_to_host_u16 (rmt.port);
  f->dst_ip = lcl.ip;
  f->dst_port = clib_net_to_host_u16 (lcl.port);
  f->ctl_handle = f->relay_handle = SESSION_INVALID_HANDLE;
  f->relay_is_ip4 = ep->is_ip4;
  f->created = f->last_active = vlib_time_now (vlib_get_main ());
  clib_atomic_fetch_add (&citf->active, 1);
  s->opaque = h;
  s->session_state = SESSION_STATE_READY;

  /* the control connection, to the endpoint */
  a->sep_ext = (session_endpoint_cfg_t) SESSION_ENDPOINT_CFG_NULL;
  a->sep_ext.transport_proto = TRANSPORT_PROTO_TCP;
  a->sep_ext.is_ip4 = ep->is_ip4;
  a->sep_ext.ip = ep->addr;
  a->sep_ext.port = clib_host_to_net_u16 (ep->port);
  a->sep_ext.fib_index = ep->fib_index;
  a->api_context = singbox_cudp_ctx (f);
  a->app_index = cm->ctl_app_index;

  singbox_cudp_count (SINGBOX_CUDP_CTR_FLOWS, sw_if_index, 1);
  SINGBOX_DBG ("udp flow %u: %U:%u -> %U:%u via %s", h, format_ip46_address, &rmt.ip, IP46_TYPE_ANY,
	       clib_net_to_host_u16 (rmt.port), format_ip46_address, &lcl.ip, IP46_TYPE_ANY,
	       clib_net_to_host_u16 (lcl.port), ep->name);
  singbox_cudp_connect (a);
  return 0;
}

static int
singbox_cudp_client_rx (session_t *s)
{
  u8 *buf = singbox_cudp_worker_get (vlib_get_thread_index ())->rx_buf;
  f64 now = vlib_time_now (vlib_get_main ());
  singbox_cudp_flow_t *f = 0;
  session_dgram_hdr_t dh;
  u32 len, h = s->opaque;

  /* the client leg never moves: its flow is this thread's */
  if (h != ~0 && (f = singbox_cudp_flow_get_if_valid (h)) && f->c_handle != session_handle (s))
    f = 0;
  while (svm_fifo_max_dequeue_cons (s->rx_fifo) >= sizeof (dh))
    {
      svm_fifo_peek (s->rx_fifo, 0, sizeof (dh), (u8 *) &dh);
      if (svm_fifo_max_dequeue_cons (s->rx_fifo) < sizeof (dh) + dh.data_length)
	break;
      len = clib_min (dh.data_length, SINGBOX_CUDP_MAX_DGRAM);
      svm_fifo_peek (s->rx_fifo, sizeof (dh) + dh.data_offset, len, buf);
      svm_fifo_dequeue_drop (s->rx_fifo, sizeof (dh) + dh.data_length);
      if (!f)
	continue;
      f->last_active = now;
      if (f->state == SINGBOX_CUDP_STATE_ASSOCIATED)
	singbox_cudp_to_proxy (f, buf, len);
      else if (vec_len (f->pending) < SINGBOX_CUDP_MAX_PENDING &&
	       f->pending_bytes + len <= SINGBOX_CUDP_MAX_PENDING_BYTES)
	{
	  u8 *d = 0;
	  vec_add (d, buf, len);
	  vec_add1 (f->pending, d);
	  f->pending_bytes += len;
	}
      else
	singbox_cudp_count (SINGBOX_CUDP_CTR_DROPPED, f->sw_if_index, 1);
      if (vec_len (f->to_relay) >= SINGBOX_CUDP_TO_RELAY_MAX)
	singbox_cudp_to_relay_flush (f);
    }
  if (f)
    singbox_cudp_to_relay_flush (f);
  return 0;
}

/*
 * The control connection (ctl app): on the thread TCP put it on. Its
 * callbacks, and the relay leg's connected one, only tell the owner what
 * happened (singbox_cudp_msg_t): the record is the owner's. The owner's
 * handshake bytes come back by message, so the control connection's thread
 * is the only producer of its tx fifo.
 */

typedef enum
{
  SINGBOX_CUDP_CTL_CONNECTED,	/* to the owner: the connect's outcome */
  SINGBOX_CUDP_CTL_RX,		/* to the owner: bytes of the proxy's reply */
  SINGBOX_CUDP_CTL_CLOSED,	/* to the owner: the proxy ended it */
  SINGBOX_CUDP_CTL_TX,		/* to the leg's thread: bytes to send */
  SINGBOX_CUDP_RELAY_CONNECTED, /* to the owner: the relay leg's connect's outcome */
  SINGBOX_CUDP_RELAY_MOVED,	/* to the owner: the relay leg is new_sh now */
  SINGBOX_CUDP_RELAY_TOUCH,	/* to the owner: the relay leg relayed a reply */
  SINGBOX_CUDP_RELAY_LOST,	/* to the owner: no relay leg to set up */
  SINGBOX_CUDP_RELAY_SETUP,	/* to the relay's thread: its side context */
  SINGBOX_CUDP_RELAY_DGRAMS,	/* to the relay's thread: client datagrams */
  SINGBOX_CUDP_RELAY_END,	/* to the relay's thread: close it, then the client leg */
  SINGBOX_CUDP_RELAY_FORGET,	/* to the relay's old thread: the owner knows of the move */
  SINGBOX_CUDP_RELAY_MOVE,	/* to the relay's new thread: its side context */
} singbox_cudp_msg_event_t;

/* at most what one message carries: a whole UDP ASSOCIATE handshake, the
 * proxy's part (method, auth status, reply with a name) or ours */
#define SINGBOX_CUDP_CTL_MSG_MAX (SOCKS5_OUT_MAX)

typedef struct
{
  u32 ctx;		      /* CONNECTED: the connect's context (names the flow's generation) */
  u32 flow;		      /* the flow's handle (the legs' opaque) */
  u64 flow_id;		      /* RELAY_*: the flow's id (generation << 32 | handle) */
  session_handle_t sh;	      /* the leg (MOVED: its old handle) */
  session_handle_t new_sh;    /* MOVED */
  session_handle_t c_handle;  /* END: the client leg */
  u8 event;		      /* singbox_cudp_msg_event_t */
  u32 err;		      /* CONNECTED: session_error_t */
  f64 last_active;	      /* TOUCH */
  transport_endpoint_t lcl;   /* RELAY_CONNECTED: our end */
  singbox_cudp_relay_t relay; /* SETUP, MOVE */
  u32 len;
  u8 data[0]; /* CTL_RX, CTL_TX; DGRAMS: (u32 length, datagram) each */
} singbox_cudp_msg_t;

static singbox_cudp_msg_t *
singbox_cudp_msg (u8 event, u32 flow, session_handle_t sh, u8 *data, u32 len)
{
  singbox_cudp_msg_t *m = clib_mem_alloc (sizeof (*m) + len);

  clib_memset (m, 0, sizeof (*m));
  m->event = event;
  m->flow = flow;
  m->sh = sh;
  m->len = len;
  if (len)
    clib_memcpy_fast (m->data, data, len);
  return m;
}

static void
singbox_cudp_msg_free (singbox_cudp_msg_t *m)
{
  /* a TX message holds the password */
  clib_memset (m, 0, sizeof (*m) + m->len);
  clib_mem_free (m);
}

static void singbox_cudp_owner (singbox_cudp_msg_t *m);
static void singbox_cudp_ctl_tx (singbox_cudp_msg_t *m);

static void
singbox_cudp_owner_rpc (void *arg)
{
  singbox_cudp_owner (arg);
}

static void
singbox_cudp_ctl_tx_rpc (void *arg)
{
  singbox_cudp_ctl_tx (arg);
}

/* To the flow's owner: at once when it is this thread (0 workers, or the
 * SYN-ACK came in on the owner). */
static void
singbox_cudp_tell (singbox_cudp_msg_t *m, u32 flow)
{
  clib_thread_index_t owner = singbox_cudp_handle_thread (flow);

  if (owner == vlib_get_thread_index ())
    singbox_cudp_owner (m);
  else
    singbox_rpc (owner, singbox_cudp_owner_rpc, m);
}

/* On the leg's thread: the owner's handshake bytes into the connection's
 * tx fifo, if it is still the flow's. */
static void
singbox_cudp_ctl_tx (singbox_cudp_msg_t *m)
{
  session_t *s = session_get_from_handle_if_valid (m->sh);
  app_worker_t *wrk;

  SINGBOX_ASSERT_THREAD (session_thread_from_handle (m->sh));
  if (s && s->opaque == m->flow && s->session_state < SESSION_STATE_TRANSPORT_CLOSING &&
      (wrk = app_worker_get_if_valid (s->app_wrk_index)) &&
      wrk->app_index == singbox_cudp_main.ctl_app_index &&
      svm_fifo_max_enqueue_prod (s->tx_fifo) >= m->len)
    {
      svm_fifo_enqueue (s->tx_fifo, m->len, m->data);
      if (svm_fifo_set_event (s->tx_fifo))
	session_program_tx_io_evt (s->handle, SESSION_IO_EVT_TX);
    }
  singbox_cudp_msg_free (m);
}

/* On the owner: the handshake's bytes to the leg's thread. */
static void
singbox_cudp_send_ctl (singbox_cudp_flow_t *f, socks5_out_t *out)
{
  singbox_cudp_msg_t *m;

  if (!out->len)
    return;
  m = singbox_cudp_msg (SINGBOX_CUDP_CTL_TX, f->handle, f->ctl_handle, out->data, out->len);
  if (session_thread_from_handle (f->ctl_handle) == vlib_get_thread_index ())
    singbox_cudp_ctl_tx (m);
  else
    singbox_rpc (session_thread_from_handle (f->ctl_handle), singbox_cudp_ctl_tx_rpc, m);
}

static void
singbox_cudp_ep_failed (singbox_cudp_flow_t *f)
{
  if (!pool_is_free_index (singbox_main.endpoints, f->endpoint_index))
    clib_atomic_fetch_add (&pool_elt_at_index (singbox_main.endpoints, f->endpoint_index)->failures,
			   1);
  singbox_group_count_failure (f->group_index, f->endpoint_index);
}

/* On the owner: the control connection is up (m->sh); greeting,
 * auth and UDP ASSOCIATE go out in one write. */
static void
singbox_cudp_ctl_up (singbox_cudp_flow_t *f, singbox_cudp_msg_t *m)
{
  singbox_main_t *sm = &singbox_main;
  socks5_client_cfg_t cfg = {};
  singbox_endpoint_t *ep;
  socks5_out_t out;

  f->ctl_handle = m->sh; /* closed with the flow from here on */
  if (m->err || pool_is_free_index (sm->endpoints, f->endpoint_index))
    {
      SINGBOX_LOG (SINGBOX_LOG_INFO, "udp flow %u: endpoint connect failed: %U", f->handle,
		   format_session_error, m->err);
      singbox_cudp_ep_failed (f);
      singbox_cudp_close (f, 1);
      return;
    }
  ep = pool_elt_at_index (sm->endpoints, f->endpoint_index);
  f->state = SINGBOX_CUDP_STATE_HANDSHAKE;

  /* DST is all zeros: the address and port we send from are known only
   * once the relay leg is connected to BND, after the reply (RFC 1928
   * section 7 allows zeros) */
  cfg.pipeline = 1;
  cfg.cmd = SOCKS5_CMD_UDP_ASSOCIATE;
  if (f->relay_is_ip4)
    socks5_addr_set_ip4 (&cfg.dst, (u8[4]){}, 0);
  else
    socks5_addr_set_ip6 (&cfg.dst, (u8[16]){}, 0);
  if (ep->username)
    {
      cfg.username = ep->username;
      cfg.username_len = vec_len (ep->username);
      cfg.password = ep->password;
      cfg.password_len = vec_len (ep->password);
    }
  f->cproto = clib_mem_alloc (sizeof (*f->cproto));
  out.len = 0;
  if (socks5_client_init (f->cproto, &cfg, &out) != SOCKS5_ERR_NONE)
    {
      singbox_cudp_close (f, 1);
      return;
    }
  singbox_cudp_send_ctl (f, &out);
  clib_memset (&out, 0, sizeof (out)); /* it held the password */
}

/* On the owner: the proxy answered; fills *a to connect the relay leg
 * to BND. Returns 0 when the relay is to be connected. */
static int
singbox_cudp_bnd (singbox_cudp_flow_t *f, socks5_addr_t *bnd, vnet_connect_args_t *a)
{
  singbox_main_t *sm = &singbox_main;
  singbox_endpoint_t *ep;

  if (pool_is_free_index (sm->endpoints, f->endpoint_index))
    return -1;
  ep = pool_elt_at_index (sm->endpoints, f->endpoint_index);
  ip46_address_reset (&f->relay_ip);
  if (bnd->atyp == SOCKS5_ATYP_IPV4 && f->relay_is_ip4)
    clib_memcpy (&f->relay_ip.ip4, bnd->ip4, 4);
  else if (bnd->atyp == SOCKS5_ATYP_IPV6 && !f->relay_is_ip4)
    clib_memcpy (&f->relay_ip.ip6, bnd->ip6, 16);
  else
    {
      /* a name, or the other family: not something we can send to */
      SINGBOX_LOG (SINGBOX_LOG_INFO, "udp flow %u: unusable BND (atyp %u)", f->handle, bnd->atyp);
      return -1;
    }
  /* an unspecified BND means the proxy's own address (what a proxy bound to
   * the wildcard answers) */
  if (ip46_address_is_zero (&f->relay_ip))
    f->relay_ip = ep->addr;
  f->relay_port = bnd->port;
  if (!f->relay_port)
    return -1;
  clib_memset (f->cproto, 0, sizeof (*f->cproto));
  clib_mem_free (f->cproto);
  f->cproto = 0;

  /* a connected UDP session to BND: it lives on a worker (after the first
   * reply, on the one that receives the replies), not on main as a
   * connectionless listener's would */
  a->sep_ext = (session_endpoint_cfg_t) SESSION_ENDPOINT_CFG_NULL;
  a->sep_ext.transport_proto = TRANSPORT_PROTO_UDP;
  a->sep_ext.transport_flags = TRANSPORT_CFG_F_CONNECTED;
  a->sep_ext.mss = SINGBOX_CUDP_MSS;
  a->sep_ext.is_ip4 = f->relay_is_ip4;
  a->sep_ext.ip = f->relay_ip;
  a->sep_ext.port = clib_host_to_net_u16 (f->relay_port);
  a->sep_ext.fib_index = ep->fib_index;
  a->api_context = singbox_cudp_ctx (f);
  a->app_index = singbox_cudp_main.relay_app_index;
  return 0;
}

/* On the owner: bytes of the proxy's reply. Returns 1 when *a is to
 * connect the relay leg (once the message is handled). */
static int
singbox_cudp_ctl_reply (singbox_cudp_flow_t *f, singbox_cudp_msg_t *m, vnet_connect_args_t *a)
{
  socks5_event_type_t t;
  socks5_event_t ev;
  socks5_out_t out;
  u32 off = 0, consumed;

  /* after the reply the connection only says the association lives */
  if (f->ctl_handle != m->sh || f->state != SINGBOX_CUDP_STATE_HANDSHAKE || !f->cproto)
    return 0;
  while (off < m->len)
    {
      consumed = 0;
      out.len = 0; /* pipelined: feed writes nothing */
      t = socks5_client_feed (f->cproto, m->data + off, m->len - off, &consumed, &ev, &out);
      off += consumed;
      if (t == SOCKS5_EV_CONNECTED)
	{
	  if (!singbox_cudp_bnd (f, &ev.addr, a))
	    return 1;
	  singbox_cudp_ep_failed (f);
	  singbox_cudp_close (f, 1);
	  return 0;
	}
      if (t == SOCKS5_EV_ERROR)
	{
	  SINGBOX_LOG (SINGBOX_LOG_INFO, "udp flow %u: UDP ASSOCIATE refused: %s (rep %u)",
		       f->handle, socks5_error_name (ev.error), ev.rep);
	  singbox_cudp_ep_failed (f);
	  singbox_cudp_close (f, 1);
	  return 0;
	}
      if (!consumed)
	break;
    }
  return 0;
}

static void singbox_cudp_relay_up (singbox_cudp_flow_t *f, singbox_cudp_msg_t *m);
static void singbox_cudp_to_relay_thread (session_handle_t sh, singbox_cudp_msg_t *m);
static singbox_cudp_msg_t *singbox_cudp_relay_msg (u8 event, u64 flow_id, session_handle_t sh);

/* On the owner: the flow an id names, if it still exists. */
static singbox_cudp_flow_t *
singbox_cudp_flow_of_id (u64 id)
{
  singbox_cudp_flow_t *f = singbox_cudp_flow_get_if_valid ((u32) id);

  return f && f->generation == (u32) (id >> 32) ? f : 0;
}

/* On the owner: what a control or relay leg's thread told (m). */
static void
singbox_cudp_owner (singbox_cudp_msg_t *m)
{
  vnet_connect_args_t _a = {}, *a = &_a;
  singbox_cudp_flow_t *f;
  int connect = 0;
  u32 h;

  h = m->event == SINGBOX_CUDP_CTL_CONNECTED || m->event == SINGBOX_CUDP_RELAY_CONNECTED ?
	singbox_cudp_ctx_handle (m->ctx) :
	m->flow;
  SINGBOX_ASSERT_THREAD (singbox_cudp_handle_thread (h));
  switch (m->event)
    {
    case SINGBOX_CUDP_CTL_CONNECTED:
      f = singbox_cudp_flow_from_ctx (m->ctx);
      if (f && f->state == SINGBOX_CUDP_STATE_OPENING)
	singbox_cudp_ctl_up (f, m);
      else
	/* the flow ended meanwhile */
	singbox_cudp_disconnect (m->sh);
      break;
    case SINGBOX_CUDP_CTL_RX:
      if ((f = singbox_cudp_flow_get_if_valid (h)))
	connect = singbox_cudp_ctl_reply (f, m, a);
      break;
    case SINGBOX_CUDP_RELAY_CONNECTED:
      f = singbox_cudp_flow_from_ctx (m->ctx);
      if (f && f->state == SINGBOX_CUDP_STATE_HANDSHAKE)
	singbox_cudp_relay_up (f, m);
      else
	/* the flow ended meanwhile */
	singbox_cudp_disconnect (m->sh);
      break;
    case SINGBOX_CUDP_CTL_CLOSED:
      /* the proxy closed the control connection: the association is over */
      f = singbox_cudp_flow_get_if_valid (h);
      if (f && f->ctl_handle == m->sh)
	{
	  f->ctl_handle = SESSION_INVALID_HANDLE; /* closed by its thread */
	  singbox_cudp_close (f, f->state != SINGBOX_CUDP_STATE_ASSOCIATED);
	}
      break;
    case SINGBOX_CUDP_RELAY_MOVED:
      if ((f = singbox_cudp_flow_of_id (m->flow_id)) && f->relay_handle == m->sh)
	f->relay_handle = m->new_sh;
      /* the old thread forwards what was sent there until it hears this */
      singbox_cudp_to_relay_thread (
	m->sh, singbox_cudp_relay_msg (SINGBOX_CUDP_RELAY_FORGET, m->flow_id, m->sh));
      break;
    case SINGBOX_CUDP_RELAY_TOUCH:
      if ((f = singbox_cudp_flow_of_id (m->flow_id)))
	f->last_active = clib_max (f->last_active, m->last_active);
      break;
    case SINGBOX_CUDP_RELAY_LOST:
      if ((f = singbox_cudp_flow_of_id (m->flow_id)))
	singbox_cudp_close (f, 1);
      break;
    }
  if (connect)
    singbox_cudp_connect (a);
  singbox_cudp_msg_free (m);
}

static int
singbox_cudp_ctl_connected (u32 app_wrk_index, u32 api_context, session_t *s, session_error_t err)
{
  u32 h = singbox_cudp_ctx_handle (api_context);
  singbox_cudp_msg_t *m;

  /* on the connects thread when it failed */
  m = singbox_cudp_msg (SINGBOX_CUDP_CTL_CONNECTED, h,
			err ? SESSION_INVALID_HANDLE : session_handle (s), 0, 0);
  m->ctx = api_context;
  m->err = err;
  if (!err)
    {
      singbox_tcp_ts_monotonic (s, 1 /* resend_ack */);
      s->opaque = h;
    }
  singbox_cudp_tell (m, h);
  return 0;
}

static int
singbox_cudp_ctl_rx (session_t *s)
{
  u8 buf[SINGBOX_CUDP_CTL_MSG_MAX];
  u32 n = clib_min (svm_fifo_max_dequeue_cons (s->rx_fifo), sizeof (buf));

  /* what one message carries is more than a whole reply of the proxy: the
   * rest is no handshake (and after it, the connection carries nothing) */
  if (n)
    svm_fifo_dequeue (s->rx_fifo, n, buf);
  svm_fifo_dequeue_drop_all (s->rx_fifo);
  if (n)
    singbox_cudp_tell (
      singbox_cudp_msg (SINGBOX_CUDP_CTL_RX, s->opaque, session_handle (s), buf, n), s->opaque);
  return 0;
}

/* The proxy closed the control connection: the owner ends the flow. */
static void
singbox_cudp_ctl_closed (session_t *s)
{
  singbox_cudp_tell (
    singbox_cudp_msg (SINGBOX_CUDP_CTL_CLOSED, s->opaque, session_handle (s), 0, 0), s->opaque);
  if (s->session_state < SESSION_STATE_APP_CLOSED)
    {
      vnet_disconnect_args_t a = { .handle = session_handle (s),
				   .app_index = singbox_cudp_main.ctl_app_index };
      vnet_disconnect_session (&a);
    }
}

/*
 * The relay leg (relay app): a connected UDP session to BND, made on the
 * connects thread, then on the worker that receives its replies
 */

/* On the owner: the relay leg is connected (m->sh); the association is up.
 * The leg's side context goes to its thread before the waiting datagrams
 * (in order: a datagram to the proxy is what makes the leg move). */
static void
singbox_cudp_relay_up (singbox_cudp_flow_t *f, singbox_cudp_msg_t *m)
{
  singbox_main_t *sm = &singbox_main;
  singbox_cudp_relay_t *r;
  singbox_cudp_msg_t *setup;
  session_t *cs;
  u8 **d;

  f->relay_handle = m->sh; /* closed with the flow from here on */
  if (m->err || !(cs = session_get_from_handle_if_valid (f->c_handle)))
    {
      singbox_cudp_close (f, 1);
      return;
    }
  f->relay_lcl_ip = m->lcl.ip;
  f->relay_lcl_port = clib_net_to_host_u16 (m->lcl.port);
  f->state = SINGBOX_CUDP_STATE_ASSOCIATED;
  if (!pool_is_free_index (sm->endpoints, f->endpoint_index))
    {
      singbox_endpoint_t *ep = pool_elt_at_index (sm->endpoints, f->endpoint_index);
      clib_atomic_fetch_add (&ep->connections, 1);
      ep->rtt_us = (vlib_time_now (vlib_get_main ()) - f->created) * 1e6;
    }

  setup =
    singbox_cudp_relay_msg (SINGBOX_CUDP_RELAY_SETUP, singbox_cudp_flow_id (f), f->relay_handle);
  r = &setup->relay;
  r->flow_id = singbox_cudp_flow_id (f);
  r->c_handle = f->c_handle;
  r->c_tx_fifo = cs->tx_fifo;
  r->client_ip = f->client_ip;
  r->dst_ip = f->dst_ip;
  r->client_port = f->client_port;
  r->dst_port = f->dst_port;
  r->is_ip4 = f->is_ip4;
  r->relay_lcl_ip = f->relay_lcl_ip;
  r->relay_lcl_port = f->relay_lcl_port;
  r->relay_ip = f->relay_ip;
  r->relay_port = f->relay_port;
  r->relay_is_ip4 = f->relay_is_ip4;
  r->sw_if_index = f->sw_if_index;
  r->last_active = r->last_told = f->created;
  f->relay_set_up = 1;
  singbox_cudp_to_relay_thread (f->relay_handle, setup);

  vec_foreach (d, f->pending)
    {
      singbox_cudp_to_proxy (f, *d, vec_len (*d));
      vec_free (*d);
    }
  vec_free (f->pending);
  singbox_cudp_to_relay_flush (f);
}

/* On the thread VPP made the leg on; the owner hears of it by message, as
 * of the control connection's. */
static int
singbox_cudp_relay_connected (u32 app_wrk_index, u32 api_context, session_t *s, session_error_t err)
{
  transport_endpoint_t rmt = {};
  u32 h = singbox_cudp_ctx_handle (api_context);
  singbox_cudp_msg_t *m;

  m = singbox_cudp_msg (SINGBOX_CUDP_RELAY_CONNECTED, h,
			err ? SESSION_INVALID_HANDLE : session_handle (s), 0, 0);
  m->ctx = api_context;
  m->err = err;
  if (!err)
    {
      session_get_endpoint (s, &rmt, &m->lcl);
      /* left OPENED: udp-input moves an OPENED session to the worker that
       * receives its first datagram, a READY one it never moves */
      s->opaque = h;
    }
  singbox_cudp_tell (m, h);
  return 0;
}

/*
 * The relay leg's side context: on the relay leg's thread, without the
 * record. The owner's messages find it by flow id; the leg's callbacks by
 * its session's opaque.
 */

static singbox_cudp_msg_t *
singbox_cudp_relay_msg (u8 event, u64 flow_id, session_handle_t sh)
{
  singbox_cudp_msg_t *m = singbox_cudp_msg (event, (u32) flow_id, sh, 0, 0);

  m->flow_id = flow_id;
  return m;
}

static void singbox_cudp_relay_do (singbox_cudp_msg_t *m);

static void
singbox_cudp_relay_do_rpc (void *arg)
{
  singbox_cudp_relay_do (arg);
}

/* To the thread of relay leg sh: at once when it is this one. */
static void
singbox_cudp_to_relay_thread (session_handle_t sh, singbox_cudp_msg_t *m)
{
  clib_thread_index_t t = session_thread_from_handle (sh);

  if (t == vlib_get_thread_index ())
    singbox_cudp_relay_do (m);
  else
    singbox_rpc (t, singbox_cudp_relay_do_rpc, m);
}

/* On the owner: the client datagrams gathered for a relay leg on another
 * thread go there. */
static void
singbox_cudp_to_relay_flush (singbox_cudp_flow_t *f)
{
  singbox_cudp_msg_t *m;

  if (!vec_len (f->to_relay))
    return;
  m = singbox_cudp_msg (SINGBOX_CUDP_RELAY_DGRAMS, f->handle, f->relay_handle, f->to_relay,
			vec_len (f->to_relay));
  m->flow_id = singbox_cudp_flow_id (f);
  vec_reset_length (f->to_relay);
  singbox_cudp_to_relay_thread (f->relay_handle, m);
}

/* On the owner (or under the barrier): the flow ends; its relay leg's thread
 * closes the leg, then the client leg, whose tx fifo it wrote until then. */
void
singbox_cudp_relay_end (singbox_cudp_flow_t *f)
{
  singbox_cudp_msg_t *m;

  m = singbox_cudp_relay_msg (SINGBOX_CUDP_RELAY_END, singbox_cudp_flow_id (f), f->relay_handle);
  m->c_handle = f->c_handle;
  singbox_cudp_to_relay_thread (f->relay_handle, m);
}

static singbox_cudp_relay_t *
singbox_cudp_relay_find (clib_thread_index_t thread, u64 flow_id)
{
  singbox_cudp_worker_t *wrk = singbox_cudp_worker_get (thread);
  uword *p = hash_get (wrk->relay_by_flow, flow_id);

  return p ? pool_elt_at_index (wrk->relays, p[0]) : 0;
}

static void
singbox_cudp_relay_free (singbox_cudp_relay_t *r)
{
  singbox_cudp_worker_t *wrk = singbox_cudp_worker_get (vlib_get_thread_index ());

  hash_unset (wrk->relay_by_flow, r->flow_id);
  pool_put (wrk->relays, r);
}

/* The side context of relay session s, on s's thread; 0 when it has none
 * (yet: the owner's or the old thread's message brings it; or any more). */
static singbox_cudp_relay_t *
singbox_cudp_relay_of (session_t *s)
{
  singbox_cudp_worker_t *wrk = singbox_cudp_worker_get (s->thread_index);
  u32 o = s->opaque, i = o & SINGBOX_SESSION_INDEX_MASK;
  singbox_cudp_relay_t *r;

  if (!(o & SINGBOX_LEG_HANDLE_FLAG) ||
      ((o & ~SINGBOX_LEG_HANDLE_FLAG) >> SINGBOX_SESSION_THREAD_SHIFT) != s->thread_index ||
      pool_is_free_index (wrk->relays, i))
    return 0;
  r = pool_elt_at_index (wrk->relays, i);
  return r->moved || r->relay_sh != session_handle (s) ? 0 : r;
}

/* The proxy's replies to the client leg: only whole datagrams (no
 * reassembly, as RFC 1928 allows), only from the destination the client leg
 * is connected to (the connected session already takes datagrams from BND
 * only). The client leg is on the owner thread: this thread is the only
 * producer of its tx fifo, and its tx event goes there. */
static void
singbox_cudp_relay_replies (session_t *s, singbox_cudp_relay_t *r)
{
  singbox_cudp_main_t *cm = &singbox_cudp_main;
  u8 *buf = singbox_cudp_worker_get (vlib_get_thread_index ())->rx_buf;
  session_t cs = { .tx_fifo = r->c_tx_fifo, .handle = r->c_handle };
  f64 now = vlib_time_now (vlib_get_main ());
  session_dgram_hdr_t dh;
  socks5_udp_header_t h;
  socks5_addr_t want;
  u32 len;
  int hlen;

  if (r->is_ip4)
    socks5_addr_set_ip4 (&want, r->dst_ip.ip4.as_u8, r->dst_port);
  else
    socks5_addr_set_ip6 (&want, r->dst_ip.ip6.as_u8, r->dst_port);
  while (svm_fifo_max_dequeue_cons (s->rx_fifo) >= sizeof (dh))
    {
      svm_fifo_peek (s->rx_fifo, 0, sizeof (dh), (u8 *) &dh);
      if (svm_fifo_max_dequeue_cons (s->rx_fifo) < sizeof (dh) + dh.data_length)
	break;
      len = clib_min (dh.data_length, SINGBOX_CUDP_MAX_DGRAM);
      svm_fifo_peek (s->rx_fifo, sizeof (dh) + dh.data_offset, len, buf);
      svm_fifo_dequeue_drop (s->rx_fifo, sizeof (dh) + dh.data_length);
      hlen = socks5_udp_header_parse (buf, len, &h);
      if (hlen < 0 || !socks5_addr_equal (&h.addr, &want) ||
	  singbox_udp_enqueue (&cs, &r->dst_ip, r->dst_port, &r->client_ip, r->client_port,
			       r->is_ip4, 0, 0, buf + hlen, len - hlen))
	{
	  singbox_cudp_count (SINGBOX_CUDP_CTR_DROPPED, r->sw_if_index, 1);
	  continue;
	}
      r->last_active = now;
      r->packets_from_proxy++;
      r->bytes_from_proxy += len - hlen;
      if (r->sw_if_index < vec_len (cm->itfs))
	vlib_increment_combined_counter (&cm->from_proxy, vlib_get_thread_index (), r->sw_if_index,
					 1, len - hlen);
    }
}

static int
singbox_cudp_is_relay (session_t *s)
{
  app_worker_t *wrk = app_worker_get_if_valid (s->app_wrk_index);

  return wrk && wrk->app_index == singbox_cudp_main.relay_app_index;
}

/* On the relay leg's thread: what the owner (or the leg's old thread) asks. */
static void
singbox_cudp_relay_do (singbox_cudp_msg_t *m)
{
  clib_thread_index_t thread = vlib_get_thread_index ();
  singbox_cudp_worker_t *wrk = singbox_cudp_worker_get (thread);
  singbox_cudp_relay_t *r = singbox_cudp_relay_find (thread, m->flow_id);
  session_t *s;
  u32 off, len;

  if (r && r->moved && m->event != SINGBOX_CUDP_RELAY_FORGET)
    {
      /* sent before the owner heard of the move: on to the leg's new
       * thread, behind the side context sent there (same sender) */
      singbox_cudp_to_relay_thread (r->relay_sh, m);
      return;
    }
  switch (m->event)
    {
    case SINGBOX_CUDP_RELAY_SETUP:
    case SINGBOX_CUDP_RELAY_MOVE:
      s = session_get_from_handle_if_valid (m->sh);
      if (r || !s || s->session_state >= SESSION_STATE_TRANSPORT_CLOSING ||
	  !singbox_cudp_is_relay (s))
	{
	  /* the leg went: the owner ends the flow (after a move, the flow's
	   * END comes here and finds nothing to close but the client leg) */
	  if (m->event == SINGBOX_CUDP_RELAY_SETUP)
	    singbox_cudp_tell (singbox_cudp_relay_msg (SINGBOX_CUDP_RELAY_LOST, m->flow_id, m->sh),
			       (u32) m->flow_id);
	  break;
	}
      pool_get (wrk->relays, r);
      *r = m->relay;
      r->relay_sh = m->sh;
      r->moved = 0;
      hash_set (wrk->relay_by_flow, r->flow_id, r - wrk->relays);
      s->opaque =
	SINGBOX_LEG_HANDLE_FLAG | (thread << SINGBOX_SESSION_THREAD_SHIFT) | (r - wrk->relays);
      /* replies that came before */
      singbox_cudp_relay_replies (s, r);
      break;
    case SINGBOX_CUDP_RELAY_DGRAMS:
      s = r ? session_get_from_handle_if_valid (r->relay_sh) : 0;
      for (off = 0; off + sizeof (len) <= m->len; off += sizeof (len) + len)
	{
	  clib_memcpy_fast (&len, m->data + off, sizeof (len));
	  if (r)
	    singbox_cudp_send_to_bnd (s, r->is_ip4, &r->dst_ip, r->dst_port, &r->relay_lcl_ip,
				      r->relay_lcl_port, &r->relay_ip, r->relay_port,
				      r->relay_is_ip4, r->sw_if_index, m->data + off + sizeof (len),
				      len);
	}
      break;
    case SINGBOX_CUDP_RELAY_END:
      if (r)
	{
	  singbox_cudp_disconnect (r->relay_sh);
	  singbox_cudp_relay_free (r);
	}
      else
	singbox_cudp_disconnect (m->sh);
      /* nothing writes the client leg's tx fifo any more */
      singbox_cudp_disconnect (m->c_handle);
      break;
    case SINGBOX_CUDP_RELAY_FORGET:
      if (r && r->moved)
	singbox_cudp_relay_free (r);
      break;
    }
  singbox_cudp_msg_free (m);
}

/* The first reply came in on another worker: the session moved there, on
 * the old thread's word; this runs on the old thread once VPP has detached
 * the old session's fifos, just before it frees that session. The side
 * context goes to the new thread by message, the owner learns the new
 * handle by message, and a forwarder stays here for what the owner sent
 * before it heard (singbox_cudp_relay_do). A tx event sent to the old handle
 * meanwhile was dropped there (the session had no tx fifo or was gone) and
 * left the fifo's event flag set, so later datagrams would not ask for one
 * either: one is sent to the new handle. VPP (v26.06) also asks for an rx
 * event on the new handle after this callback, for the datagram that made
 * the session move (udp-input queued none for it). */
static void
singbox_cudp_relay_migrate (session_t *s, session_handle_t new_sh)
{
  singbox_cudp_relay_t *r = singbox_cudp_relay_of (s);
  singbox_cudp_msg_t *m;
  u64 flow_id;

  if (!r)
    {
      /* its flow ended: the new session is left to close */
      singbox_cudp_disconnect (new_sh);
      return;
    }
  flow_id = r->flow_id;
  m = singbox_cudp_relay_msg (SINGBOX_CUDP_RELAY_MOVE, flow_id, new_sh);
  m->relay = *r;
  singbox_cudp_to_relay_thread (new_sh, m);
  r->moved = 1;
  r->relay_sh = new_sh;
  m = singbox_cudp_relay_msg (SINGBOX_CUDP_RELAY_MOVED, flow_id, session_handle (s));
  m->new_sh = new_sh;
  singbox_cudp_tell (m, (u32) flow_id);
  session_program_tx_io_evt (new_sh, SESSION_IO_EVT_TX);
}

static int
singbox_cudp_relay_rx (session_t *s)
{
  singbox_cudp_relay_t *r = singbox_cudp_relay_of (s);
  u32 o = s->opaque;

  if (r)
    singbox_cudp_relay_replies (s, r);
  /* no side context yet (the owner's, or the old thread's after a move, is
   * on its way and reads what waits): keep the datagrams; none any more:
   * drop them */
  else if ((o & SINGBOX_LEG_HANDLE_FLAG) &&
	   ((o & ~SINGBOX_LEG_HANDLE_FLAG) >> SINGBOX_SESSION_THREAD_SHIFT) == s->thread_index)
    svm_fifo_dequeue_drop_all (s->rx_fifo);
  return 0;
}

/* Each thread's expiry (singbox_client_udp.c): what its relay legs relayed
 * since, to their owners, whose idle timeout counts both ways. */
void
singbox_cudp_relays_tell (void)
{
  singbox_cudp_worker_t *wrk = singbox_cudp_worker_get (vlib_get_thread_index ());
  singbox_cudp_relay_t *r;
  singbox_cudp_msg_t *m;

  pool_foreach (r, wrk->relays)
    if (!r->moved && r->last_active > r->last_told)
      {
	r->last_told = r->last_active;
	m = singbox_cudp_relay_msg (SINGBOX_CUDP_RELAY_TOUCH, r->flow_id, r->relay_sh);
	m->last_active = r->last_active;
	singbox_cudp_tell (m, (u32) r->flow_id);
      }
}

/* Under the barrier (dumps, show): what flow f's relay leg relayed, and
 * when it last did, from its side context. */
void
singbox_cudp_flow_from_proxy (singbox_cudp_flow_t *f, u64 *packets, u64 *bytes, f64 *last_active)
{
  singbox_cudp_relay_t *r = 0;

  SINGBOX_ASSERT_BARRIER ();
  *packets = *bytes = 0;
  *last_active = f->last_active;
  if (f->relay_set_up)
    r = singbox_cudp_relay_find (session_thread_from_handle (f->relay_handle),
				 singbox_cudp_flow_id (f));
  if (r && r->moved)
    r =
      singbox_cudp_relay_find (session_thread_from_handle (r->relay_sh), singbox_cudp_flow_id (f));
  if (r)
    {
      *packets = r->packets_from_proxy;
      *bytes = r->bytes_from_proxy;
      *last_active = clib_max (*last_active, r->last_active);
    }
}

/*
 * Session callbacks
 */

static int
singbox_cudp_refuse_accept (session_t *s)
{
  return -1;
}

static int
singbox_cudp_refuse_connected (u32 a, u32 b, session_t *s, session_error_t e)
{
  return -1;
}

static void
singbox_cudp_noop (session_t *s)
{
}

static void
singbox_cudp_noop_cleanup (session_t *s, session_cleanup_ntf_t ntf)
{
}

static int
singbox_cudp_segment (u32 a, u64 b)
{
  return 0;
}

static session_cb_vft_t singbox_cudp_intercept_vft = {
  .session_accept_callback = singbox_cudp_accept,
  .session_connected_callback = singbox_cudp_refuse_connected,
  .session_disconnect_callback = singbox_cudp_noop,
  .session_reset_callback = singbox_cudp_noop,
  .session_cleanup_callback = singbox_cudp_noop_cleanup,
  .builtin_app_rx_callback = singbox_cudp_client_rx,
  .add_segment_callback = singbox_cudp_segment,
  .del_segment_callback = singbox_cudp_segment,
};

static session_cb_vft_t singbox_cudp_ctl_vft = {
  .session_accept_callback = singbox_cudp_refuse_accept,
  .session_connected_callback = singbox_cudp_ctl_connected,
  .session_disconnect_callback = singbox_cudp_ctl_closed,
  .session_reset_callback = singbox_cudp_ctl_closed,
  .session_cleanup_callback = singbox_cudp_noop_cleanup,
  .builtin_app_rx_callback = singbox_cudp_ctl_rx,
  .add_segment_callback = singbox_cudp_segment,
  .del_segment_callback = singbox_cudp_segment,
};

static session_cb_vft_t singbox_cudp_relay_vft = {
  .session_accept_callback = singbox_cudp_refuse_accept,
  .session_connected_callback = singbox_cudp_relay_connected,
  .session_disconnect_callback = singbox_cudp_noop,
  .session_reset_callback = singbox_cudp_noop,
  .session_cleanup_callback = singbox_cudp_noop_cleanup,
  .session_migrate_callback = singbox_cudp_relay_migrate,
  .builtin_app_rx_callback = singbox_cudp_relay_rx,
  .add_segment_callback = singbox_cudp_segment,
  .del_segment_callback = singbox_cudp_segment,
};

static int
singbox_cudp_attach_one (char *name, session_cb_vft_t *vft, u32 *app_index)
{
  vnet_app_attach_args_t _a = {}, *a = &_a;
  u64 options[APP_OPTIONS_N_OPTIONS] = {};
  int rv;

  if (*app_index != APP_INVALID_INDEX)
    return 0;
  a->name = format (0, "%s", name);
  a->api_client_index = APP_INVALID_INDEX;
  a->session_cb_vft = vft;
  a->options = options;
  options[APP_OPTIONS_SEGMENT_SIZE] = 128 << 20;
  options[APP_OPTIONS_ADD_SEGMENT_SIZE] = 128 << 20;
  options[APP_OPTIONS_RX_FIFO_SIZE] = SINGBOX_CUDP_FIFO_SIZE;
  options[APP_OPTIONS_TX_FIFO_SIZE] = SINGBOX_CUDP_FIFO_SIZE;
  /* not IS_PROXY: a builtin proxy app would have to provide the fifos
   * (proxy_write_early_data); the session layer's own are what we want */
  options[APP_OPTIONS_FLAGS] = APP_OPTIONS_FLAGS_IS_BUILTIN;
  rv = vnet_application_attach (a);
  vec_free (a->name);
  if (rv)
    return VNET_API_ERROR_UNSPECIFIED;
  *app_index = a->app_index;
  return 0;
}

/* Main thread, under the barrier: the apps, each thread's datagram buffer
 * and the wildcard connected listeners. */
int
singbox_cudp_start (void)
{
  singbox_cudp_main_t *cm = &singbox_cudp_main;
  vnet_listen_args_t _a = {}, *a = &_a;
  singbox_cudp_worker_t *wrk;
  int i, rv;

  SINGBOX_ASSERT_BARRIER ();
  if ((rv = singbox_cudp_attach_one ("singbox-udp-intercept", &singbox_cudp_intercept_vft,
				     &cm->intercept_app_index)) ||
      (rv = singbox_cudp_attach_one ("singbox-udp-control", &singbox_cudp_ctl_vft,
				     &cm->ctl_app_index)) ||
      (rv = singbox_cudp_attach_one ("singbox-udp-relay", &singbox_cudp_relay_vft,
				     &cm->relay_app_index)))
    return rv;
  vec_foreach (wrk, cm->workers)
    if (!wrk->rx_buf)
      vec_validate (wrk->rx_buf, SINGBOX_CUDP_MAX_DGRAM);
  /* a flow's datagrams that land on another thread go to its owner's
   * -hold node (singbox_client_udp_node.c) */
  if (vlib_num_workers () && cm->fq_index[0] == ~0)
    {
      cm->fq_index[0] = vlib_frame_queue_main_init (singbox_cudp6_hold_node.index, 0);
      cm->fq_index[1] = vlib_frame_queue_main_init (singbox_cudp4_hold_node.index, 0);
    }
  for (i = 0; i < 2; i++)
    {
      if (cm->intercept_listen[i] != SESSION_INVALID_HANDLE)
	continue;
      clib_memset (a, 0, sizeof (*a));
      a->sep_ext = (session_endpoint_cfg_t) SESSION_ENDPOINT_CFG_NULL;
      a->sep_ext.transport_proto = TRANSPORT_PROTO_UDP;
      a->sep_ext.is_ip4 = i;
      a->sep_ext.fib_index = 0;
      /* one session per client 5-tuple */
      a->sep_ext.transport_flags = TRANSPORT_CFG_F_CONNECTED;
      a->sep_ext.mss = SINGBOX_CUDP_MSS;
      a->app_index = cm->intercept_app_index;
      if ((rv = vnet_listen (a)))
	return VNET_API_ERROR_ADDRESS_IN_USE;
      cm->intercept_listen[i] = a->handle;
    }
  return 0;
}
