/* SPDX-License-Identifier: Apache-2.0
 * Copyright (c) 2026 vpp-singbox authors
 */

#include <stdlib.h>
#include <string.h>

#include "socks5_driver.h"

/* One direction of a connection: what the sender wrote, what has arrived, what was consumed. */
typedef struct
{
  uint8_t data[DRIVER_OUT_MAX];
  uint32_t len;
  uint32_t delivered;
  uint32_t consumed;
  uint32_t split_i;
  const driver_splits_t *splits;
} driver_pipe_t;

typedef struct
{
  int is_server;
  int done;
  socks5_server_t s;
  socks5_client_t c;
  /* client: the configuration, whose cmd/dst a deferred request sends once READY */
  const socks5_client_cfg_t *ccfg;
  int requested;
  const driver_server_policy_t *policy;
  const uint8_t *relay_data;
  uint32_t relay_len;
  driver_transcript_t *t;
} driver_side_t;

static void
driver_violation (driver_transcript_t *t, const char *what)
{
  if (!t->violation)
    t->violation = what;
}

static void
driver_pipe_write (driver_pipe_t *p, const uint8_t *data, uint32_t len)
{
  if (!p)
    return;
  if (len > DRIVER_OUT_MAX - p->len)
    len = DRIVER_OUT_MAX - p->len;
  memcpy (p->data + p->len, data, len);
  p->len += len;
}

/* Lets the next chunk arrive; returns 0 when everything written has arrived. */
static int
driver_pipe_deliver (driver_pipe_t *p)
{
  uint32_t n;

  if (p->delivered >= p->len)
    return 0;
  if (!p->splits || !p->splits->n || !p->splits->sizes)
    n = p->len - p->delivered;
  else
    {
      n = p->splits->sizes[p->split_i++ % p->splits->n];
      if (n == 0)
	n = 1;
    }
  if (n > p->len - p->delivered)
    n = p->len - p->delivered;
  p->delivered += n;
  return 1;
}

static void
driver_record_out (driver_side_t *sd, const socks5_out_t *out, driver_pipe_t *to)
{
  driver_transcript_t *t = sd->t;
  uint32_t n = out->len;

  if (n > SOCKS5_OUT_MAX)
    {
      driver_violation (t, "out.len > SOCKS5_OUT_MAX");
      return;
    }
  if (n > DRIVER_OUT_MAX - t->out_len)
    {
      driver_violation (t, "more output than any handshake needs");
      n = DRIVER_OUT_MAX - t->out_len;
    }
  memcpy (t->out + t->out_len, out->data, n);
  t->out_len += n;
  driver_pipe_write (to, out->data, n);
}

static void
driver_record_event (driver_transcript_t *t, socks5_event_type_t type)
{
  if (t->n_events >= DRIVER_MAX_EVENTS)
    {
      driver_violation (t, "more events than any handshake has");
      return;
    }
  t->events[t->n_events++] = type;
}

static socks5_event_type_t
driver_feed (driver_side_t *sd, const uint8_t *data, uint32_t len, uint32_t *consumed,
	     socks5_event_t *ev, socks5_out_t *out)
{
  socks5_event_type_t type;
  uint8_t *copy = 0;

  /* An exact-size copy, so AddressSanitizer catches any read past what was offered. */
  if (len)
    {
      copy = malloc (len);
      if (!copy)
	abort ();
      memcpy (copy, data, len);
    }
  *consumed = ~0u;
  out->len = 0xffff;
  if (sd->is_server)
    type = socks5_server_feed (&sd->s, copy, len, consumed, ev, out);
  else
    type = socks5_client_feed (&sd->c, copy, len, consumed, ev, out);
  free (copy);
  if (type != ev->type)
    driver_violation (sd->t, "returned type differs from ev->type");
  if (*consumed > len)
    driver_violation (sd->t, "consumed more than offered");
  return type;
}

static int
driver_state_closed (const driver_side_t *sd)
{
  return sd->is_server ? socks5_server_state (&sd->s) == SOCKS5_SERVER_CLOSED :
			 socks5_client_state (&sd->c) == SOCKS5_CLIENT_CLOSED;
}

