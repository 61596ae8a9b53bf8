/* SPDX-License-Identifier: Apache-2.0
 * Copyright (c) 2026 vpp-singbox authors
 */

/* Server mode: the "singbox-server" app accepts SOCKS5 and HTTP CONNECT
 * clients on the configured listeners (the client leg, "po"); the
 * handshake is parsed from the po rx fifo by the sans-IO cores
 * (socks5_proto.c, http_connect_proto.c), then the relay
 * (singbox_session.c) connects the upstream leg. The success reply is
 * written while the upstream fifos are being attached, before the
 * destination can send anything, so it always precedes relayed data.
 * Also here: listeners, allowed client prefixes, the server's settings and
 * counters, and what DNS and UDP ASSOCIATE report back.
 *
 * Chaining (plugin/API.md, "Proxy chain"): a CONNECT whose destination is
 * routed out of an interface with client mode enabled, or every CONNECT
 * when the server has an explicit upstream interface, goes through that
 * interface's upstream (its endpoint group or endpoint, as for the flows
 * it intercepts): the upstream leg connects to the proxy and runs client
 * mode's handshake (singbox_client.c) for the destination as requested,
 * name or address; our client's reply follows the proxy's. */

#include <singbox/singbox.h>
#include <singbox/singbox_group.h>
#include <vnet/tcp/tcp.h>
#include <vnet/fib/fib_entry.h>

static int singbox_server_listen (singbox_listener_t *l);
static int singbox_server_unlisten (singbox_listener_t *l);
static int singbox_po_accept (session_t *s);
static void singbox_server_close_all (void);
static void singbox_server_ack (singbox_session_t *ss);

static const char *singbox_server_counter_names[] = {
#define _(sym, str) "/singbox/server/" str,
  foreach_singbox_server_counter
#undef _
};

/*
 * Listeners
 */

singbox_listener_t *
singbox_listener_find (u8 *name)
{
  singbox_main_t *sm = &singbox_main;
  singbox_listener_t *l;

  pool_foreach (l, sm->listeners)
    if (!strcmp ((char *) l->name, (char *) name))
      return l;
  return 0;
}

int
singbox_listener_add_del (int is_add, u8 *name, ip46_address_t *addr, u8 is_ip4, u16 port,
			  u32 table_id, u32 *listener_index)
{
  singbox_main_t *sm = &singbox_main;
  singbox_listener_t *l, *o;
  u32 len = strnlen ((char *) name, 64);
  int rv = 0;

  if (len == 0 || len > 63)
    return VNET_API_ERROR_INVALID_VALUE;

  l = singbox_listener_find (name);
  if (!is_add)
    {
      if (!l)
	return VNET_API_ERROR_NO_SUCH_ENTRY;
      if (l->is_listening)
	singbox_server_unlisten (l);
      vec_free (l->name);
      pool_put (sm->listeners, l);
      return 0;
    }

  if (port == 0)
    return VNET_API_ERROR_INVALID_VALUE;
  if (table_id != 0 &&
      fib_table_find (is_ip4 ? FIB_PROTOCOL_IP4 : FIB_PROTOCOL_IP6, table_id) == ~0)
    return VNET_API_ERROR_NO_SUCH_FIB;

  /* (addr, port, table) must stay unique, as in the YANG model */
  pool_foreach (o, sm->listeners)
    if (o != l && o->port == port && o->table_id == table_id && o->is_ip4 == is_ip4 &&
	ip46_address_is_equal (&o->addr, addr))
      return VNET_API_ERROR_VALUE_EXIST;

  if (l)
    {
      if (l->port == port && l->table_id == table_id && l->is_ip4 == is_ip4 &&
	  ip46_address_is_equal (&l->addr, addr))
	{
	  *listener_index = l - sm->listeners;
	  return 0;
	}
      if (l->is_listening)
	singbox_server_unlisten (l);
    }
  else
    {
      pool_get_zero (sm->listeners, l);
      l->name = format (0, "%s%c", name, 0);
      l->listen_handle = SESSION_INVALID_HANDLE;
    }
  l->addr = *addr;
  l->is_ip4 = is_ip4;
  l->port = port;
  l->table_id = table_id;
  *listener_index = l - sm->listeners;

  if (sm->server_enabled)
    rv = singbox_server_listen (l);
  return rv;
}

/*
 * Allowed client prefixes
 */

int
singbox_allowed_prefix_add_del (int is_add, ip46_address_t *addr, u8 len, u8 is_ip4)
{
  singbox_main_t *sm = &singbox_main;
  singbox_prefix_t *p, np = {};
  u32 i;

  if (len > (is_ip4 ? 32 : 128))
    return VNET_API_ERROR_INVALID_VALUE;
  np.addr = *addr;
  np.len = len;
  np.is_ip4 = is_ip4;
  if (is_ip4)
    ip4_address_normalize (&np.addr.ip4, len);
  else
    ip6_address_normalize (&np.addr.ip6, len);

  vec_foreach_index (i, sm->allowed_prefixes)
    {
      p = vec_elt_at_index (sm->allowed_prefixes, i);
      if (p->is_ip4 == is_ip4 && p->len == len && ip46_address_is_equal (&p->addr, &np.addr))
	{
	  if (!is_add)
	    vec_del1 (sm->allowed_prefixes, i);
	  return 0;
	}
    }
  if (!is_add)
    return VNET_API_ERROR_NO_SUCH_ENTRY;
  vec_add1 (sm->allowed_prefixes, np);
  return 0;
}

int
singbox_prefix_allowed (ip46_address_t *ip, u8 is_ip4)
{
  singbox_main_t *sm = &singbox_main;
  singbox_prefix_t *p;

  if (vec_len (sm->allowed_prefixes) == 0)
    return 1;
  vec_foreach (p, sm->allowed_prefixes)
    {
      if (p->is_ip4 != is_ip4)
	continue;
      if (is_ip4)
	{
	  ip4_address_t a = ip->ip4;
	  ip4_address_normalize (&a, p->len);
	  if (a.as_u32 == p->addr.ip4.as_u32)
	    return 1;
	}
      else
	{
	  ip6_address_t a = ip->ip6;
	  ip6_address_normalize (&a, p->len);
	  if (ip6_address_is_equal (&a, &p->addr.ip6))
	    return 1;
	}
    }
  return 0;
}

