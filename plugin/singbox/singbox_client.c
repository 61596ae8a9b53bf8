/* SPDX-License-Identifier: Apache-2.0
 * Copyright (c) 2026 vpp-singbox authors
 */

/* Client mode: upstream endpoints (SOCKS5 or HTTP CONNECT proxies) and the
 * interfaces whose arriving TCP is relayed through them. */

#include <arpa/inet.h>
#include <singbox/singbox.h>
#include <vnet/tcp/tcp.h>
#include <vnet/fib/fib_table.h>
#include <vnet/fib/fib_entry.h>
#include <vnet/feature/feature.h>
#include <vlib/unix/plugin.h>
#include <vnet/tcp/tcp_inlines.h>

typedef void (singbox_hsi_intercept_proto_fn_t) (transport_proto_t proto, u8 is_ip4, u8 is_enable);

static void singbox_client_write_connect (singbox_session_t *ss, svm_fifo_t *tx);
static void singbox_client_dst (singbox_session_t *ss, socks5_addr_t *dst);
static int singbox_client_cross (session_t *s, singbox_session_t *ss);
static singbox_session_t *singbox_client_pool_take (singbox_endpoint_t *ep);
static int singbox_client_http_start (singbox_session_t *ss, singbox_endpoint_t *ep,
				      svm_fifo_t *tx);
static void singbox_client_http_rx (session_t *s, singbox_session_t *ss);

/* The upstream proxy answered: the tunnel to the destination is open. */
static_always_inline int
singbox_client_handshake_done (singbox_session_t *ss)
{
  if (ss->upstream_proto == SINGBOX_PROTO_HTTP_CONNECT)
    return http_connect_client_state (&ss->hcproto) == HTTP_CONNECT_ESTABLISHED;
  return socks5_client_state (&ss->cproto) == SOCKS5_CLIENT_CONNECTED;
}

/*
 * Endpoints
 */

singbox_endpoint_t *
singbox_endpoint_find (u8 *name)
{
  singbox_main_t *sm = &singbox_main;
  uword *p = hash_get_mem (sm->endpoint_by_name, name);

  return p ? pool_elt_at_index (sm->endpoints, p[0]) : 0;
}

u8 *
singbox_endpoint_name (u32 endpoint_index)
{
  singbox_main_t *sm = &singbox_main;

  if (endpoint_index == ~0 || pool_is_free_index (sm->endpoints, endpoint_index))
    return 0;
  return pool_elt_at_index (sm->endpoints, endpoint_index)->name;
}

int
singbox_endpoint_add_del (int is_add, u8 *name, ip46_address_t *addr, u8 is_ip4, u16 port,
			  u8 protocol, u8 *username, u8 *password, u32 priority,
			  u16 connect_timeout, u8 hc_enabled, u16 hc_interval, u16 hc_timeout,
			  u8 failure_threshold, u8 recovery_threshold, u32 table_id)
{
  singbox_main_t *sm = &singbox_main;
  u32 len = strnlen ((char *) name, 64);
  u32 ulen = username ? strnlen ((char *) username, 256) : 0;
  u32 plen = password ? strnlen ((char *) password, 256) : 0;
  singbox_endpoint_t *ep;
  u32 fib_index;

  if (len == 0 || len > 63)
    return VNET_API_ERROR_INVALID_VALUE;
  ep = singbox_endpoint_find (name);
  if (!is_add)
    {
      if (!ep)
	return VNET_API_ERROR_NO_SUCH_ENTRY;
      if (ep->n_users)
	return VNET_API_ERROR_INSTANCE_IN_USE;
      if (sm->default_endpoint == ep - sm->endpoints)
	sm->default_endpoint = ~0;
      vlib_stats_remove_entry (ep->stat_state);
      vlib_stats_remove_entry (ep->stat_rtt);
      vlib_stats_remove_entry (ep->stat_failures);
      vlib_stats_remove_entry (ep->stat_connections);
      /* the key is ep->name itself: unset before it is freed */
      hash_unset_mem (sm->endpoint_by_name, ep->name);
      vec_free (ep->name);
      vec_free (ep->username);
      vec_free (ep->password);
      pool_put (sm->endpoints, ep);
      return 0;
    }

  if (port == 0 || protocol > SINGBOX_PROTO_HTTP_CONNECT || ulen > SOCKS5_MAX_CRED_LEN ||
      plen > SOCKS5_MAX_CRED_LEN || (ulen && !plen) || ip46_address_is_zero (addr))
    return VNET_API_ERROR_INVALID_VALUE;
  /* Basic credentials cannot carry a ':' in the user-id or control bytes (RFC 7617):
   * refused here rather than at every connection */
  if (protocol == SINGBOX_PROTO_HTTP_CONNECT && ulen)
    {
      u8 req[HTTP_CONNECT_REQUEST_MAX];
      if (http_connect_request_write (req, sizeof (req), "h", 1, 1, username, ulen, password,
				      plen) < 0)
	return VNET_API_ERROR_INVALID_VALUE;
    }
  if (hc_enabled && hc_timeout && hc_interval && hc_timeout >= hc_interval)
    return VNET_API_ERROR_INVALID_VALUE;
  fib_index = fib_table_find (is_ip4 ? FIB_PROTOCOL_IP4 : FIB_PROTOCOL_IP6, table_id);
  if (fib_index == ~0)
    return VNET_API_ERROR_NO_SUCH_FIB;

  if (!ep)
    {
      pool_get_zero (sm->endpoints, ep);
      ep->name = format (0, "%s%c", name, 0);
      hash_set_mem (sm->endpoint_by_name, ep->name, ep - sm->endpoints);
      ep->state = SINGBOX_EP_STATE_UNKNOWN;
      ep->last_change = vlib_time_now (vlib_get_main ());
      ep->stat_state = vlib_stats_add_gauge ("/singbox/client/endpoint/%s/state", name);
      ep->stat_rtt = vlib_stats_add_gauge ("/singbox/client/endpoint/%s/rtt-us", name);
      ep->stat_failures = vlib_stats_add_gauge ("/singbox/client/endpoint/%s/failures", name);
      ep->stat_connections = vlib_stats_add_gauge ("/singbox/client/endpoint/%s/connections", name);
    }
  ep->addr = *addr;
  ep->is_ip4 = is_ip4;
  ep->port = port;
  ep->protocol = protocol;
  vec_free (ep->username);
  vec_free (ep->password);
  if (ulen)
    {
      vec_add (ep->username, username, ulen);
      vec_add (ep->password, password, plen);
    }
  ep->priority = priority;
  ep->connect_timeout = connect_timeout ? connect_timeout : 10;
  ep->hc_enabled = hc_enabled;
  ep->hc_interval = hc_interval ? hc_interval : 30;
  ep->hc_timeout = hc_timeout ? hc_timeout : 5;
  ep->failure_threshold = failure_threshold ? failure_threshold : 3;
  ep->recovery_threshold = recovery_threshold ? recovery_threshold : 2;
  ep->table_id = table_id;
  ep->fib_index = fib_index;
  if (!hc_enabled)
    ep->state = SINGBOX_EP_STATE_UNKNOWN;
  /* probe the new settings soon, but never all of a resync in one poll */
  singbox_probe_schedule_first (ep);
  return 0;
}

