/* SPDX-License-Identifier: Apache-2.0
 * Copyright (c) 2026 vpp-singbox authors
 */

/* UDP ASSOCIATE (RFC 1928 section 7).
 *
 * Each association owns a connectionless UDP listener on the wildcard
 * address and a port of its own. Datagrams from the associating client
 * (its TCP peer address, and the port it announced or first used) carry a
 * SOCKS UDP header: FRAG != 0 is dropped, the payload goes to DST from the
 * address facing DST (a name is resolved first, once per association). Datagrams from a destination
 * the client has sent to go back to the client behind a header naming their source; anything else
 * is dropped. The association ends with its TCP connection or after the
 * UDP idle timeout. Listening happens on the main thread (the session
 * layer requires it), relaying on whichever worker receives the datagram. */

#include <singbox/singbox.h>
#include <vnet/fib/fib_table.h>
#include <vnet/fib/fib_entry.h>
#include <vnet/ip/ip_interface.h>
#include <vlibmemory/api.h>

#define SINGBOX_UDP_PORT_FIRST 40000
#define SINGBOX_UDP_PORT_LAST  59999
#define SINGBOX_UDP_MAX_PEERS  32
#define SINGBOX_UDP_MAX_DGRAM  65535

static uword
singbox_udp_key (u8 is_ip4, u16 port)
{
  return ((uword) is_ip4 << 16) | port;
}

void
singbox_udp_counters_init (void)
{
  singbox_main_t *sm = &singbox_main;

  sm->udp_counters.name = "singbox-udp";
  sm->udp_counters.stat_segment_name = "/singbox/server/udp-datagrams";
  vlib_validate_combined_counter (&sm->udp_counters, 1);
  vlib_zero_combined_counter (&sm->udp_counters, 0);
  vlib_zero_combined_counter (&sm->udp_counters, 1);
}

/* Local address facing ip, from the FIB. */
static int
singbox_udp_local_ip (u32 fib_index, ip46_address_t *ip, u8 is_ip4, ip46_address_t *lcl)
{
  fib_prefix_t pfx = {
    .fp_addr = *ip,
    .fp_len = is_ip4 ? 32 : 128,
    .fp_proto = is_ip4 ? FIB_PROTOCOL_IP4 : FIB_PROTOCOL_IP6,
  };
  fib_node_index_t fei;
  u32 sw_if_index;
  void *a;

  fei = fib_table_lookup (fib_index, &pfx);
  if (fei == FIB_NODE_INDEX_INVALID)
    return -1;
  sw_if_index = fib_entry_get_resolving_interface (fei);
  if (sw_if_index == ~0)
    return -1;
  a = ip_interface_get_first_ip (sw_if_index, is_ip4);
  if (!a)
    return -1;
  ip46_address_reset (lcl);
  if (is_ip4)
    lcl->ip4 = *(ip4_address_t *) a;
  else
    lcl->ip6 = *(ip6_address_t *) a;
  return 0;
}

/* One datagram into a UDP session's tx fifo, behind `hdr` (a SOCKS5 UDP
 * header, or none): server mode's relay and client mode's both send this
 * way. -1, nothing queued, when the fifo has no room for all of it. */
int
singbox_udp_enqueue (session_t *s, ip46_address_t *lcl, u16 lcl_port, ip46_address_t *rmt,
		     u16 rmt_port, u8 is_ip4, u8 *hdr, u32 hdr_len, u8 *data, u32 len)
{
  session_dgram_hdr_t dh;
  app_session_transport_t at = {
    .rmt_ip = *rmt,
    .lcl_ip = *lcl,
    .rmt_port = clib_host_to_net_u16 (rmt_port),
    .lcl_port = clib_host_to_net_u16 (lcl_port),
    .is_ip4 = is_ip4,
  };
  svm_fifo_seg_t segs[3] = { { (u8 *) &dh, sizeof (dh) } };
  u32 n_segs = 1, seg_len;

  if (hdr_len)
    segs[n_segs++] = (svm_fifo_seg_t){ hdr, hdr_len };
  segs[n_segs++] = (svm_fifo_seg_t){ data, len };
  seg_len = app_gen_dgram_header (segs, hdr_len + len, &at, 0);
  if (svm_fifo_max_enqueue_prod (s->tx_fifo) < seg_len)
    return -1;
  svm_fifo_enqueue_segments (s->tx_fifo, segs, n_segs, 0);
  if (svm_fifo_set_event (s->tx_fifo))
    session_program_tx_io_evt (s->handle, SESSION_IO_EVT_TX);
  return 0;
}