/*
 * Handshake
 */

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

  SINGBOX_ASSERT_THREAD (ss->po_thread);

  if (ss->hserver)
    {
      singbox_http_server_reply_failure (ss, rep);
      singbox_ao_close (ss);
      return;
    }
  ss->rep = rep;
  ss->reply_sent = 1;
  out.len = 0;
  if (ss->proto && (socks5_server_reply (ss->proto, rep, 0, &out) == SOCKS5_ERR_NONE || out.len))
    singbox_po_send (ss, &out);
  singbox_po_fail (ss);
  /* a chained session's leg to the proxy, now that the reply is out */
  singbox_ao_close (ss);
}

static void
singbox_po_reply_failure_rpc (void *arg)
{
  u64 packed = pointer_to_uword (arg);
  singbox_session_t *ss;
  u32 index = packed & 0xffffffff;
  u8 rep = packed >> 56;
  u32 gen = (packed >> 32) & 0xffffff;

  if ((ss = singbox_session_get_if_valid (index)) && (ss->generation & 0xffffff) == gen &&
      !ss->reply_sent && !ss->po_closed)
    singbox_po_reply_failure (ss, rep);
}

static void
singbox_po_reply_failure_on_thread (singbox_session_t *ss, u8 rep)
{
  u64 packed = ((u64) rep << 56) | ((u64) (ss->generation & 0xffffff) << 32) | ss->index;

  if (ss->po_thread == vlib_get_thread_index ())
    singbox_po_reply_failure (ss, rep);
  else
    singbox_rpc (ss->po_thread, singbox_po_reply_failure_rpc, uword_to_pointer (packed, void *));
}

/*
 * Chaining through client mode's upstream
 */

static_always_inline int
singbox_server_chained (singbox_session_t *ss)
{
  return ss->endpoint_index != ~0;
}

/* The destination is one of the upstream proxies themselves: a client of
 * the server may talk to a proxy, never through it to itself. */
static int
singbox_server_dst_is_endpoint (singbox_session_t *ss)
{
  singbox_endpoint_t *ep;

  pool_foreach (ep, singbox_main.endpoints)
    if (ep->is_ip4 == ss->dst_is_ip4 && ep->port == ss->dst_port &&
	(ep->is_ip4 ? ep->addr.ip4.as_u32 == ss->dst_ip.ip4.as_u32 :
		      ip6_address_is_equal (&ep->addr.ip6, &ss->dst_ip.ip6)))
      return 1;
  return 0;
}

/* The client-mode interface whose upstream the CONNECT takes, ~0 to
 * connect directly: the explicit upstream interface, else the interface
 * the destination is routed out of (the listener's table) when client mode
 * is enabled on it. An address of VPP's own, in that interface's bypass
 * prefixes, or an endpoint's goes direct, as it would from a client behind
 * the interface. A name (explicit upstream only) is the upstream's to
 * resolve. */
static u32
singbox_server_upstream_of (singbox_session_t *ss)
{
  singbox_main_t *sm = &singbox_main;
  u32 sw_if_index = sm->server_upstream_sw_if_index;
  singbox_interface_t *itf;
  singbox_prefix_t *p;
  fib_node_index_t fei;
  fib_prefix_t pfx = {
    .fp_addr = ss->dst_ip,
    .fp_len = ss->dst_is_ip4 ? 32 : 128,
    .fp_proto = ss->dst_is_ip4 ? FIB_PROTOCOL_IP4 : FIB_PROTOCOL_IP6,
  };

  if (sw_if_index != ~0 && ss->dst.atyp == SOCKS5_ATYP_DOMAIN)
    return sw_if_index;
  if (sw_if_index == ~0)
    {
      if (!sm->n_enabled_interfaces)
	return ~0;
      fei = fib_table_lookup (ss->fib_index, &pfx);
      if (fei == FIB_NODE_INDEX_INVALID || (fib_entry_get_flags (fei) & FIB_ENTRY_FLAG_LOCAL))
	return ~0;
      sw_if_index = fib_entry_get_resolving_interface (fei);
      if (!singbox_interface_get (sw_if_index))
	return ~0;
    }
  if ((itf = singbox_interface_get (sw_if_index)))
    vec_foreach (p, itf->bypass)
      if (singbox_prefix_match (p, &ss->dst_ip, ss->dst_is_ip4))
	return ~0;
  if (singbox_server_dst_is_endpoint (ss))
    return ~0;
  return sw_if_index;
}

/* A chained session's upstream failed: its endpoint's (and group
 * member's) failures count it, as an intercepted flow's would. */
static void
singbox_server_count_upstream_failure (singbox_session_t *ss)
{
  singbox_main_t *sm = &singbox_main;

  if (!singbox_server_chained (ss))
    return;
  if (!pool_is_free_index (sm->endpoints, ss->endpoint_index))
    clib_atomic_fetch_add (&pool_elt_at_index (sm->endpoints, ss->endpoint_index)->failures, 1);
  singbox_group_count_failure (ss->group_index, ss->endpoint_index);
}

/* Connect the upstream leg: to the destination, or to the proxy of the
 * client-mode interface it takes. On the client's thread. */
