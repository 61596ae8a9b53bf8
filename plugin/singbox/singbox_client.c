/* SPDX-License-Identifier: Apache-2.0
 * Copyright (c) 2026 vpp-singbox authors
 */

/* Client mode: interception and the upstream handshake.
 *
 * Interception: a wildcard listener (tcp 0.0.0.0:0 and [::]:0) of the
 * IS_PROXY app "singbox-intercept" receives every TCP SYN arriving on the
 * enabled interfaces for which VPP has no session (IPv4 through hsi4-in,
 * IPv6 through singbox6-in, see singbox_node.c). The original destination
 * is the accepted session's local endpoint. The accepted connection is the
 * client leg of a relay session (singbox_session.c); the upstream leg runs
 * the SOCKS5 or HTTP CONNECT handshake with the endpoint on fifos of its
 * own, then takes the client's fifos, crossed, as in server mode.
 *
 * Hooks: which endpoint a flow takes is singbox_endpoint_pick
 * (singbox_client_write_early_data); interception per interface is
 * singbox_client_intercept_enable_disable; the intercepting app's
 * callbacks are singbox_intercept_cb_vft (its accept:
 * singbox_client_write_early_data, then singbox_client_accept). */

#include <arpa/inet.h>
#include <singbox/singbox.h>
#include <singbox/singbox_group.h>
#include <vnet/tcp/tcp.h>
#include <vnet/tcp/tcp_inlines.h>
#include <vnet/feature/feature.h>
#include <vlib/unix/plugin.h>

typedef void (singbox_hsi_intercept_proto_fn_t) (transport_proto_t proto, u8 is_ip4, u8 is_enable);

static void singbox_client_dst (singbox_session_t *ss, socks5_addr_t *dst);
static void singbox_client_refused (singbox_session_t *ss, u8 rep);
static int singbox_client_http_start (singbox_session_t *ss, singbox_endpoint_t *ep,
				      svm_fifo_t *tx);
static void singbox_client_http_rx (session_t *s, singbox_session_t *ss);
static int singbox_client_write_early_data (session_t *s);
static int singbox_client_accept (session_t *s);

/* The upstream proxy answered: the tunnel to the destination is open. */
int
singbox_client_handshake_done (singbox_session_t *ss)
{
  if (ss->upstream_proto == SINGBOX_PROTO_HTTP_CONNECT)
    return ss->hcproto && http_connect_client_state (ss->hcproto) == HTTP_CONNECT_ESTABLISHED;
  return ss->cproto && socks5_client_state (ss->cproto) == SOCKS5_CLIENT_CONNECTED;
}

/* The upstream handshake's machines exist from the upstream's fifos to the
 * crossing: a relaying session keeps neither. Cleared first: the SOCKS5
 * one holds the endpoint's credentials. */
void
singbox_client_hs_free (singbox_session_t *ss)
{
  if (ss->cproto)
    {
      clib_memset (ss->cproto, 0, sizeof (*ss->cproto));
      clib_mem_free (ss->cproto);
      ss->cproto = 0;
    }
  if (ss->hcproto)
    {
      clib_mem_free (ss->hcproto);
      ss->hcproto = 0;
    }
}

/*
 * Interception
 */

/* The intercepting app; the client leg's other callbacks are the relay's. */
static session_cb_vft_t singbox_intercept_cb_vft = {
  .session_accept_callback = singbox_client_accept,
  .proxy_write_early_data = singbox_client_write_early_data,
};

static int
singbox_client_listen (u8 is_ip4, session_handle_t *h)
{
  singbox_main_t *sm = &singbox_main;
  vnet_listen_args_t _a = {}, *a = &_a;
  session_endpoint_t sep = { .transport_proto = TRANSPORT_PROTO_TCP, .is_ip4 = 0 };
  session_t *ls;
  int rv;

  a->sep_ext = (session_endpoint_cfg_t) SESSION_ENDPOINT_CFG_NULL;
  a->sep_ext.transport_proto = TRANSPORT_PROTO_TCP;
  a->sep_ext.is_ip4 = is_ip4;
  a->sep_ext.fib_index = 0;
  a->app_index = sm->intercept_app_index;
  if ((rv = vnet_listen (a)))
    return rv;
  *h = a->handle;
  if (is_ip4)
    {
      /* only once the wildcard listener exists, or hsi silently ignores it */
      ((singbox_hsi_intercept_proto_fn_t *) sm->hsi_intercept_proto_ptr) (TRANSPORT_PROTO_TCP, 1,
									  1);
      return 0;
    }
  ls =
    session_lookup_listener_wildcard (session_lookup_get_index_for_fib (FIB_PROTOCOL_IP6, 0), &sep);
  if (!ls)
    return VNET_API_ERROR_UNSPECIFIED;
  sm->intercept_tcp6_listener = ls->connection_index;
  return 0;
}

static int
singbox_client_start (void)
{
  singbox_main_t *sm = &singbox_main;
  int rv;

  if (!sm->hsi_intercept_proto_ptr)
    sm->hsi_intercept_proto_ptr = vlib_get_plugin_symbol ("hsi_plugin.so", "hsi_intercept_proto");
  if (!sm->hsi_intercept_proto_ptr)
    return VNET_API_ERROR_FEATURE_DISABLED;
  if ((rv = singbox_session_layer_attach ()))
    return rv;
  if (sm->intercept_app_index == APP_INVALID_INDEX)
    {
      singbox_session_client_leg_cbs (&singbox_intercept_cb_vft);
      if (singbox_app_attach ("singbox-intercept", &singbox_intercept_cb_vft,
			      APP_OPTIONS_FLAGS_IS_PROXY, &sm->intercept_app_index))
	return VNET_API_ERROR_UNSPECIFIED;
    }
  if (sm->intercept_listen4 == SESSION_INVALID_HANDLE &&
      (rv = singbox_client_listen (1, &sm->intercept_listen4)))
    return VNET_API_ERROR_ADDRESS_IN_USE;
  if (sm->intercept_listen6 == SESSION_INVALID_HANDLE &&
      (rv = singbox_client_listen (0, &sm->intercept_listen6)))
    return VNET_API_ERROR_ADDRESS_IN_USE;
  return 0;
}