static void
singbox_udp_send (session_t *s, ip46_address_t *lcl, u16 lcl_port, ip46_address_t *rmt,
		  u16 rmt_port, u8 is_ip4, u8 *hdr, u32 hdr_len, u8 *data, u32 len)
{
  if (singbox_udp_enqueue (s, lcl, lcl_port, rmt, rmt_port, is_ip4, hdr, hdr_len, data, len))
    singbox_server_counter_inc (SINGBOX_SERVER_CTR_UDP_DROPPED, 1);
}

static singbox_udp_peer_t *
singbox_udp_peer_find (singbox_session_t *ss, ip46_address_t *ip, u16 port)
{
  singbox_udp_peer_t *p;

  vec_foreach (p, ss->udp_peers)
    if (p->port == port && ip46_address_is_equal (&p->ip, ip))
      return p;
  return 0;
}

static void
singbox_udp_peer_add (singbox_session_t *ss, ip46_address_t *ip, u16 port)
{
  singbox_udp_peer_t np = { .ip = *ip, .port = port };

  if (singbox_udp_peer_find (ss, ip, port))
    return;
  if (vec_len (ss->udp_peers) >= SINGBOX_UDP_MAX_PEERS)
    vec_delete (ss->udp_peers, 1, 0);
  vec_add1 (ss->udp_peers, np);
}

/* A client's payload to dst, from the address facing dst. */
static void
singbox_udp_forward (session_t *s, singbox_session_t *ss, ip46_address_t *dst, u16 port, u8 is_ip4,
		     u8 *data, u32 len)
{
  ip46_address_t lcl;

  if (singbox_udp_local_ip (ss->fib_index, dst, is_ip4, &lcl))
    {
      singbox_server_counter_inc (SINGBOX_SERVER_CTR_UDP_DROPPED, 1);
      return;
    }
  singbox_udp_peer_add (ss, dst, port);
  ss->udp_from_client++;
  vlib_increment_combined_counter (&singbox_main.udp_counters, vlib_get_thread_index (), 0, 1, len);
  singbox_udp_send (s, &lcl, ss->udp_port, dst, port, is_ip4, 0, 0, data, len);
}

/*
 * Names (ATYP 3): resolved through the same DNS path as CONNECT, once per
 * association. The datagram that starts a lookup waits for the answer (the
 * latest one if the client sends more meanwhile); a name that does not
 * resolve, or only to the other address family, drops its datagrams.
 */

#define SINGBOX_UDP_MAX_NAMES 16

static singbox_udp_name_t *
singbox_udp_name_find (singbox_session_t *ss, u8 *name)
{
  singbox_udp_name_t *n;

  vec_foreach (n, ss->udp_names)
    if (!strcmp ((char *) n->name, (char *) name))
      return n;
  return 0;
}

static void
singbox_udp_name_clear (singbox_udp_name_t *n)
{
  vec_free (n->name);
  vec_free (n->pending);
}

void
singbox_udp_names_free (singbox_session_t *ss)
{
  singbox_udp_name_t *n;

  vec_foreach (n, ss->udp_names)
    singbox_udp_name_clear (n);
  vec_free (ss->udp_names);
}