static void
singbox_server_connect (singbox_session_t *ss)
{
  singbox_main_t *sm = &singbox_main;
  transport_endpoint_t rmt = {}, lcl = {};
  singbox_endpoint_t *ep = 0;
  singbox_interface_t *itf;
  u32 sw_if_index, group_index, ei;

  ss->state = SINGBOX_SESSION_STATE_CONNECTING;
  ss->deadline = vlib_time_now (vlib_get_main ()) + sm->connect_timeout;
  if ((sw_if_index = singbox_server_upstream_of (ss)) == ~0)
    {
      singbox_session_connect_to (ss, &ss->dst_ip, ss->dst_is_ip4, ss->dst_port, ss->fib_index);
      return;
    }
  /* the interface's upstream as its flows take it: its endpoint group's
   * policy, or its endpoint (the default one) with failover */
  if ((itf = singbox_interface_get (sw_if_index)))
    {
      rmt.ip = ss->client_ip;
      rmt.is_ip4 = ss->client_is_ip4;
      rmt.port = clib_host_to_net_u16 (ss->client_port);
      lcl.ip = ss->dst_ip;
      lcl.is_ip4 = ss->dst_is_ip4;
      lcl.port = clib_host_to_net_u16 (ss->dst_port);
      lcl.fib_index = ss->fib_index;
      group_index = singbox_group_of_interface (sw_if_index, itf->endpoint_index);
      if (group_index == ~0)
	ep = singbox_endpoint_pick (itf);
      else if ((ei = singbox_group_pick (group_index, &rmt, &lcl)) != ~0)
	{
	  ep = pool_elt_at_index (sm->endpoints, ei);
	  ss->group_index = group_index;
	}
    }
  if (!ep || (ep->host && !ep->resolved))
    {
      /* No usable upstream (the explicit interface has no client mode,
       * every endpoint is down): never direct, the operator sends this
       * traffic through a proxy. */
      singbox_server_counter_inc (SINGBOX_SERVER_CTR_CONNECT_FAILURES, 1);
      singbox_po_reply_failure (ss, socks5_rep_from_reason (SOCKS5_REASON_OTHER));
      return;
    }
  ss->sw_if_index = sw_if_index;
  ss->endpoint_index = ep - sm->endpoints;
  ss->upstream_proto = ep->protocol;
  /* accepted long ago: singbox_client_cross may cross at once */
  ss->po_accepted = 1;
  clib_atomic_fetch_add (&ep->connections, 1);
  singbox_session_connect_to (ss, &ep->addr, ep->is_ip4, ep->port, ep->fib_index);
}

/* The upstream proxy refused, failed or closed during the handshake: its
 * REP (or ours for it) to the client, on the client's thread, which then
 * ends the upstream leg (singbox_po_reply_failure). Lock held. */
static void
singbox_server_reply_owed_rpc (void *arg)
{
  u64 packed = pointer_to_uword (arg);
  singbox_session_t *ss;
  session_t *s;
  u32 index = packed & 0xffffffff;
  u8 rep = packed >> 56;
  u32 gen = (packed >> 32) & 0xffffff;

  if ((ss = singbox_session_get_if_valid (index)) && (ss->generation & 0xffffff) == gen &&
      ss->po_closed && !ss->reply_sent && ss->po_handle != SESSION_INVALID_HANDLE)
    {
      SINGBOX_ASSERT_THREAD (ss->po_thread);
      /* closed only to keep the relay's hands off the leg (below) */
      ss->po_closed = 0;
      s = session_get_from_handle_if_valid (ss->po_handle);
      if (s && s->session_state <= SESSION_STATE_TRANSPORT_CLOSING)
	singbox_po_reply_failure (ss, rep);
      else
	{
	  /* the client reset meanwhile: only the close it is owed */
	  singbox_po_close (ss);
	  singbox_ao_close (ss);
	}
    }
}

void
singbox_server_upstream_failed (singbox_session_t *ss, u8 rep)
{
  u64 packed;

  if (ss->state != SINGBOX_SESSION_STATE_CONNECTING || ss->reply_sent)
    return;
  ss->state = SINGBOX_SESSION_STATE_CLOSING;
  singbox_server_counter_inc (SINGBOX_SERVER_CTR_CONNECT_FAILURES, 1);
  singbox_server_count_upstream_failure (ss);
  if (ss->po_thread == vlib_get_thread_index ())
    {
      singbox_po_reply_failure (ss, rep);
      return;
    }
  /* The proxy's reset or close usually follows its refusal, and the relay
   * then ends the client leg, on its thread, before an RPC with the reply
   * would run: the client would see a reset. Marked closed, the leg is left
   * alone until the RPC has written the reply and closed it. */
  ss->po_closed = 1;
  packed = ((u64) rep << 56) | ((u64) (ss->generation & 0xffffff) << 32) | ss->index;
  singbox_rpc (ss->po_thread, singbox_server_reply_owed_rpc, uword_to_pointer (packed, void *));
}

int
singbox_server_set_upstream (u32 sw_if_index)
{
  if (sw_if_index != ~0 && !vnet_sw_interface_is_valid (vnet_get_main (), sw_if_index))
    return VNET_API_ERROR_INVALID_SW_IF_INDEX;
  singbox_main.server_upstream_sw_if_index = sw_if_index;
  return 0;
}

/* The destination as requested, kept for show and the API dump: a name
 * costs its length, an address nothing beyond dst_ip. */
static void
singbox_server_set_dst (singbox_session_t *ss, socks5_addr_t *addr)
{
  ss->dst.atyp = addr->atyp;
  if (ss->dst.domain)
    clib_mem_free (ss->dst.domain);
  ss->dst.domain = 0;
  if (addr->atyp != SOCKS5_ATYP_DOMAIN)
    return;
  ss->dst.domain = clib_mem_alloc (addr->domain_len + 1);
  clib_memcpy (ss->dst.domain, addr->domain, addr->domain_len);
  ss->dst.domain[addr->domain_len] = 0;
}

/* The SOCKS5 machine is not needed once the reply is out: a relaying
 * session keeps no handshake buffer. Cleared first: its buffer may hold the
 * client's credentials. */
static void
singbox_server_proto_free (singbox_session_t *ss)
{
  if (!ss->proto)
    return;
  clib_memset (ss->proto, 0, sizeof (*ss->proto));
  clib_mem_free (ss->proto);
  ss->proto = 0;
}