int
singbox_set_default_endpoint (u8 *name)
{
  singbox_main_t *sm = &singbox_main;
  singbox_endpoint_t *ep;

  if (!name || !name[0])
    {
      sm->default_endpoint = ~0;
      return 0;
    }
  if (!(ep = singbox_endpoint_find (name)))
    return VNET_API_ERROR_NO_SUCH_ENTRY;
  sm->default_endpoint = ep - sm->endpoints;
  return 0;
}

int
singbox_clear_endpoint_counters (u8 *name)
{
  singbox_main_t *sm = &singbox_main;
  singbox_endpoint_t *ep;

  if (name && name[0])
    {
      if (!(ep = singbox_endpoint_find (name)))
	return VNET_API_ERROR_NO_SUCH_ENTRY;
      ep->failures = ep->connections = 0;
      return 0;
    }
  pool_foreach (ep, sm->endpoints)
    ep->failures = ep->connections = 0;
  return 0;
}

/*
 * Interfaces
 */

singbox_interface_t *
singbox_interface_get (u32 sw_if_index)
{
  singbox_main_t *sm = &singbox_main;

  if (sw_if_index >= vec_len (sm->interfaces) || !sm->interfaces[sw_if_index].enabled)
    return 0;
  return vec_elt_at_index (sm->interfaces, sw_if_index);
}

void
singbox_clear_interface_counters (u32 sw_if_index)
{
  singbox_main_t *sm = &singbox_main;
  singbox_interface_t *itf;

  vec_foreach (itf, sm->interfaces)
    /* entries never enabled have sw_if_index 0, whose counters exist */
    if (sw_if_index == ~0 || itf->sw_if_index == sw_if_index)
      {
	itf->total = itf->failures = itf->packets = itf->bytes = 0;
	vlib_zero_simple_counter (&sm->itf_connections, itf->sw_if_index);
	vlib_zero_simple_counter (&sm->itf_failures, itf->sw_if_index);
	vlib_zero_combined_counter (&sm->itf_redirected, itf->sw_if_index);
      }
}

/*
 * Interception: a wildcard listener (tcp 0.0.0.0:0 and [::]:0) of an
 * IS_PROXY app receives every TCP SYN arriving on the enabled interfaces
 * for which VPP has no session. The original destination is the accepted
 * session's local endpoint.
 *
 * IPv4 goes through the hsi plugin (hsi4-in). IPv6 cannot: in v26.06
 * hsi_intercept_proto () looks the wildcard listener up with
 * session_lookup_listener_wildcard (0, ...), and session table 0 is FIB 0's
 * IPv4 table, whose IPv6 hashes are never initialised (session_table_init
 * with FIB_PROTOCOL_IP4), so the [::]:0 listener (in the IPv6 table) is
 * never found and hsi6-in passes every SYN on. Adding our listener to table
 * 0's IPv6 hash instead writes into an uninitialised bihash (that crashed).
 * So IPv6 has its own feature node, singbox6-in, doing for TCP what
 * hsi6-in would: SYNs with no session go to tcp6-listen on our listener,
 * segments of known connections straight to tcp6-input.
 */

typedef struct
{
  /* tcp listener (connection) index of the [::]:0 wildcard listener, ~0
   * while there is none: singbox6-in then lets everything pass */
  u32 tcp6_listener;
} singbox_intercept6_t;

static singbox_intercept6_t singbox_intercept6 = { .tcp6_listener = ~0 };

typedef enum
{
  SINGBOX6_IN_NEXT_TCP_INPUT,
  SINGBOX6_IN_NEXT_TCP_INPUT_NOLOOKUP,
  SINGBOX6_IN_NEXT_TCP_LISTEN,
  SINGBOX6_IN_N_NEXT,
} singbox6_in_next_t;

typedef struct
{
  u32 next;
  u8 intercepted;
} singbox6_in_trace_t;

static u8 *
format_singbox6_in_trace (u8 *s, va_list *args)
{
  CLIB_UNUSED (vlib_main_t * vm) = va_arg (*args, vlib_main_t *);
  CLIB_UNUSED (vlib_node_t * node) = va_arg (*args, vlib_node_t *);
  singbox6_in_trace_t *t = va_arg (*args, singbox6_in_trace_t *);

  return format (s, "singbox6-in: %s, next %u", t->intercepted ? "to tcp" : "pass", t->next);
}

/* A SYN for the 4-tuple of an intercepted connection still in TIME_WAIT
 * (we closed first: the destination had closed; the client, the passive
 * closer, keeps no TIME_WAIT and reuses the port). tcp-input hands it to
 * tcp-listen, which ends the old connection and then looks up a listener
 * for the destination port: there is none (interception has the wildcard
 * listener, found only by hsi or singbox6-in), so the SYN is dropped and
 * the client retries after 1 s. End the old connection here instead, as
 * tcp-listen would for a new sequence number (RFC 1122 4.2.2.13), and the
 * SYN is intercepted as new. */
static_always_inline int
singbox_reopen_time_wait (transport_connection_t *tc, tcp_header_t *tcp, u32 thread_index)
{
  tcp_connection_t *tcpc = (tcp_connection_t *) tc;

  if (tcpc->state != TCP_STATE_TIME_WAIT || tc->thread_index != thread_index ||
      (tcp->flags & (TCP_FLAG_SYN | TCP_FLAG_ACK | TCP_FLAG_RST)) != TCP_FLAG_SYN ||
      !seq_gt (clib_net_to_host_u32 (tcp->seq_number), tcpc->rcv_nxt))
    return 0;
  tcp_connection_cleanup_and_notify (tcpc);
  return 1;
}