/* Interception on one interface: hsi4-in (and singbox4-tw before it),
 * singbox6-in. */
int
singbox_client_intercept_enable_disable (singbox_interface_t *itf, int enable)
{
  singbox_main_t *sm = &singbox_main;
  int rv;

  if (enable && (rv = singbox_client_start ()))
    return rv;
  if ((rv = vnet_feature_enable_disable ("ip4-unicast", "singbox4-tw", itf->sw_if_index, enable, 0,
					 0)))
    return rv;
  if ((rv = vnet_feature_enable_disable ("ip4-unicast", "hsi4-in", itf->sw_if_index, enable, 0, 0)))
    return rv;
  if ((rv = vnet_feature_enable_disable ("ip6-unicast", "singbox6-in", itf->sw_if_index, enable, 0,
					 0)))
    return rv;
  vlib_validate_simple_counter (&sm->itf_connections, itf->sw_if_index);
  vlib_validate_simple_counter (&sm->itf_failures, itf->sw_if_index);
  vlib_validate_combined_counter (&sm->itf_redirected, itf->sw_if_index);
  if (enable)
    {
      vlib_zero_simple_counter (&sm->itf_connections, itf->sw_if_index);
      vlib_zero_simple_counter (&sm->itf_failures, itf->sw_if_index);
      vlib_zero_combined_counter (&sm->itf_redirected, itf->sw_if_index);
    }
  return 0;
}

/* On the client leg's thread, right after its SYN: connect to the
 * endpoint (see singbox_client_write_early_data). Nothing if the session
 * ended, was refused, or its upstream was started meanwhile. */
static void
singbox_client_connect_rpc (void *arg)
{
  singbox_main_t *sm = &singbox_main;
  singbox_endpoint_t *ep;
  singbox_session_t *ss;
  u64 id = pointer_to_uword (arg);

  ss = singbox_session_get_by_id (id);
  if (ss && ss->state == SINGBOX_SESSION_STATE_SOCKS5_REQUEST && !ss->po_closed &&
      !ss->connecting && ss->ao_handle == SESSION_INVALID_HANDLE &&
      !pool_is_free_index (sm->endpoints, ss->endpoint_index))
    {
      SINGBOX_ASSERT_THREAD (ss->po_thread);
      ep = pool_elt_at_index (sm->endpoints, ss->endpoint_index);
      clib_atomic_fetch_add (&ep->connections, 1);
      singbox_session_connect_to (ss, &ep->addr, ep->is_ip4, ep->port, ep->fib_index);
    }
}

/* Runs while the accepted session is being set up: decide where it goes
 * (bypass or which endpoint) and whether it may exist at all; a non-zero
 * return refuses the connection (reset). Nothing is written: the proxy's
 * handshake runs on the upstream leg's own fifos, see
 * singbox_client_alloc_fifos. */
