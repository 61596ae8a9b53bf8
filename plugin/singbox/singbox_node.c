/* SPDX-License-Identifier: Apache-2.0
 * Copyright (c) 2026 vpp-singbox authors
 */

/* Client mode's graph nodes, on the interfaces whose TCP is intercepted.
 *
 * IPv4 interception is hsi's (hsi4-in); singbox4-tw, just before it, only
 * ends TIME_WAIT connections whose 4-tuple a new SYN reuses.
 *
 * IPv6 cannot go through hsi: in v26.06 hsi_intercept_proto () looks the
 * wildcard listener up with session_lookup_listener_wildcard (0, ...), and
 * session table 0 is FIB 0's IPv4 table, whose IPv6 hashes are never
 * initialised (session_table_init with FIB_PROTOCOL_IP4), so the [::]:0
 * listener (in the IPv6 table) is never found and hsi6-in passes every SYN
 * on. Adding our listener to table 0's IPv6 hash instead writes into an
 * uninitialised bihash (that crashed). So IPv6 has its own feature node,
 * singbox6-in, doing for TCP what hsi6-in would: SYNs with no session go to
 * tcp6-listen on our listener, segments of known connections straight to
 * tcp6-input; it ends TIME_WAIT connections as singbox4-tw does.
 *
 * Both are one worker function, singbox_in_inline. */

#include <singbox/singbox.h>
#include <vnet/tcp/tcp.h>
#include <vnet/tcp/tcp_inlines.h>
#include <vnet/feature/feature.h>

#define foreach_singbox_in_error                                                                   \
  _ (LISTEN, listen, INFO, "SYNs to the intercepting listener")                                    \
  _ (CONNECTION, connection, INFO, "segments of known connections to tcp")                         \
  _ (TIME_WAIT, time_wait, INFO, "TIME_WAIT connections ended by a new SYN")                       \
  _ (PASSED, passed, INFO, "packets passed on")

typedef enum
{
#define _(f, n, s, d) SINGBOX_IN_ERROR_##f,
  foreach_singbox_in_error
#undef _
    SINGBOX_IN_N_ERROR,
} singbox_in_error_t;

static vlib_error_desc_t singbox_in_error_counters[] = {
#define _(f, n, s, d) { #n, d, VL_COUNTER_SEVERITY_##s },
  foreach_singbox_in_error
#undef _
};

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
  u8 action; /* singbox_in_error_t */
} singbox_in_trace_t;

static u8 *
format_singbox_in_trace (u8 *s, va_list *args)
{
  CLIB_UNUSED (vlib_main_t * vm) = va_arg (*args, vlib_main_t *);
  CLIB_UNUSED (vlib_node_t * node) = va_arg (*args, vlib_node_t *);
  singbox_in_trace_t *t = va_arg (*args, singbox_in_trace_t *);

  return format (s, "%s, next %u",
		 t->action < SINGBOX_IN_N_ERROR ? singbox_in_error_counters[t->action].name : "?",
		 t->next);
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

/* singbox4-tw: end a TIME_WAIT connection a new SYN reuses; the packet
 * goes on to hsi4-in in any case. */
static_always_inline singbox_in_error_t
singbox4_tw_one (vlib_buffer_t *b, u32 thread_index)
{
  ip4_header_t *ip4 = vlib_buffer_get_current (b);
  transport_connection_t *tc;
  tcp_header_t *tcp;
  u8 result = 0;

  if (ip4->protocol != IP_PROTOCOL_TCP || ip4_get_fragment_offset (ip4) ||
      b->current_length < ip4_header_bytes (ip4) + sizeof (tcp_header_t))
    return SINGBOX_IN_ERROR_PASSED;
  tcp = ip4_next_header (ip4);
  if (!tcp_syn (tcp))
    return SINGBOX_IN_ERROR_PASSED;
  ip_lookup_set_buffer_fib_index (ip4_main.fib_index_by_sw_if_index, b);
  tc = session_lookup_connection_wt4 (vnet_buffer (b)->ip.fib_index, &ip4->dst_address,
				      &ip4->src_address, tcp->dst_port, tcp->src_port,
				      TRANSPORT_PROTO_TCP, thread_index, &result);
  if (tc && !result && singbox_reopen_time_wait (tc, tcp, thread_index))
    return SINGBOX_IN_ERROR_TIME_WAIT;
  return SINGBOX_IN_ERROR_PASSED;
}

/* singbox6-in: what goes to the session layer, and where (*next). */
static_always_inline singbox_in_error_t
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
    return SINGBOX_IN_ERROR_PASSED;
  ip_lookup_set_buffer_fib_index (ip6_main.fib_index_by_sw_if_index, b);
  tcp = ip6_next_header (ip6);
  tc = session_lookup_connection_wt6 (vnet_buffer (b)->ip.fib_index, &ip6->dst_address,
				      &ip6->src_address, tcp->dst_port, tcp->src_port,
				      TRANSPORT_PROTO_TCP, thread_index, &result);
  if (tc && !result && singbox_reopen_time_wait (tc, tcp, thread_index))
    tc = 0; /* the SYN is intercepted as new */
  if (tc && !result)
    {
      tcp_connection_t *tcpc = (tcp_connection_t *) tc;
      if (tcpc->state == TCP_STATE_LISTEN)
	{
	  if (!tcp_syn (tcp))
	    return SINGBOX_IN_ERROR_PASSED;
	  *next = SINGBOX6_IN_NEXT_TCP_INPUT;
	}
      else if (tcpc->state == TCP_STATE_SYN_SENT)
	*next = SINGBOX6_IN_NEXT_TCP_INPUT;
      else
	{
	  *next = SINGBOX6_IN_NEXT_TCP_INPUT_NOLOOKUP;
	  vnet_buffer (b)->tcp.connection_index = tc->c_index;
	}
      return SINGBOX_IN_ERROR_CONNECTION;
    }
  if (singbox_main.intercept_tcp6_listener == ~0 || !tcp_syn (tcp))
    return SINGBOX_IN_ERROR_PASSED;
  /* tcp6-listen expects the buffer parsed as tcp6-input leaves it */
  tcp_input_lookup_buffer (b, thread_index, &error, 0 /* is_ip4 */, 1 /* is_nolookup */);
  if (error)
    return SINGBOX_IN_ERROR_PASSED;
  vnet_buffer (b)->tcp.connection_index = singbox_main.intercept_tcp6_listener;
  vnet_buffer (b)->tcp.flags = TCP_STATE_LISTEN;
  *next = SINGBOX6_IN_NEXT_TCP_LISTEN;
  return SINGBOX_IN_ERROR_LISTEN;
}