/* Returns 1 and sets *next when the packet goes to the session layer. */
static_always_inline int
singbox6_in_one (vlib_buffer_t *b, u32 *next, u32 thread_index)
{
  ip6_header_t *ip6 = vlib_buffer_get_current (b);
  transport_connection_t *tc;
  tcp_header_t *tcp;
  u32 error = 0;
  u8 result = 0;

  /* extension headers are left to the normal path */
  if (ip6->protocol != IP_PROTOCOL_TCP ||
      b->current_length < sizeof (ip6_header_t) + sizeof (tcp_header_t))
    return 0;
  ip_lookup_set_buffer_fib_index (ip6_main.fib_index_by_sw_if_index, b);
  tcp = ip6_next_header (ip6);
  tc = session_lookup_connection_wt6 (vnet_buffer (b)->ip.fib_index, &ip6->dst_address,
				      &ip6->src_address, tcp->dst_port, tcp->src_port,
				      TRANSPORT_PROTO_TCP, thread_index, &result);
  if (tc && !result && singbox_reopen_time_wait (tc, tcp, thread_index))
    tc = 0;
  if (tc && !result)
    {
      tcp_connection_t *tcpc = (tcp_connection_t *) tc;
      if (tcpc->state == TCP_STATE_LISTEN)
	{
	  if (!tcp_syn (tcp))
	    return 0;
	  *next = SINGBOX6_IN_NEXT_TCP_INPUT;
	}
      else if (tcpc->state == TCP_STATE_SYN_SENT)
	*next = SINGBOX6_IN_NEXT_TCP_INPUT;
      else
	{
	  *next = SINGBOX6_IN_NEXT_TCP_INPUT_NOLOOKUP;
	  vnet_buffer (b)->tcp.connection_index = tc->c_index;
	}
      return 1;
    }
  if (singbox_intercept6.tcp6_listener == ~0 || !tcp_syn (tcp))
    return 0;
  /* tcp6-listen expects the buffer parsed as tcp6-input leaves it */
  tcp_input_lookup_buffer (b, thread_index, &error, 0 /* is_ip4 */, 1 /* is_nolookup */);
  if (error)
    return 0;
  vnet_buffer (b)->tcp.connection_index = singbox_intercept6.tcp6_listener;
  vnet_buffer (b)->tcp.flags = TCP_STATE_LISTEN;
  *next = SINGBOX6_IN_NEXT_TCP_LISTEN;
  return 1;
}

VLIB_NODE_FN (singbox6_in_node)
(vlib_main_t *vm, vlib_node_runtime_t *node, vlib_frame_t *frame)
{
  vlib_buffer_t *bufs[VLIB_FRAME_SIZE], **b = bufs;
  u16 nexts[VLIB_FRAME_SIZE], *next = nexts;
  u32 n_left = frame->n_vectors, *from = vlib_frame_vector_args (frame);
  u32 thread_index = vm->thread_index;

  vlib_get_buffers (vm, from, bufs, n_left);
  while (n_left)
    {
      u32 next0 = 0;
      u8 intercepted = singbox6_in_one (b[0], &next0, thread_index);

      if (!intercepted)
	vnet_feature_next (&next0, b[0]);
      next[0] = next0;
      if (PREDICT_FALSE (b[0]->flags & VLIB_BUFFER_IS_TRACED))
	{
	  singbox6_in_trace_t *t = vlib_add_trace (vm, node, b[0], sizeof (*t));
	  t->next = next0;
	  t->intercepted = intercepted;
	}
      b++;
      next++;
      n_left--;
    }
  vlib_buffer_enqueue_to_next (vm, node, from, nexts, frame->n_vectors);
  return frame->n_vectors;
}

VLIB_REGISTER_NODE (singbox6_in_node) = {
  .name = "singbox6-in",
  .vector_size = sizeof (u32),
  .format_trace = format_singbox6_in_trace,
  .type = VLIB_NODE_TYPE_INTERNAL,
  .n_next_nodes = SINGBOX6_IN_N_NEXT,
  .next_nodes = {
    [SINGBOX6_IN_NEXT_TCP_INPUT] = "tcp6-input",
    [SINGBOX6_IN_NEXT_TCP_INPUT_NOLOOKUP] = "tcp6-input-nolookup",
    [SINGBOX6_IN_NEXT_TCP_LISTEN] = "tcp6-listen",
  },
};

VNET_FEATURE_INIT (singbox6_in_feature, static) = {
  .arc_name = "ip6-unicast",
  .node_name = "singbox6-in",
  .runs_before = VNET_FEATURES ("ip6-lookup"),
  .runs_after = VNET_FEATURES ("ip6-full-reassembly-feature"),
};

/* IPv4 interception is hsi's (hsi4-in); this node, just before it, only
 * ends TIME_WAIT connections whose 4-tuple a new SYN reuses. */
VLIB_NODE_FN (singbox4_tw_node)
(vlib_main_t *vm, vlib_node_runtime_t *node, vlib_frame_t *frame)
{
  vlib_buffer_t *bufs[VLIB_FRAME_SIZE], **b = bufs;
  u16 nexts[VLIB_FRAME_SIZE], *next = nexts;
  u32 n_left = frame->n_vectors, *from = vlib_frame_vector_args (frame);
  u32 thread_index = vm->thread_index;

  vlib_get_buffers (vm, from, bufs, n_left);
  while (n_left)
    {
      ip4_header_t *ip4 = vlib_buffer_get_current (b[0]);
      u32 next0;

      if (ip4->protocol == IP_PROTOCOL_TCP && !ip4_get_fragment_offset (ip4) &&
	  b[0]->current_length >= ip4_header_bytes (ip4) + sizeof (tcp_header_t))
	{
	  tcp_header_t *tcp = ip4_next_header (ip4);
	  transport_connection_t *tc;
	  u8 result = 0;

	  if (tcp_syn (tcp))
	    {
	      ip_lookup_set_buffer_fib_index (ip4_main.fib_index_by_sw_if_index, b[0]);
	      tc = session_lookup_connection_wt4 (
		vnet_buffer (b[0])->ip.fib_index, &ip4->dst_address, &ip4->src_address,
		tcp->dst_port, tcp->src_port, TRANSPORT_PROTO_TCP, thread_index, &result);
	      if (tc && !result)
		singbox_reopen_time_wait (tc, tcp, thread_index);
	    }
	}
      vnet_feature_next (&next0, b[0]);
      next[0] = next0;
      b++;
      next++;
      n_left--;
    }
  vlib_buffer_enqueue_to_next (vm, node, from, nexts, frame->n_vectors);
  return frame->n_vectors;
}

