/* SPDX-License-Identifier: Apache-2.0
 * Copyright (c) 2026 vpp-singbox authors
 */

/* Client mode, UDP (RFC 1928 section 7, client side).
 *
 * Interception: singbox-cudp4-in / singbox-cudp6-in, on the interfaces with
 * UDP relaying enabled, hand a UDP datagram that has no session to our
 * wildcard *connected* UDP listener (0.0.0.0:0, [::]:0), as hsi4-in does
 * for its intercept listener; udp-input then makes one connected session
 * per client 5-tuple whose local end is the original destination. hsi
 * itself is not used for UDP: its intercept switch is global (every client
 * interface would lose its UDP), it cannot leave bypass prefixes alone, and
 * for IPv6 it never finds a [::]:0 listener (see singbox_client.c on
 * hsi6-in: session table 0 is FIB 0's IPv4 table). Bypassed destinations,
 * the endpoints' own traffic, multicast/broadcast and VPP's own addresses
 * are not intercepted at all: they are routed as before.
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
 * The flow ends with its control connection, after the interface's idle
 * timeout, or when the association is not up within the endpoint's
 * connect timeout.
 *
 * Threads: the client leg lives on the worker that received its first
 * datagram, the control connection where TCP put it, the relay leg on the
 * worker that receives its replies (the session layer moves it there with
 * the first one). Flows are shared under one spinlock; every fifo has one
 * producer at a time because producers hold it. The lock is never held
 * across a call that may stop the workers (connects go out after it is
 * released). Nothing per datagram runs on main. */

#include <singbox/singbox_client_udp.h>
#include <singbox/singbox_group.h>
#include <singbox/singbox_tcp_ts.h>
#include <vnet/fib/fib_table.h>
#include <vnet/fib/fib_entry.h>
#include <vnet/fib/ip4_fib.h>
#include <vnet/fib/ip6_fib.h>
#include <vnet/dpo/load_balance.h>
#include <vnet/dpo/receive_dpo.h>
#include <vnet/ip/ip_types_api.h>
#include <vnet/udp/udp_packet.h>
#include <vnet/udp/udp.h>
#include <vnet/ip/reass/ip4_full_reass.h>
#include <vnet/ip/reass/ip6_full_reass.h>
#include <vnet/feature/feature.h>
#include <vnet/format_fns.h>
#include <vlibapi/api.h>
#include <vlibmemory/api.h>

#include <singbox/singbox.api_enum.h>
#include <singbox/singbox.api_types.h>

#define REPLY_MSG_ID_BASE singbox_main.msg_id_base
#include <vlibapi/api_helper_macros.h>

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
#define SINGBOX_CUDP_MSS	  65487
#define SINGBOX_CUDP_MAX_DGRAM	  65535
#define SINGBOX_CUDP_FIFO_SIZE	  (256 << 10)
#define SINGBOX_CUDP_CTX_GEN_BITS 8

singbox_cudp_main_t singbox_cudp_main;

static void singbox_cudp_close (singbox_cudp_flow_t *f, int failed);

static_always_inline void
singbox_cudp_lock (void)
{
  clib_spinlock_lock_if_init (&singbox_cudp_main.lock);
}

static_always_inline void
singbox_cudp_unlock (void)
{
  clib_spinlock_unlock_if_init (&singbox_cudp_main.lock);
}

singbox_cudp_itf_t *
singbox_client_udp_itf_get (u32 sw_if_index)
{
  singbox_cudp_main_t *cm = &singbox_cudp_main;

  if (sw_if_index >= vec_len (cm->itfs) || !cm->itfs[sw_if_index].enabled)
    return 0;
  return vec_elt_at_index (cm->itfs, sw_if_index);
}

static_always_inline void
singbox_cudp_count (singbox_cudp_counter_t c, u32 sw_if_index, u64 n)
{
  singbox_cudp_main_t *cm = &singbox_cudp_main;

  if (sw_if_index >= vec_len (cm->itfs))
    return;
  vlib_increment_simple_counter (&cm->counters[c], vlib_get_thread_index (), sw_if_index, n);
  /* callers on any worker, some without the lock */
  switch (c)
    {
    case SINGBOX_CUDP_CTR_FLOWS:
      clib_atomic_fetch_add (&cm->itfs[sw_if_index].flows, n);
      break;
    case SINGBOX_CUDP_CTR_FAILURES:
      clib_atomic_fetch_add (&cm->itfs[sw_if_index].failures, n);
      break;
    case SINGBOX_CUDP_CTR_DROPPED:
      clib_atomic_fetch_add (&cm->itfs[sw_if_index].dropped, n);
      break;
    default:
      break;
    }
}

static singbox_cudp_flow_t *
singbox_cudp_flow_get_if_valid (u32 index)
{
  singbox_cudp_main_t *cm = &singbox_cudp_main;

  if (pool_is_free_index (cm->flows, index))
    return 0;
  return pool_elt_at_index (cm->flows, index);
}

/*
 * Interception
 */

typedef enum
{
  SINGBOX_CUDP_IN_NEXT_UDP_INPUT_NOLOOKUP,
  SINGBOX_CUDP_IN_NEXT_DROP,
  SINGBOX_CUDP_IN_NEXT_HOLD,
  SINGBOX_CUDP_IN_N_NEXT,
} singbox_cudp_in_next_t;

typedef struct
{
  u8 action; /* singbox_cudp_in_action_t */
} singbox_cudp_in_trace_t;

#define foreach_singbox_cudp_in_action                                                             \
  _ (PASS, "pass")                                                                                 \
  _ (SESSION, "to its session")                                                                    \
  _ (NEW, "new flow")                                                                              \
  _ (MAX_FLOWS, "dropped: max-flows")                                                              \
  _ (HOLD, "held: its flow starts earlier in this frame")                                          \
  _ (NO_SESSION, "dropped: its flow was not accepted")

typedef enum
{
#define _(sym, str) SINGBOX_CUDP_IN_##sym,
  foreach_singbox_cudp_in_action
#undef _
} singbox_cudp_in_action_t;

/* The flows a frame started: udp-input creates a flow's session only when
 * it gets to its first datagram, so the flow's next datagrams in the same
 * frame would find no session yet (and udp-input drops a second datagram
 * for a listener whose flow exists). They wait in singbox-cudp*-hold,
 * whose frame the graph dispatches after udp-input's. */
#define SINGBOX_CUDP_FRAME_NEW_MAX 16
typedef struct
{
  ip46_address_t src;
  ip46_address_t dst;
  u16 src_port;
  u16 dst_port;
} singbox_cudp_tuple_t;

static u8 *
format_singbox_cudp_in_trace (u8 *s, va_list *args)
{
  CLIB_UNUSED (vlib_main_t * vm) = va_arg (*args, vlib_main_t *);
  CLIB_UNUSED (vlib_node_t * node) = va_arg (*args, vlib_node_t *);
  singbox_cudp_in_trace_t *t = va_arg (*args, singbox_cudp_in_trace_t *);
  static const char *names[] = {
#define _(sym, str) str,
    foreach_singbox_cudp_in_action
#undef _
  };

  return format (s, "singbox-cudp: %s", names[t->action % ARRAY_LEN (names)]);
}

/* Whether a datagram without a session is to be relayed: not to VPP itself
 * or a group, not bypassed, not the proxies' own traffic (relaying it would
 * loop). Runs on the workers; the configuration it reads changes only
 * under the barrier. */
