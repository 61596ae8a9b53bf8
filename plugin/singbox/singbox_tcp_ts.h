/* SPDX-License-Identifier: Apache-2.0
 * Copyright (c) 2026 vpp-singbox authors
 */

/* TCP timestamps (RFC 7323) of the plugin's active opens, kept monotonic
 * across VPP's workers. Called for every TCP connection the plugin opens
 * that carries data: client mode's upstream to the endpoint (pooled ones
 * too) and server mode's to the destination (singbox_session.c), client-mode
 * UDP's control connections (singbox_client_udp.c). */

#ifndef __included_singbox_tcp_ts_h__
#define __included_singbox_tcp_ts_h__

#include <vnet/session/session.h>
#include <vnet/tcp/tcp.h>
#include <vnet/tcp/tcp_inlines.h>

/* VPP's workers keep clocks of their own, milliseconds apart. When the
 * SYN-ACK of an active open arrives on another worker than the one that sent
 * the SYN (the connects thread), the connection's later segments may carry a
 * TSval older than the SYN's: the peer's PAWS check drops them, its handshake
 * stays unfinished until it retransmits the SYN-ACK, and the flow waits
 * ~1.5 s (with 2 workers: one new connection in ten). Offset this
 * connection's stamps so they never go back.
 *
 * Best called while the session layer allocates the connection's fifos
 * (proxy_alloc_session_fifos): that runs before TCP sends the ACK of the
 * SYN-ACK, so even that ACK carries the right stamp. The connected callback
 * runs later, from the session layer's events, once that ACK has left with
 * the old stamp and been dropped: resend_ack sends it again, so the peer's
 * handshake completes now even when nothing else is sent (a peer that speaks
 * first). */
static_always_inline void
singbox_tcp_ts_monotonic (session_t *s, u8 resend_ack)
{
  tcp_connection_t *tc;
  u32 now, syn_ts;

  if (session_get_transport_proto (s) != TRANSPORT_PROTO_TCP)
    return;
  tc = (tcp_connection_t *) session_get_transport (s);
  if (!tc || !tcp_opts_tstamp (&tc->rcv_opts))
    return;
  now = tcp_time_tstamp (tc->c_thread_index);
  syn_ts = tc->rcv_opts.tsecr; /* the SYN's TSval, echoed in the SYN-ACK */
  if (!timestamp_lt (now, syn_ts))
    return;
  tc->timestamp_delta = now - syn_ts;
  if (resend_ack && tc->state == TCP_STATE_ESTABLISHED)
    tcp_send_ack (tc);
}

#endif /* __included_singbox_tcp_ts_h__ */