VLIB_REGISTER_NODE (singbox4_tw_node) = {
  .name = "singbox4-tw",
  .vector_size = sizeof (u32),
  .type = VLIB_NODE_TYPE_INTERNAL,
};

VNET_FEATURE_INIT (singbox4_tw_feature, static) = {
  .arc_name = "ip4-unicast",
  .node_name = "singbox4-tw",
  .runs_before = VNET_FEATURES ("hsi4-in"),
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
  singbox_intercept6.tcp6_listener = ls->connection_index;
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
  if ((rv = singbox_server_attach ()))
    return rv;
  if (sm->intercept_app_index == APP_INVALID_INDEX &&
      singbox_app_attach ("singbox-intercept", &singbox_intercept_cb_vft_base,
			  APP_OPTIONS_FLAGS_IS_PROXY, &sm->intercept_app_index))
    return VNET_API_ERROR_UNSPECIFIED;
  if (sm->intercept_listen4 == SESSION_INVALID_HANDLE &&
      (rv = singbox_client_listen (1, &sm->intercept_listen4)))
    return VNET_API_ERROR_ADDRESS_IN_USE;
  if (sm->intercept_listen6 == SESSION_INVALID_HANDLE &&
      (rv = singbox_client_listen (0, &sm->intercept_listen6)))
    return VNET_API_ERROR_ADDRESS_IN_USE;
  return 0;
}

static int
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

/* The interface a client is behind: where the route back to it points. */
static u32
singbox_client_interface_of (ip46_address_t *ip, u8 is_ip4, u32 fib_index)
{
  fib_prefix_t pfx = {
    .fp_addr = *ip,
    .fp_len = is_ip4 ? 32 : 128,
    .fp_proto = is_ip4 ? FIB_PROTOCOL_IP4 : FIB_PROTOCOL_IP6,
  };
  fib_node_index_t fei = fib_table_lookup (fib_index, &pfx);

  if (fei == FIB_NODE_INDEX_INVALID)
    return ~0;
  return fib_entry_get_resolving_interface (fei);
}

static int
singbox_prefix_match (singbox_prefix_t *p, ip46_address_t *ip, u8 is_ip4)
{
  if (p->is_ip4 != is_ip4)
    return 0;
  if (is_ip4)
    {
      ip4_address_t a = ip->ip4, b = p->addr.ip4;
      ip4_address_normalize (&a, p->len);
      ip4_address_normalize (&b, p->len);
      return a.as_u32 == b.as_u32;
    }
  ip6_address_t a = ip->ip6, b = p->addr.ip6;
  ip6_address_normalize (&a, p->len);
  ip6_address_normalize (&b, p->len);
  return ip6_address_is_equal (&a, &b);
}

static int
singbox_ip46_equal (ip46_address_t *a, ip46_address_t *b, u8 is_ip4)
{
  return is_ip4 ? a->ip4.as_u32 == b->ip4.as_u32 : ip6_address_is_equal (&a->ip6, &b->ip6);
}

/* A proxy's own connections (from an endpoint's address, e.g. sing-box
 * reaching a destination behind another enabled interface) or connections
 * to an endpoint itself: relaying them through a proxy would loop. */
static int
singbox_client_is_proxy_traffic (transport_endpoint_t *rmt, transport_endpoint_t *lcl)
{
  singbox_endpoint_t *ep;

  pool_foreach (ep, singbox_main.endpoints)
    {
      if (ep->is_ip4 == rmt->is_ip4 && singbox_ip46_equal (&ep->addr, &rmt->ip, ep->is_ip4))
	return 1;
      if (ep->is_ip4 == lcl->is_ip4 && singbox_ip46_equal (&ep->addr, &lcl->ip, ep->is_ip4) &&
	  ep->port == clib_net_to_host_u16 (lcl->port))
	return 1;
    }
  return 0;
}

/* The endpoint to use: the interface's, or the default; when health checks
 * have it down, the up endpoint with the lowest priority (failover). */
static singbox_endpoint_t *
singbox_client_pick_endpoint (singbox_interface_t *itf)
{
  singbox_main_t *sm = &singbox_main;
  singbox_endpoint_t *ep = 0, *e, *best = 0;
  u32 idx = itf && itf->endpoint_index != ~0 ? itf->endpoint_index : sm->default_endpoint;

  if (idx != ~0 && !pool_is_free_index (sm->endpoints, idx))
    ep = pool_elt_at_index (sm->endpoints, idx);
  if (ep && ep->state != SINGBOX_EP_STATE_DOWN)
    return ep;
  pool_foreach (e, sm->endpoints)
    if (e->state != SINGBOX_EP_STATE_DOWN && (!best || e->priority < best->priority))
      best = e;
  return best ? best : ep;
}

/* Runs while the accepted session is being set up: decide where it goes
 * (bypass or which endpoint) and whether it may exist at all; a non-zero
 * return refuses the connection (reset). Nothing is written: the proxy's
 * handshake runs on the upstream leg's own fifos, see
 * singbox_client_alloc_fifos. */