static_always_inline int
singbox_cudp_wanted (u32 sw_if_index, u32 fib_index, ip46_address_t *src, ip46_address_t *dst,
		     u16 dst_port, u8 is_ip4)
{
  singbox_main_t *sm = &singbox_main;
  singbox_interface_t *itf = singbox_interface_get (sw_if_index);
  singbox_endpoint_t *ep;
  singbox_prefix_t *p;
  const dpo_id_t *dpo;
  index_t lbi;

  if (!itf)
    return 0;
  if (is_ip4)
    {
      if (ip4_address_is_multicast (&dst->ip4) || dst->ip4.as_u32 == 0xffffffff)
	return 0;
      lbi = ip4_fib_forwarding_lookup (fib_index, &dst->ip4);
    }
  else
    {
      if (ip6_address_is_multicast (&dst->ip6) || ip6_address_is_link_local_unicast (&dst->ip6))
	return 0;
      lbi = ip6_fib_table_fwding_lookup (fib_index, &dst->ip6);
    }
  dpo = load_balance_get_bucket_i (load_balance_get (lbi), 0);
  if (dpo->dpoi_type == DPO_RECEIVE)
    return 0;
  vec_foreach (p, itf->bypass)
    if (singbox_prefix_match (p, dst, is_ip4))
      return 0;
  pool_foreach (ep, sm->endpoints)
    {
      if (ep->is_ip4 != is_ip4)
	continue;
      if (ip46_address_is_equal (&ep->addr, src) ||
	  (ip46_address_is_equal (&ep->addr, dst) && ep->port == dst_port))
	return 0;
    }
  return 1;
}

/* Returns the next node for one buffer, or ~0 to pass it on the arc.
 * is_hold: a datagram held for its flow's session, which must exist now. */
static_always_inline u32
singbox_cudp_in_one (vlib_buffer_t *b, u8 is_ip4, u8 is_hold, singbox_cudp_tuple_t *seen,
		     u32 *n_seen, u8 *action)
{
  singbox_cudp_main_t *cm = &singbox_cudp_main;
  ip46_address_t src = {}, dst = {};
  session_handle_t sh;
  singbox_cudp_itf_t *citf;
  udp_header_t *udp;
  u32 sw_if_index, fib_index, advance, i;
  singbox_cudp_tuple_t t;
  session_t *s;

  *action = SINGBOX_CUDP_IN_PASS;
  if (is_ip4)
    {
      ip4_header_t *ip4 = vlib_buffer_get_current (b);
      /* udp-input reads the UDP header right after a 20-byte IPv4 header */
      if (ip4->protocol != IP_PROTOCOL_UDP || ip4_is_fragment (ip4) ||
	  ip4->ip_version_and_header_length != 0x45 ||
	  b->current_length < sizeof (*ip4) + sizeof (*udp))
	return ~0;
      ip_lookup_set_buffer_fib_index (ip4_main.fib_index_by_sw_if_index, b);
      fib_index = vnet_buffer (b)->ip.fib_index;
      udp = ip4_next_header (ip4);
      s = session_lookup_safe4 (fib_index, &ip4->dst_address, &ip4->src_address, udp->dst_port,
				udp->src_port, TRANSPORT_PROTO_UDP);
      src.ip4 = ip4->src_address;
      dst.ip4 = ip4->dst_address;
      advance = sizeof (*ip4) + sizeof (*udp);
    }
  else
    {
      ip6_header_t *ip6 = vlib_buffer_get_current (b);
      /* extension headers are left to the normal path */
      if (ip6->protocol != IP_PROTOCOL_UDP || b->current_length < sizeof (*ip6) + sizeof (*udp))
	return ~0;
      ip_lookup_set_buffer_fib_index (ip6_main.fib_index_by_sw_if_index, b);
      fib_index = vnet_buffer (b)->ip.fib_index;
      udp = ip6_next_header (ip6);
      s = session_lookup_safe6 (fib_index, &ip6->dst_address, &ip6->src_address, udp->dst_port,
				udp->src_port, TRANSPORT_PROTO_UDP);
      src.ip6 = ip6->src_address;
      dst.ip6 = ip6->dst_address;
      advance = sizeof (*ip6) + sizeof (*udp);
    }

  /* a listener matches any destination with its port: only a flow's own
   * session, or an exact connected one, takes the datagram as it is */
  if (s && s->session_state != SESSION_STATE_LISTENING)
    {
      sh = session_handle (s);
      *action = SINGBOX_CUDP_IN_SESSION;
    }
  else if (is_hold)
    {
      *action = SINGBOX_CUDP_IN_NO_SESSION;
      return SINGBOX_CUDP_IN_NEXT_DROP;
    }
  else
    {
      sw_if_index = vnet_buffer (b)->sw_if_index[VLIB_RX];
      citf = singbox_client_udp_itf_get (sw_if_index);
      if (!citf || cm->intercept_listen[is_ip4] == SESSION_INVALID_HANDLE ||
	  !singbox_cudp_wanted (sw_if_index, fib_index, &src, &dst,
				clib_net_to_host_u16 (udp->dst_port), is_ip4))
	return ~0;
      t.src = src;
      t.dst = dst;
      t.src_port = udp->src_port;
      t.dst_port = udp->dst_port;
      for (i = 0; i < *n_seen; i++)
	if (!clib_memcmp (&seen[i], &t, sizeof (t)))
	  {
	    *action = SINGBOX_CUDP_IN_HOLD;
	    return SINGBOX_CUDP_IN_NEXT_HOLD;
	  }
      if (citf->active >= citf->max_flows)
	{
	  singbox_cudp_count (SINGBOX_CUDP_CTR_DROPPED, sw_if_index, 1);
	  *action = SINGBOX_CUDP_IN_MAX_FLOWS;
	  return SINGBOX_CUDP_IN_NEXT_DROP;
	}
      if (*n_seen < SINGBOX_CUDP_FRAME_NEW_MAX)
	seen[(*n_seen)++] = t;
      sh = cm->intercept_listen[is_ip4];
      *action = SINGBOX_CUDP_IN_NEW;
    }
  /* as udp-local leaves it: current at the payload */
  vlib_buffer_advance (b, advance);
  vnet_buffer (b)->udp.session_handle = sh;
  return SINGBOX_CUDP_IN_NEXT_UDP_INPUT_NOLOOKUP;
}

static_always_inline uword
singbox_cudp_in_inline (vlib_main_t *vm, vlib_node_runtime_t *node, vlib_frame_t *frame, u8 is_ip4,
			u8 is_hold)
{
  vlib_buffer_t *bufs[VLIB_FRAME_SIZE], **b = bufs;
  u16 nexts[VLIB_FRAME_SIZE], *next = nexts;
  u32 n_left = frame->n_vectors, *from = vlib_frame_vector_args (frame);
  singbox_cudp_tuple_t seen[SINGBOX_CUDP_FRAME_NEW_MAX];
  u32 n_seen = 0;

  vlib_get_buffers (vm, from, bufs, n_left);
  while (n_left)
    {
      u8 action;
      u32 next0 = singbox_cudp_in_one (b[0], is_ip4, is_hold, seen, &n_seen, &action);

      if (next0 == ~0)
	vnet_feature_next (&next0, b[0]);
      next[0] = next0;
      if (PREDICT_FALSE (b[0]->flags & VLIB_BUFFER_IS_TRACED))
	{
	  singbox_cudp_in_trace_t *t = vlib_add_trace (vm, node, b[0], sizeof (*t));
	  t->action = action;
	}
      b++;
      next++;
      n_left--;
    }
  vlib_buffer_enqueue_to_next (vm, node, from, nexts, frame->n_vectors);
  return frame->n_vectors;
}