void
singbox_handle_request (singbox_session_t *ss, socks5_event_t *ev)
{
  singbox_main_t *sm = &singbox_main;

  ss->cmd = ev->cmd;
  singbox_server_set_dst (ss, &ev->addr);
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
      singbox_server_connect (ss);
      break;
    case SOCKS5_ATYP_IPV6:
      ss->dst_is_ip4 = 0;
      clib_memcpy (&ss->dst_ip.ip6, ev->addr.ip6, 16);
      singbox_server_connect (ss);
      break;
    case SOCKS5_ATYP_DOMAIN:
      if (sm->server_upstream_sw_if_index != ~0)
	{
	  /* the explicit upstream resolves it */
	  ip46_address_reset (&ss->dst_ip);
	  ss->dst_is_ip4 = 1;
	  singbox_server_connect (ss);
	  break;
	}
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

/* The password check's outcome to the client (SOCKS5): 0 if that ended the
 * session. On the client's thread. */
static int
singbox_server_auth_result (singbox_session_t *ss, int ok, u32 user_index)
{
  socks5_out_t out = { .len = 0 };

  SINGBOX_ASSERT_THREAD (ss->po_thread);
  if (ok)
    ss->user_index = user_index;
  socks5_server_auth_result (ss->proto, ok, &out);
  singbox_po_send (ss, &out);
  if (!ok)
    {
      singbox_server_counter_inc (SINGBOX_SERVER_CTR_AUTH_FAILURES, 1);
      singbox_po_fail (ss);
      return 0;
    }
  ss->state = SINGBOX_SESSION_STATE_REQUEST;
  return 1;
}

/* Feed the bytes received so far to the SOCKS5 core; on the client's thread. */
static void
singbox_po_handshake (session_t *s, singbox_session_t *ss)
{
  u8 buf[SOCKS5_MAX_MSG_LEN];
  socks5_event_type_t t;
  socks5_event_t ev;
  socks5_out_t out;
  u32 n, avail, consumed, user_index;
  int rv;

  /* the first byte tells: 0x05 SOCKS5, a letter HTTP CONNECT */
  if (singbox_http_server_handshake (s, ss))
    return;
  /* ss->proto goes with the reply, after which nothing comes here */
  while (!ss->po_closed && ss->proto)
    {
      avail = svm_fifo_max_dequeue_cons (s->rx_fifo);
      n = clib_min (avail, sizeof (buf));
      if (n)
	svm_fifo_peek (s->rx_fifo, 0, n, buf);
      consumed = 0;
      out.len = 0;
      t = socks5_server_feed (ss->proto, buf, n, &consumed, &ev, &out);
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
	  rv = singbox_user_check ((u8 *) ev.username, ev.username_len, (u8 *) ev.password,
				   ev.password_len, singbox_session_id (ss), ss->po_thread,
				   &user_index);
	  if (rv == SINGBOX_AUTH_PENDING)
	    {
	      /* what the client sent behind its credentials waits in the
	       * fifo: singbox_server_auth_done goes on */
	      ss->auth_pending = 1;
	      return;
	    }
	  if (!singbox_server_auth_result (ss, rv == SINGBOX_AUTH_OK, user_index))
	    return;
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
      if (socks5_server_state (ss->proto) == SOCKS5_SERVER_AUTH)
	ss->state = SINGBOX_SESSION_STATE_AUTH;
      else if (socks5_server_state (ss->proto) == SOCKS5_SERVER_REQUEST)
	ss->state = SINGBOX_SESSION_STATE_REQUEST;
    }
}

/* A password check that ran on the crypt thread (singbox_users.c) is done:
 * answer it and go on with what the client sent behind it. On the client's
 * thread. */
void
singbox_server_auth_done (u64 session_id, u32 user_index, int ok)
{
  singbox_session_t *ss;
  session_t *s;

  ss = singbox_session_get_by_id (session_id);
  if (!ss || !ss->auth_pending)
    return;
  SINGBOX_ASSERT_THREAD (ss->po_thread);
  ss->auth_pending = 0;
  /* timed out or disconnected meanwhile */
  if (ss->po_closed || ss->state == SINGBOX_SESSION_STATE_CLOSING)
    return;
  if (ss->hserver)
    singbox_http_server_auth_done (ss, ok, user_index);
  else if (singbox_server_auth_result (ss, ok, user_index) &&
	   (s = session_get_from_handle_if_valid (ss->po_handle)))
    {
      singbox_po_handshake (s, ss);
      singbox_server_ack (ss);
    }
}

/*
 * The client leg's accept and the mode's part of the relay
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

  /* the record goes to this thread's pool, the client leg's */
  SINGBOX_ASSERT_THREAD (s->thread_index);
  ss = singbox_session_alloc (SINGBOX_MODE_SERVER);
  ss->counted_active = !refused;
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
  ss->endpoint_index = ~0; /* not chained (singbox_server_connect) */
  ss->created = ss->last_active = vlib_time_now (vlib_get_main ());
  ss->deadline = ss->created + sm->handshake_timeout;
  ss->proto = clib_mem_alloc (sizeof (*ss->proto));
  socks5_server_init (ss->proto, &cfg);
  /* the greeting's ACK: held since it came with the handshake's last ACK,
   * or from now on for a greeting still to come */
  singbox_po_ack_hold_taken (ss, s);
  s->opaque = ss->index;

  s->session_state = SESSION_STATE_READY;
  if (!refused)
    singbox_po_ack_hold (ss);
  else
    {
      singbox_po_ack_release (ss);
      /* Refuse with an orderly close (FIN) rather than a reset during the
       * TCP handshake, which clients retry and we would count twice. Bytes
       * the client sends meanwhile are dropped in singbox_po_rx. */
      singbox_server_counter_inc (SINGBOX_SERVER_CTR_REJECTED, 1);
      ss->deadline = 0;
      ss->po_closed = 1;
      /* not from inside the accept notification: the session layer has
       * not finished setting the session up */
      singbox_rpc (s->thread_index, singbox_leg_close_rpc,
		   uword_to_pointer (session_handle (s), void *));
      return 0;
    }
  singbox_server_counter_inc (SINGBOX_SERVER_CTR_ACCEPTED, 1);
  return 0;
}