int
singbox_client_write_early_data (session_t *s)
{
  singbox_main_t *sm = &singbox_main;
  transport_endpoint_t rmt = {}, lcl = {};
  singbox_interface_t *itf;
  singbox_endpoint_t *ep = 0;
  singbox_session_t *ss;
  singbox_prefix_t *p;
  u8 bypass = 0, refused = 0;
  u32 sw_if_index;

  session_get_endpoint (s, &rmt, &lcl);
  sw_if_index = singbox_client_interface_of (&rmt.ip, rmt.is_ip4, lcl.fib_index);
  itf = singbox_interface_get (sw_if_index);
  if (!itf)
    {
      /* not behind an enabled interface (asymmetric route): the first
       * enabled interface decides */
      vec_foreach (itf, sm->interfaces)
	if (itf->enabled)
	  break;
      if (itf == vec_end (sm->interfaces))
	return -1;
    }
  vec_foreach (p, itf->bypass)
    if (singbox_prefix_match (p, &lcl.ip, lcl.is_ip4))
      bypass = 1;
  if (!bypass && singbox_client_is_proxy_traffic (&rmt, &lcl))
    bypass = 1;
  /* refusals are answered with a reset from the accept callback: failing
   * here would drop the SYN silently and the client would retry */
  if ((itf->max_connections && itf->active >= itf->max_connections) ||
      (!bypass && !(ep = singbox_client_pick_endpoint (itf))))
    {
      vlib_increment_simple_counter (&sm->itf_failures, vlib_get_thread_index (), itf->sw_if_index,
				     1);
      itf->failures++;
      refused = 1;
    }

  singbox_sessions_lock ();
  ss = 0;
  if (!refused && !bypass && sm->pooling && ep->protocol == SINGBOX_PROTO_SOCKS5 &&
      (ss = singbox_client_pool_take (ep)))
    ss->from_pool = 1;
  else
    ss = singbox_session_alloc ();
  ss->mode = SINGBOX_MODE_CLIENT;
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
      ep->connections++;
    }
  ss->counted_active = 1;
  clib_atomic_fetch_add (&itf->active, 1);
  singbox_sessions_unlock ();

  if (refused)
    return 0;
  itf->total++;
  vlib_increment_simple_counter (&sm->itf_connections, vlib_get_thread_index (), itf->sw_if_index,
				 1);
  return 0;
}

/*
 * Connection pooling: per endpoint, up to max-pool-size upstream
 * connections that completed greeting and authentication and wait for a
 * CONNECT. A SOCKS5 connection carries one CONNECT, so pooling saves the
 * TCP handshake and the auth round trips, not connections. HTTP CONNECT
 * endpoints are not pooled: their credentials travel with the CONNECT
 * itself, so a pooled connection would save the TCP handshake only.
 */

/* Lock held. Drop a pooled connection from its endpoint's books. */
void
singbox_client_pool_forget (singbox_session_t *ss)
{
  singbox_main_t *sm = &singbox_main;
  singbox_endpoint_t *ep;
  u64 id = singbox_session_id (ss);
  u32 i;

  if (!ss->pooled || ss->endpoint_index == ~0 ||
      pool_is_free_index (sm->endpoints, ss->endpoint_index))
    return;
  ep = pool_elt_at_index (sm->endpoints, ss->endpoint_index);
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
  ss->pooled = 0;
  ss->pool_ready = 0;
}

/* Lock held, any thread: a ready pooled connection to ep, or 0. */
static singbox_session_t *
singbox_client_pool_take (singbox_endpoint_t *ep)
{
  singbox_session_t *ss;

  while (vec_len (ep->pool_ready))
    {
      ss = singbox_session_get_by_id (vec_pop (ep->pool_ready));
      if (!ss)
	continue;
      ss->pool_ready = 0;
      ss->pooled = 0;
      if (ss->ao_handle != SESSION_INVALID_HANDLE && !ss->ao_closed &&
	  ss->state == SINGBOX_SESSION_STATE_SOCKS5_REPLY &&
	  socks5_client_state (&ss->cproto) == SOCKS5_CLIENT_READY)
	return ss;
    }
  return 0;
}

/* singbox-process (main): keep each used endpoint's pool filled. */
void
singbox_client_pool_poll (f64 now)
{
  singbox_main_t *sm = &singbox_main;
  singbox_endpoint_t *ep;
  singbox_session_t *ss;
  u32 want, n_started = 0;
  static f64 last;

  if (now - last < 0.2)
    return;
  last = now;
  singbox_sessions_lock ();
  pool_foreach (ep, sm->endpoints)
    {
      want = sm->pooling && (ep->n_users || ep - sm->endpoints == sm->default_endpoint) &&
		 ep->state != SINGBOX_EP_STATE_DOWN && ep->protocol == SINGBOX_PROTO_SOCKS5 ?
	       sm->max_pool_size :
	       0;
      if (!want)
	{
	  /* pooling off: close what is pooled */
	  while (vec_len (ep->pool_ready))
	    {
	      ss = singbox_session_get_by_id (vec_pop (ep->pool_ready));
	      if (ss)
		{
		  ss->pool_ready = 0;
		  ss->pooled = 0;
		  ss->state = SINGBOX_SESSION_STATE_CLOSING;
		  singbox_ao_close_public (ss);
		}
	    }
	  continue;
	}
      while (vec_len (ep->pool_ready) + ep->pool_pending < want && n_started < 16)
	{
	  ss = singbox_session_alloc ();
	  ss->mode = SINGBOX_MODE_CLIENT;
	  ss->pooled = 1;
	  ss->upstream_proto = SINGBOX_PROTO_SOCKS5;
	  ss->state = SINGBOX_SESSION_STATE_SOCKS5_REQUEST;
	  ss->endpoint_index = ep - sm->endpoints;
	  ss->sw_if_index = ~0;
	  ss->created = ss->last_active = now;
	  ep->pool_pending++;
	  n_started++;
	  singbox_session_connect_to (ss, &ep->addr, ep->is_ip4, ep->port, ep->fib_index);
	}
    }
  singbox_sessions_unlock ();
}

/* Upstream leg of a proxied flow, on its thread, before it is usable: own
 * fifos for the SOCKS5 handshake (the client's data must not reach the
 * proxy before its reply: sing-box drops bytes pipelined with the
 * request), with greeting, auth and CONNECT already queued. The greeting
 * offers exactly one method, so the pipelined auth can never be misread.
 * Lock held. */
int
singbox_client_alloc_fifos (session_t *s, singbox_session_t *ss)
{
  singbox_main_t *sm = &singbox_main;
  svm_fifo_t *rx = 0, *tx = 0;
  segment_manager_t *smg;
  singbox_endpoint_t *ep;
  socks5_client_cfg_t cfg = {};
  socks5_out_t out;
  int rv;

  if ((!ss->pooled && ss->po_closed) || ss->endpoint_index == ~0 ||
      pool_is_free_index (sm->endpoints, ss->endpoint_index))
    return SESSION_E_ALLOC;
  ep = pool_elt_at_index (sm->endpoints, ss->endpoint_index);

  smg = app_worker_get_connect_segment_manager (app_worker_get (s->app_wrk_index));
  if ((rv = segment_manager_alloc_session_fifos (smg, s->thread_index, &rx, &tx)))
    return rv;
  rx->vpp_sh = s->handle;
  tx->vpp_sh = s->handle;
  s->rx_fifo = rx;
  s->tx_fifo = tx;
  s->flags &= ~SESSION_F_PROXY;
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
  if (socks5_client_init (&ss->cproto, &cfg, &out))
    return SESSION_E_INVALID;
  svm_fifo_enqueue (tx, out.len, out.data);
  return 0;
}