static int
singbox_client_write_early_data (session_t *s)
{
  singbox_main_t *sm = &singbox_main;
  transport_endpoint_t rmt = {}, lcl = {};
  singbox_interface_t *itf;
  singbox_endpoint_t *ep = 0;
  singbox_session_t *ss;
  singbox_prefix_t *p;
  u8 bypass = 0, refused = 0;
  u32 group_index, ei;

  session_get_endpoint (s, &rmt, &lcl);
  if (!(itf = singbox_interface_of_client (&rmt.ip, rmt.is_ip4, lcl.fib_index)))
    return -1;
  vec_foreach (p, itf->bypass)
    if (singbox_prefix_match (p, &lcl.ip, lcl.is_ip4))
      bypass = 1;
  if (!bypass && singbox_endpoint_is_proxy_traffic (&rmt, &lcl))
    bypass = 1;
  /* refusals are answered with a reset from the accept callback: failing
   * here would drop the SYN silently and the client would retry */
  /* through the interface's endpoint group, if it has one: the group's
   * policy picks among its members (singbox_group.c) */
  group_index = singbox_group_of_interface (itf->sw_if_index, itf->endpoint_index);
  if (!bypass && !(itf->max_connections && itf->active >= itf->max_connections))
    {
      if (group_index == ~0)
	ep = singbox_endpoint_pick (itf);
      else if ((ei = singbox_group_pick (group_index, &rmt, &lcl)) != ~0)
	ep = pool_elt_at_index (sm->endpoints, ei);
    }
  if ((itf->max_connections && itf->active >= itf->max_connections) || (!bypass && !ep))
    {
      vlib_increment_simple_counter (&sm->itf_failures, vlib_get_thread_index (), itf->sw_if_index,
				     1);
      clib_atomic_fetch_add (&itf->failures, 1);
      refused = 1;
    }

  /* a pooled connection whose record is in this thread's pool
   * (singbox_pool_take), or a new record there */
  SINGBOX_ASSERT_THREAD (s->thread_index);
  ss = 0;
  if (!refused && !bypass && sm->pooling && ep->protocol == SINGBOX_PROTO_SOCKS5 &&
      (ss = singbox_pool_take (ep)))
    ss->from_pool = 1;
  else
    ss = singbox_session_alloc (SINGBOX_MODE_CLIENT);
  if (!ss->from_pool)
    ss->state = refused ? SINGBOX_SESSION_STATE_CLOSING : SINGBOX_SESSION_STATE_SOCKS5_REQUEST;
  ss->po_handle = session_handle (s);
  ss->po_thread = s->thread_index;
  ss->po_rx_fifo = s->rx_fifo;
  ss->po_tx_fifo = s->tx_fifo;
  ss->client_ip = rmt.ip;
  ss->client_port = clib_net_to_host_u16 (rmt.port);
  ss->client_is_ip4 = rmt.is_ip4;
  ss->dst_ip = lcl.ip;
  ss->dst_is_ip4 = lcl.is_ip4;
  ss->dst_port = clib_net_to_host_u16 (lcl.port);
  ss->dst.atyp = lcl.is_ip4 ? SOCKS5_ATYP_IPV4 : SOCKS5_ATYP_IPV6;
  ss->fib_index = lcl.fib_index;
  ss->sw_if_index = itf->sw_if_index;
  ss->endpoint_index = ep ? ep - sm->endpoints : ~0;
  ss->group_index = ep && group_index != ~0 ? group_index : ~0;
  ss->upstream_proto = ep ? ep->protocol : SINGBOX_PROTO_SOCKS5;
  ss->bypass = bypass;
  ss->created = ss->last_active = vlib_time_now (vlib_get_main ());
  ss->deadline = ss->created + (ep ? ep->connect_timeout : 10);
  ss->po_accepted = 0;
  ss->po_check_at = ss->created + SINGBOX_UNACCEPTED_CHECK_INTERVAL;
  s->opaque = ss->index;
  if (ss->from_pool)
    {
      /* greeting and auth are done: only the CONNECT is left */
      singbox_client_write_connect (ss, ss->ao_own_tx);
      svm_fifo_set_event (ss->ao_own_tx);
      session_program_tx_io_evt (ss->ao_handle, SESSION_IO_EVT_TX);
      clib_atomic_fetch_add (&ep->connections, 1);
    }
  else if (!refused && !bypass && ep->protocol == SINGBOX_PROTO_SOCKS5)
    /* Connect to the proxy now, at the client's SYN, not at its accept:
     * the proxy's TCP handshake and our pipelined SOCKS5 handshake then run
     * during the client's last handshake round trip, which no longer
     * delays every connect (on af_packet that round trip was 0.8 ms of a
     * 4.7 ms connect, bench/vpp/README.md). A pooled upstream sends its
     * CONNECT here already; as for it, a proxy answering before the accept
     * is crossed at the accept (singbox_client_cross, po_accepted), and a
     * client leg that never gets accepted ends the session and its
     * upstream: within SINGBOX_UNACCEPTED_CHECK_INTERVAL once VPP has freed
     * the leg (a scanner's reset: 200 bare SYNs drained in ~1.3 s), at the
     * connect timeout if the source never answers our SYN-ACK (a spoofed
     * one: ~10 s, the leg stays in SYN-RECEIVED till then); a proxy that
     * fails before the accept leaves the leg to it (singbox_client_fail).
     * max-connections is counted here, so it bounds these connects.
     * Through an RPC to this thread: this runs inside tcp-listen, which
     * holds pointers into the TCP connection pools a connect may grow; the
     * RPC runs before the client's ACK can arrive. */
    singbox_rpc (s->thread_index, singbox_client_connect_rpc,
		 uword_to_pointer (singbox_session_id (ss), void *));
  ss->counted_active = 1;
  clib_atomic_fetch_add (&itf->active, 1);

  if (refused)
    return 0;
  clib_atomic_fetch_add (&itf->total, 1);
  vlib_increment_simple_counter (&sm->itf_connections, vlib_get_thread_index (), itf->sw_if_index,
				 1);
  return 0;
}

/*
 * The upstream handshake
 */

/* Upstream leg of a proxied flow, before it is usable: own fifos for the
 * SOCKS5 handshake (the client's data must not reach the proxy before its
 * reply: sing-box drops bytes pipelined with the request), with greeting,
 * auth and CONNECT already queued. The greeting offers exactly one method,
 * so the pipelined auth can never be misread. On the leg's thread, which is
 * the record's; a leg of another thread has its own fifos already
 * (singbox_session.c) and gets the handshake written from the record's. */
int
singbox_client_alloc_fifos (session_t *s, singbox_session_t *ss)
{
  singbox_main_t *sm = &singbox_main;
  svm_fifo_t *tx;
  singbox_endpoint_t *ep;
  socks5_client_cfg_t cfg = {};
  socks5_out_t out;
  int rv;

  if ((!ss->pooled && ss->po_closed) || ss->endpoint_index == ~0 ||
      pool_is_free_index (sm->endpoints, ss->endpoint_index))
    return SESSION_E_ALLOC;
  ep = pool_elt_at_index (sm->endpoints, ss->endpoint_index);

  if (!ss->ao_remote && (rv = singbox_session_own_fifos (s)))
    return rv;
  tx = s->tx_fifo;
  ss->ao_own_tx = tx;

  if (ss->upstream_proto == SINGBOX_PROTO_HTTP_CONNECT)
    return singbox_client_http_start (ss, ep, tx);

  /* the core pipelines greeting, auth and (unless pooled) CONNECT */
  cfg.pipeline = 1;
  cfg.defer_request = ss->pooled;
  cfg.cmd = SOCKS5_CMD_CONNECT;
  if (!ss->pooled)
    singbox_client_dst (ss, &cfg.dst);
  if (ep->username)
    {
      cfg.username = ep->username;
      cfg.username_len = vec_len (ep->username);
      cfg.password = ep->password;
      cfg.password_len = vec_len (ep->password);
    }
  if (!ss->cproto)
    ss->cproto = clib_mem_alloc (sizeof (*ss->cproto));
  if (socks5_client_init (ss->cproto, &cfg, &out))
    return SESSION_E_INVALID;
  svm_fifo_enqueue (tx, out.len, out.data);
  return 0;
}

/* HTTP CONNECT to the original destination, with Basic credentials if
 * configured, into the upstream's own tx fifo. On the record's thread. */