static void
singbox_server_release_active (singbox_session_t *ss)
{
  clib_atomic_fetch_sub (&singbox_main.n_active, 1);
  /* a chained session counts in its group member's active flows */
  singbox_group_release (ss->group_index, ss->endpoint_index);
}

/* The client leg's bytes, less the handshake's, to the server counters. */
static void
singbox_server_count_traffic (singbox_session_t *ss, session_t *po)
{
  u64 to_client, from_client;

  singbox_session_account_bytes (ss, po);
  /* handshake bytes are subtracted once parsed: never count backwards */
  to_client = clib_max (ss->bytes_to_client, ss->counted_to_client) - ss->counted_to_client;
  from_client = clib_max (ss->bytes_from_client, ss->counted_from_client) - ss->counted_from_client;
  ss->counted_to_client += to_client;
  ss->counted_from_client += from_client;
  singbox_server_counter_inc (SINGBOX_SERVER_CTR_BYTES_TO_CLIENT, to_client);
  singbox_server_counter_inc (SINGBOX_SERVER_CTR_BYTES_FROM_CLIENT, from_client);
}

static int
singbox_server_relaying (singbox_session_t *ss)
{
  return ss->state == SINGBOX_SESSION_STATE_ESTABLISHED;
}

static void
singbox_server_free (singbox_session_t *ss)
{
  singbox_client_hs_free (ss);
  singbox_http_server_free (ss);
  singbox_server_proto_free (ss);
  if (ss->dst.domain)
    clib_mem_free (ss->dst.domain);
  ss->dst.domain = 0;
  vec_free (ss->udp_peers);
  singbox_udp_names_free (ss);
}

/* After the client's bytes were taken: hold back our ACK of them while an
 * answer that will carry it is coming (singbox_po_ack_hold) — the next
 * message's, once the client has all our answers so far, or the request's
 * after the password check, the name lookup and the connect — else let it
 * go: a message in pieces, HTTP CONNECT. */
static void
singbox_server_ack (singbox_session_t *ss)
{
  if (ss->po_closed)
    return; /* released with the close */
  if (ss->auth_pending || ss->state == SINGBOX_SESSION_STATE_RESOLVING ||
      ss->state == SINGBOX_SESSION_STATE_CONNECTING ||
      (ss->proto && !ss->hserver && socks5_server_awaits_message (ss->proto)))
    singbox_po_ack_hold (ss);
  else
    singbox_po_ack_release (ss);
}

/* The client sent before the relay: its handshake, or payload pipelined
 * behind the request. */
static session_handle_t
singbox_server_client_rx (session_t *s, singbox_session_t *ss)
{
  if (ss->state <= SINGBOX_SESSION_STATE_REQUEST && !ss->po_closed)
    {
      singbox_po_handshake (s, ss);
      singbox_server_ack (ss);
    }
  else if ((ss->state == SINGBOX_SESSION_STATE_RESOLVING ||
	    ss->state == SINGBOX_SESSION_STATE_CONNECTING) &&
	   ss->cmd == SOCKS5_CMD_CONNECT && !ss->po_closed)
    /* payload pipelined behind the request: it stays in this fifo,
     * which becomes the upstream's tx fifo once connected */
    ;
  else
    /* refused, closing, or a UDP association's control connection */
    svm_fifo_dequeue_drop_all (s->rx_fifo);
  return SESSION_INVALID_HANDLE;
}

/* The tunnel to the destination is open (s: the upstream leg): queue the
 * success reply (SOCKS5 or HTTP) in the client's tx fifo, ahead of
 * anything the destination sends. Enqueue only. Lock held. */
void
singbox_server_reply_connected (session_t *s, singbox_session_t *ss)
{
  transport_endpoint_t lcl = {};
  socks5_addr_t bnd;
  socks5_out_t out;

  singbox_ao_lcl (ss, s, &lcl);
  if (lcl.is_ip4)
    socks5_addr_set_ip4 (&bnd, lcl.ip.ip4.as_u8, clib_net_to_host_u16 (lcl.port));
  else
    socks5_addr_set_ip6 (&bnd, lcl.ip.ip6.as_u8, clib_net_to_host_u16 (lcl.port));
  out.len = 0;
  if (ss->hserver)
    singbox_http_server_ok (ss, &out);
  else
    socks5_server_reply (ss->proto, SOCKS5_REP_SUCCEEDED, &bnd, &out);
  ss->rep = SOCKS5_REP_SUCCEEDED;
  ss->reply_sent = 1;
  singbox_server_proto_free (ss);
  /* the reply carries the ACK of the request */
  singbox_po_ack_release (ss);
  if (out.len && svm_fifo_enqueue (ss->po_tx_fifo, out.len, out.data) == out.len)
    ss->hs_bytes_out += out.len;
}

/* The upstream leg is connected, before it is usable. Direct: the reply,
 * then the client's fifos, crossed; the tx event is programmed once the
 * session is ready (singbox_ao_connected), on the client's thread via the
 * fifo's owner. Chained: own fifos with client mode's handshake queued
 * (singbox_client_alloc_fifos); the reply waits for the proxy's. */
static int
singbox_server_upstream_fifos (session_t *s, singbox_session_t *ss, u8 *cross)
{
  if (singbox_server_chained (ss))
    return singbox_client_alloc_fifos (s, ss);
  singbox_server_reply_connected (s, ss);
  *cross = 1;
  return 0;
}

/* No connection: to the destination, its REP; to the upstream proxy, a
 * general failure (0x01): the destination was never tried. */