/* HTTP CONNECT to the original destination, with Basic credentials if
 * configured, into the upstream's own tx fifo. Lock held. */
static int
singbox_client_http_start (singbox_session_t *ss, singbox_endpoint_t *ep, svm_fifo_t *tx)
{
  u8 req[HTTP_CONNECT_REQUEST_MAX];
  char host[INET6_ADDRSTRLEN];
  int n;

  if (!inet_ntop (ss->dst_is_ip4 ? AF_INET : AF_INET6,
		  ss->dst_is_ip4 ? (void *) &ss->dst_ip.ip4 : (void *) &ss->dst_ip.ip6, host,
		  sizeof (host)))
    return SESSION_E_INVALID;
  n =
    http_connect_request_write (req, sizeof (req), host, strlen (host), ss->dst_port, ep->username,
				vec_len (ep->username), ep->password, vec_len (ep->password));
  if (n < 0)
    return SESSION_E_INVALID;
  http_connect_client_init (&ss->hcproto);
  svm_fifo_enqueue (tx, n, req);
  clib_memset (req, 0, sizeof (req));
  return 0;
}

/* The session's original destination as a SOCKS5 address. */
static void
singbox_client_dst (singbox_session_t *ss, socks5_addr_t *dst)
{
  if (ss->dst_is_ip4)
    socks5_addr_set_ip4 (dst, ss->dst_ip.ip4.as_u8, ss->dst_port);
  else
    socks5_addr_set_ip6 (dst, ss->dst_ip.ip6.as_u8, ss->dst_port);
}

/* A pooled connection taken by a flow: its CONNECT into the upstream's own tx fifo. */
static void
singbox_client_write_connect (singbox_session_t *ss, svm_fifo_t *tx)
{
  socks5_addr_t dst;
  socks5_out_t out;

  singbox_client_dst (ss, &dst);
  if (!socks5_client_request (&ss->cproto, SOCKS5_CMD_CONNECT, &dst, &out))
    svm_fifo_enqueue (tx, out.len, out.data);
}

/* On the upstream leg's thread, after the client leg's accept. */
static void
singbox_client_cross_rpc (void *arg)
{
  session_handle_t sh = pointer_to_uword (arg);
  session_t *s = session_get_from_handle_if_valid (sh);
  singbox_session_t *ss;

  if (!s)
    return;
  singbox_sessions_lock ();
  /* the leg may have gone and its slot been reused since the RPC was sent */
  if (pool_is_free_index (singbox_main.sessions, s->opaque))
    goto done;
  ss = singbox_session_get (s->opaque);
  if (ss->ao_handle == sh && !ss->crossed && ss->state == SINGBOX_SESSION_STATE_SOCKS5_REPLY &&
      socks5_client_state (&ss->cproto) == SOCKS5_CLIENT_CONNECTED)
    singbox_client_cross (s, ss);
done:
  singbox_sessions_unlock ();
}

int
singbox_client_accept (session_t *s)
{
  singbox_main_t *sm = &singbox_main;
  singbox_endpoint_t *ep;
  singbox_session_t *ss;

  s->session_state = SESSION_STATE_READY;
  singbox_sessions_lock ();
  ss = singbox_session_get (s->opaque);
  ss->po_accepted = 1;
  if (ss->state == SINGBOX_SESSION_STATE_CLOSING)
    singbox_po_reset_later (ss);
  else if (ss->from_pool)
    {
      /* the proxy may have answered the CONNECT already (see
       * singbox_client_cross); an RPC even on this thread, the lock is held */
      if (!ss->crossed && ss->ao_handle != SESSION_INVALID_HANDLE)
	session_send_rpc_evt_to_thread_force (session_thread_from_handle (ss->ao_handle),
					      singbox_client_cross_rpc,
					      uword_to_pointer (ss->ao_handle, void *));
    }
  else if (!ss->bypass)
    {
      ep = pool_elt_at_index (sm->endpoints, ss->endpoint_index);
      ep->connections++;
      singbox_session_connect_to (ss, &ep->addr, ep->is_ip4, ep->port, ep->fib_index);
    }
  else
    singbox_session_connect_to (ss, &ss->dst_ip, ss->dst_is_ip4, ss->dst_port, ss->fib_index);
  singbox_sessions_unlock ();
  return 0;
}

/* After the proxy's reply: make the upstream leg use the client's fifos,
 * crossed, like server mode. Only once the handshake bytes are all
 * acknowledged (empty tx fifo), since TCP reads unacknowledged data from
 * the fifo. Bytes the destination already sent are moved over. On the
 * upstream's thread, lock held. Returns 0 when crossed. */