static_always_inline uword
singbox_in_inline (vlib_main_t *vm, vlib_node_runtime_t *node, vlib_frame_t *frame, u8 is_ip4)
{
  vlib_buffer_t *bufs[VLIB_FRAME_SIZE], **b = bufs;
  u16 nexts[VLIB_FRAME_SIZE], *next = nexts;
  u32 n_left = frame->n_vectors, *from = vlib_frame_vector_args (frame);
  u32 thread_index = vm->thread_index;
  u32 counts[SINGBOX_IN_N_ERROR] = {};
  singbox_in_error_t action;
  u32 i;

  vlib_get_buffers (vm, from, bufs, n_left);
  while (n_left)
    {
      u32 next0 = 0;

      if (is_ip4)
	action = singbox4_tw_one (b[0], thread_index);
      else
	action = singbox6_in_one (b[0], &next0, thread_index);
      /* on to the next feature unless singbox6-in sent it to tcp */
      if (is_ip4 || action == SINGBOX_IN_ERROR_PASSED)
	vnet_feature_next (&next0, b[0]);
      next[0] = next0;
      counts[action]++;
      if (PREDICT_FALSE (b[0]->flags & VLIB_BUFFER_IS_TRACED))
	{
	  singbox_in_trace_t *t = vlib_add_trace (vm, node, b[0], sizeof (*t));
	  t->next = next0;
	  t->action = action;
	}
      b++;
      next++;
      n_left--;
    }
  vlib_buffer_enqueue_to_next (vm, node, from, nexts, frame->n_vectors);
  for (i = 0; i < SINGBOX_IN_N_ERROR; i++)
    if (counts[i])
      vlib_node_increment_counter (vm, node->node_index, i, counts[i]);
  return frame->n_vectors;
}

VLIB_NODE_FN (singbox6_in_node)
(vlib_main_t *vm, vlib_node_runtime_t *node, vlib_frame_t *frame)
{
  return singbox_in_inline (vm, node, frame, 0 /* is_ip4 */);
}

VLIB_NODE_FN (singbox4_tw_node)
(vlib_main_t *vm, vlib_node_runtime_t *node, vlib_frame_t *frame)
{
  return singbox_in_inline (vm, node, frame, 1 /* is_ip4 */);
}

VLIB_REGISTER_NODE (singbox6_in_node) = {
  .name = "singbox6-in",
  .vector_size = sizeof (u32),
  .format_trace = format_singbox_in_trace,
  .type = VLIB_NODE_TYPE_INTERNAL,
  .n_errors = SINGBOX_IN_N_ERROR,
  .error_counters = singbox_in_error_counters,
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

VLIB_REGISTER_NODE (singbox4_tw_node) = {
  .name = "singbox4-tw",
  .vector_size = sizeof (u32),
  .format_trace = format_singbox_in_trace,
  .type = VLIB_NODE_TYPE_INTERNAL,
  .n_errors = SINGBOX_IN_N_ERROR,
  .error_counters = singbox_in_error_counters,
};

VNET_FEATURE_INIT (singbox4_tw_feature, static) = {
  .arc_name = "ip4-unicast",
  .node_name = "singbox4-tw",
  .runs_before = VNET_FEATURES ("hsi4-in"),
};