VLIB_NODE_FN (singbox_cudp4_in_node)
(vlib_main_t *vm, vlib_node_runtime_t *node, vlib_frame_t *frame)
{
  return singbox_cudp_in_inline (vm, node, frame, 1 /* is_ip4 */, 0 /* is_hold */);
}

VLIB_NODE_FN (singbox_cudp4_hold_node)
(vlib_main_t *vm, vlib_node_runtime_t *node, vlib_frame_t *frame)
{
  return singbox_cudp_in_inline (vm, node, frame, 1 /* is_ip4 */, 1 /* is_hold */);
}

VLIB_NODE_FN (singbox_cudp6_hold_node)
(vlib_main_t *vm, vlib_node_runtime_t *node, vlib_frame_t *frame)
{
  return singbox_cudp_in_inline (vm, node, frame, 0 /* is_ip4 */, 1 /* is_hold */);
}

VLIB_NODE_FN (singbox_cudp6_in_node)
(vlib_main_t *vm, vlib_node_runtime_t *node, vlib_frame_t *frame)
{
  return singbox_cudp_in_inline (vm, node, frame, 0 /* is_ip4 */, 0 /* is_hold */);
}

VLIB_REGISTER_NODE (singbox_cudp4_in_node) = {
  .name = "singbox-cudp4-in",
  .vector_size = sizeof (u32),
  .format_trace = format_singbox_cudp_in_trace,
  .type = VLIB_NODE_TYPE_INTERNAL,
  .n_next_nodes = SINGBOX_CUDP_IN_N_NEXT,
  .next_nodes = {
    [SINGBOX_CUDP_IN_NEXT_UDP_INPUT_NOLOOKUP] = "udp4-input-nolookup",
    [SINGBOX_CUDP_IN_NEXT_DROP] = "error-drop",
    [SINGBOX_CUDP_IN_NEXT_HOLD] = "singbox-cudp4-hold",
  },
};

VLIB_REGISTER_NODE (singbox_cudp4_hold_node) = {
  .name = "singbox-cudp4-hold",
  .vector_size = sizeof (u32),
  .format_trace = format_singbox_cudp_in_trace,
  .type = VLIB_NODE_TYPE_INTERNAL,
  .n_next_nodes = SINGBOX_CUDP_IN_N_NEXT,
  .next_nodes = {
    [SINGBOX_CUDP_IN_NEXT_UDP_INPUT_NOLOOKUP] = "udp4-input-nolookup",
    [SINGBOX_CUDP_IN_NEXT_DROP] = "error-drop",
    /* never taken (a held datagram is not held again); one node per slot */
    [SINGBOX_CUDP_IN_NEXT_HOLD] = "ip4-drop",
  },
};

VLIB_REGISTER_NODE (singbox_cudp6_in_node) = {
  .name = "singbox-cudp6-in",
  .vector_size = sizeof (u32),
  .format_trace = format_singbox_cudp_in_trace,
  .type = VLIB_NODE_TYPE_INTERNAL,
  .n_next_nodes = SINGBOX_CUDP_IN_N_NEXT,
  .next_nodes = {
    [SINGBOX_CUDP_IN_NEXT_UDP_INPUT_NOLOOKUP] = "udp6-input-nolookup",
    [SINGBOX_CUDP_IN_NEXT_DROP] = "error-drop",
    [SINGBOX_CUDP_IN_NEXT_HOLD] = "singbox-cudp6-hold",
  },
};

VLIB_REGISTER_NODE (singbox_cudp6_hold_node) = {
  .name = "singbox-cudp6-hold",
  .vector_size = sizeof (u32),
  .format_trace = format_singbox_cudp_in_trace,
  .type = VLIB_NODE_TYPE_INTERNAL,
  .n_next_nodes = SINGBOX_CUDP_IN_N_NEXT,
  .next_nodes = {
    [SINGBOX_CUDP_IN_NEXT_UDP_INPUT_NOLOOKUP] = "udp6-input-nolookup",
    [SINGBOX_CUDP_IN_NEXT_DROP] = "error-drop",
    /* never taken (a held datagram is not held again); one node per slot */
    [SINGBOX_CUDP_IN_NEXT_HOLD] = "ip6-drop",
  },
};

VNET_FEATURE_INIT (singbox_cudp4_in_feature, static) = {
  .arc_name = "ip4-unicast",
  .node_name = "singbox-cudp4-in",
  .runs_before = VNET_FEATURES ("hsi4-in", "ip4-lookup"),
  .runs_after = VNET_FEATURES ("ip4-full-reassembly-feature"),
};

VNET_FEATURE_INIT (singbox_cudp6_in_feature, static) = {
  .arc_name = "ip6-unicast",
  .node_name = "singbox-cudp6-in",
  .runs_before = VNET_FEATURES ("ip6-lookup"),
  .runs_after = VNET_FEATURES ("ip6-full-reassembly-feature"),
};

/*
 * Sending
 */

/* Lock held, association up: one client datagram to BND, behind a header
 * naming the original destination. */
static void
singbox_cudp_to_proxy (singbox_cudp_flow_t *f, u8 *data, u32 len)
{
  singbox_cudp_main_t *cm = &singbox_cudp_main;
  u8 hdr[SOCKS5_UDP_HEADER_MAX_LEN];
  socks5_addr_t dst;
  session_t *rs;
  int hlen;

  if (f->is_ip4)
    socks5_addr_set_ip4 (&dst, f->dst_ip.ip4.as_u8, f->dst_port);
  else
    socks5_addr_set_ip6 (&dst, f->dst_ip.ip6.as_u8, f->dst_port);
  hlen = socks5_udp_header_encode (&dst, hdr, sizeof (hdr));
  rs = session_get_from_handle_if_valid (f->relay_handle);
  if (hlen < 0 || hlen + len > SINGBOX_CUDP_MSS || !rs ||
      singbox_udp_enqueue (rs, &f->relay_lcl_ip, f->relay_lcl_port, &f->relay_ip, f->relay_port,
			   f->relay_is_ip4, hdr, hlen, data, len))
    {
      singbox_cudp_count (SINGBOX_CUDP_CTR_DROPPED, f->sw_if_index, 1);
      return;
    }
  f->packets_to_proxy++;
  f->bytes_to_proxy += len;
  if (f->sw_if_index < vec_len (cm->itfs))
    {
      cm->itfs[f->sw_if_index].packets_to_proxy++;
      cm->itfs[f->sw_if_index].bytes_to_proxy += len;
      vlib_increment_combined_counter (&cm->to_proxy, vlib_get_thread_index (), f->sw_if_index, 1,
				       len);
    }
}

/* vnet_connect2 connects in place on the connects thread, where allocating
 * the half-open may stop the workers: never from inside a callback there,
 * always after the lock is released. The outcome comes to the app's
 * connected callback. */
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
      session_send_rpc_evt_to_thread_force (vlib_get_thread_index (), singbox_cudp_connect_rpc, c);
    }
  else
    vnet_connect2 (a);
}

static u32
singbox_cudp_ctx (singbox_cudp_flow_t *f)
{
  return (f->index << SINGBOX_CUDP_CTX_GEN_BITS) |
	 (f->generation & ((1 << SINGBOX_CUDP_CTX_GEN_BITS) - 1));
}