static int
singbox_client_cross (session_t *s, singbox_session_t *ss)
{
  svm_fifo_t *own_rx = s->rx_fifo, *own_tx = s->tx_fifo;
  u8 buf[4096];
  u32 n;

  /* A pooled upstream may answer the CONNECT sent at the client's SYN
   * before that handshake completes; until the accept the client leg may
   * still be freed, fifos and all, without a word to us (a SYN then RST
   * crashed VPP here). singbox_client_accept crosses then. */
  if (!ss->po_accepted)
    return -1;
  if (svm_fifo_max_dequeue (own_tx))
    {
      svm_fifo_add_want_deq_ntf (own_tx, SVM_FIFO_WANT_DEQ_NOTIF);
      return -1;
    }
  while ((n = svm_fifo_max_dequeue (own_rx)))
    {
      n = clib_min (n, sizeof (buf));
      n = clib_min (n, svm_fifo_max_enqueue (ss->po_tx_fifo));
      if (!n)
	break;
      svm_fifo_dequeue (own_rx, n, buf);
      svm_fifo_enqueue (ss->po_tx_fifo, n, buf);
    }
  ss->po_rx_fifo->vpp_sh = s->handle;
  ss->po_rx_fifo->refcnt++;
  ss->po_tx_fifo->refcnt++;
  s->rx_fifo = ss->po_tx_fifo;
  s->tx_fifo = ss->po_rx_fifo;
  s->flags |= SESSION_F_PROXY;
  ss->crossed = 1;
  segment_manager_dealloc_fifos (own_rx, own_tx);

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

void
singbox_client_upstream_tx (session_t *s, singbox_session_t *ss)
{
  if (ss->state == SINGBOX_SESSION_STATE_SOCKS5_REPLY && singbox_client_handshake_done (ss))
    singbox_client_cross (s, ss);
}

static void
singbox_client_fail (singbox_session_t *ss)
{
  singbox_main_t *sm = &singbox_main;
  singbox_endpoint_t *ep;

  singbox_client_pool_forget (ss);
  if (ss->sw_if_index < vec_len (sm->interfaces))
    {
      vlib_increment_simple_counter (&sm->itf_failures, vlib_get_thread_index (), ss->sw_if_index,
				     1);
      sm->interfaces[ss->sw_if_index].failures++;
    }
  if (ss->endpoint_index != ~0 && !pool_is_free_index (sm->endpoints, ss->endpoint_index))
    {
      ep = pool_elt_at_index (sm->endpoints, ss->endpoint_index);
      ep->failures++;
    }
  /* the client's handshake completed before the upstream existed: all we
   * can say now is a reset */
  ss->state = SINGBOX_SESSION_STATE_CLOSING;
  singbox_po_reset (ss);
}

void
singbox_client_connect_failed (singbox_session_t *ss)
{
  singbox_client_fail (ss);
}

/* The proxy's rtt: from the flow's accept to its answer. */
static void
singbox_client_note_rtt (singbox_session_t *ss)
{
  if (ss->endpoint_index != ~0 && !pool_is_free_index (singbox_main.endpoints, ss->endpoint_index))
    pool_elt_at_index (singbox_main.endpoints, ss->endpoint_index)->rtt_us =
      (vlib_time_now (vlib_get_main ()) - ss->created) * 1e6;
}

/* HTTP CONNECT: the proxy's response. The core consumes the header block
 * and not one byte more: what follows is the destination's and stays in
 * the fifo for singbox_client_cross to move. Lock held. */
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
      t = http_connect_client_feed (&ss->hcproto, buf, n, &consumed, &ev);
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
	  singbox_client_fail (ss);
	  singbox_ao_close_public (ss);
	  return;
	}
      /* NEED_DATA took all n: more may wait beyond the peek */
      if (consumed < n)
	break;
    }
}

/* Upstream bytes during the handshake: the proxy's replies. With the lock
 * held, on the upstream's thread. */
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
      t = socks5_client_feed (&ss->cproto, buf, n, &consumed, &ev, &out);
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
	  singbox_client_fail (ss);
	  singbox_ao_close_public (ss);
	  return;
	}
      /* NEED_DATA took the whole capped peek: the replies of a pipelined
       * handshake (up to 4 + 262 bytes) may hold more than buf, and no
       * further rx event comes for bytes already in the fifo */
      if (!consumed || (t == SOCKS5_EV_NEED_DATA && consumed < n))
	break;
    }
  /* authenticated, waiting for a flow's CONNECT */
  if (ss->pooled && !ss->pool_ready && socks5_client_state (&ss->cproto) == SOCKS5_CLIENT_READY &&
      !pool_is_free_index (singbox_main.endpoints, ss->endpoint_index))
    {
      singbox_endpoint_t *ep = pool_elt_at_index (singbox_main.endpoints, ss->endpoint_index);
      if (ep->pool_pending)
	ep->pool_pending--;
      ss->pool_ready = 1;
      vec_add1 (ep->pool_ready, singbox_session_id (ss));
    }
}

/* Add what the client leg moved since the last call to its interface's
 * counters; on the leg's thread (legs of one interface may be on several). */
void
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

/* Without the interface's interception its relayed flows' next segments
 * would be routed past VPP's TCP, leaving the sessions to the idle timeout
 * (and counted against max-connections when re-enabled): end them now. */
static void
singbox_client_close_interface (u32 sw_if_index)
{
  singbox_main_t *sm = &singbox_main;
  singbox_session_t *ss;
  u64 *ids = 0, *id;

  singbox_sessions_lock ();
  pool_foreach (ss, sm->sessions)
    if (ss->mode == SINGBOX_MODE_CLIENT && ss->sw_if_index == sw_if_index &&
	ss->po_handle != SESSION_INVALID_HANDLE)
      vec_add1 (ids, singbox_session_id (ss));
  singbox_sessions_unlock ();
  /* each is reset on its client leg's thread */
  vec_foreach (id, ids)
    singbox_session_disconnect (*id);
  vec_free (ids);
}

int
singbox_interface_enable_disable (u32 sw_if_index, int enable, ip46_address_t *proxy_addr,
				  u8 proxy_is_ip4, u16 proxy_port, u8 *endpoint_name,
				  u32 max_connections)
{
  singbox_main_t *sm = &singbox_main;
  vnet_main_t *vnm = vnet_get_main ();
  singbox_interface_t *itf;
  singbox_endpoint_t *ep = 0;
  int rv;

  if (!vnet_sw_interface_is_valid (vnm, sw_if_index))
    return VNET_API_ERROR_INVALID_SW_IF_INDEX;

  if (!enable)
    {
      if (!(itf = singbox_interface_get (sw_if_index)))
	return VNET_API_ERROR_NO_SUCH_ENTRY;
      singbox_client_close_interface (sw_if_index);
      singbox_client_intercept_enable_disable (itf, 0);
      if (itf->endpoint_index != ~0)
	pool_elt_at_index (sm->endpoints, itf->endpoint_index)->n_users--;
      vec_free (itf->bypass);
      itf->enabled = 0;
      if (itf->stat_active && itf->stat_active != ~0)
	vlib_stats_remove_entry (itf->stat_active);
      itf->stat_active = ~0;
      return 0;
    }

  if (proxy_port)
    {
      u8 *name = format (0, "if-%u%c", sw_if_index, 0);
      rv = singbox_endpoint_add_del (1, name, proxy_addr, proxy_is_ip4, proxy_port, 0, 0, 0, 0, 0,
				     0, 0, 0, 0, 0, 0);
      ep = rv ? 0 : singbox_endpoint_find (name);
      vec_free (name);
      if (rv)
	return rv;
    }
  else if (endpoint_name && endpoint_name[0])
    {
      if (!(ep = singbox_endpoint_find (endpoint_name)))
	return VNET_API_ERROR_NO_SUCH_ENTRY;
    }
  else if (sm->default_endpoint == ~0)
    return VNET_API_ERROR_NO_SUCH_ENTRY;

  vec_validate (sm->interfaces, sw_if_index);
  itf = vec_elt_at_index (sm->interfaces, sw_if_index);
  itf->sw_if_index = sw_if_index;
  if (!itf->enabled && (rv = singbox_client_intercept_enable_disable (itf, 1)))
    return rv;
  if (!itf->enabled)
    {
      /* an interface's counters start when it is enabled */
      itf->total = itf->failures = itf->packets = itf->bytes = 0;
      itf->stat_active = vlib_stats_add_gauge ("/singbox/client/interface/%u/active", sw_if_index);
    }
  if (itf->enabled && itf->endpoint_index != ~0)
    pool_elt_at_index (sm->endpoints, itf->endpoint_index)->n_users--;
  itf->sw_if_index = sw_if_index;
  itf->enabled = 1;
  itf->endpoint_index = ep ? ep - sm->endpoints : ~0;
  itf->adhoc_endpoint = proxy_port != 0;
  itf->max_connections = max_connections;
  if (ep)
    ep->n_users++;
  return 0;
}