static void
singbox_udp_to_name (session_t *s, singbox_session_t *ss, socks5_addr_t *addr, u8 *data, u32 len)
{
  singbox_main_t *sm = &singbox_main;
  singbox_udp_name_t *n = singbox_udp_name_find (ss, addr->domain);

  if (n && n->state == SINGBOX_UDP_NAME_RESOLVED && n->is_ip4 == ss->client_is_ip4)
    {
      singbox_udp_forward (s, ss, &n->ip, addr->port, n->is_ip4, data, len);
      return;
    }
  if (n && n->state == SINGBOX_UDP_NAME_RESOLVING)
    {
      /* one datagram waits per name: the newer one */
      singbox_server_counter_inc (SINGBOX_SERVER_CTR_UDP_DROPPED, 1);
      vec_reset_length (n->pending);
      vec_add (n->pending, data, len);
      n->pending_port = addr->port;
      n->pending_via = s->handle;
      return;
    }
  if (n || !sm->dns_enabled || !sm->dns_resolve_name_ptr)
    {
      singbox_server_counter_inc (SINGBOX_SERVER_CTR_UDP_DROPPED, 1);
      return;
    }
  if (vec_len (ss->udp_names) >= SINGBOX_UDP_MAX_NAMES)
    {
      singbox_udp_name_clear (ss->udp_names);
      vec_delete (ss->udp_names, 1, 0);
    }
  vec_add2 (ss->udp_names, n, 1);
  n->name = format (0, "%s%c", addr->domain, 0);
  n->state = SINGBOX_UDP_NAME_RESOLVING;
  vec_add (n->pending, data, len);
  n->pending_port = addr->port;
  n->pending_via = s->handle;
  singbox_dns_start_udp (singbox_session_id (ss), addr->domain);
}

typedef struct
{
  u64 session_id;
  u8 *name;
  int rv;
  ip46_address_t ip;
  u8 is_ip4;
} singbox_udp_flush_args_t;

/* On the record's thread: the DNS answer for a name the association sent
 * to; the datagram that waited goes out through the listener session it
 * came in on (the record's thread is the one writing to every listener
 * session of the association, see singbox_udp_rx). */
static void
singbox_udp_resolved_rpc (void *arg)
{
  singbox_udp_flush_args_t *a = arg;
  singbox_session_t *ss;
  singbox_udp_name_t *n;
  session_t *s;

  ss = singbox_session_get_by_id (a->session_id);
  if (!ss || ss->state != SINGBOX_SESSION_STATE_UDP_ASSOCIATED ||
      !(n = singbox_udp_name_find (ss, a->name)) || n->state != SINGBOX_UDP_NAME_RESOLVING)
    goto done;
  if (a->rv || a->is_ip4 != ss->client_is_ip4)
    {
      SINGBOX_DBG ("udp %s: not resolved (%d) or other family", a->name, a->rv);
      n->state = SINGBOX_UDP_NAME_FAILED;
      if (vec_len (n->pending))
	singbox_server_counter_inc (SINGBOX_SERVER_CTR_UDP_DROPPED, 1);
      vec_free (n->pending);
      goto done;
    }
  n->state = SINGBOX_UDP_NAME_RESOLVED;
  n->ip = a->ip;
  n->is_ip4 = a->is_ip4;
  if (vec_len (n->pending) && (s = session_get_from_handle_if_valid (n->pending_via)))
    singbox_udp_forward (s, ss, &n->ip, n->pending_port, n->is_ip4, n->pending,
			 vec_len (n->pending));
  vec_free (n->pending);
done:
  vec_free (a->name);
  clib_mem_free (a);
}

/* The DNS answer for a name an association sent to; main thread, without
 * the barrier: to the record's thread. */
void
singbox_udp_resolved (u64 session_id, u8 *name, int rv, ip46_address_t *ip, u8 is_ip4)
{
  singbox_udp_flush_args_t *a = clib_mem_alloc (sizeof (*a));

  clib_memset (a, 0, sizeof (*a));
  a->session_id = session_id;
  a->name = format (0, "%s%c", name, 0);
  a->rv = rv;
  if (ip)
    a->ip = *ip;
  a->is_ip4 = is_ip4;
  singbox_rpc (singbox_session_handle_thread (singbox_session_id_handle (session_id)),
	       singbox_udp_resolved_rpc, a);
}