/* Once finished, the core must keep its answer and take no more bytes. */
static void
driver_check_finished (driver_side_t *sd, const driver_pipe_t *in, socks5_event_type_t expect)
{
  socks5_event_t ev;
  socks5_out_t out;
  uint32_t consumed;

  if (driver_feed (sd, in->data + in->consumed, in->delivered - in->consumed, &consumed, &ev,
		   &out) != expect)
    driver_violation (sd->t, "finished core changed its answer");
  if (consumed != 0 || out.len != 0)
    driver_violation (sd->t, "finished core consumed or produced bytes");
}

static void
driver_server_event (driver_side_t *sd, const driver_pipe_t *in, driver_pipe_t *to,
		     const socks5_event_t *ev)
{
  const driver_server_policy_t *pol = sd->policy;
  driver_transcript_t *t = sd->t;
  socks5_out_t out;
  socks5_error_t e;
  int ok;

  if (ev->type == SOCKS5_EV_AUTH_REQUEST)
    {
      const uint8_t *lo = (const uint8_t *) &sd->s, *hi = lo + sizeof (sd->s);

      if (ev->username < lo || ev->username + ev->username_len > hi || ev->password < lo ||
	  ev->password + ev->password_len > hi)
	driver_violation (t, "credentials do not point into the state");
      t->have_auth = 1;
      t->user_len = ev->username_len;
      t->pass_len = ev->password_len;
      memcpy (t->user, ev->username, ev->username_len);
      memcpy (t->pass, ev->password, ev->password_len);
      ok = pol->accept_any ||
	   (ev->username_len == pol->user_len && ev->password_len == pol->pass_len &&
	    !memcmp (ev->username, pol->user, pol->user_len) &&
	    !memcmp (ev->password, pol->pass, pol->pass_len));
      e = socks5_server_auth_result (&sd->s, ok, &out);
      driver_record_out (sd, &out, to);
      if (e != (ok ? SOCKS5_ERR_NONE : SOCKS5_ERR_AUTH_FAILED))
	driver_violation (t, "auth_result returned the wrong code");
      if (!ok)
	{
	  if (!driver_state_closed (sd))
	    driver_violation (t, "rejected credentials did not close");
	  driver_check_finished (sd, in, SOCKS5_EV_ERROR);
	  sd->done = 1;
	}
      return;
    }

  /* REQUEST: the adapter connects upstream, then replies. */
  t->have_request = 1;
  t->cmd = ev->cmd;
  t->addr = ev->addr;
  if (socks5_server_reply (&sd->s, pol->rep, pol->bnd, &out) != SOCKS5_ERR_NONE)
    driver_violation (t, "server_reply refused a valid reply");
  driver_record_out (sd, &out, to);
  if (pol->rep != SOCKS5_REP_SUCCEEDED)
    {
      if (!driver_state_closed (sd))
	driver_violation (t, "failure reply did not close");
      sd->done = 1;
      return;
    }
  driver_pipe_write (to, sd->relay_data, sd->relay_len);
}