int
singbox_interface_bypass_add_del (u32 sw_if_index, int is_add, ip46_address_t *addr, u8 len,
				  u8 is_ip4)
{
  singbox_interface_t *itf = singbox_interface_get (sw_if_index);
  singbox_prefix_t *p, np = {};
  u32 i;

  if (!itf)
    return VNET_API_ERROR_NO_SUCH_ENTRY;
  if (len > (is_ip4 ? 32 : 128))
    return VNET_API_ERROR_INVALID_VALUE;
  np.addr = *addr;
  np.len = len;
  np.is_ip4 = is_ip4;
  vec_foreach_index (i, itf->bypass)
    {
      p = vec_elt_at_index (itf->bypass, i);
      if (p->is_ip4 == is_ip4 && p->len == len && ip46_address_is_equal (&p->addr, addr))
	{
	  if (!is_add)
	    vec_del1 (itf->bypass, i);
	  return 0;
	}
    }
  if (!is_add)
    return VNET_API_ERROR_NO_SUCH_ENTRY;
  vec_add1 (itf->bypass, np);
  return 0;
}

int
singbox_set_client_timeout (u32 timeout)
{
  singbox_main.client_timeout = timeout;
  return 0;
}

int
singbox_set_pooling (u8 enable, u32 max_pool_size)
{
  singbox_main.pooling = enable;
  if (max_pool_size)
    singbox_main.max_pool_size = max_pool_size;
  return 0;
}

static const char *singbox_ep_state_names[] = { "unknown", "up", "down" };

u8 *
format_singbox_endpoint (u8 *s, va_list *args)
{
  singbox_endpoint_t *ep = va_arg (*args, singbox_endpoint_t *);
  u32 index = ep - singbox_main.endpoints;

  s = format (s, "%s%s: %U:%u (%s)%s", ep->name,
	      index == singbox_main.default_endpoint ? " (default)" : "", format_ip46_address,
	      &ep->addr, IP46_TYPE_ANY, ep->port,
	      ep->protocol == SINGBOX_PROTO_HTTP_CONNECT ? "HTTP CONNECT" : "SOCKS5",
	      ep->username ? " auth" : "");
  s = format (s, " state %s failures %lu rtt %uus connections %lu",
	      singbox_ep_state_names[ep->state % 3], ep->failures, ep->rtt_us, ep->connections);
  if (singbox_main.pooling)
    s = format (s, " pool %u ready %u connecting", vec_len (ep->pool_ready), ep->pool_pending);
  return s;
}

u8 *
format_singbox_interface (u8 *s, va_list *args)
{
  singbox_interface_t *itf = va_arg (*args, singbox_interface_t *);
  vnet_main_t *vnm = vnet_get_main ();
  singbox_main_t *sm = &singbox_main;
  u8 *ep =
    singbox_endpoint_name (itf->endpoint_index != ~0 ? itf->endpoint_index : sm->default_endpoint);
  singbox_prefix_t *p;

  s = format (s, "Interface %U:\n", format_vnet_sw_if_index_name, vnm, itf->sw_if_index);
  s = format (s, "  Status: %s\n", itf->enabled ? "enabled" : "disabled");
  s = format (s, "  Proxy: %s\n", ep ? (char *) ep : "-");
  if (itf->max_connections)
    s = format (s, "  Max connections: %u\n", itf->max_connections);
  vec_foreach (p, itf->bypass)
    s = format (s, "  Bypass: %U/%u\n", format_ip46_address, &p->addr, IP46_TYPE_ANY, p->len);
  s = format (s, "  Active connections: %u\n", itf->active);
  s = format (s, "  Total connections: %lu\n", itf->total);
  s = format (s, "  Packets redirected: %lu\n", itf->packets);
  s = format (s, "  Bytes redirected: %lu\n", itf->bytes);
  s = format (s, "  Connection failures: %lu\n", itf->failures);
  return s;
}

/* singbox-process: per-object gauges in the stats segment. */
void
singbox_client_stats_update (void)
{
  singbox_main_t *sm = &singbox_main;
  singbox_endpoint_t *ep;
  singbox_interface_t *itf;

  pool_foreach (ep, sm->endpoints)
    {
      vlib_stats_set_gauge (ep->stat_state, ep->state);
      vlib_stats_set_gauge (ep->stat_rtt, ep->rtt_us);
      vlib_stats_set_gauge (ep->stat_failures, ep->failures);
      vlib_stats_set_gauge (ep->stat_connections, ep->connections);
    }
  vec_foreach (itf, sm->interfaces)
    if (itf->enabled && itf->stat_active != ~0 && itf->stat_active != 0)
      vlib_stats_set_gauge (itf->stat_active, itf->active);
}

clib_error_t *
singbox_client_init (vlib_main_t *vm)
{
  singbox_main_t *sm = &singbox_main;

  sm->default_endpoint = ~0;
  sm->endpoint_by_name = hash_create_string (0, sizeof (uword));
  sm->intercept_app_index = APP_INVALID_INDEX;
  sm->intercept_listen4 = SESSION_INVALID_HANDLE;
  sm->intercept_listen6 = SESSION_INVALID_HANDLE;
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