static int
singbox_client_http_start (singbox_session_t *ss, singbox_endpoint_t *ep, svm_fifo_t *tx)
{
  u8 req[HTTP_CONNECT_REQUEST_MAX];
  char addr[INET6_ADDRSTRLEN], *host = addr;
  int n;

  /* a server session chained through client mode keeps the name its
   * client asked for (singbox_server.c) */
  if (ss->dst.atyp == SOCKS5_ATYP_DOMAIN && ss->dst.domain)
    host = (char *) ss->dst.domain;
  else if (!inet_ntop (ss->dst_is_ip4 ? AF_INET : AF_INET6,
		       ss->dst_is_ip4 ? (void *) &ss->dst_ip.ip4 : (void *) &ss->dst_ip.ip6, addr,
		       sizeof (addr)))
    return SESSION_E_INVALID;
  n =
    http_connect_request_write (req, sizeof (req), host, strlen (host), ss->dst_port, ep->username,
				vec_len (ep->username), ep->password, vec_len (ep->password));
  if (n < 0)
    return SESSION_E_INVALID;
  if (!ss->hcproto)
    ss->hcproto = clib_mem_alloc (sizeof (*ss->hcproto));
  http_connect_client_init (ss->hcproto);
  svm_fifo_enqueue (tx, n, req);
  clib_memset (req, 0, sizeof (req));
  return 0;
}

/* The session's original destination as a SOCKS5 address: a server
 * session chained through client mode keeps the name its client asked
 * for, so the upstream resolves it (singbox_server.c). */
static void
singbox_client_dst (singbox_session_t *ss, socks5_addr_t *dst)
{
  if (ss->dst.atyp == SOCKS5_ATYP_DOMAIN && ss->dst.domain &&
      !socks5_addr_set_domain (dst, ss->dst.domain, strlen ((char *) ss->dst.domain), ss->dst_port))
    return;
  if (ss->dst_is_ip4)
    socks5_addr_set_ip4 (dst, ss->dst_ip.ip4.as_u8, ss->dst_port);
  else
    socks5_addr_set_ip6 (dst, ss->dst_ip.ip6.as_u8, ss->dst_port);
}

/* A pooled connection taken by a flow: its CONNECT into the upstream's own tx fifo. */
void
singbox_client_write_connect (singbox_session_t *ss, svm_fifo_t *tx)
{
  socks5_addr_t dst;
  socks5_out_t out;

  singbox_client_dst (ss, &dst);
  if (ss->cproto && !socks5_client_request (ss->cproto, SOCKS5_CMD_CONNECT, &dst, &out))
    svm_fifo_enqueue (tx, out.len, out.data);
}

/* On the record's thread, after the client leg's accept: cross if the
 * proxy has answered already. */
static void
singbox_client_cross_rpc (void *arg)
{
  singbox_session_t *ss = singbox_session_get_by_id (pointer_to_uword (arg));
  session_t _s, *s;

  if (ss && !ss->crossed && ss->state == SINGBOX_SESSION_STATE_SOCKS5_REPLY &&
      singbox_client_handshake_done (ss) && (s = singbox_ao_session (ss, &_s)))
    singbox_client_cross (s, ss);
}

static int
singbox_client_accept (session_t *s)
{
  u32 h;
  singbox_main_t *sm = &singbox_main;
  singbox_endpoint_t *ep;
  singbox_session_t *ss;

  s->session_state = SESSION_STATE_READY;
  h = s->opaque;
  ss = singbox_session_get (h);
  SINGBOX_ASSERT_THREAD (ss->po_thread);
  ss->po_accepted = 1;
  if (ss->state == SINGBOX_SESSION_STATE_CLOSING)
    singbox_po_reset_later (ss);
  else if (ss->from_pool || ss->connecting || ss->ao_handle != SESSION_INVALID_HANDLE)
    {
      /* the upstream was taken from the pool or started at the SYN
       * (singbox_client_connect_rpc), and the proxy may have answered the
       * CONNECT already (see singbox_client_cross); an RPC, not from
       * inside the accept notification */
      if (!ss->crossed && ss->ao_handle != SESSION_INVALID_HANDLE)
	singbox_rpc (ss->po_thread, singbox_client_cross_rpc,
		     uword_to_pointer (singbox_session_id (ss), void *));
    }
  else if (!ss->bypass)
    {
      ep = pool_elt_at_index (sm->endpoints, ss->endpoint_index);
      clib_atomic_fetch_add (&ep->connections, 1);
      singbox_session_connect_to (ss, &ep->addr, ep->is_ip4, ep->port, ep->fib_index);
    }
  else
    singbox_session_connect_to (ss, &ss->dst_ip, ss->dst_is_ip4, ss->dst_port, ss->fib_index);
  return 0;
}

/* After the proxy's reply: make the upstream leg use the client's fifos,
 * crossed, like server mode. Only once the handshake bytes are all
 * acknowledged (empty tx fifo), since TCP reads unacknowledged data from
 * the fifo. Bytes the destination already sent are moved over. On the
 * record's thread; a leg of another thread crosses on its own thread when
 * asked (singbox_ao_cross_remote). Returns 0 when crossed. */
