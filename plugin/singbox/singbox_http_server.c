/* SPDX-License-Identifier: Apache-2.0
 * Copyright (c) 2026 vpp-singbox authors
 */

/*
 * Server mode: HTTP CONNECT (RFC 9110 9.3.6) on the SOCKS5 listeners' own
 * ports, as sing-box's `mixed` inbound does. The first byte of a connection
 * tells them apart: a SOCKS5 greeting starts with 0x05, an HTTP request with
 * the letter of its method. An HTTP connection then goes the SOCKS5 way with
 * its own handshake: the same users (Basic Proxy-Authorization), the same
 * allowed commands, name resolution, connect, timeouts and counters; the
 * response comes once the upstream's outcome is known (200, or the status
 * for the failure: http_connect_status_from_rep). What the client sends
 * behind its request stays in the fifo and is relayed once connected.
 *
 * The parser's state (1.8 KB) exists only while an HTTP handshake runs.
 */

#include <arpa/inet.h>
#include <singbox/singbox.h>

/* What ss->hserver points to: the parser, and the request while its
 * password is checked on the crypt thread (its strings point into the
 * parser, which is not called meanwhile). */
typedef struct
{
  http_connect_server_t parser; /* first: ss->hserver */
  http_connect_event_t request;
} singbox_http_server_t;

static void singbox_http_request_go (singbox_session_t *ss, http_connect_event_t *ev);

/* Handshake bytes to the client, before the fifos are crossed. */
static void
singbox_http_send (singbox_session_t *ss, const u8 *data, u32 len)
{
  if (!len || ss->po_closed)
    return;
  if (svm_fifo_enqueue (ss->po_tx_fifo, len, data) == len)
    ss->hs_bytes_out += len;
  if (svm_fifo_set_event (ss->po_tx_fifo))
    session_program_tx_io_evt (ss->po_handle, SESSION_IO_EVT_TX);
}

void
singbox_http_server_free (singbox_session_t *ss)
{
  if (!ss->hserver)
    return;
  /* it may still hold credentials */
  clib_memset (ss->hserver, 0, sizeof (singbox_http_server_t));
  clib_mem_free (ss->hserver);
  ss->hserver = 0;
}

/* Answer the request with status and end the handshake there. */
static void
singbox_http_refuse (singbox_session_t *ss, u16 status, u8 rep)
{
  http_connect_out_t out;

  ss->rep = rep;
  ss->reply_sent = 1;
  if (http_connect_server_reply (ss->hserver, status, &out) == HTTP_CONNECT_ERR_NONE)
    singbox_http_send (ss, out.data, out.len);
  singbox_http_server_free (ss);
  singbox_po_fail (ss);
}

/* Credentials, command, target: then the SOCKS5 path connects. */
static void
singbox_http_request (singbox_session_t *ss, http_connect_event_t *ev)
{
  singbox_main_t *sm = &singbox_main;
  u32 user_index = ~0;
  int rv = SINGBOX_AUTH_OK;

  ss->state = SINGBOX_SESSION_STATE_REQUEST;
  ((singbox_http_server_t *) ss->hserver)->request = *ev;
  if (sm->auth_required)
    {
      rv = !ev->auth ? SINGBOX_AUTH_FAILED :
		       singbox_user_check ((u8 *) ev->username, ev->username_len,
					   (u8 *) ev->password, ev->password_len,
					   singbox_session_id (ss), ss->po_thread, &user_index);
      if (rv == SINGBOX_AUTH_PENDING)
	{
	  ss->auth_pending = 1;
	  return;
	}
    }
  singbox_http_server_auth_done (ss, rv == SINGBOX_AUTH_OK, user_index);
}

/* The password check's outcome (at once, or from the crypt thread): on
 * with the request, or 407. On the client's thread, lock held. */
void
singbox_http_server_auth_done (singbox_session_t *ss, int ok, u32 user_index)
{
  singbox_main_t *sm = &singbox_main;

  if (sm->auth_required && !ok)
    {
      /* no credentials, unreadable ones and wrong ones alike: 407 with the
       * challenge, as a proxy answers (RFC 9110 15.5.8) */
      singbox_server_counter_inc (SINGBOX_SERVER_CTR_AUTH_FAILURES, 1);
      singbox_http_refuse (ss, 407, SOCKS5_REP_NOT_ALLOWED);
      return;
    }
  if (sm->auth_required)
    ss->user_index = user_index;
  singbox_http_request_go (ss, &((singbox_http_server_t *) ss->hserver)->request);
}