/* One datagram from the client: strip the SOCKS header, send on. */
static void
singbox_udp_from_client (session_t *s, singbox_session_t *ss, session_dgram_hdr_t *dh, u8 *data,
			 u32 len)
{
  socks5_udp_header_t h;
  ip46_address_t dst = {};
  u8 is_ip4 = dh->is_ip4;
  int hlen;

  hlen = socks5_udp_header_parse (data, len, &h);
  if (hlen < 0 || h.frag != 0)
    {
      /* FRAG != 0: no reassembly, drop as RFC 1928 allows */
      singbox_server_counter_inc (SINGBOX_SERVER_CTR_UDP_DROPPED, 1);
      return;
    }
  if (h.addr.atyp == SOCKS5_ATYP_DOMAIN)
    {
      singbox_udp_to_name (s, ss, &h.addr, data + hlen, len - hlen);
      return;
    }
  if (h.addr.atyp == SOCKS5_ATYP_IPV4 && is_ip4)
    clib_memcpy (&dst.ip4, h.addr.ip4, 4);
  else if (h.addr.atyp == SOCKS5_ATYP_IPV6 && !is_ip4)
    clib_memcpy (&dst.ip6, h.addr.ip6, 16);
  else
    {
      /* the other family is not relayed over this socket */
      singbox_server_counter_inc (SINGBOX_SERVER_CTR_UDP_DROPPED, 1);
      return;
    }
  singbox_udp_forward (s, ss, &dst, h.addr.port, is_ip4, data + hlen, len - hlen);
}

/* One datagram from a destination: prepend a header naming it. */
static void
singbox_udp_to_client (session_t *s, singbox_session_t *ss, session_dgram_hdr_t *dh, u8 *data,
		       u32 len)
{
  u8 hdr[SOCKS5_UDP_HEADER_MAX_LEN];
  socks5_addr_t src;
  int hlen;

  if (dh->is_ip4)
    socks5_addr_set_ip4 (&src, dh->rmt_ip.ip4.as_u8, clib_net_to_host_u16 (dh->rmt_port));
  else
    socks5_addr_set_ip6 (&src, dh->rmt_ip.ip6.as_u8, clib_net_to_host_u16 (dh->rmt_port));
  hlen = socks5_udp_header_encode (&src, hdr, sizeof (hdr));
  if (hlen < 0)
    return;
  ss->udp_to_client++;
  vlib_increment_combined_counter (&singbox_main.udp_counters, vlib_get_thread_index (), 1, 1, len);
  singbox_udp_send (s, &ss->lcl_ip, ss->udp_port, &ss->udp_client_ip, ss->udp_client_port,
		    dh->is_ip4, hdr, hlen, data, len);
}

/* One datagram of association h, on the record's thread; s is the
 * listener session it came in on (maybe another thread's: the record's
 * thread then writes that session's tx fifo, and is the only one to). */