/* One call on the core with what has arrived; returns 1 if anything moved. */
static int
driver_side_step (driver_side_t *sd, driver_pipe_t *in, driver_pipe_t *to)
{
  driver_transcript_t *t = sd->t;
  socks5_event_t ev;
  socks5_out_t out;
  socks5_event_type_t type;
  uint32_t n, consumed;

  if (sd->done)
    return 0;
  n = in->delivered - in->consumed;
  type = driver_feed (sd, in->data + in->consumed, n, &consumed, &ev, &out);
  if (consumed > n)
    {
      sd->done = 1;
      return 0;
    }
  in->consumed += consumed;
  t->consumed = in->consumed;
  driver_record_out (sd, &out, to);
  t->final_state =
    sd->is_server ? (int) socks5_server_state (&sd->s) : (int) socks5_client_state (&sd->c);

  switch (type)
    {
    case SOCKS5_EV_NEED_DATA:
      if (consumed != n)
	driver_violation (t, "NEED_DATA left offered bytes unconsumed");
      return driver_pipe_deliver (in) || consumed || out.len;

    case SOCKS5_EV_AUTH_REQUEST:
    case SOCKS5_EV_REQUEST:
      if (!sd->is_server)
	{
	  driver_violation (t, "server event from the client role");
	  sd->done = 1;
	  return 0;
	}
      driver_record_event (t, type);
      t->method = ev.method;
      driver_server_event (sd, in, to, &ev);
      break;

    case SOCKS5_EV_CONNECTED:
      if (sd->is_server)
	driver_violation (t, "client event from the server role");
      driver_record_event (t, type);
      t->method = ev.method;
      t->addr = ev.addr;
      driver_check_finished (sd, in, SOCKS5_EV_PAUSED);
      sd->done = 1;
      break;

    case SOCKS5_EV_ERROR:
      driver_record_event (t, type);
      t->method = ev.method;
      t->have_error = 1;
      t->error = ev.error;
      t->rep = ev.rep;
      t->remote = ev.remote;
      if (ev.error == SOCKS5_ERR_NONE || ev.remote != socks5_error_is_remote (ev.error))
	driver_violation (t, "ERROR event without a consistent error");
      if (!driver_state_closed (sd))
	driver_violation (t, "ERROR without closing");
      driver_check_finished (sd, in, SOCKS5_EV_ERROR);
      sd->done = 1;
      break;

    case SOCKS5_EV_PAUSED:
      if (consumed != 0 || out.len != 0)
	driver_violation (t, "PAUSED consumed or produced bytes");
      sd->done = 1;
      return 0;

    case SOCKS5_EV_READY:
      if (sd->is_server || sd->requested || socks5_client_state (&sd->c) != SOCKS5_CLIENT_READY)
	{
	  driver_violation (t, "READY out of place");
	  sd->done = 1;
	  return 0;
	}
      driver_record_event (t, type);
      t->method = ev.method;
      if (out.len)
	driver_violation (t, "READY produced bytes");
      /* READY is a pause: the core takes nothing more until the request */
      driver_check_finished (sd, in, SOCKS5_EV_PAUSED);
      /* a pooled connection: a flow takes it and sends its request */
      sd->requested = 1;
      if (socks5_client_request (&sd->c, sd->ccfg->cmd, &sd->ccfg->dst, &out) != SOCKS5_ERR_NONE)
	driver_violation (t, "client_request refused in READY");
      if (socks5_client_state (&sd->c) != SOCKS5_CLIENT_REPLY)
	driver_violation (t, "client_request did not move READY to REPLY");
      driver_record_out (sd, &out, to);
      break;

    default:
      driver_violation (t, "unknown event type");
      sd->done = 1;
      return 0;
    }
  t->final_state =
    sd->is_server ? (int) socks5_server_state (&sd->s) : (int) socks5_client_state (&sd->c);
  return 1;
}

static void
driver_run_one (driver_side_t *sd, const uint8_t *in, uint32_t len, const driver_splits_t *splits)
{
  static driver_pipe_t pipe;
  uint32_t i;

  memset (&pipe, 0, sizeof (pipe));
  driver_pipe_write (&pipe, in, len);
  pipe.splits = splits;
  driver_pipe_deliver (&pipe);
  /* Every step either moves a byte, lets a chunk arrive or ends the run. */
  for (i = 0; i < 4 * (len + 8); i++)
    if (!driver_side_step (sd, &pipe, 0))
      return;
  driver_violation (sd->t, "core made no progress");
}

void
driver_server_run (const socks5_server_cfg_t *cfg, const driver_server_policy_t *policy,
		   const uint8_t *in, uint32_t len, const driver_splits_t *splits,
		   driver_transcript_t *t)
{
  static driver_side_t sd;

  memset (t, 0, sizeof (*t));
  memset (&sd, 0, sizeof (sd));
  sd.is_server = 1;
  sd.policy = policy;
  sd.t = t;
  t->final_state = SOCKS5_SERVER_CLOSED;
  if (socks5_server_init (&sd.s, cfg) != SOCKS5_ERR_NONE)
    {
      t->have_error = 1;
      t->error = SOCKS5_ERR_BAD_ARGUMENT;
      return;
    }
  driver_run_one (&sd, in, len, splits);
}