int
singbox_client_cross (session_t *s, singbox_session_t *ss)
{
  svm_fifo_t *own_rx = s->rx_fifo, *own_tx = s->tx_fifo;
  u8 buf[4096];
  u32 n;

  SINGBOX_ASSERT_OWNER (ss->index);
  /* A pooled upstream may answer the CONNECT sent at the client's SYN
   * before that handshake completes; until the accept the client leg may
   * still be freed, fifos and all, without a word to us (a SYN then RST
   * crashed VPP here). singbox_client_accept crosses then. */
  if (!ss->po_accepted)
    return -1;
  if (!ss->ao_remote && svm_fifo_max_dequeue (own_tx))
    {
      svm_fifo_add_want_deq_ntf (own_tx, SVM_FIFO_WANT_DEQ_NOTIF);
      return -1;
    }
  /* a chained server session: its client's success reply goes first */
  if (ss->mode == SINGBOX_MODE_SERVER)
    singbox_server_reply_connected (s, ss);
  /* what the destination sent so far moves here (we read the leg's own
   * rx fifo during the handshake); for a leg of another thread the rest
   * moves on that thread, which waits for the handshake's bytes to be
   * acknowledged */
  while ((n = svm_fifo_max_dequeue (own_rx)))
    {
      n = clib_min (n, sizeof (buf));
      n = clib_min (n, svm_fifo_max_enqueue (ss->po_tx_fifo));
      if (!n)
	break;
      svm_fifo_dequeue (own_rx, n, buf);
      svm_fifo_enqueue (ss->po_tx_fifo, n, buf);
    }
  if (ss->ao_remote)
    {
      singbox_client_hs_free (ss);
      ss->state = SINGBOX_SESSION_STATE_ESTABLISHED;
      ss->deadline = 0;
      singbox_ao_cross_remote (ss);
      return 0;
    }
  ss->po_rx_fifo->vpp_sh = s->handle;
  ss->po_rx_fifo->refcnt++;
  ss->po_tx_fifo->refcnt++;
  s->rx_fifo = ss->po_tx_fifo;
  s->tx_fifo = ss->po_rx_fifo;
  s->flags |= SESSION_F_PROXY;
  ss->crossed = 1;
  segment_manager_dealloc_fifos (own_rx, own_tx);
  singbox_client_hs_free (ss);

  ss->state = SINGBOX_SESSION_STATE_ESTABLISHED;
  ss->deadline = 0;
  /* client data waiting since the accept, and destination data moved */
  if (svm_fifo_max_dequeue (s->tx_fifo))
    {
      svm_fifo_set_event (s->tx_fifo);
      session_program_tx_io_evt (s->handle, SESSION_IO_EVT_TX);
    }
  if (svm_fifo_max_dequeue (s->rx_fifo))
    {
      svm_fifo_set_event (s->rx_fifo);
      session_program_tx_io_evt (ss->po_handle, SESSION_IO_EVT_TX);
    }
  if (ss->po_fin)
    {
      vnet_shutdown_args_t a = {
	.handle = s->handle,
	.app_index = singbox_main.upstream_app_index,
      };
      vnet_shutdown_session (&a);
    }
  return 0;
}

static void
singbox_client_fail (singbox_session_t *ss)
{
  singbox_main_t *sm = &singbox_main;
  singbox_endpoint_t *ep;

  singbox_pool_forget (ss);
  if (ss->sw_if_index < vec_len (sm->interfaces))
    {
      vlib_increment_simple_counter (&sm->itf_failures, vlib_get_thread_index (), ss->sw_if_index,
				     1);
      clib_atomic_fetch_add (&sm->interfaces[ss->sw_if_index].failures, 1);
    }
  if (ss->endpoint_index != ~0 && !pool_is_free_index (sm->endpoints, ss->endpoint_index))
    {
      ep = pool_elt_at_index (sm->endpoints, ss->endpoint_index);
      clib_atomic_fetch_add (&ep->failures, 1);
    }
  singbox_group_count_failure (ss->group_index, ss->endpoint_index);
  ss->state = SINGBOX_SESSION_STATE_CLOSING;
  /* An upstream started at the SYN (pooled, or singbox_client_connect_rpc)
   * can fail before the client leg is accepted. That leg must not be
   * touched then: VPP may have freed it without a word (a SYN scan, whose
   * client answers our SYN-ACK with a reset) and handed its slot to
   * another connection, which a reset by handle would kill. po_closed
   * keeps every path from ending it; the accept resets it (state closing,
   * singbox_client_accept) or the unaccepted-leg check ends the session. */
  if (!ss->po_accepted)
    {
      ss->po_closed = 1;
      return;
    }
  /* the client's handshake completed: all we can say now is a reset */
  singbox_po_reset (ss);
}

/* The proxy refused the tunnel (rep: what it said, as a SOCKS5 REP). A
 * server session chained through client mode tells its own client
 * (singbox_server_upstream_failed, which also ends the upstream leg once
 * the reply is out); a flow can only be reset. On the record's thread. */
static void
singbox_client_refused (singbox_session_t *ss, u8 rep)
{
  if (ss->mode == SINGBOX_MODE_SERVER)
    {
      singbox_server_upstream_failed (ss, rep);
      return;
    }
  singbox_client_fail (ss);
  singbox_ao_close (ss);
}

/* The proxy's rtt: from the flow's accept to its answer. */
static void
singbox_client_note_rtt (singbox_session_t *ss)
{
  /* a server session was created at its client's accept, before its
   * handshake: not the proxy's rtt */
  if (ss->mode == SINGBOX_MODE_CLIENT && ss->endpoint_index != ~0 &&
      !pool_is_free_index (singbox_main.endpoints, ss->endpoint_index))
    pool_elt_at_index (singbox_main.endpoints, ss->endpoint_index)->rtt_us =
      (vlib_time_now (vlib_get_main ()) - ss->created) * 1e6;
}

/* HTTP CONNECT: the proxy's response. The core consumes the header block
 * and not one byte more: what follows is the destination's and stays in
 * the fifo for singbox_client_cross to move. On the record's thread. */