static void
singbox_udp_datagram (session_t *s, u32 h, session_dgram_hdr_t *dh, u8 *buf, u32 len)
{
  singbox_session_t *ss;
  u16 rmt_port = clib_net_to_host_u16 (dh->rmt_port);
  u16 lcl_port = clib_net_to_host_u16 (dh->lcl_port);
  f64 now = vlib_time_now (vlib_get_main ());

  ss = singbox_session_get_if_valid (h);
  if (!ss || ss->state != SINGBOX_SESSION_STATE_UDP_ASSOCIATED || ss->udp_port != lcl_port ||
      ss->client_is_ip4 != dh->is_ip4)
    singbox_server_counter_inc (SINGBOX_SERVER_CTR_UDP_DROPPED, 1);
  else if (ip46_address_is_equal (&dh->rmt_ip, &ss->client_ip) &&
	   (ss->udp_client_known ? rmt_port == ss->udp_client_port :
				   (!ss->udp_client_port || rmt_port == ss->udp_client_port)))
    {
      if (!ss->udp_client_known)
	{
	  ss->udp_client_known = 1;
	  ss->udp_client_ip = dh->rmt_ip;
	  ss->udp_client_port = rmt_port;
	}
      ss->last_active = now;
      singbox_udp_from_client (s, ss, dh, buf, len);
    }
  else if (ss->udp_client_known && singbox_udp_peer_find (ss, &dh->rmt_ip, rmt_port))
    {
      ss->last_active = now;
      singbox_udp_to_client (s, ss, dh, buf, len);
    }
  else
    /* not the associating client and not a destination it used */
    singbox_server_counter_inc (SINGBOX_SERVER_CTR_UDP_DROPPED, 1);
}

/* A datagram that came in on another thread than its association's
 * record, handed over (singbox_udp_rx). */
typedef struct
{
  session_handle_t via;
  u32 h;
  u32 len;
  session_dgram_hdr_t dh;
  u8 data[0];
} singbox_udp_handoff_t;

static void
singbox_udp_handoff_rpc (void *arg)
{
  singbox_udp_handoff_t *d = arg;
  session_t *s = session_get_from_handle_if_valid (d->via);

  if (s)
    singbox_udp_datagram (s, d->h, &d->dh, d->data, d->len);
  clib_mem_free (d);
}

static int
singbox_udp_rx (session_t *s)
{
  singbox_main_t *sm = &singbox_main;
  clib_thread_index_t thread_index = vlib_get_thread_index ();
  u8 *buf = sm->udp_rx_buf[thread_index];
  singbox_udp_handoff_t *d;
  session_dgram_hdr_t dh;
  u16 lcl_port;
  uword *p;
  u32 len, h;

  while (svm_fifo_max_dequeue_cons (s->rx_fifo) >= sizeof (dh))
    {
      svm_fifo_peek (s->rx_fifo, 0, sizeof (dh), (u8 *) &dh);
      len = clib_min (dh.data_length, SINGBOX_UDP_MAX_DGRAM);
      if (svm_fifo_max_dequeue_cons (s->rx_fifo) < sizeof (dh) + dh.data_length)
	break;
      svm_fifo_peek (s->rx_fifo, sizeof (dh) + dh.data_offset, len, buf);
      svm_fifo_dequeue_drop (s->rx_fifo, sizeof (dh) + dh.data_length);

      if (dh.is_ip4)
	{
	  /* the transport leaves the rest of the ip46 unset */
	  ip4_address_t r4 = dh.rmt_ip.ip4, l4 = dh.lcl_ip.ip4;
	  ip46_address_reset (&dh.rmt_ip);
	  ip46_address_reset (&dh.lcl_ip);
	  dh.rmt_ip.ip4 = r4;
	  dh.lcl_ip.ip4 = l4;
	}
      lcl_port = clib_net_to_host_u16 (dh.lcl_port);
      SINGBOX_DBG ("udp %U:%u -> :%u len %u", format_ip46_address, &dh.rmt_ip, IP46_TYPE_ANY,
		   clib_net_to_host_u16 (dh.rmt_port), lcl_port, len);

      /* the port's association; its record, which may have gone in
       * between, is looked at on its own thread */
      clib_spinlock_lock_if_init (&sm->udp_lock);
      p = hash_get (sm->udp_assoc_by_port, singbox_udp_key (dh.is_ip4, lcl_port));
      h = p ? p[0] : ~0;
      clib_spinlock_unlock_if_init (&sm->udp_lock);
      if (h == ~0)
	{
	  singbox_server_counter_inc (SINGBOX_SERVER_CTR_UDP_DROPPED, 1);
	  continue;
	}
      if (singbox_session_handle_thread (h) == thread_index)
	{
	  singbox_udp_datagram (s, h, &dh, buf, len);
	  continue;
	}
      /* another thread's record (RSS spreads an association's datagrams):
       * the datagram goes there, copied */
      d = clib_mem_alloc (sizeof (*d) + len);
      d->via = s->handle;
      d->h = h;
      d->len = len;
      d->dh = dh;
      clib_memcpy (d->data, buf, len);
      singbox_rpc (singbox_session_handle_thread (h), singbox_udp_handoff_rpc, d);
    }
  return 0;
}