/* Lock held: the flow an api_context names, if it still exists. */
static singbox_cudp_flow_t *
singbox_cudp_flow_from_ctx (u32 ctx)
{
  singbox_cudp_flow_t *f = singbox_cudp_flow_get_if_valid (ctx >> SINGBOX_CUDP_CTX_GEN_BITS);

  if (!f || (f->generation & ((1 << SINGBOX_CUDP_CTX_GEN_BITS) - 1)) !=
	      (ctx & ((1 << SINGBOX_CUDP_CTX_GEN_BITS) - 1)))
    return 0;
  return f;
}

/*
 * The client leg (intercept app)
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
  u32 sw_if_index, group_index = ~0, ei;

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

  singbox_cudp_lock ();
  pool_get_zero (cm->flows, f);
  f->index = f - cm->flows;
  f->generation = ++cm->generation;
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
  s->opaque = f->index;
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
  singbox_cudp_unlock ();

  singbox_cudp_count (SINGBOX_CUDP_CTR_FLOWS, sw_if_index, 1);
  /* f may move once the lock is released: the index is in the context */
  SINGBOX_DBG ("udp flow %u: %U:%u -> %U:%u via %s", a->api_context >> SINGBOX_CUDP_CTX_GEN_BITS,
	       format_ip46_address, &rmt.ip, IP46_TYPE_ANY, clib_net_to_host_u16 (rmt.port),
	       format_ip46_address, &lcl.ip, IP46_TYPE_ANY, clib_net_to_host_u16 (lcl.port),
	       ep->name);
  singbox_cudp_connect (a);
  return 0;
}

static int
singbox_cudp_client_rx (session_t *s)
{
  singbox_cudp_main_t *cm = &singbox_cudp_main;
  u8 *buf = cm->rx_buf[vlib_get_thread_index ()];
  f64 now = vlib_time_now (vlib_get_main ());
  singbox_cudp_flow_t *f;
  session_dgram_hdr_t dh;
  u32 len;

  singbox_cudp_lock ();
  f = singbox_cudp_flow_get_if_valid (s->opaque);
  if (f && f->c_handle != session_handle (s))
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
    }
  singbox_cudp_unlock ();
  return 0;
}

/*
 * The control connection (ctl app)
 */

static void
singbox_cudp_send_ctl (session_t *s, socks5_out_t *out)
{
  if (!out->len || svm_fifo_max_enqueue_prod (s->tx_fifo) < out->len)
    return;
  svm_fifo_enqueue (s->tx_fifo, out->len, out->data);
  if (svm_fifo_set_event (s->tx_fifo))
    session_program_tx_io_evt (s->handle, SESSION_IO_EVT_TX);
}

static void
singbox_cudp_ep_failed (singbox_cudp_flow_t *f)
{
  if (!pool_is_free_index (singbox_main.endpoints, f->endpoint_index))
    clib_atomic_fetch_add (&pool_elt_at_index (singbox_main.endpoints, f->endpoint_index)->failures,
			   1);
  singbox_group_count_failure (f->group_index, f->endpoint_index);
}

static int
singbox_cudp_ctl_connected (u32 app_wrk_index, u32 api_context, session_t *s, session_error_t err)
{
  singbox_main_t *sm = &singbox_main;
  socks5_client_cfg_t cfg = {};
  singbox_endpoint_t *ep;
  singbox_cudp_flow_t *f;
  socks5_out_t out;

  singbox_cudp_lock ();
  f = singbox_cudp_flow_from_ctx (api_context);
  if (!f || f->state != SINGBOX_CUDP_STATE_OPENING)
    {
      /* the flow ended meanwhile: the session layer closes s */
      singbox_cudp_unlock ();
      return -1;
    }
  if (err || pool_is_free_index (sm->endpoints, f->endpoint_index))
    {
      SINGBOX_LOG (SINGBOX_LOG_INFO, "udp flow %u: endpoint connect failed: %U", f->index,
		   format_session_error, err);
      singbox_cudp_ep_failed (f);
      singbox_cudp_close (f, 1);
      singbox_cudp_unlock ();
      return err ? 0 : -1;
    }
  ep = pool_elt_at_index (sm->endpoints, f->endpoint_index);
  singbox_tcp_ts_monotonic (s, 1 /* resend_ack */);
  f->ctl_handle = session_handle (s);
  s->opaque = f->index;
  f->state = SINGBOX_CUDP_STATE_HANDSHAKE;

  /* greeting, auth and UDP ASSOCIATE in one write. DST is all zeros: the
   * address and port we send from are known only once the relay leg is
   * connected to BND, after the reply (RFC 1928 section 7 allows zeros) */
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
      singbox_cudp_unlock ();
      return 0;
    }
  singbox_cudp_send_ctl (s, &out);
  clib_memset (&out, 0, sizeof (out)); /* it held the password */
  singbox_cudp_unlock ();
  return 0;
}

/* Lock held: the proxy answered; fills *a to connect the relay leg to BND.
 * Returns 0 when the relay is to be connected. */
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
      SINGBOX_LOG (SINGBOX_LOG_INFO, "udp flow %u: unusable BND (atyp %u)", f->index, bnd->atyp);
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

static int
singbox_cudp_ctl_rx (session_t *s)
{
  u8 buf[SOCKS5_MAX_REPLY_LEN + 2];
  vnet_connect_args_t _a = {}, *a = &_a;
  singbox_cudp_flow_t *f;
  socks5_event_type_t t;
  socks5_event_t ev;
  socks5_out_t out;
  u32 n, consumed;
  int connect = 0;

  singbox_cudp_lock ();
  f = singbox_cudp_flow_get_if_valid (s->opaque);
  if (!f || f->ctl_handle != session_handle (s) || f->state != SINGBOX_CUDP_STATE_HANDSHAKE ||
      !f->cproto)
    {
      /* after the reply the connection only says the association lives */
      svm_fifo_dequeue_drop_all (s->rx_fifo);
      singbox_cudp_unlock ();
      return 0;
    }
  while ((n = clib_min (svm_fifo_max_dequeue_cons (s->rx_fifo), sizeof (buf))))
    {
      svm_fifo_peek (s->rx_fifo, 0, n, buf);
      consumed = 0;
      out.len = 0;
      t = socks5_client_feed (f->cproto, buf, n, &consumed, &ev, &out);
      if (consumed)
	svm_fifo_dequeue_drop (s->rx_fifo, consumed);
      if (t == SOCKS5_EV_CONNECTED)
	{
	  svm_fifo_dequeue_drop_all (s->rx_fifo);
	  if (singbox_cudp_bnd (f, &ev.addr, a))
	    {
	      singbox_cudp_ep_failed (f);
	      singbox_cudp_close (f, 1);
	    }
	  else
	    connect = 1;
	  break;
	}
      if (t == SOCKS5_EV_ERROR)
	{
	  SINGBOX_LOG (SINGBOX_LOG_INFO, "udp flow %u: UDP ASSOCIATE refused: %s (rep %u)",
		       f->index, socks5_error_name (ev.error), ev.rep);
	  singbox_cudp_ep_failed (f);
	  singbox_cudp_close (f, 1);
	  break;
	}
      if (!consumed || consumed < n)
	break;
    }
  singbox_cudp_unlock ();
  if (connect)
    singbox_cudp_connect (a);
  return 0;
}

