/* SPDX-License-Identifier: Apache-2.0
 * Copyright (c) 2026 vpp-singbox authors
 */

#include <string.h>

#include "http_connect_driver.h"

static uint32_t
chunk (const uint8_t *sizes, uint32_t n_sizes, uint32_t k, uint32_t left)
{
  uint32_t c;

  if (!n_sizes)
    return left;
  c = sizes[k % n_sizes] ? sizes[k % n_sizes] : 1;
  return c < left ? c : left;
}

/* The adapter's loop: what is offered is what arrived and was not consumed yet. */
void
hc_drive_client (const uint8_t *data, uint32_t len, const uint8_t *sizes, uint32_t n_sizes,
		 hc_result_t *r)
{
  http_connect_client_t c;
  http_connect_event_t ev;
  http_connect_event_type_t t;
  uint32_t arrived = 0, k = 0, consumed;

  memset (r, 0, sizeof (*r));
  r->type = HTTP_CONNECT_EV_NEED_DATA;
  http_connect_client_init (&c);
  while (arrived < len)
    {
      arrived += chunk (sizes, n_sizes, k++, len - arrived);
      t = http_connect_client_feed (&c, data + r->consumed, arrived - r->consumed, &consumed, &ev);
      if (consumed > arrived - r->consumed || ev.type != t)
	r->contract_broken = 1;
      r->consumed += consumed;
      if (t == HTTP_CONNECT_EV_NEED_DATA)
	{
	  if (r->consumed != arrived)
	    r->contract_broken = 1;
	  continue;
	}
      r->type = t;
      r->error = ev.error;
      r->status = ev.status;
      if (t == HTTP_CONNECT_EV_CONNECTED &&
	  (http_connect_client_state (&c) != HTTP_CONNECT_ESTABLISHED || ev.status < 200 ||
	   ev.status > 299))
	r->contract_broken = 1;
      if (t == HTTP_CONNECT_EV_ERROR &&
	  (http_connect_client_state (&c) != HTTP_CONNECT_CLOSED ||
	   http_connect_client_error (&c) != ev.error || !http_connect_error_is_remote (ev.error)))
	r->contract_broken = 1;
      /* the handshake is over: nothing more is taken */
      t = http_connect_client_feed (&c, data + r->consumed, len - r->consumed, &consumed, &ev);
      if (consumed)
	r->contract_broken = 1;
      return;
    }
}

void
hc_drive_server (const uint8_t *data, uint32_t len, const uint8_t *sizes, uint32_t n_sizes,
		 uint16_t reply_status, hc_result_t *r)
{
  http_connect_server_t s;
  http_connect_event_t ev;
  http_connect_out_t out;
  http_connect_event_type_t t;
  uint32_t arrived = 0, k = 0, consumed;

  memset (r, 0, sizeof (*r));
  r->type = HTTP_CONNECT_EV_NEED_DATA;
  http_connect_server_init (&s);
  while (arrived < len)
    {
      arrived += chunk (sizes, n_sizes, k++, len - arrived);
      t = http_connect_server_feed (&s, data + r->consumed, arrived - r->consumed, &consumed, &ev,
				    &out);
      if (consumed > arrived - r->consumed || ev.type != t)
	r->contract_broken = 1;
      r->consumed += consumed;
      if (out.len)
	{
	  if (t != HTTP_CONNECT_EV_ERROR || r->out_len + out.len > sizeof (r->out))
	    r->contract_broken = 1;
	  else
	    {
	      memcpy (r->out + r->out_len, out.data, out.len);
	      r->out_len += out.len;
	    }
	}
      if (t == HTTP_CONNECT_EV_NEED_DATA)
	{
	  if (r->consumed != arrived)
	    r->contract_broken = 1;
	  continue;
	}
      r->type = t;
      r->error = ev.error;
      r->status = ev.status;
      if (t == HTTP_CONNECT_EV_REQUEST)
	{
	  r->have_request = 1;
	  if (!ev.host || ev.host_len == 0 || strlen (ev.host) != ev.host_len || ev.port == 0 ||
	      (ev.auth && (!ev.username || !ev.password)))
	    r->contract_broken = 1;
	  else
	    {
	      memcpy (r->host, ev.host, ev.host_len);
	      r->host_len = ev.host_len;
	      r->host_is_ip6 = ev.host_is_ip6;
	      r->port = ev.port;
	      r->auth = ev.auth;
	      if (ev.auth)
		{
		  memcpy (r->user, ev.username, ev.username_len);
		  memcpy (r->pass, ev.password, ev.password_len);
		  r->user_len = ev.username_len;
		  r->pass_len = ev.password_len;
		}
	    }
	  if (reply_status)
	    {
	      if (http_connect_server_reply (&s, reply_status, &out) != HTTP_CONNECT_ERR_NONE ||
		  r->out_len + out.len > sizeof (r->out))
		r->contract_broken = 1;
	      else
		{
		  memcpy (r->out + r->out_len, out.data, out.len);
		  r->out_len += out.len;
		}
	      r->status = reply_status;
	    }
	}
      else if (t == HTTP_CONNECT_EV_ERROR &&
	       (http_connect_server_state (&s) != HTTP_CONNECT_CLOSED || !out.len ||
		ev.status < 400 || !http_connect_error_is_remote (ev.error)))
	r->contract_broken = 1;
      /* paused or closed: nothing more is taken */
      t =
	http_connect_server_feed (&s, data + r->consumed, len - r->consumed, &consumed, &ev, &out);
      if (consumed || out.len)
	r->contract_broken = 1;
      return;
    }
}

int
hc_result_equal (const hc_result_t *a, const hc_result_t *b)
{
  return a->type == b->type && a->error == b->error && a->status == b->status &&
	 a->consumed == b->consumed && a->have_request == b->have_request &&
	 a->host_len == b->host_len && !memcmp (a->host, b->host, a->host_len) &&
	 a->host_is_ip6 == b->host_is_ip6 && a->port == b->port && a->auth == b->auth &&
	 a->user_len == b->user_len && !memcmp (a->user, b->user, a->user_len) &&
	 a->pass_len == b->pass_len && !memcmp (a->pass, b->pass, a->pass_len) &&
	 a->out_len == b->out_len && !memcmp (a->out, b->out, a->out_len);
}