static void
singbox_client_http_rx (session_t *s, singbox_session_t *ss)
{
  http_connect_event_type_t t;
  http_connect_event_t ev;
  u8 buf[512];
  u32 n, consumed;

  while ((n = clib_min (svm_fifo_max_dequeue_cons (s->rx_fifo), sizeof (buf))))
    {
      svm_fifo_peek (s->rx_fifo, 0, n, buf);
      t = http_connect_client_feed (ss->hcproto, buf, n, &consumed, &ev);
      if (consumed)
	svm_fifo_dequeue_drop (s->rx_fifo, consumed);
      if (t == HTTP_CONNECT_EV_CONNECTED)
	{
	  singbox_client_note_rtt (ss);
	  singbox_client_cross (s, ss);
	  return;
	}
      if (t == HTTP_CONNECT_EV_ERROR)
	{
	  SINGBOX_LOG (SINGBOX_LOG_INFO, "upstream refused %U:%u: %s (status %u)",
		       format_ip46_address, &ss->dst_ip, IP46_TYPE_ANY, ss->dst_port,
		       http_connect_error_name (ev.error), ev.status);
	  singbox_client_refused (ss, ev.status == 403 ? SOCKS5_REP_NOT_ALLOWED :
				      ev.status == 504 ? SOCKS5_REP_TTL_EXPIRED :
							 SOCKS5_REP_GENERAL_FAILURE);
	  return;
	}
      /* NEED_DATA took all n: more may wait beyond the peek */
      if (consumed < n)
	break;
    }
}

/* Upstream bytes during the handshake: the proxy's replies. On the
 * record's thread (it reads the leg's own rx fifo, wherever the leg is). */
void
singbox_client_upstream_rx (session_t *s, singbox_session_t *ss)
{
  u8 buf[4 + 1 + SOCKS5_MAX_DOMAIN_LEN + 2];
  socks5_event_type_t t;
  socks5_event_t ev;
  socks5_out_t out;
  u32 n, consumed;

  if (ss->upstream_proto == SINGBOX_PROTO_HTTP_CONNECT)
    {
      singbox_client_http_rx (s, ss);
      return;
    }
  while (1)
    {
      n = clib_min (svm_fifo_max_dequeue_cons (s->rx_fifo), sizeof (buf));
      if (!n)
	break;
      svm_fifo_peek (s->rx_fifo, 0, n, buf);
      consumed = 0;
      out.len = 0;
      t = socks5_client_feed (ss->cproto, buf, n, &consumed, &ev, &out);
      SINGBOX_DBG ("session %u: proxy reply %u bytes: %s, consumed %u", ss->index, n,
		   socks5_event_name (t), consumed);
      /* pipelined: the core never writes here (out stays empty) */
      if (consumed)
	svm_fifo_dequeue_drop (s->rx_fifo, consumed);
      if (t == SOCKS5_EV_CONNECTED)
	{
	  singbox_client_note_rtt (ss);
	  singbox_client_cross (s, ss);
	  return;
	}
      if (t == SOCKS5_EV_ERROR)
	{
	  SINGBOX_LOG (SINGBOX_LOG_INFO, "upstream refused %U:%u: %s (rep %u)", format_ip46_address,
		       &ss->dst_ip, IP46_TYPE_ANY, ss->dst_port, socks5_error_name (ev.error),
		       ev.rep);
	  /* the upstream's REP describes the destination: passed on as is */
	  singbox_client_refused (ss, ev.error == SOCKS5_ERR_REQUEST_FAILED && ev.rep ?
					ev.rep :
					SOCKS5_REP_GENERAL_FAILURE);
	  return;
	}
      /* NEED_DATA took the whole capped peek: the replies of a pipelined
       * handshake (up to 4 + 262 bytes) may hold more than buf, and no
       * further rx event comes for bytes already in the fifo */
      if (!consumed || (t == SOCKS5_EV_NEED_DATA && consumed < n))
	break;
    }
  /* authenticated, waiting for a flow's CONNECT */
  if (ss->pooled && socks5_client_state (ss->cproto) == SOCKS5_CLIENT_READY)
    singbox_pool_ready (ss);
}

/*
 * The mode's part of the relay
 */

/* Add what the client leg moved since the last call to its interface's
 * counters; on the leg's thread (legs of one interface may be on several). */
static void
singbox_client_count_traffic (singbox_session_t *ss, session_t *po)
{
  singbox_main_t *sm = &singbox_main;
  singbox_interface_t *itf;
  tcp_connection_t *tcp = (tcp_connection_t *) session_get_transport (po);
  u64 segments, bytes, bytes_before;

  if (!tcp || ss->sw_if_index >= vec_len (sm->interfaces))
    return;
  bytes_before = ss->counted_to_client + ss->counted_from_client;
  ss->counted_to_client = tcp->bytes_out;
  ss->counted_from_client = tcp->bytes_in;
  segments = tcp->segs_in + tcp->data_segs_out - ss->counted_segments;
  ss->counted_segments += segments;
  bytes = tcp->bytes_in + tcp->bytes_out - bytes_before;
  itf = vec_elt_at_index (sm->interfaces, ss->sw_if_index);
  clib_atomic_fetch_add (&itf->packets, segments);
  clib_atomic_fetch_add (&itf->bytes, bytes);
  vlib_increment_combined_counter (&sm->itf_redirected, vlib_get_thread_index (), ss->sw_if_index,
				   segments, bytes);
}

static void
singbox_client_release_active (singbox_session_t *ss)
{
  singbox_main_t *sm = &singbox_main;

  if (ss->sw_if_index < vec_len (sm->interfaces))
    clib_atomic_fetch_sub (&vec_elt (sm->interfaces, ss->sw_if_index).active, 1);
  singbox_group_release (ss->group_index, ss->endpoint_index);
}

static int
singbox_client_relaying (singbox_session_t *ss)
{
  return ss->crossed;
}

static void
singbox_client_free (singbox_session_t *ss)
{
  singbox_pool_forget (ss);
  singbox_client_hs_free (ss);
}

/* Client data waits in the client leg's fifo until the proxy has replied
 * and the legs are crossed (or, bypassed, until the upstream is
 * connected). */