/* The proxy closed the control connection: the association is over. */
static void
singbox_cudp_ctl_closed (session_t *s)
{
  singbox_cudp_flow_t *f;

  singbox_cudp_lock ();
  f = singbox_cudp_flow_get_if_valid (s->opaque);
  if (f && f->ctl_handle == session_handle (s))
    {
      f->ctl_handle = SESSION_INVALID_HANDLE; /* closed below */
      singbox_cudp_close (f, f->state != SINGBOX_CUDP_STATE_ASSOCIATED);
    }
  singbox_cudp_unlock ();
  if (s->session_state < SESSION_STATE_APP_CLOSED)
    {
      vnet_disconnect_args_t a = { .handle = session_handle (s),
				   .app_index = singbox_cudp_main.ctl_app_index };
      vnet_disconnect_session (&a);
    }
}

/*
 * The relay leg (relay app): a connected UDP session to BND
 */

static int
singbox_cudp_relay_connected (u32 app_wrk_index, u32 api_context, session_t *s, session_error_t err)
{
  transport_endpoint_t rmt = {}, lcl = {};
  singbox_main_t *sm = &singbox_main;
  singbox_cudp_flow_t *f;
  u8 **d;

  singbox_cudp_lock ();
  f = singbox_cudp_flow_from_ctx (api_context);
  if (!f || f->state != SINGBOX_CUDP_STATE_HANDSHAKE)
    {
      singbox_cudp_unlock ();
      return -1;
    }
  if (err)
    {
      singbox_cudp_close (f, 1);
      singbox_cudp_unlock ();
      return 0;
    }
  session_get_endpoint (s, &rmt, &lcl);
  f->relay_handle = session_handle (s);
  f->relay_lcl_ip = lcl.ip;
  f->relay_lcl_port = clib_net_to_host_u16 (lcl.port);
  /* left OPENED: udp-input moves an OPENED session to the worker that
   * receives its first datagram, a READY one it never moves */
  s->opaque = f->index;
  f->state = SINGBOX_CUDP_STATE_ASSOCIATED;
  if (!pool_is_free_index (sm->endpoints, f->endpoint_index))
    {
      singbox_endpoint_t *ep = pool_elt_at_index (sm->endpoints, f->endpoint_index);
      clib_atomic_fetch_add (&ep->connections, 1);
      ep->rtt_us = (vlib_time_now (vlib_get_main ()) - f->created) * 1e6;
    }
  vec_foreach (d, f->pending)
    {
      singbox_cudp_to_proxy (f, *d, vec_len (*d));
      vec_free (*d);
    }
  vec_free (f->pending);
  singbox_cudp_unlock ();
  return 0;
}

/* The first reply came in on another worker: the session moved there, on
 * the old thread's word. udp-input queued no rx event for the datagram
 * that made it move, so one is asked for here: the reply to a lone query
 * (DNS) would wait in the fifo forever. */
static void
singbox_cudp_relay_migrate (session_t *s, session_handle_t new_sh)
{
  singbox_cudp_flow_t *f;

  singbox_cudp_lock ();
  f = singbox_cudp_flow_get_if_valid (s->opaque);
  if (f && f->relay_handle == session_handle (s))
    f->relay_handle = new_sh;
  singbox_cudp_unlock ();
  session_program_rx_io_evt (new_sh);
}

static int
singbox_cudp_relay_rx (session_t *s)
{
  singbox_cudp_main_t *cm = &singbox_cudp_main;
  u8 *buf = cm->rx_buf[vlib_get_thread_index ()];
  f64 now = vlib_time_now (vlib_get_main ());
  singbox_cudp_flow_t *f;
  session_dgram_hdr_t dh;
  socks5_udp_header_t h;
  socks5_addr_t want;
  session_t *cs;
  u32 len;
  int hlen;

  singbox_cudp_lock ();
  f = singbox_cudp_flow_get_if_valid (s->opaque);
  /* before the old thread tells us of a migration, the new session's
   * datagrams are already here: it is ours if it talks to our BND from our
   * port */
  if (f && f->state == SINGBOX_CUDP_STATE_ASSOCIATED && f->relay_handle != session_handle (s))
    {
      transport_endpoint_t rmt = {}, lcl = {};
      session_get_endpoint (s, &rmt, &lcl);
      if (clib_net_to_host_u16 (lcl.port) == f->relay_lcl_port &&
	  clib_net_to_host_u16 (rmt.port) == f->relay_port &&
	  ip46_address_is_equal (&rmt.ip, &f->relay_ip))
	f->relay_handle = session_handle (s);
      else
	f = 0;
    }
  if (f && f->state != SINGBOX_CUDP_STATE_ASSOCIATED)
    f = 0;
  if (f)
    {
      if (f->is_ip4)
	socks5_addr_set_ip4 (&want, f->dst_ip.ip4.as_u8, f->dst_port);
      else
	socks5_addr_set_ip6 (&want, f->dst_ip.ip6.as_u8, f->dst_port);
    }
  cs = f ? session_get_from_handle_if_valid (f->c_handle) : 0;
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
      /* only whole datagrams (no reassembly, as RFC 1928 allows), only from
       * the destination the client leg is connected to (the connected
       * session already takes datagrams from BND only) */
      hlen = socks5_udp_header_parse (buf, len, &h);
      if (hlen < 0 || !socks5_addr_equal (&h.addr, &want) || !cs ||
	  singbox_udp_enqueue (cs, &f->dst_ip, f->dst_port, &f->client_ip, f->client_port,
			       f->is_ip4, 0, 0, buf + hlen, len - hlen))
	{
	  singbox_cudp_count (SINGBOX_CUDP_CTR_DROPPED, f->sw_if_index, 1);
	  continue;
	}
      f->last_active = now;
      f->packets_from_proxy++;
      f->bytes_from_proxy += len - hlen;
      if (f->sw_if_index < vec_len (cm->itfs))
	{
	  cm->itfs[f->sw_if_index].packets_from_proxy++;
	  cm->itfs[f->sw_if_index].bytes_from_proxy += len - hlen;
	  vlib_increment_combined_counter (&cm->from_proxy, vlib_get_thread_index (),
					   f->sw_if_index, 1, len - hlen);
	}
    }
  singbox_cudp_unlock ();
  return 0;
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

