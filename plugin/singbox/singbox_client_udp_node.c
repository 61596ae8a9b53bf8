/* SPDX-License-Identifier: Apache-2.0
 * Copyright (c) 2026 vpp-singbox authors
 */

/* Client mode, UDP: interception (singbox-cudp4-in / singbox-cudp6-in and
 * their -hold nodes).
 *
 * On the interfaces with UDP relaying enabled, a UDP datagram that has no
 * session goes to our wildcard *connected* UDP listener (0.0.0.0:0,
 * [::]:0), as hsi4-in does for its intercept listener; udp-input then makes
 * one connected session per client 5-tuple whose local end is the original
 * destination, on the thread that runs this node for the datagram: that
 * thread owns the flow (singbox_client_udp.c). hsi itself is not used for
 * UDP: its intercept switch is global (every client interface would lose
 * its UDP), it cannot leave bypass prefixes alone, and for IPv6 it never
 * finds a [::]:0 listener (see singbox_client.c on hsi6-in: session table 0
 * is FIB 0's IPv4 table). Bypassed destinations, the endpoints' own
 * traffic, multicast/broadcast and VPP's own addresses are not intercepted
 * at all: they are routed as before.
 *
 * Runs on every thread that polls an enabled interface. It reads only
 * configuration (changed under the barrier) and the session table, never a
 * flow record: no lock. A datagram of a flow whose client leg is on another
 * thread (the rx queue moved, the NIC hashed the flow elsewhere) goes there
 * through a frame queue, to that thread's -hold node: udp-input would drop
 * it, since a READY connected session never moves. */

#include <singbox/singbox_client_udp.h>
#include <vnet/fib/fib_table.h>
#include <vnet/fib/fib_entry.h>
#include <vnet/fib/ip4_fib.h>
#include <vnet/fib/ip6_fib.h>
#include <vnet/dpo/load_balance.h>
#include <vnet/dpo/receive_dpo.h>
#include <vnet/udp/udp_packet.h>
#include <vnet/feature/feature.h>

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
  _ (NO_SESSION, "dropped: its flow was not accepted")                                             \
  _ (HANDOFF, "to its flow's thread")

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

/* a frame queue full of the -in nodes' handoffs to another thread */
static vlib_error_desc_t singbox_cudp_in_error_counters[] = {
  { "handoff-dropped", "dropped: the flow's thread's queue is full", VL_COUNTER_SEVERITY_ERROR },
};

/* in_one's answer for a datagram of a session on another thread */
#define SINGBOX_CUDP_IN_TO_THREAD ((u32) ~1)

/* Returns the next node for one buffer, ~0 to pass it on the arc, or
 * SINGBOX_CUDP_IN_TO_THREAD with *thread set to hand it to that thread's
 * -hold node. is_hold: a datagram held for its flow's session, which must
 * exist now (held in this frame, or handed off by another thread). */
static_always_inline u32
singbox_cudp_in_one (vlib_buffer_t *b, u8 is_ip4, u8 is_hold, singbox_cudp_tuple_t *seen,
		     u32 *n_seen, u8 *action, u16 *thread)
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
  if (s &&
      (s->session_state == SESSION_STATE_READY || s->session_state == SESSION_STATE_ACCEPTING) &&
      s->thread_index != vlib_get_thread_index () && !is_hold && cm->fq_index[is_ip4] != ~0)
    {
      /* a flow's client leg stays on the thread that took its first
       * datagram (READY, or ACCEPTING until our accept: udp-input never
       * moves it, and drops a datagram for it on another thread as "wrong
       * thread"). A later datagram of the flow lands here when the
       * interface's rx queue moved (rx placement) or the NIC hashes the
       * flow elsewhere: it goes to the owner thread, where the -hold node
       * finds the session again. */
      *thread = s->thread_index;
      *action = SINGBOX_CUDP_IN_HANDOFF;
      return SINGBOX_CUDP_IN_TO_THREAD;
    }
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
  u16 nexts[VLIB_FRAME_SIZE], ho_threads[VLIB_FRAME_SIZE];
  u32 kept[VLIB_FRAME_SIZE], ho[VLIB_FRAME_SIZE], n_kept = 0, n_ho = 0;
  u32 n_left = frame->n_vectors, *from = vlib_frame_vector_args (frame);
  singbox_cudp_tuple_t seen[SINGBOX_CUDP_FRAME_NEW_MAX];
  u32 n_seen = 0, n_enq;

  vlib_get_buffers (vm, from, bufs, n_left);
  while (n_left)
    {
      u8 action;
      u16 thread = 0;
      u32 next0 = singbox_cudp_in_one (b[0], is_ip4, is_hold, seen, &n_seen, &action, &thread);

      if (PREDICT_FALSE (next0 == SINGBOX_CUDP_IN_TO_THREAD))
	{
	  ho[n_ho] = from[0];
	  ho_threads[n_ho++] = thread;
	}
      else
	{
	  if (next0 == ~0)
	    vnet_feature_next (&next0, b[0]);
	  kept[n_kept] = from[0];
	  nexts[n_kept++] = next0;
	}
      if (PREDICT_FALSE (b[0]->flags & VLIB_BUFFER_IS_TRACED))
	{
	  singbox_cudp_in_trace_t *t = vlib_add_trace (vm, node, b[0], sizeof (*t));
	  t->action = action;
	}
      b++;
      from++;
      n_left--;
    }
  if (n_kept)
    vlib_buffer_enqueue_to_next (vm, node, kept, nexts, n_kept);
  if (n_ho)
    {
      /* a full queue drops them, as a full rx fifo would */
      n_enq = vlib_buffer_enqueue_to_thread (vm, node, singbox_cudp_main.fq_index[is_ip4], ho,
					     ho_threads, n_ho, 1 /* drop_on_congestion */);
      if (n_enq < n_ho)
	vlib_node_increment_counter (vm, node->node_index, 0, n_ho - n_enq);
    }
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
  .n_errors = ARRAY_LEN (singbox_cudp_in_error_counters),
  .error_counters = singbox_cudp_in_error_counters,
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
  .n_errors = ARRAY_LEN (singbox_cudp_in_error_counters),
  .error_counters = singbox_cudp_in_error_counters,
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