static session_handle_t
singbox_client_client_rx (session_t *s, singbox_session_t *ss)
{
  if (ss->state == SINGBOX_SESSION_STATE_CLOSING)
    {
      svm_fifo_dequeue_drop_all (s->rx_fifo);
      return SESSION_INVALID_HANDLE;
    }
  return ss->crossed ? ss->ao_handle : SESSION_INVALID_HANDLE;
}

/* The client's FIN before the upstream reply: passed on when the legs are
 * crossed (singbox_client_cross). */
static int
singbox_client_client_fin (session_t *s, singbox_session_t *ss)
{
  if (ss->state == SINGBOX_SESSION_STATE_CLOSING)
    return 0;
  if (ss->crossed && ss->ao_handle != SESSION_INVALID_HANDLE)
    {
      singbox_relay_kick (s->rx_fifo, ss->ao_handle);
      singbox_leg_do (ss->ao_handle, singbox_leg_shutdown_rpc);
    }
  return 1;
}

/* A bypassed flow's upstream is the destination itself: cross at once. */
static int
singbox_client_upstream_fifos (session_t *s, singbox_session_t *ss, u8 *cross)
{
  if (ss->bypass)
    {
      *cross = 1;
      return 0;
    }
  return singbox_client_alloc_fifos (s, ss);
}

static void
singbox_client_upstream_connect_failed (singbox_session_t *ss, session_error_t err)
{
  singbox_client_fail (ss);
}

/* The request (and any client data) is already in the upstream's tx fifo. */
static int
singbox_client_upstream_connected (session_t *s, singbox_session_t *ss)
{
  ss->state = ss->bypass ? SINGBOX_SESSION_STATE_ESTABLISHED : SINGBOX_SESSION_STATE_SOCKS5_REPLY;
  ss->last_active = vlib_time_now (vlib_get_main ());
  if (ss->bypass)
    ss->deadline = 0;
  if (svm_fifo_max_dequeue (s->tx_fifo) && svm_fifo_set_event (s->tx_fifo))
    session_program_tx_io_evt (s->handle, SESSION_IO_EVT_TX);
  if (ss->po_fin && ss->crossed)
    singbox_leg_do (ss->ao_handle, singbox_leg_shutdown_rpc);
  return 1;
}

static int
singbox_client_upstream_rx_hook (session_t *s, singbox_session_t *ss)
{
  if (ss->state != SINGBOX_SESSION_STATE_SOCKS5_REPLY)
    return 0;
  singbox_client_upstream_rx (s, ss);
  return 1;
}

/* Room in the upstream's own tx fifo: the handshake bytes are acknowledged,
 * the legs may be crossed now. */
static int
singbox_client_upstream_tx (session_t *s, singbox_session_t *ss)
{
  if (ss->crossed)
    return 0;
  if (ss->state == SINGBOX_SESSION_STATE_SOCKS5_REPLY && singbox_client_handshake_done (ss))
    singbox_client_cross (s, ss);
  return 1;
}

static int
singbox_client_upstream_fin (session_t *s, singbox_session_t *ss)
{
  if (ss->pooled && ss->pool_ready)
    {
      /* an idle pooled connection closed by the proxy: not a failure */
      singbox_pool_forget (ss);
      ss->state = SINGBOX_SESSION_STATE_CLOSING;
      singbox_ao_close (ss);
      return 1;
    }
  if (ss->crossed || ss->bypass)
    return 0;
  /* the proxy closed during the handshake (e.g. after refusing our
   * credentials): its last bytes may have come with the FIN */
  if (ss->state == SINGBOX_SESSION_STATE_SOCKS5_REPLY)
    singbox_client_upstream_rx (s, ss);
  if (!ss->crossed && ss->state != SINGBOX_SESSION_STATE_CLOSING)
    singbox_client_fail (ss);
  singbox_ao_close (ss);
  return 1;
}

static void
singbox_client_upstream_reset (singbox_session_t *ss)
{
  if (!ss->crossed && ss->state != SINGBOX_SESSION_STATE_CLOSING)
    singbox_client_fail (ss);
}

/* On the client leg's thread: a client-mode session whose client leg VPP
 * freed before accepting it (see po_accepted) is ended here, or it would
 * count against max-connections and keep its upstream leg forever. */
static void
singbox_client_leg_check_rpc (void *arg)
{
  singbox_session_t *ss;
  session_t *s;
  u64 id = pointer_to_uword (arg);

  ss = singbox_session_get_by_id (id);
  if (!ss || ss->po_accepted || ss->po_handle == SESSION_INVALID_HANDLE)
    return;
  SINGBOX_ASSERT_THREAD (ss->po_thread);
  s = session_get_from_handle_if_valid (ss->po_handle);
  /* the slot may hold another session by now */
  if (s && s->opaque == ss->index && session_handle (s) != ss->ao_handle)
    return;
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
}

/* Kill (connect timeout, disconnect-session) of a session whose client leg
 * is not accepted yet: as in singbox_client_fail, that leg must not be reset
 * by its handle, which VPP may have freed and given to another connection.
 * The upstream is reset; the accept resets the client leg (state closing) or
 * the unaccepted-leg check ends the session. 0: accepted, the relay's reset
 * of both legs applies. */
static int
singbox_client_kill (singbox_session_t *ss, int timed_out)
{
  if (ss->po_accepted)
    return 0;
  ss->state = SINGBOX_SESSION_STATE_CLOSING;
  ss->po_closed = 1;
  singbox_ao_reset (ss);
  return 1;
}

static void
singbox_client_poll (singbox_session_t *ss, f64 now)
{
  if (!ss->po_accepted && ss->po_handle != SESSION_INVALID_HANDLE && now >= ss->po_check_at)
    {
      ss->po_check_at = now + SINGBOX_UNACCEPTED_CHECK_INTERVAL;
      singbox_rpc (ss->po_thread, singbox_client_leg_check_rpc,
		   uword_to_pointer (singbox_session_id (ss), void *));
    }
}