static int
singbox_udp_accept (session_t *s)
{
  return -1;
}

static void
singbox_udp_noop (session_t *s)
{
}

static int
singbox_udp_connected (u32 a, u32 b, session_t *s, session_error_t e)
{
  return -1;
}

static int
singbox_udp_segment (u32 a, u64 b)
{
  return 0;
}

static session_cb_vft_t singbox_udp_cb_vft = {
  .session_accept_callback = singbox_udp_accept,
  .session_connected_callback = singbox_udp_connected,
  .session_disconnect_callback = singbox_udp_noop,
  .session_reset_callback = singbox_udp_noop,
  .builtin_app_rx_callback = singbox_udp_rx,
  .add_segment_callback = singbox_udp_segment,
  .del_segment_callback = singbox_udp_segment,
};

int
singbox_udp_attach (void)
{
  singbox_main_t *sm = &singbox_main;
  vnet_app_attach_args_t _a = {}, *a = &_a;
  u64 options[APP_OPTIONS_N_OPTIONS] = {};
  int i;

  if (sm->udp_app_index != APP_INVALID_INDEX)
    return 0;
  a->name = format (0, "singbox-udp");
  a->api_client_index = APP_INVALID_INDEX;
  a->session_cb_vft = &singbox_udp_cb_vft;
  a->options = options;
  options[APP_OPTIONS_SEGMENT_SIZE] = 64 << 20;
  options[APP_OPTIONS_ADD_SEGMENT_SIZE] = 64 << 20;
  options[APP_OPTIONS_RX_FIFO_SIZE] = 256 << 10;
  options[APP_OPTIONS_TX_FIFO_SIZE] = 256 << 10;
  options[APP_OPTIONS_FLAGS] = APP_OPTIONS_FLAGS_IS_BUILTIN;
  if (vnet_application_attach (a))
    {
      vec_free (a->name);
      return VNET_API_ERROR_UNSPECIFIED;
    }
  vec_free (a->name);
  sm->udp_app_index = a->app_index;
  vec_validate (sm->udp_rx_buf, vlib_num_workers ());
  for (i = 0; i < vec_len (sm->udp_rx_buf); i++)
    vec_validate (sm->udp_rx_buf[i], SINGBOX_UDP_MAX_DGRAM);
  return 0;
}

typedef struct
{
  u64 id;
} singbox_udp_rpc_args_t;