static void
singbox_server_upstream_connect_failed (singbox_session_t *ss, session_error_t err)
{
  if (!ss->po_closed && !ss->reply_sent)
    {
      singbox_server_counter_inc (SINGBOX_SERVER_CTR_CONNECT_FAILURES, 1);
      singbox_server_count_upstream_failure (ss);
      singbox_po_reply_failure_on_thread (ss, singbox_server_chained (ss) ?
						socks5_rep_from_reason (SOCKS5_REASON_OTHER) :
						singbox_rep_from_session_error (err));
    }
}

/* Chained: the handshake queued by singbox_client_alloc_fifos goes out;
 * the session stays connecting, under the connect timeout, until the proxy
 * answers. */
static int
singbox_server_upstream_connected (session_t *s, singbox_session_t *ss)
{
  if (!singbox_server_chained (ss))
    return 0;
  if (svm_fifo_max_dequeue (s->tx_fifo) && svm_fifo_set_event (s->tx_fifo))
    session_program_tx_io_evt (s->handle, SESSION_IO_EVT_TX);
  return 1;
}

/* Chained, before the crossing: the proxy's replies (client mode's
 * parser; on success singbox_client_cross replies and crosses, on failure
 * singbox_server_upstream_failed). */
static int
singbox_server_upstream_rx (session_t *s, singbox_session_t *ss)
{
  if (!singbox_server_chained (ss) || ss->crossed)
    return 0;
  if (ss->state == SINGBOX_SESSION_STATE_CONNECTING)
    singbox_client_upstream_rx (s, ss);
  else
    svm_fifo_dequeue_drop_all (s->rx_fifo);
  return 1;
}

/* Chained: room in the upstream's own tx fifo, the handshake may be all
 * acknowledged; cross if the proxy has answered. */
static int
singbox_server_upstream_tx (session_t *s, singbox_session_t *ss)
{
  if (!singbox_server_chained (ss) || ss->crossed)
    return 0;
  if (ss->state == SINGBOX_SESSION_STATE_CONNECTING && singbox_client_handshake_done (ss))
    singbox_client_cross (s, ss);
  return 1;
}

/* Chained: the proxy closed during the handshake (after refusing our
 * credentials, say); its last bytes may have come with the FIN. */
static int
singbox_server_upstream_fin (session_t *s, singbox_session_t *ss)
{
  if (!singbox_server_chained (ss) || ss->crossed)
    return 0;
  if (ss->state == SINGBOX_SESSION_STATE_CONNECTING)
    singbox_client_upstream_rx (s, ss);
  if (ss->crossed)
    return 0; /* the relay passes the FIN on */
  singbox_server_upstream_failed (ss, socks5_rep_from_reason (SOCKS5_REASON_OTHER));
  return 1;
}

/* Chained: the proxy reset the handshake: the client still gets its
 * reply (singbox_server_upstream_failed keeps the relay's reset off). */
static void
singbox_server_upstream_reset (singbox_session_t *ss)
{
  if (singbox_server_chained (ss) && !ss->crossed)
    singbox_server_upstream_failed (ss, socks5_rep_from_reason (SOCKS5_REASON_OTHER));
}

static u8 *
singbox_server_format_legs (u8 *s, singbox_session_t *ss)
{
  if (!singbox_server_chained (ss))
    return s;
  return format (s, ", via endpoint %s (%U)%s", singbox_endpoint_name (ss->endpoint_index),
		 format_vnet_sw_if_index_name, vnet_get_main (), ss->sw_if_index,
		 ss->crossed ? "" : ", handshake");
}

/* Ending the session from outside (API, timeouts) before it relays: the
 * reply it is owed, if any. 0 when the relay's reset of both legs is what
 * is left to do. */
static int
singbox_server_kill (singbox_session_t *ss, int timed_out)
{
  if (ss->state < SINGBOX_SESSION_STATE_CONNECTING || ss->state == SINGBOX_SESSION_STATE_RESOLVING)
    {
      /* handshake timeout: no reply owed (RFC 1928 allows closing) unless
       * the request was complete */
      if (ss->state == SINGBOX_SESSION_STATE_RESOLVING && !ss->reply_sent)
	{
	  singbox_po_reply_failure (ss, socks5_rep_from_reason (SOCKS5_REASON_DNS_FAILURE));
	  return 1;
	}
      ss->state = SINGBOX_SESSION_STATE_CLOSING;
      singbox_po_fail (ss);
      return 1;
    }
  if (ss->state == SINGBOX_SESSION_STATE_CONNECTING)
    {
      if (timed_out)
	{
	  singbox_server_counter_inc (SINGBOX_SERVER_CTR_CONNECT_FAILURES, 1);
	  singbox_server_count_upstream_failure (ss);
	}
      if (!ss->reply_sent)
	singbox_po_reply_failure (
	  ss, socks5_rep_from_reason (timed_out ? SOCKS5_REASON_TIMEOUT : SOCKS5_REASON_OTHER));
      else
	singbox_po_fail (ss);
      return 1;
    }
  if (ss->state == SINGBOX_SESSION_STATE_UDP_ASSOCIATED)
    {
      /* the association ends with its TCP connection: close it */
      ss->state = SINGBOX_SESSION_STATE_CLOSING;
      singbox_po_close (ss);
      return 1;
    }
  return 0;
}

static int
singbox_server_idle (singbox_session_t *ss, f64 now)
{
  singbox_main_t *sm = &singbox_main;

  if (ss->state == SINGBOX_SESSION_STATE_ESTABLISHED)
    return sm->idle_timeout && now - ss->last_active >= sm->idle_timeout;
  return ss->state == SINGBOX_SESSION_STATE_UDP_ASSOCIATED &&
	 now - ss->last_active >= sm->udp_idle_timeout;
}