void
driver_client_run (const socks5_client_cfg_t *cfg, const uint8_t *in, uint32_t len,
		   const driver_splits_t *splits, driver_transcript_t *t)
{
  static driver_side_t sd;
  socks5_out_t out;

  memset (t, 0, sizeof (*t));
  memset (&sd, 0, sizeof (sd));
  sd.t = t;
  sd.ccfg = cfg;
  t->final_state = SOCKS5_CLIENT_CLOSED;
  if (socks5_client_init (&sd.c, cfg, &out) != SOCKS5_ERR_NONE)
    {
      t->have_error = 1;
      t->error = SOCKS5_ERR_BAD_ARGUMENT;
      return;
    }
  driver_record_out (&sd, &out, 0);
  driver_run_one (&sd, in, len, splits);
}

int
driver_transcript_equal (const driver_transcript_t *a, const driver_transcript_t *b)
{
  if (a->out_len != b->out_len || memcmp (a->out, b->out, a->out_len) ||
      a->consumed != b->consumed || a->n_events != b->n_events ||
      memcmp (a->events, b->events, a->n_events * sizeof (a->events[0])) ||
      a->final_state != b->final_state || a->have_auth != b->have_auth ||
      a->have_request != b->have_request || a->have_error != b->have_error)
    return 0;
  if (a->have_auth &&
      (a->user_len != b->user_len || a->pass_len != b->pass_len ||
       memcmp (a->user, b->user, a->user_len) || memcmp (a->pass, b->pass, a->pass_len)))
    return 0;
  if ((a->have_request || (a->n_events && a->events[a->n_events - 1] == SOCKS5_EV_CONNECTED)) &&
      (a->cmd != b->cmd || !socks5_addr_equal (&a->addr, &b->addr)))
    return 0;
  if (a->have_error && (a->error != b->error || a->rep != b->rep || a->remote != b->remote))
    return 0;
  return 1;
}

const char *
driver_pair_run (const socks5_client_cfg_t *ccfg, const socks5_server_cfg_t *scfg,
		 const driver_server_policy_t *policy, const driver_splits_t *c2s_splits,
		 const driver_splits_t *s2c_splits, const uint8_t *relay_data, uint32_t relay_len,
		 driver_pair_t *p)
{
  static driver_pipe_t c2s, s2c;
  static driver_side_t cs, ss;
  socks5_out_t out;
  uint32_t i;
  int moved;

  memset (p, 0, sizeof (*p));
  memset (&c2s, 0, sizeof (c2s));
  memset (&s2c, 0, sizeof (s2c));
  memset (&cs, 0, sizeof (cs));
  memset (&ss, 0, sizeof (ss));
  c2s.splits = c2s_splits;
  s2c.splits = s2c_splits;
  cs.t = &p->client;
  cs.ccfg = ccfg;
  ss.t = &p->server;
  ss.is_server = 1;
  ss.policy = policy;
  ss.relay_data = relay_data;
  ss.relay_len = relay_len;

  if (socks5_server_init (&ss.s, scfg) != SOCKS5_ERR_NONE)
    return "server_init failed";
  if (socks5_client_init (&cs.c, ccfg, &out) != SOCKS5_ERR_NONE)
    return "client_init failed";
  driver_record_out (&cs, &out, &c2s);

  for (i = 0, moved = 1; moved && i < 100000; i++)
    {
      moved = driver_side_step (&ss, &c2s, &s2c);
      moved |= driver_side_step (&cs, &s2c, &c2s);
    }
  if (moved)
    return "no end to the handshake";
  if (p->client.violation)
    return p->client.violation;
  if (p->server.violation)
    return p->server.violation;

  p->left_len = s2c.len - s2c.consumed;
  memcpy (p->left, s2c.data + s2c.consumed, p->left_len);
  /* a pipelined client's request legitimately stays unread behind a failed authentication */
  if (c2s.consumed != c2s.len && !(ccfg->pipeline && p->server.final_state == SOCKS5_SERVER_CLOSED))
    return "server left client bytes unconsumed";
  return 0;
}