static int
singbox_client_idle (singbox_session_t *ss, f64 now)
{
  singbox_main_t *sm = &singbox_main;

  return ss->state == SINGBOX_SESSION_STATE_ESTABLISHED && sm->client_timeout &&
	 now - ss->last_active >= sm->client_timeout;
}

static u8 *
singbox_client_format_legs (u8 *s, singbox_session_t *ss)
{
  return format (s, ", %s%s%s%s", ss->po_accepted ? "" : "not accepted, ",
		 ss->crossed ? "crossed" : "not crossed", ss->from_pool ? ", from pool" : "",
		 ss->pooled ? ", pooled" : "");
}

const singbox_session_vft_t singbox_client_session_vft = {
  .name = "client",
  .release_active = singbox_client_release_active,
  .count_traffic = singbox_client_count_traffic,
  .relaying = singbox_client_relaying,
  .free = singbox_client_free,
  .client_rx = singbox_client_client_rx,
  .client_fin = singbox_client_client_fin,
  .upstream_fifos = singbox_client_upstream_fifos,
  .upstream_connect_failed = singbox_client_upstream_connect_failed,
  .upstream_connected = singbox_client_upstream_connected,
  .upstream_rx = singbox_client_upstream_rx_hook,
  .upstream_tx = singbox_client_upstream_tx,
  .upstream_fin = singbox_client_upstream_fin,
  .upstream_reset = singbox_client_upstream_reset,
  .kill = singbox_client_kill,
  /* not in client mode yet: with it, intercepted clients that reuse their
   * ports at once found our leg's TIME_WAIT in the way more often ("no
   * listener for dst port" in tests/vpp/test_vpp_client.py, 2 workers) */
  .probe_client_ack = 0,
  .poll = singbox_client_poll,
  .idle = singbox_client_idle,
  .format_legs = singbox_client_format_legs,
};

/* A closing session's client leg, on its thread: VPP's TCP still waits for
 * the client (the ACK of our FIN in LAST_ACK or FIN_WAIT_1, its FIN), and
 * that segment is now routed past it, so the leg would only go with tcp's
 * lastack/finwait1 timers (30 s, 60 s), the record and its count with it.
 * Reset the transport: a reset from the session layer is ignored once the
 * app closed. TIME_WAIT ends on its own timer. */
static void
singbox_client_abort_leg_rpc (void *arg)
{
  singbox_session_t *ss = singbox_session_get_by_id (pointer_to_uword (arg));
  tcp_connection_t *tc;
  session_t *s;

  /* by the record, not the handle: a handle may be another connection's by now */
  if (!ss || !(s = session_get_from_handle_if_valid (ss->po_handle)))
    return;
  if (!(s->flags & SESSION_F_APP_CLOSED))
    {
      session_reset (s);
      return;
    }
  if (s->session_state >= SESSION_STATE_TRANSPORT_CLOSED)
    return;
  tc = tcp_connection_get_if_valid (s->connection_index, s->thread_index);
  if (!tc || tc->state == TCP_STATE_CLOSED || tc->state == TCP_STATE_TIME_WAIT)
    return;
  transport_reset (TRANSPORT_PROTO_TCP, s->connection_index, s->thread_index);
}

/* Without the interface's interception its relayed flows' next segments
 * would be routed past VPP's TCP, leaving the sessions to the idle timeout
 * (and counted against max-connections when re-enabled): end them now,
 * closing ones too (their client leg's last segments are lost as well). */
void
singbox_client_close_interface (u32 sw_if_index)
{
  singbox_main_t *sm = &singbox_main;
  singbox_session_t *ss;
  singbox_worker_t *wrk;
  u64 *ids = 0, *id;

  /* API/CLI handler: the workers are stopped */
  SINGBOX_ASSERT_BARRIER ();
  vec_foreach (wrk, sm->workers)
    pool_foreach (ss, wrk->sessions)
      if (ss->mode == SINGBOX_MODE_CLIENT && ss->sw_if_index == sw_if_index &&
	  ss->po_handle != SESSION_INVALID_HANDLE)
	{
	  if (ss->state == SINGBOX_SESSION_STATE_CLOSING)
	    singbox_rpc (ss->po_thread, singbox_client_abort_leg_rpc,
			 uword_to_pointer (singbox_session_id (ss), void *));
	  else
	    vec_add1 (ids, singbox_session_id (ss));
	}
  /* each is reset on its client leg's thread */
  vec_foreach (id, ids)
    singbox_session_disconnect (*id);
  vec_free (ids);
}

int
singbox_set_client_timeout (u32 timeout)
{
  singbox_main.client_timeout = timeout;
  return 0;
}

clib_error_t *
singbox_client_init (vlib_main_t *vm)
{
  singbox_main_t *sm = &singbox_main;

  sm->intercept_app_index = APP_INVALID_INDEX;
  sm->intercept_listen4 = SESSION_INVALID_HANDLE;
  sm->intercept_listen6 = SESSION_INVALID_HANDLE;
  sm->intercept_tcp6_listener = ~0;
  sm->itf_connections.name = "singbox-client-connections";
  sm->itf_connections.stat_segment_name = "/singbox/client/interface/connections";
  sm->itf_failures.name = "singbox-client-failures";
  sm->itf_failures.stat_segment_name = "/singbox/client/interface/failures";
  sm->itf_redirected.name = "singbox-client-redirected";
  sm->itf_redirected.stat_segment_name = "/singbox/client/interface/redirected";
  vlib_validate_simple_counter (&sm->itf_connections, 0);
  vlib_validate_simple_counter (&sm->itf_failures, 0);
  vlib_validate_combined_counter (&sm->itf_redirected, 0);
  return 0;
}