const singbox_session_vft_t singbox_server_session_vft = {
  .name = "server",
  .release_active = singbox_server_release_active,
  .count_traffic = singbox_server_count_traffic,
  .relaying = singbox_server_relaying,
  .free = singbox_server_free,
  .client_rx = singbox_server_client_rx,
  .upstream_fifos = singbox_server_upstream_fifos,
  .upstream_connect_failed = singbox_server_upstream_connect_failed,
  .upstream_connected = singbox_server_upstream_connected,
  .upstream_rx = singbox_server_upstream_rx,
  .upstream_tx = singbox_server_upstream_tx,
  .upstream_fin = singbox_server_upstream_fin,
  .upstream_reset = singbox_server_upstream_reset,
  .probe_client_ack = 1,
  .kill = singbox_server_kill,
  .idle = singbox_server_idle,
  .format_legs = singbox_server_format_legs,
};

/*
 * Listening
 */

/* TCP enqueued bytes of a client leg. Before the accept they are the
 * client's first message, whose ACK its answer is to carry. */
static int
singbox_server_fifo_tuning (session_t *s, svm_fifo_t *f, session_ft_action_t act, u32 bytes)
{
  if (PREDICT_FALSE (s->session_state < SESSION_STATE_READY) && act == SESSION_FT_ACTION_ENQUEUED)
    singbox_po_ack_hold_early (s);
  return singbox_fifo_tuning (s, f, act, bytes);
}

/* The server's app: its client legs are the relay's (singbox_session.c)
 * once accepted here. */
static session_cb_vft_t singbox_server_cb_vft = {
  .session_accept_callback = singbox_po_accept,
};

static int
singbox_server_app_attach (void)
{
  singbox_main_t *sm = &singbox_main;
  int rv;

  if ((rv = singbox_session_layer_attach ()))
    return rv;
  if (sm->server_app_index != APP_INVALID_INDEX)
    return 0;
  singbox_session_client_leg_cbs (&singbox_server_cb_vft);
  singbox_server_cb_vft.fifo_tuning_callback = singbox_server_fifo_tuning;
  if (singbox_app_attach ("singbox-server", &singbox_server_cb_vft, 0, &sm->server_app_index))
    return VNET_API_ERROR_UNSPECIFIED;
  return 0;
}

static int
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
  /* an address of no interface (yet): the session layer says "invalid
   * namespace"; the listener stays configured and the next enable retries */
  if (rv && !ip46_address_is_zero (&l->addr) && !ip_is_local (fib_index, &l->addr, l->is_ip4))
    return VNET_API_ERROR_ADDRESS_NOT_FOUND_FOR_INTERFACE;
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

static int
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

static void
singbox_server_close_all (void)
{
  singbox_main_t *sm = &singbox_main;
  singbox_session_t *ss;

  singbox_worker_t *wrk;

  /* API/CLI handler: the workers are stopped */
  SINGBOX_ASSERT_BARRIER ();
  vec_foreach (wrk, sm->workers)
    pool_foreach (ss, wrk->sessions)
      if (ss->mode == SINGBOX_MODE_SERVER && ss->po_handle != SESSION_INVALID_HANDLE &&
	  ss->state != SINGBOX_SESSION_STATE_CLOSING)
	singbox_session_kill_on_thread (ss, 0);
}

/*
 * Server switch and settings
 */

int
singbox_server_enable_disable (int enable)
{
  singbox_main_t *sm = &singbox_main;
  singbox_listener_t *l;
  int rv, first_rv = 0;

  if (enable)
    {
      if ((rv = singbox_server_app_attach ()))
	return rv;
      sm->server_enabled = 1;
      pool_foreach (l, sm->listeners)
	if (!l->is_listening && (rv = singbox_server_listen (l)) && !first_rv)
	  first_rv = rv;
      return first_rv;
    }

  sm->server_enabled = 0;
  pool_foreach (l, sm->listeners)
    if (l->is_listening)
      singbox_server_unlisten (l);
  singbox_server_close_all ();
  return 0;
}

int
singbox_server_set_config (const singbox_server_config_t *cfg)
{
  singbox_main_t *sm = &singbox_main;
  int rv = 0;

  if (cfg->handshake_timeout > 3600 || cfg->connect_timeout > 3600)
    return VNET_API_ERROR_INVALID_VALUE;
  if (cfg->dns_enabled &&
      (rv = singbox_dns_config_check (&cfg->dns_server, cfg->dns_server_is_ip4,
				      cfg->dns_server_port ? cfg->dns_server_port : 53)))
    return rv;

  sm->auth_required = cfg->auth_required;
  sm->allow_connect = cfg->allow_connect;
  sm->allow_udp_associate = cfg->allow_udp_associate;
  sm->max_sessions = cfg->max_sessions;
  sm->handshake_timeout =
    cfg->handshake_timeout ? cfg->handshake_timeout : SINGBOX_DEFAULT_HANDSHAKE_TIMEOUT;
  sm->idle_timeout = cfg->idle_timeout;
  sm->connect_timeout =
    cfg->connect_timeout ? cfg->connect_timeout : SINGBOX_DEFAULT_CONNECT_TIMEOUT;
  sm->udp_idle_timeout =
    cfg->udp_idle_timeout ? cfg->udp_idle_timeout : SINGBOX_DEFAULT_UDP_IDLE_TIMEOUT;
  sm->udp_public_address = cfg->udp_public_address;
  sm->udp_public_is_ip4 = cfg->udp_public_is_ip4;
  sm->dns_server = cfg->dns_server;
  sm->dns_server_is_ip4 = cfg->dns_server_is_ip4;
  sm->dns_server_port = cfg->dns_server_port ? cfg->dns_server_port : 53;
  sm->dns_enabled = cfg->dns_enabled;
  if (cfg->dns_enabled)
    rv = singbox_dns_configure ();
  return rv;
}

/*
 * Counters
 */

u64
singbox_server_counter_get (singbox_server_counter_t c)
{
  return vlib_get_simple_counter (&singbox_main.server_counters[c], 0);
}