/* Authenticated (or no auth): command and target, then the SOCKS5 path. */
static void
singbox_http_request_go (singbox_session_t *ss, http_connect_event_t *ev)
{
  singbox_main_t *sm = &singbox_main;
  socks5_event_t sev = { .type = SOCKS5_EV_REQUEST, .cmd = SOCKS5_CMD_CONNECT };
  u8 ip[16];

  if (!sm->allow_connect)
    {
      singbox_server_counter_inc (SINGBOX_SERVER_CTR_REJECTED, 1);
      singbox_http_refuse (ss, 403, SOCKS5_REP_COMMAND_NOT_SUPPORTED);
      return;
    }
  if (ev->host_is_ip6)
    {
      if (inet_pton (AF_INET6, ev->host, ip) != 1)
	{
	  singbox_server_counter_inc (SINGBOX_SERVER_CTR_REJECTED, 1);
	  singbox_http_refuse (ss, 400, SOCKS5_REP_ADDRESS_TYPE_NOT_SUPPORTED);
	  return;
	}
      socks5_addr_set_ip6 (&sev.addr, ip, ev->port);
    }
  else if (inet_pton (AF_INET, ev->host, ip) == 1)
    socks5_addr_set_ip4 (&sev.addr, ip, ev->port);
  else
    socks5_addr_set_domain (&sev.addr, (u8 *) ev->host, ev->host_len, ev->port);
  singbox_server_counter_inc (SINGBOX_SERVER_CTR_HTTP_CONNECT, 1);
  singbox_handle_request (ss, &sev);
}

/* From singbox_po_handshake, lock held, on the client's thread: 1 if the
 * connection speaks HTTP (and was handled here), 0 to go on with SOCKS5. */
int
singbox_http_server_handshake (session_t *s, singbox_session_t *ss)
{
  http_connect_event_type_t t;
  http_connect_event_t ev;
  http_connect_out_t out;
  u8 buf[1024];
  u32 n, avail, consumed;

  if (!ss->hserver)
    {
      if (ss->is_http || ss->hs_bytes_in ||
	  !ss->proto || socks5_server_state (ss->proto) != SOCKS5_SERVER_GREETING ||
	  svm_fifo_peek (s->rx_fifo, 0, 1, buf) != 1 || !http_connect_is_http_start (buf[0]))
	return ss->is_http;
      ss->is_http = 1;
      ss->hserver = clib_mem_alloc (sizeof (singbox_http_server_t));
      http_connect_server_init (ss->hserver);
    }
  /* the request waits for its password check (singbox_http_server_auth_done) */
  if (ss->auth_pending)
    return 1;

  while (!ss->po_closed && ss->hserver)
    {
      avail = svm_fifo_max_dequeue_cons (s->rx_fifo);
      n = clib_min (avail, sizeof (buf));
      if (n)
	svm_fifo_peek (s->rx_fifo, 0, n, buf);
      t = http_connect_server_feed (ss->hserver, buf, n, &consumed, &ev, &out);
      if (consumed)
	{
	  svm_fifo_dequeue_drop (s->rx_fifo, consumed);
	  ss->hs_bytes_in += consumed;
	}
      singbox_http_send (ss, out.data, out.len);
      switch (t)
	{
	case HTTP_CONNECT_EV_NEED_DATA:
	  /* a request longer than one peek may have come in one segment */
	  if (consumed < n || avail <= n)
	    return 1;
	  break;
	case HTTP_CONNECT_EV_REQUEST:
	  singbox_http_request (ss, &ev);
	  return 1;
	case HTTP_CONNECT_EV_ERROR:
	  singbox_server_counter_inc (SINGBOX_SERVER_CTR_REJECTED, 1);
	  SINGBOX_DBG ("session %u: HTTP %s (%u)", ss->index, http_connect_error_name (ev.error),
		       ev.status);
	  singbox_http_server_free (ss);
	  singbox_po_fail (ss);
	  return 1;
	default:
	  /* the request is answered once connected: what follows is the tunnel's */
	  return 1;
	}
    }
  return 1;
}

/* The upstream failed (rep as SOCKS5 would say it): the status for it, then close. */
void
singbox_http_server_reply_failure (singbox_session_t *ss, u8 rep)
{
  singbox_server_counter_inc (SINGBOX_SERVER_CTR_HTTP_CONNECT_FAILURES, 1);
  singbox_http_refuse (ss, http_connect_status_from_rep (rep), rep);
}

/* Connected: the 200 into out (enqueued by the caller with the SOCKS5 reply's code). */
void
singbox_http_server_ok (singbox_session_t *ss, socks5_out_t *out)
{
  http_connect_out_t hout;

  out->len = 0;
  if (http_connect_server_reply (ss->hserver, 200, &hout) == HTTP_CONNECT_ERR_NONE)
    {
      clib_memcpy (out->data, hout.data, hout.len);
      out->len = hout.len;
    }
  singbox_http_server_free (ss);
}