/* Main thread: open the association's listener, then reply. */
static void
singbox_udp_open_rpc (singbox_udp_rpc_args_t *args)
{
  singbox_main_t *sm = &singbox_main;
  vnet_listen_args_t _a = {}, *a = &_a;
  singbox_session_t *ss;
  u32 fib_index, tries;
  u8 is_ip4;
  u16 port = 0;
  int rv = -1;
  uword *p;

  /* under the barrier (an RPC to main): every record may be read */
  SINGBOX_ASSERT_BARRIER ();
  if (!(ss = singbox_session_get_by_id (args->id)))
    return;
  is_ip4 = ss->client_is_ip4;
  fib_index = ss->fib_index;

  if (singbox_udp_attach ())
    goto done;
  if (!sm->udp_next_port)
    sm->udp_next_port = SINGBOX_UDP_PORT_FIRST;
  for (tries = 0; tries <= SINGBOX_UDP_PORT_LAST - SINGBOX_UDP_PORT_FIRST; tries++)
    {
      port = sm->udp_next_port++;
      if (sm->udp_next_port > SINGBOX_UDP_PORT_LAST)
	sm->udp_next_port = SINGBOX_UDP_PORT_FIRST;
      clib_spinlock_lock_if_init (&sm->udp_lock);
      p = hash_get (sm->udp_assoc_by_port, singbox_udp_key (is_ip4, port));
      clib_spinlock_unlock_if_init (&sm->udp_lock);
      if (p)
	continue;
      clib_memset (a, 0, sizeof (*a));
      a->sep_ext = (session_endpoint_cfg_t) SESSION_ENDPOINT_CFG_NULL;
      a->sep_ext.transport_proto = TRANSPORT_PROTO_UDP;
      a->sep_ext.is_ip4 = is_ip4;
      a->sep_ext.port = clib_host_to_net_u16 (port);
      a->sep_ext.fib_index = fib_index;
      a->app_index = sm->udp_app_index;
      rv = vnet_listen (a);
      if (rv == 0 || rv != SESSION_E_ALREADY_LISTENING)
	break;
    }

done:
  if (!(ss = singbox_session_get_by_id (args->id)) || ss->po_closed)
    {
      /* the client left meanwhile */
      if (rv == 0)
	{
	  vnet_unlisten_args_t ua = { .handle = a->handle, .app_index = sm->udp_app_index };
	  vnet_unlisten (&ua);
	}
      return;
    }
  if (rv)
    ss->rep = SOCKS5_REP_GENERAL_FAILURE;
  else
    {
      ss->udp_listen_handle = a->handle;
      ss->udp_port = port;
      clib_spinlock_lock_if_init (&sm->udp_lock);
      hash_set (sm->udp_assoc_by_port, singbox_udp_key (is_ip4, port), ss->index);
      clib_spinlock_unlock_if_init (&sm->udp_lock);
    }
  singbox_server_udp_ready (ss);
}

/* On the client's thread. */
void
singbox_udp_associate (singbox_session_t *ss, socks5_addr_t *client)
{
  singbox_udp_rpc_args_t args = { .id = singbox_session_id (ss) };

  /* DST in the request: the address the client will send from, if known */
  ss->udp_client_ip = ss->client_ip;
  ss->udp_client_port = client->port;
  ss->udp_listen_handle = SESSION_INVALID_HANDLE;
  ss->state = SINGBOX_SESSION_STATE_CONNECTING;
  ss->deadline = vlib_time_now (vlib_get_main ()) + 5;
  /* forced: asynchronous even on main, and run under the barrier that
   * vnet_listen needs */
  vl_api_force_rpc_call_main_thread (singbox_udp_open_rpc, (u8 *) &args, sizeof (args));
}

static void
singbox_udp_close_rpc (singbox_udp_rpc_args_t *args)
{
  singbox_main_t *sm = &singbox_main;
  vnet_unlisten_args_t ua = { .handle = args->id, .app_index = sm->udp_app_index };
  vnet_unlisten (&ua);
}

/* On the record's thread: forget the association and close its listener. */
void
singbox_udp_release (singbox_session_t *ss)
{
  singbox_main_t *sm = &singbox_main;
  singbox_udp_rpc_args_t args;

  singbox_udp_names_free (ss);
  if (ss->udp_listen_handle == SESSION_INVALID_HANDLE || !ss->udp_port)
    return;
  clib_spinlock_lock_if_init (&sm->udp_lock);
  hash_unset (sm->udp_assoc_by_port, singbox_udp_key (ss->client_is_ip4, ss->udp_port));
  clib_spinlock_unlock_if_init (&sm->udp_lock);
  args.id = ss->udp_listen_handle;
  ss->udp_listen_handle = SESSION_INVALID_HANDLE;
  ss->udp_port = 0;
  vec_free (ss->udp_peers);
  vl_api_force_rpc_call_main_thread (singbox_udp_close_rpc, (u8 *) &args, sizeof (args));
}