void
singbox_clear_server_counters (void)
{
  singbox_main_t *sm = &singbox_main;
  int i;

  for (i = 0; i < SINGBOX_SERVER_N_CTR; i++)
    vlib_zero_simple_counter (&sm->server_counters[i], 0);
  vlib_zero_combined_counter (&sm->udp_counters, 0);
  vlib_zero_combined_counter (&sm->udp_counters, 1);
  singbox_users_clear_counters ();
}

void
singbox_server_init (void)
{
  singbox_main_t *sm = &singbox_main;
  int i;

  for (i = 0; i < SINGBOX_SERVER_N_CTR; i++)
    {
      sm->server_counters[i].name = (char *) singbox_server_counter_names[i];
      sm->server_counters[i].stat_segment_name = (char *) singbox_server_counter_names[i];
      vlib_validate_simple_counter (&sm->server_counters[i], 0);
      vlib_zero_simple_counter (&sm->server_counters[i], 0);
    }
  sm->active_sessions_gauge = vlib_stats_add_gauge ("/singbox/server/active-sessions");
  sm->server_app_index = APP_INVALID_INDEX;
  sm->allow_connect = 1;
  sm->max_sessions = SINGBOX_DEFAULT_MAX_SESSIONS;
  sm->handshake_timeout = SINGBOX_DEFAULT_HANDSHAKE_TIMEOUT;
  sm->idle_timeout = SINGBOX_DEFAULT_IDLE_TIMEOUT;
  sm->connect_timeout = SINGBOX_DEFAULT_CONNECT_TIMEOUT;
  sm->udp_idle_timeout = SINGBOX_DEFAULT_UDP_IDLE_TIMEOUT;
  sm->dns_server_port = 53;
  sm->server_upstream_sw_if_index = ~0;
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

  ss = singbox_session_get_by_id (id);
  if (!ss || ss->po_closed || ss->state != SINGBOX_SESSION_STATE_CONNECTING ||
      ss->cmd != SOCKS5_CMD_UDP_ASSOCIATE)
    return;
  SINGBOX_ASSERT_THREAD (ss->po_thread);
  if (ss->rep)
    {
      singbox_po_reply_failure (ss, ss->rep);
      return;
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
  socks5_server_reply (ss->proto, SOCKS5_REP_SUCCEEDED, &bnd, &out);
  ss->rep = SOCKS5_REP_SUCCEEDED;
  ss->reply_sent = 1;
  singbox_server_proto_free (ss);
  singbox_po_send (ss, &out);
  /* the handshake is over: the reply carries the ACK held back */
  singbox_po_ack_release (ss);
  ss->state = SINGBOX_SESSION_STATE_UDP_ASSOCIATED;
  ss->deadline = 0;
  ss->last_active = vlib_time_now (vlib_get_main ());
  svm_fifo_dequeue_drop_all (ss->po_rx_fifo);
}

/* Main, under the barrier (UDP-ASSOCIATE's listener). */
void
singbox_server_udp_ready (singbox_session_t *ss)
{
  singbox_rpc (ss->po_thread, singbox_udp_ready_rpc,
	       uword_to_pointer (singbox_session_id (ss), void *));
}

/*
 * Name resolution finished (main thread): connect on the client's thread.
 */

typedef struct
{
  u32 index; /* the record's handle */
  int rv;
  ip46_address_t ip;
  u8 is_ip4;
} singbox_resolved_t;

static void
singbox_session_resolved_rpc (void *arg)
{
  singbox_resolved_t *r = arg;
  singbox_session_t *ss = singbox_session_get_if_valid (r->index);

  if (ss && ss->state == SINGBOX_SESSION_STATE_RESOLVING && !ss->po_closed)
    {
      SINGBOX_ASSERT_THREAD (ss->po_thread);
      if (r->rv == VNET_API_ERROR_NO_NAME_SERVERS ||
	  r->rv == VNET_API_ERROR_NAME_RESOLUTION_NOT_ENABLED)
	/* our resolver is not configured: a fault of this server, not news
	 * about the host (RFC 1928 0x01, not 0x04) */
	ss->rep = socks5_rep_from_reason (SOCKS5_REASON_OTHER);
      else if (r->rv)
	ss->rep = socks5_rep_from_reason (SOCKS5_REASON_DNS_FAILURE);
      else
	{
	  ss->dst_ip = r->ip;
	  ss->dst_is_ip4 = r->is_ip4;
	}
      if (ss->rep)
	{
	  singbox_server_counter_inc (SINGBOX_SERVER_CTR_CONNECT_FAILURES, 1);
	  singbox_po_reply_failure (ss, ss->rep);
	}
      else
	singbox_server_connect (ss);
    }
  clib_mem_free (r);
}

/* Main thread, singbox-process (without the barrier): the answer goes to
 * the record's thread, which alone touches the record. */
void
singbox_session_resolved (u32 index, int rv, ip46_address_t *ip, u8 is_ip4)
{
  singbox_resolved_t *r;

  SINGBOX_ASSERT_THREAD (0);
  if (singbox_session_handle_thread (index) >= vec_len (singbox_main.workers))
    return;
  r = clib_mem_alloc (sizeof (*r));
  clib_memset (r, 0, sizeof (*r));
  r->index = index;
  r->rv = rv;
  if (ip)
    r->ip = *ip;
  r->is_ip4 = is_ip4;
  singbox_rpc (singbox_session_handle_thread (index), singbox_session_resolved_rpc, r);
}

u8 *
format_singbox_listener (u8 *s, va_list *args)
{
  singbox_listener_t *l = va_arg (*args, singbox_listener_t *);

  /* the manual's "Listen address: 0.0.0.0:1080", then the rest */
  if (l->is_ip4)
    s = format (s, "%U:%u", format_ip4_address, &l->addr.ip4, l->port);
  else
    s = format (s, "[%U]:%u", format_ip6_address, &l->addr.ip6, l->port);
  if (l->table_id)
    s = format (s, " table %u", l->table_id);
  return format (s, " (name %s, %s)", l->name, l->is_listening ? "listening" : "not listening");
}