/* Main thread: the apps and the wildcard connected listeners. */
static int
singbox_cudp_start (void)
{
  singbox_cudp_main_t *cm = &singbox_cudp_main;
  vnet_listen_args_t _a = {}, *a = &_a;
  int i, rv;

  if ((rv = singbox_cudp_attach_one ("singbox-udp-intercept", &singbox_cudp_intercept_vft,
				     &cm->intercept_app_index)) ||
      (rv = singbox_cudp_attach_one ("singbox-udp-control", &singbox_cudp_ctl_vft,
				     &cm->ctl_app_index)) ||
      (rv = singbox_cudp_attach_one ("singbox-udp-relay", &singbox_cudp_relay_vft,
				     &cm->relay_app_index)))
    return rv;
  if (!cm->rx_buf)
    {
      vec_validate (cm->rx_buf, vlib_num_workers ());
      for (i = 0; i < vec_len (cm->rx_buf); i++)
	vec_validate (cm->rx_buf[i], SINGBOX_CUDP_MAX_DGRAM);
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

/*
 * Teardown
 */

/* On the session's thread. The handle is checked to still be one of ours:
 * the session may have gone meanwhile. */
static void
singbox_cudp_disconnect_rpc (void *arg)
{
  singbox_cudp_main_t *cm = &singbox_cudp_main;
  session_handle_t h = pointer_to_uword (arg);
  session_t *s = session_get_from_handle_if_valid (h);
  vnet_disconnect_args_t a = { .handle = h };
  app_worker_t *wrk;

  if (!s || s->session_state >= SESSION_STATE_APP_CLOSED ||
      !(wrk = app_worker_get_if_valid (s->app_wrk_index)) ||
      (wrk->app_index != cm->intercept_app_index && wrk->app_index != cm->ctl_app_index &&
       wrk->app_index != cm->relay_app_index))
    return;
  a.app_index = wrk->app_index;
  vnet_disconnect_session (&a);
}

static void
singbox_cudp_disconnect (session_handle_t h)
{
  if (h == SESSION_INVALID_HANDLE)
    return;
  session_send_rpc_evt_to_thread_force (session_thread_from_handle (h), singbox_cudp_disconnect_rpc,
					uword_to_pointer (h, void *));
}

/* Lock held, any thread: end the flow, close its legs, free it. */
static void
singbox_cudp_close (singbox_cudp_flow_t *f, int failed)
{
  singbox_cudp_main_t *cm = &singbox_cudp_main;
  u8 **d;

  if (failed)
    singbox_cudp_count (SINGBOX_CUDP_CTR_FAILURES, f->sw_if_index, 1);
  singbox_group_release (f->group_index, f->endpoint_index);
  if (f->sw_if_index < vec_len (cm->itfs) && cm->itfs[f->sw_if_index].active)
    clib_atomic_fetch_sub (&cm->itfs[f->sw_if_index].active, 1);
  singbox_cudp_disconnect (f->c_handle);
  singbox_cudp_disconnect (f->ctl_handle);
  singbox_cudp_disconnect (f->relay_handle);
  vec_foreach (d, f->pending)
    vec_free (*d);
  vec_free (f->pending);
  if (f->cproto)
    {
      clib_memset (f->cproto, 0, sizeof (*f->cproto)); /* it holds the password */
      clib_mem_free (f->cproto);
    }
  pool_put (cm->flows, f);
}

/* singbox-cudp-process: idle flows, associations not up in time, gauges. */
static void
singbox_cudp_poll (f64 now)
{
  singbox_cudp_main_t *cm = &singbox_cudp_main;
  singbox_main_t *sm = &singbox_main;
  singbox_cudp_flow_t *f;
  singbox_cudp_itf_t *citf;
  u32 *expired = 0, *i, timeout;

  singbox_cudp_lock ();
  pool_foreach (f, cm->flows)
    {
      citf = f->sw_if_index < vec_len (cm->itfs) ? &cm->itfs[f->sw_if_index] : 0;
      timeout = citf && citf->idle_timeout ? citf->idle_timeout : SINGBOX_CUDP_DEFAULT_IDLE_TIMEOUT;
      if (f->state != SINGBOX_CUDP_STATE_ASSOCIATED)
	timeout = pool_is_free_index (sm->endpoints, f->endpoint_index) ?
		    SINGBOX_DEFAULT_CONNECT_TIMEOUT :
		    pool_elt_at_index (sm->endpoints, f->endpoint_index)->connect_timeout;
      if (now - (f->state == SINGBOX_CUDP_STATE_ASSOCIATED ? f->last_active : f->created) > timeout)
	vec_add1 (expired, f->index);
    }
  vec_foreach (i, expired)
    {
      f = pool_elt_at_index (cm->flows, *i);
      singbox_cudp_close (f, f->state != SINGBOX_CUDP_STATE_ASSOCIATED);
    }
  singbox_cudp_unlock ();
  vec_free (expired);
  vec_foreach (citf, cm->itfs)
    if (citf->enabled && citf->stat_active != ~0)
      vlib_stats_set_gauge (citf->stat_active, citf->active);
}

static uword
singbox_cudp_process (vlib_main_t *vm, vlib_node_runtime_t *rt, vlib_frame_t *f)
{
  while (1)
    {
      vlib_process_wait_for_event_or_clock (vm, 1.0);
      vlib_process_get_events (vm, 0);
      if (singbox_cudp_main.n_enabled || pool_elts (singbox_cudp_main.flows))
	singbox_cudp_poll (vlib_time_now (vm));
    }
  return 0;
}

VLIB_REGISTER_NODE (singbox_cudp_process_node) = {
  .function = singbox_cudp_process,
  .type = VLIB_NODE_TYPE_PROCESS,
  .name = "singbox-cudp-process",
};

/*
 * Configuration
 */

static void
singbox_cudp_close_interface (u32 sw_if_index)
{
  singbox_cudp_main_t *cm = &singbox_cudp_main;
  singbox_cudp_flow_t *f;
  u32 *ids = 0, *i;

  singbox_cudp_lock ();
  pool_foreach (f, cm->flows)
    if (f->sw_if_index == sw_if_index)
      vec_add1 (ids, f->index);
  vec_foreach (i, ids)
    singbox_cudp_close (pool_elt_at_index (cm->flows, *i), 0);
  singbox_cudp_unlock ();
  vec_free (ids);
}

int
singbox_client_udp_enable_disable (u32 sw_if_index, int enable, u32 idle_timeout, u32 max_flows)
{
  singbox_cudp_main_t *cm = &singbox_cudp_main;
  singbox_cudp_itf_t *citf;
  int rv;

  if (!vnet_sw_interface_is_valid (vnet_get_main (), sw_if_index))
    return VNET_API_ERROR_INVALID_SW_IF_INDEX;
  if (!enable)
    {
      if (!(citf = singbox_client_udp_itf_get (sw_if_index)))
	return VNET_API_ERROR_NO_SUCH_ENTRY;
      singbox_cudp_close_interface (sw_if_index);
      vnet_feature_enable_disable ("ip4-unicast", "singbox-cudp4-in", sw_if_index, 0, 0, 0);
      vnet_feature_enable_disable ("ip6-unicast", "singbox-cudp6-in", sw_if_index, 0, 0, 0);
      ip4_full_reass_enable_disable_with_refcnt (sw_if_index, 0);
      ip6_full_reass_enable_disable_with_refcnt (sw_if_index, 0);
      if (citf->stat_active != ~0)
	vlib_stats_remove_entry (citf->stat_active);
      citf->stat_active = ~0;
      citf->enabled = 0;
      cm->n_enabled--;
      return 0;
    }
  /* UDP is relayed through the interface's client-mode endpoint */
  if (!singbox_interface_get (sw_if_index))
    return VNET_API_ERROR_FEATURE_DISABLED;
  if (idle_timeout > 86400 || max_flows > 1000000)
    return VNET_API_ERROR_INVALID_VALUE;
  if ((rv = singbox_cudp_start ()))
    return rv;
  vec_validate (cm->itfs, sw_if_index);
  citf = vec_elt_at_index (cm->itfs, sw_if_index);
  if (!citf->enabled)
    {
      u32 c;
      for (c = 0; c < SINGBOX_CUDP_N_CTR; c++)
	{
	  vlib_validate_simple_counter (&cm->counters[c], sw_if_index);
	  vlib_zero_simple_counter (&cm->counters[c], sw_if_index);
	}
      vlib_validate_combined_counter (&cm->to_proxy, sw_if_index);
      vlib_validate_combined_counter (&cm->from_proxy, sw_if_index);
      vlib_zero_combined_counter (&cm->to_proxy, sw_if_index);
      vlib_zero_combined_counter (&cm->from_proxy, sw_if_index);
      clib_memset (citf, 0, sizeof (*citf));
      citf->sw_if_index = sw_if_index;
      citf->stat_active =
	vlib_stats_add_gauge ("/singbox/client/interface/%u/udp-active", sw_if_index);
      /* a datagram in fragments is reassembled before singbox-cudp*-in
       * sees it (its feature runs after the reassembly's): passed on, the
       * fragments would reach the destination around the proxy */
      ip4_full_reass_enable_disable_with_refcnt (sw_if_index, 1);
      ip6_full_reass_enable_disable_with_refcnt (sw_if_index, 1);
      vnet_feature_enable_disable ("ip4-unicast", "singbox-cudp4-in", sw_if_index, 1, 0, 0);
      vnet_feature_enable_disable ("ip6-unicast", "singbox-cudp6-in", sw_if_index, 1, 0, 0);
      citf->enabled = 1;
      cm->n_enabled++;
    }
  citf->idle_timeout = idle_timeout ? idle_timeout : SINGBOX_CUDP_DEFAULT_IDLE_TIMEOUT;
  citf->max_flows = max_flows ? max_flows : SINGBOX_CUDP_DEFAULT_MAX_FLOWS;
  return 0;
}

void
singbox_client_udp_interface_disable (u32 sw_if_index)
{
  if (singbox_client_udp_itf_get (sw_if_index))
    singbox_client_udp_enable_disable (sw_if_index, 0, 0, 0);
}

void
singbox_client_udp_clear_counters (u32 sw_if_index)
{
  singbox_cudp_main_t *cm = &singbox_cudp_main;
  singbox_cudp_itf_t *citf;
  u32 c;

  vec_foreach (citf, cm->itfs)
    if (citf->enabled && (sw_if_index == ~0 || citf->sw_if_index == sw_if_index))
      {
	citf->flows = citf->failures = citf->dropped = 0;
	citf->packets_to_proxy = citf->bytes_to_proxy = 0;
	citf->packets_from_proxy = citf->bytes_from_proxy = 0;
	for (c = 0; c < SINGBOX_CUDP_N_CTR; c++)
	  vlib_zero_simple_counter (&cm->counters[c], citf->sw_if_index);
	vlib_zero_combined_counter (&cm->to_proxy, citf->sw_if_index);
	vlib_zero_combined_counter (&cm->from_proxy, citf->sw_if_index);
      }
}

static const char *singbox_cudp_state_names[] = {
#define _(sym, str) str,
  foreach_singbox_cudp_state
#undef _
};

u8 *
format_singbox_cudp_itf (u8 *s, va_list *args)
{
  singbox_cudp_itf_t *citf = va_arg (*args, singbox_cudp_itf_t *);

  s = format (s, "Interface %U UDP:\n", format_vnet_sw_if_index_name, vnet_get_main (),
	      citf->sw_if_index);
  s = format (s, "  Idle timeout: %us, max flows: %u\n", citf->idle_timeout, citf->max_flows);
  s = format (s, "  Active flows: %u\n", citf->active);
  s = format (s, "  Flows: %lu, failures: %lu, dropped: %lu\n", citf->flows, citf->failures,
	      citf->dropped);
  s = format (s, "  To proxy: %lu packets, %lu bytes\n", citf->packets_to_proxy,
	      citf->bytes_to_proxy);
  s = format (s, "  From proxy: %lu packets, %lu bytes\n", citf->packets_from_proxy,
	      citf->bytes_from_proxy);
  return s;
}

u8 *
format_singbox_cudp_flow (u8 *s, va_list *args)
{
  singbox_cudp_flow_t *f = va_arg (*args, singbox_cudp_flow_t *);
  f64 now = vlib_time_now (vlib_get_main ());

  s = format (s, "[%u] %U:%u -> %U:%u %s", f->index, format_ip46_address, &f->client_ip,
	      IP46_TYPE_ANY, f->client_port, format_ip46_address, &f->dst_ip, IP46_TYPE_ANY,
	      f->dst_port, singbox_cudp_state_names[f->state % SINGBOX_CUDP_N_STATE]);
  if (f->state == SINGBOX_CUDP_STATE_ASSOCIATED)
    s = format (s, " relay :%u -> %U:%u", f->relay_lcl_port, format_ip46_address, &f->relay_ip,
		IP46_TYPE_ANY, f->relay_port);
  s = format (s, " to-proxy %lu/%lu from-proxy %lu/%lu idle %.1fs", f->packets_to_proxy,
	      f->bytes_to_proxy, f->packets_from_proxy, f->bytes_from_proxy, now - f->last_active);
  return s;
}

/*
 * CLI
 */

static clib_error_t *
singbox_cudp_set_command_fn (vlib_main_t *vm, unformat_input_t *input, vlib_cli_command_t *cmd)
{
  unformat_input_t _line_input, *line_input = &_line_input;
  u32 sw_if_index = ~0, idle_timeout = 0, max_flows = 0;
  clib_error_t *error = 0;
  int enable = -1, rv;

  if (!unformat_user (input, unformat_line_input, line_input))
    return clib_error_return (0, "expected enable or disable and an interface");
  while (unformat_check_input (line_input) != UNFORMAT_END_OF_INPUT)
    {
      if (unformat (line_input, "%U", unformat_vnet_sw_interface, vnet_get_main (), &sw_if_index))
	;
      else if (enable < 0 && unformat (line_input, "enable"))
	enable = 1;
      else if (enable < 0 && unformat (line_input, "disable"))
	enable = 0;
      else if (unformat (line_input, "idle-timeout %u", &idle_timeout))
	;
      else if (unformat (line_input, "max-flows %u", &max_flows))
	;
      else
	{
	  error = clib_error_return (0, "unknown input '%U'", format_unformat_error, line_input);
	  goto done;
	}
    }
  if (sw_if_index == ~0 || enable < 0)
    {
      error = clib_error_return (0, "expected enable or disable and an interface");
      goto done;
    }
  rv = singbox_client_udp_enable_disable (sw_if_index, enable, idle_timeout, max_flows);
  if (rv == VNET_API_ERROR_FEATURE_DISABLED)
    error = clib_error_return (0, "client mode is not enabled on the interface");
  else if (rv)
    error = clib_error_return (0, "failed: %U", format_vnet_api_errno, rv);
done:
  unformat_free (line_input);
  return error;
}

/*?
 * Relay UDP arriving on a client-mode interface through its endpoint with
 * SOCKS5 UDP ASSOCIATE, one association per flow.
 * @cliexcmd{singbox udp enable host-eth0 idle-timeout 60 max-flows 4096}
 * @cliexcmd{singbox udp disable host-eth0}
 ?*/
VLIB_CLI_COMMAND (singbox_cudp_set_command, static) = {
  .path = "singbox udp",
  .short_help = "singbox udp {enable|disable} <interface> [idle-timeout <s>] [max-flows <n>]",
  .function = singbox_cudp_set_command_fn,
};

static clib_error_t *
singbox_cudp_show_command_fn (vlib_main_t *vm, unformat_input_t *input, vlib_cli_command_t *cmd)
{
  singbox_cudp_main_t *cm = &singbox_cudp_main;
  singbox_cudp_itf_t *citf;
  singbox_cudp_flow_t *f;
  u8 flows = unformat (input, "flows");

  vec_foreach (citf, cm->itfs)
    if (citf->enabled)
      vlib_cli_output (vm, "%U", format_singbox_cudp_itf, citf);
  if (!flows)
    return 0;
  singbox_cudp_lock ();
  pool_foreach (f, cm->flows)
    vlib_cli_output (vm, "%U", format_singbox_cudp_flow, f);
  singbox_cudp_unlock ();
  return 0;
}

/*?
 * UDP relaying per interface, and with 'flows' every flow.
 * @cliexcmd{show singbox udp flows}
 ?*/
VLIB_CLI_COMMAND (singbox_cudp_show_command, static) = {
  .path = "show singbox udp",
  .short_help = "show singbox udp [flows]",
  .function = singbox_cudp_show_command_fn,
};

/*
 * Binary API (the generated table in singbox_api.c names these handlers)
 */

void
vl_api_singbox_interface_udp_enable_disable_t_handler (
  vl_api_singbox_interface_udp_enable_disable_t *mp)
{
  vl_api_singbox_interface_udp_enable_disable_reply_t *rmp;
  int rv;

  rv = singbox_client_udp_enable_disable (ntohl (mp->sw_if_index), mp->enable,
					  ntohl (mp->idle_timeout), ntohl (mp->max_flows));
  REPLY_MACRO (VL_API_SINGBOX_INTERFACE_UDP_ENABLE_DISABLE_REPLY);
}

static void
singbox_cudp_send_itf_details (vl_api_registration_t *rp, u32 context, singbox_cudp_itf_t *citf)
{
  vl_api_singbox_interface_udp_details_t *rmp = vl_msg_api_alloc_zero (sizeof (*rmp));

  rmp->_vl_msg_id = htons (VL_API_SINGBOX_INTERFACE_UDP_DETAILS + REPLY_MSG_ID_BASE);
  rmp->context = context;
  rmp->sw_if_index = htonl (citf->sw_if_index);
  rmp->idle_timeout = htonl (citf->idle_timeout);
  rmp->max_flows = htonl (citf->max_flows);
  rmp->active_flows = htonl (citf->active);
  rmp->flows = clib_host_to_net_u64 (citf->flows);
  rmp->failures = clib_host_to_net_u64 (citf->failures);
  rmp->dropped = clib_host_to_net_u64 (citf->dropped);
  rmp->packets_to_proxy = clib_host_to_net_u64 (citf->packets_to_proxy);
  rmp->bytes_to_proxy = clib_host_to_net_u64 (citf->bytes_to_proxy);
  rmp->packets_from_proxy = clib_host_to_net_u64 (citf->packets_from_proxy);
  rmp->bytes_from_proxy = clib_host_to_net_u64 (citf->bytes_from_proxy);
  vl_api_send_msg (rp, (u8 *) rmp);
}

void
vl_api_singbox_interface_udp_dump_t_handler (vl_api_singbox_interface_udp_dump_t *mp)
{
  singbox_cudp_main_t *cm = &singbox_cudp_main;
  u32 sw_if_index = ntohl (mp->sw_if_index);
  singbox_cudp_itf_t *citf;
  vl_api_registration_t *rp = vl_api_client_index_to_registration (mp->client_index);

  if (!rp)
    return;
  vec_foreach (citf, cm->itfs)
    if (citf->enabled && (sw_if_index == ~0 || citf->sw_if_index == sw_if_index))
      singbox_cudp_send_itf_details (rp, mp->context, citf);
}

void
vl_api_singbox_udp_flow_dump_t_handler (vl_api_singbox_udp_flow_dump_t *mp)
{
  singbox_cudp_main_t *cm = &singbox_cudp_main;
  vl_api_singbox_udp_flow_details_t *rmp;
  vl_api_registration_t *rp = vl_api_client_index_to_registration (mp->client_index);
  u32 sw_if_index = ntohl (mp->sw_if_index);
  f64 now = vlib_time_now (vlib_get_main ());
  singbox_cudp_flow_t *f;
  u8 *name;

  if (!rp)
    return;
  singbox_cudp_lock ();
  pool_foreach (f, cm->flows)
    {
      if (sw_if_index != ~0 && f->sw_if_index != sw_if_index)
	continue;
      rmp = vl_msg_api_alloc_zero (sizeof (*rmp));
      rmp->_vl_msg_id = htons (VL_API_SINGBOX_UDP_FLOW_DETAILS + REPLY_MSG_ID_BASE);
      rmp->context = mp->context;
      rmp->flow_id = clib_host_to_net_u64 (((u64) f->generation << 32) | f->index);
      rmp->sw_if_index = htonl (f->sw_if_index);
      rmp->state = f->state;
      ip_address_encode (&f->client_ip, f->is_ip4 ? IP46_TYPE_IP4 : IP46_TYPE_IP6,
			 &rmp->client_addr);
      rmp->client_port = htons (f->client_port);
      ip_address_encode (&f->dst_ip, f->is_ip4 ? IP46_TYPE_IP4 : IP46_TYPE_IP6, &rmp->dst_addr);
      rmp->dst_port = htons (f->dst_port);
      ip_address_encode (&f->relay_ip, f->relay_is_ip4 ? IP46_TYPE_IP4 : IP46_TYPE_IP6,
			 &rmp->relay_addr);
      rmp->relay_port = htons (f->relay_port);
      if ((name = singbox_endpoint_name (f->endpoint_index)))
	strncpy ((char *) rmp->endpoint_name, (char *) name, sizeof (rmp->endpoint_name) - 1);
      rmp->packets_to_proxy = clib_host_to_net_u64 (f->packets_to_proxy);
      rmp->bytes_to_proxy = clib_host_to_net_u64 (f->bytes_to_proxy);
      rmp->packets_from_proxy = clib_host_to_net_u64 (f->packets_from_proxy);
      rmp->bytes_from_proxy = clib_host_to_net_u64 (f->bytes_from_proxy);
      rmp->age = clib_host_to_net_u32 ((u32) (now - f->created));
      rmp->idle = clib_host_to_net_u32 ((u32) (now - f->last_active));
      vl_api_send_msg (rp, (u8 *) rmp);
    }
  singbox_cudp_unlock ();
}

/*
 * Init
 */

static clib_error_t *
singbox_cudp_init (vlib_main_t *vm)
{
  singbox_cudp_main_t *cm = &singbox_cudp_main;
  static char *names[] = {
#define _(sym, str) "/singbox/client/interface/" str,
    foreach_singbox_cudp_counter
#undef _
  };
  u32 c;

  clib_spinlock_init (&cm->lock);
  cm->intercept_app_index = cm->ctl_app_index = cm->relay_app_index = APP_INVALID_INDEX;
  cm->intercept_listen[0] = cm->intercept_listen[1] = SESSION_INVALID_HANDLE;
  for (c = 0; c < SINGBOX_CUDP_N_CTR; c++)
    {
      cm->counters[c].name = names[c] + strlen ("/singbox/client/interface/");
      cm->counters[c].stat_segment_name = names[c];
      vlib_validate_simple_counter (&cm->counters[c], 0);
    }
  cm->to_proxy.name = "udp-to-proxy";
  cm->to_proxy.stat_segment_name = "/singbox/client/interface/udp-to-proxy";
  cm->from_proxy.name = "udp-from-proxy";
  cm->from_proxy.stat_segment_name = "/singbox/client/interface/udp-from-proxy";
  vlib_validate_combined_counter (&cm->to_proxy, 0);
  vlib_validate_combined_counter (&cm->from_proxy, 0);
  return 0;
}

VLIB_INIT_FUNCTION (singbox_cudp_init);
