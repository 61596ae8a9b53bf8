/* SPDX-License-Identifier: Apache-2.0
 * Copyright (c) 2026 vpp-singbox authors
 */

#include <errno.h>
#include <string.h>

#include "socks5_proto.h"

/* Request/reply header before the address: VER CMD|REP RSV ATYP. */
#define SOCKS5_HDR_LEN 4

typedef struct
{
  uint8_t rep;
  uint8_t remote;
  const char *name;
} socks5_error_info_t;

static const socks5_error_info_t socks5_error_info[] = {
#define _(sym, rep, remote, str) { rep, remote, str },
  foreach_socks5_error
#undef _
};

static const uint8_t socks5_reason_rep[] = {
#define _(sym, rep, str) rep,
  foreach_socks5_reason
#undef _
};

static const char *const socks5_reason_names[] = {
#define _(sym, rep, str) str,
  foreach_socks5_reason
#undef _
};

static const char *const socks5_event_names[] = {
#define _(sym, str) str,
  foreach_socks5_event
#undef _
};

static const char *const socks5_server_state_names[] = {
#define _(sym, str) str,
  foreach_socks5_server_state
#undef _
};

static const char *const socks5_client_state_names[] = {
#define _(sym, str) str,
  foreach_socks5_client_state
#undef _
};

const char *
socks5_rep_name (uint8_t rep)
{
  switch (rep)
    {
#define _(sym, val, str)                                                                           \
  case val:                                                                                        \
    return str;
      foreach_socks5_rep
#undef _
    }
  return "unassigned";
}

const char *
socks5_reason_name (socks5_reason_t reason)
{
  return (unsigned) reason < SOCKS5_N_REASON ? socks5_reason_names[reason] : "unknown";
}

const char *
socks5_error_name (socks5_error_t err)
{
  return (unsigned) err < SOCKS5_N_ERROR ? socks5_error_info[err].name : "unknown";
}

uint8_t
socks5_error_rep (socks5_error_t err)
{
  return (unsigned) err < SOCKS5_N_ERROR ? socks5_error_info[err].rep : SOCKS5_REP_GENERAL_FAILURE;
}

int
socks5_error_is_remote (socks5_error_t err)
{
  return (unsigned) err < SOCKS5_N_ERROR ? socks5_error_info[err].remote : 0;
}

const char *
socks5_event_name (socks5_event_type_t type)
{
  return (unsigned) type < SOCKS5_N_EVENT ? socks5_event_names[type] : "unknown";
}

const char *
socks5_server_state_name (socks5_server_state_t state)
{
  return (unsigned) state < SOCKS5_SERVER_N_STATE ? socks5_server_state_names[state] : "unknown";
}

const char *
socks5_client_state_name (socks5_client_state_t state)
{
  return (unsigned) state < SOCKS5_CLIENT_N_STATE ? socks5_client_state_names[state] : "unknown";
}

uint8_t
socks5_rep_from_reason (socks5_reason_t reason)
{
  return (unsigned) reason < SOCKS5_N_REASON ? socks5_reason_rep[reason] :
					       SOCKS5_REP_GENERAL_FAILURE;
}

uint8_t
socks5_rep_from_errno (int err)
{
  /* VPP and kernel paths disagree on the sign; both mean the same errno. */
  if (err < 0)
    err = -err;
  switch (err)
    {
    case ENETUNREACH:
    case ENETDOWN:
      return SOCKS5_REP_NETWORK_UNREACHABLE;
    case EHOSTUNREACH:
    case EHOSTDOWN:
      return SOCKS5_REP_HOST_UNREACHABLE;
    case ECONNREFUSED:
      return SOCKS5_REP_CONNECTION_REFUSED;
    case ETIMEDOUT:
      return SOCKS5_REP_TTL_EXPIRED;
    case EACCES:
    case EPERM:
      return SOCKS5_REP_NOT_ALLOWED;
    }
  return SOCKS5_REP_GENERAL_FAILURE;
}

/* Addresses */

void
socks5_addr_set_ip4 (socks5_addr_t *a, const uint8_t ip4[4], uint16_t port)
{
  memset (a, 0, sizeof (*a));
  a->atyp = SOCKS5_ATYP_IPV4;
  a->port = port;
  memcpy (a->ip4, ip4, 4);
}

void
socks5_addr_set_ip6 (socks5_addr_t *a, const uint8_t ip6[16], uint16_t port)
{
  memset (a, 0, sizeof (*a));
  a->atyp = SOCKS5_ATYP_IPV6;
  a->port = port;
  memcpy (a->ip6, ip6, 16);
}

socks5_error_t
socks5_addr_set_domain (socks5_addr_t *a, const uint8_t *name, uint32_t len, uint16_t port)
{
  if (len == 0 || len > SOCKS5_MAX_DOMAIN_LEN || !name)
    return SOCKS5_ERR_BAD_ARGUMENT;
  memset (a, 0, sizeof (*a));
  a->atyp = SOCKS5_ATYP_DOMAIN;
  a->port = port;
  a->domain_len = (uint8_t) len;
  memcpy (a->domain, name, len);
  return SOCKS5_ERR_NONE;
}

uint32_t
socks5_addr_encoded_len (const socks5_addr_t *a)
{
  switch (a->atyp)
    {
    case SOCKS5_ATYP_IPV4:
      return 1 + 4 + 2;
    case SOCKS5_ATYP_IPV6:
      return 1 + 16 + 2;
    case SOCKS5_ATYP_DOMAIN:
      return 1 + 1 + a->domain_len + 2;
    }
  return 0;
}

int
socks5_addr_equal (const socks5_addr_t *a, const socks5_addr_t *b)
{
  if (a->atyp != b->atyp || a->port != b->port)
    return 0;
  switch (a->atyp)
    {
    case SOCKS5_ATYP_IPV4:
      return !memcmp (a->ip4, b->ip4, 4);
    case SOCKS5_ATYP_IPV6:
      return !memcmp (a->ip6, b->ip6, 16);
    case SOCKS5_ATYP_DOMAIN:
      return a->domain_len == b->domain_len && !memcmp (a->domain, b->domain, a->domain_len);
    }
  return 1;
}

/* Writes ATYP ADDR PORT; the caller has checked the space with socks5_addr_encoded_len (). */
static uint32_t
socks5_addr_encode (const socks5_addr_t *a, uint8_t *p)
{
  uint32_t n = 0;

  p[n++] = a->atyp;
  switch (a->atyp)
    {
    case SOCKS5_ATYP_IPV4:
      memcpy (p + n, a->ip4, 4);
      n += 4;
      break;
    case SOCKS5_ATYP_IPV6:
      memcpy (p + n, a->ip6, 16);
      n += 16;
      break;
    case SOCKS5_ATYP_DOMAIN:
      p[n++] = a->domain_len;
      memcpy (p + n, a->domain, a->domain_len);
      n += a->domain_len;
      break;
    }
  p[n++] = (uint8_t) (a->port >> 8);
  p[n++] = (uint8_t) a->port;
  return n;
}

/*
 * Length of the message that starts with VER CMD|REP RSV ATYP in p, given have bytes of it: the
 * total once known, else the number of bytes needed to learn it. 0 for an unknown ATYP.
 */
static uint32_t
socks5_addr_msg_len (const uint8_t *p, uint32_t have)
{
  if (have < SOCKS5_HDR_LEN)
    return SOCKS5_HDR_LEN;
  switch (p[3])
    {
    case SOCKS5_ATYP_IPV4:
      return SOCKS5_HDR_LEN + 4 + 2;
    case SOCKS5_ATYP_IPV6:
      return SOCKS5_HDR_LEN + 16 + 2;
    case SOCKS5_ATYP_DOMAIN:
      if (have < SOCKS5_HDR_LEN + 1)
	return SOCKS5_HDR_LEN + 1;
      return SOCKS5_HDR_LEN + 1 + p[4] + 2;
    }
  return 0;
}

/*
 * Decodes ATYP ADDR PORT at p, of which len bytes are available. Returns the bytes used or
 * -socks5_error_t. A requested domain must be usable as a name: an empty one or one with NUL
 * inside (which would truncate it in C string APIs, e.g. "evil\0.allowed.example") is refused.
 */
static int
socks5_addr_decode (const uint8_t *p, uint32_t len, socks5_addr_t *a, int check_domain)
{
  uint32_t n;

  if (len < 1)
    return -SOCKS5_ERR_TRUNCATED;
  a->atyp = p[0];
  a->domain_len = 0;
  switch (p[0])
    {
    case SOCKS5_ATYP_IPV4:
      n = 1 + 4;
      if (len < n + 2)
	return -SOCKS5_ERR_TRUNCATED;
      memcpy (a->ip4, p + 1, 4);
      break;
    case SOCKS5_ATYP_IPV6:
      n = 1 + 16;
      if (len < n + 2)
	return -SOCKS5_ERR_TRUNCATED;
      memcpy (a->ip6, p + 1, 16);
      break;
    case SOCKS5_ATYP_DOMAIN:
      if (len < 2)
	return -SOCKS5_ERR_TRUNCATED;
      n = 2 + p[1];
      if (len < n + 2)
	return -SOCKS5_ERR_TRUNCATED;
      if (check_domain && (p[1] == 0 || memchr (p + 2, 0, p[1])))
	return -SOCKS5_ERR_BAD_DOMAIN;
      a->domain_len = p[1];
      memcpy (a->domain, p + 2, p[1]);
      a->domain[p[1]] = 0;
      break;
    default:
      return -SOCKS5_ERR_ADDRESS_TYPE_NOT_SUPPORTED;
    }
  a->port = (uint16_t) (p[n] << 8 | p[n + 1]);
  return (int) (n + 2);
}

/* Appends VER REP RSV BND to out; a NULL or invalid bnd is sent as 0.0.0.0:0. */
static void
socks5_reply_encode (uint8_t rep, const socks5_addr_t *bnd, socks5_out_t *out)
{
  static const socks5_addr_t zero = { .atyp = SOCKS5_ATYP_IPV4 };
  uint8_t *p = out->data + out->len;

  if (!bnd || !socks5_addr_encoded_len (bnd))
    bnd = &zero;
  p[0] = SOCKS5_VERSION;
  p[1] = rep;
  p[2] = 0;
  out->len += 3 + socks5_addr_encode (bnd, p + 3);
}

static void
socks5_out_put2 (socks5_out_t *out, uint8_t a, uint8_t b)
{
  out->data[out->len++] = a;
  out->data[out->len++] = b;
}

/*
 * Moves input into rx until it holds want bytes. Decisions are taken only at these fixed
 * thresholds, so however the input is split the core consumes the same bytes and reaches the
 * same events.
 */
static int
socks5_fill (uint8_t *rx, uint16_t *rx_len, uint32_t want, const uint8_t *data, uint32_t len,
	     uint32_t *pos)
{
  uint32_t n;

  if (*rx_len >= want)
    return 1;
  n = want - *rx_len;
  if (n > len - *pos)
    n = len - *pos;
  if (n == 0)
    return 0;
  memcpy (rx + *rx_len, data + *pos, n);
  *rx_len += n;
  *pos += n;
  return *rx_len >= want;
}

/*
 * The rest of a request (server) or reply (client) once VER and CMD|REP are checked: RSV ATYP
 * ADDR PORT, decoded into addr. Returns 1 when complete, 0 when more bytes are needed, or
 * -socks5_error_t.
 */
static int
socks5_fill_addr_msg (uint8_t *rx, uint16_t *rx_len, const uint8_t *data, uint32_t len,
		      uint32_t *pos, socks5_addr_t *addr, int check_domain)
{
  uint32_t want;
  int r;

  /* RSV is ignored, as sing-box and Dante do. */
  if (!socks5_fill (rx, rx_len, SOCKS5_HDR_LEN, data, len, pos))
    return 0;
  while ((want = socks5_addr_msg_len (rx, *rx_len)) > *rx_len)
    if (!socks5_fill (rx, rx_len, want, data, len, pos))
      return 0;
  if (want == 0)
    return -SOCKS5_ERR_ADDRESS_TYPE_NOT_SUPPORTED;
  r = socks5_addr_decode (rx + 3, *rx_len - 3, addr, check_domain);
  return r < 0 ? r : 1;
}

static void
socks5_event_reset (socks5_event_t *ev, uint8_t method)
{
  ev->type = SOCKS5_EV_NEED_DATA;
  ev->error = SOCKS5_ERR_NONE;
  ev->remote = 0;
  ev->rep = 0;
  ev->method = method;
  ev->cmd = 0;
  ev->username = 0;
  ev->password = 0;
  ev->username_len = 0;
  ev->password_len = 0;
}

static socks5_event_type_t
socks5_event_error (socks5_event_t *ev, socks5_error_t err, uint8_t rep)
{
  ev->type = SOCKS5_EV_ERROR;
  ev->error = err;
  ev->remote = (uint8_t) socks5_error_is_remote (err);
  ev->rep = rep;
  return SOCKS5_EV_ERROR;
}

/* Server role */

socks5_error_t
socks5_server_init (socks5_server_t *s, const socks5_server_cfg_t *cfg)
{
  memset (s, 0, sizeof (*s));
  s->state = SOCKS5_SERVER_CLOSED;
  s->error = SOCKS5_ERR_BAD_ARGUMENT;
  if (!cfg || !(cfg->methods & (SOCKS5_METHOD_F_NO_AUTH | SOCKS5_METHOD_F_USERPASS)) ||
      (cfg->methods & ~(SOCKS5_METHOD_F_NO_AUTH | SOCKS5_METHOD_F_USERPASS)) ||
      (cfg->commands & ~(SOCKS5_CMD_F_CONNECT | SOCKS5_CMD_F_UDP_ASSOCIATE)))
    return SOCKS5_ERR_BAD_ARGUMENT;
  s->methods = cfg->methods;
  s->commands = cfg->commands;
  s->method = SOCKS5_METHOD_NO_ACCEPTABLE;
  s->error = SOCKS5_ERR_NONE;
  s->state = SOCKS5_SERVER_GREETING;
  return SOCKS5_ERR_NONE;
}

/*
 * Picks only among the methods the client offered (go-gost/x#6 picked one it had not). When
 * both are allowed, username/password wins: it names the user for per-user rules.
 */
static uint8_t
socks5_server_choose_method (const socks5_server_t *s, const uint8_t *offered, uint32_t n)
{
  int no_auth = 0, userpass = 0;
  uint32_t i;

  for (i = 0; i < n; i++)
    {
      no_auth |= offered[i] == SOCKS5_METHOD_NO_AUTH;
      userpass |= offered[i] == SOCKS5_METHOD_USERPASS;
    }
  if (userpass && (s->methods & SOCKS5_METHOD_F_USERPASS))
    return SOCKS5_METHOD_USERPASS;
  if (no_auth && (s->methods & SOCKS5_METHOD_F_NO_AUTH))
    return SOCKS5_METHOD_NO_AUTH;
  return SOCKS5_METHOD_NO_ACCEPTABLE;
}

static int
socks5_server_cmd_allowed (const socks5_server_t *s, uint8_t cmd)
{
  if (cmd == SOCKS5_CMD_CONNECT)
    return !!(s->commands & SOCKS5_CMD_F_CONNECT);
  if (cmd == SOCKS5_CMD_UDP_ASSOCIATE)
    return !!(s->commands & SOCKS5_CMD_F_UDP_ASSOCIATE);
  return 0;
}

/* Ends the handshake; with send_reply the client gets a reply carrying rep before the close. */
static socks5_event_type_t
socks5_server_fail (socks5_server_t *s, socks5_event_t *ev, socks5_out_t *out, socks5_error_t err,
		    int send_reply)
{
  uint8_t rep = socks5_error_rep (err);

  s->state = SOCKS5_SERVER_CLOSED;
  s->error = err;
  s->rep = rep;
  s->rx_len = 0;
  if (send_reply)
    socks5_reply_encode (rep, 0, out);
  return socks5_event_error (ev, err, rep);
}

socks5_event_type_t
socks5_server_feed (socks5_server_t *s, const uint8_t *data, uint32_t len, uint32_t *consumed,
		    socks5_event_t *ev, socks5_out_t *out)
{
  uint32_t pos = 0;
  uint8_t *rx = s->rx;
  socks5_event_type_t t;
  int r;

  out->len = 0;
  socks5_event_reset (ev, s->method);
  if (!data)
    len = 0;

  for (;;)
    {
      switch (s->state)
	{
	case SOCKS5_SERVER_GREETING:
	  if (!socks5_fill (rx, &s->rx_len, 1, data, len, &pos))
	    goto need_data;
	  /* Not SOCKS5 (SOCKS4, TLS, HTTP): there is no reply it would understand. */
	  if (rx[0] != SOCKS5_VERSION)
	    {
	      t = socks5_server_fail (s, ev, out, SOCKS5_ERR_BAD_VERSION, 0);
	      goto done;
	    }
	  if (!socks5_fill (rx, &s->rx_len, 2, data, len, &pos))
	    goto need_data;
	  if (rx[1] == 0)
	    {
	      socks5_out_put2 (out, SOCKS5_VERSION, SOCKS5_METHOD_NO_ACCEPTABLE);
	      t = socks5_server_fail (s, ev, out, SOCKS5_ERR_NO_METHODS, 0);
	      goto done;
	    }
	  if (!socks5_fill (rx, &s->rx_len, 2 + rx[1], data, len, &pos))
	    goto need_data;
	  s->method = socks5_server_choose_method (s, rx + 2, rx[1]);
	  ev->method = s->method;
	  socks5_out_put2 (out, SOCKS5_VERSION, s->method);
	  if (s->method == SOCKS5_METHOD_NO_ACCEPTABLE)
	    {
	      t = socks5_server_fail (s, ev, out, SOCKS5_ERR_NO_ACCEPTABLE_METHOD, 0);
	      goto done;
	    }
	  s->rx_len = 0;
	  s->state =
	    s->method == SOCKS5_METHOD_USERPASS ? SOCKS5_SERVER_AUTH : SOCKS5_SERVER_REQUEST;
	  break;

	case SOCKS5_SERVER_AUTH:
	  if (!socks5_fill (rx, &s->rx_len, 1, data, len, &pos))
	    goto need_data;
	  if (rx[0] != SOCKS5_AUTH_VERSION)
	    {
	      t = socks5_server_fail (s, ev, out, SOCKS5_ERR_BAD_AUTH_VERSION, 0);
	      goto done;
	    }
	  if (!socks5_fill (rx, &s->rx_len, 2, data, len, &pos) ||
	      !socks5_fill (rx, &s->rx_len, 3 + rx[1], data, len, &pos) ||
	      !socks5_fill (rx, &s->rx_len, 3 + rx[1] + rx[2 + rx[1]], data, len, &pos))
	    goto need_data;
	  /* RFC 1929 wants ULEN and PLEN >= 1; empty ones go to the credential check, which
	   * rejects them unless such a user exists, rather than failing as a protocol error. */
	  ev->username_len = rx[1];
	  ev->username = rx + 2;
	  ev->password_len = rx[2 + rx[1]];
	  ev->password = rx + 3 + rx[1];
	  ev->type = SOCKS5_EV_AUTH_REQUEST;
	  s->state = SOCKS5_SERVER_AUTH_WAIT;
	  t = SOCKS5_EV_AUTH_REQUEST;
	  goto done;

	case SOCKS5_SERVER_REQUEST:
	  if (!socks5_fill (rx, &s->rx_len, 1, data, len, &pos))
	    goto need_data;
	  if (rx[0] != SOCKS5_VERSION)
	    {
	      t = socks5_server_fail (s, ev, out, SOCKS5_ERR_BAD_VERSION, 0);
	      goto done;
	    }
	  if (!socks5_fill (rx, &s->rx_len, 2, data, len, &pos))
	    goto need_data;
	  if (!socks5_server_cmd_allowed (s, rx[1]))
	    {
	      t = socks5_server_fail (s, ev, out, SOCKS5_ERR_COMMAND_NOT_SUPPORTED, 1);
	      goto done;
	    }
	  r = socks5_fill_addr_msg (rx, &s->rx_len, data, len, &pos, &ev->addr, 1);
	  if (r == 0)
	    goto need_data;
	  if (r < 0)
	    {
	      t = socks5_server_fail (s, ev, out, (socks5_error_t) -r, 1);
	      goto done;
	    }
	  ev->cmd = rx[1];
	  ev->type = SOCKS5_EV_REQUEST;
	  s->rx_len = 0;
	  s->state = SOCKS5_SERVER_REPLY_WAIT;
	  t = SOCKS5_EV_REQUEST;
	  goto done;

	case SOCKS5_SERVER_AUTH_WAIT:
	case SOCKS5_SERVER_REPLY_WAIT:
	case SOCKS5_SERVER_ESTABLISHED:
	  ev->type = SOCKS5_EV_PAUSED;
	  t = SOCKS5_EV_PAUSED;
	  goto done;

	default:
	  t = socks5_event_error (ev, (socks5_error_t) s->error, s->rep);
	  goto done;
	}
    }

need_data:
  t = SOCKS5_EV_NEED_DATA;
done:
  *consumed = pos;
  return t;
}

socks5_error_t
socks5_server_auth_result (socks5_server_t *s, int ok, socks5_out_t *out)
{
  out->len = 0;
  if (s->state != SOCKS5_SERVER_AUTH_WAIT)
    return s->state == SOCKS5_SERVER_CLOSED ? SOCKS5_ERR_CLOSED : SOCKS5_ERR_STATE;
  /* The credentials are no longer needed; do not keep them in session memory. */
  memset (s->rx, 0, s->rx_len);
  s->rx_len = 0;
  socks5_out_put2 (out, SOCKS5_AUTH_VERSION, ok ? SOCKS5_AUTH_STATUS_OK : SOCKS5_AUTH_STATUS_FAIL);
  if (!ok)
    {
      s->state = SOCKS5_SERVER_CLOSED;
      s->error = SOCKS5_ERR_AUTH_FAILED;
      s->rep = socks5_error_rep (SOCKS5_ERR_AUTH_FAILED);
      return SOCKS5_ERR_AUTH_FAILED;
    }
  s->state = SOCKS5_SERVER_REQUEST;
  return SOCKS5_ERR_NONE;
}

socks5_error_t
socks5_server_reply (socks5_server_t *s, uint8_t rep, const socks5_addr_t *bnd, socks5_out_t *out)
{
  out->len = 0;
  if (s->state != SOCKS5_SERVER_REPLY_WAIT)
    return s->state == SOCKS5_SERVER_CLOSED ? SOCKS5_ERR_CLOSED : SOCKS5_ERR_STATE;
  if (bnd && !socks5_addr_encoded_len (bnd))
    return SOCKS5_ERR_BAD_ARGUMENT;
  socks5_reply_encode (rep, bnd, out);
  if (rep == SOCKS5_REP_SUCCEEDED)
    s->state = SOCKS5_SERVER_ESTABLISHED;
  else
    {
      s->state = SOCKS5_SERVER_CLOSED;
      s->error = SOCKS5_ERR_REQUEST_FAILED;
      s->rep = rep;
    }
  return SOCKS5_ERR_NONE;
}

socks5_error_t
socks5_server_abort (socks5_server_t *s, socks5_reason_t reason, socks5_out_t *out)
{
  uint8_t rep = socks5_rep_from_reason (reason);

  out->len = 0;
  if (s->state == SOCKS5_SERVER_CLOSED)
    return SOCKS5_ERR_CLOSED;
  if (s->state == SOCKS5_SERVER_ESTABLISHED)
    return SOCKS5_ERR_STATE;
  /* Only a pending request can be answered; before it the client expects no reply. */
  if (s->state == SOCKS5_SERVER_REPLY_WAIT)
    socks5_reply_encode (rep, 0, out);
  memset (s->rx, 0, sizeof (s->rx));
  s->rx_len = 0;
  s->state = SOCKS5_SERVER_CLOSED;
  s->error = SOCKS5_ERR_ABORTED;
  s->rep = rep;
  return SOCKS5_ERR_NONE;
}

socks5_server_state_t
socks5_server_state (const socks5_server_t *s)
{
  return (socks5_server_state_t) s->state;
}

int
socks5_server_awaits_message (const socks5_server_t *s)
{
  return (s->state == SOCKS5_SERVER_AUTH || s->state == SOCKS5_SERVER_REQUEST) && !s->rx_len;
}

socks5_error_t
socks5_server_error (const socks5_server_t *s)
{
  return (socks5_error_t) s->error;
}

/* Client role */

/* After the method or auth exchange: wait for the deferred request, or read the reply. */
static uint8_t
socks5_client_next_state (const socks5_client_t *c)
{
  return c->request_sent ? SOCKS5_CLIENT_REPLY : SOCKS5_CLIENT_READY;
}

static int
socks5_client_valid_request (uint8_t cmd, const socks5_addr_t *dst)
{
  return (cmd == SOCKS5_CMD_CONNECT || cmd == SOCKS5_CMD_UDP_ASSOCIATE) &&
	 socks5_addr_encoded_len (dst) &&
	 !(dst->atyp == SOCKS5_ATYP_DOMAIN && dst->domain_len == 0);
}

static void
socks5_client_put_request (socks5_client_t *c, socks5_out_t *out)
{
  uint8_t *p = out->data + out->len;

  p[0] = SOCKS5_VERSION;
  p[1] = c->cmd;
  p[2] = 0;
  out->len += 3 + socks5_addr_encode (&c->dst, p + 3);
  c->request_sent = 1;
}

static void
socks5_client_put_auth (socks5_client_t *c, socks5_out_t *out)
{
  uint8_t *p = out->data + out->len;
  uint32_t n = 0;

  p[n++] = SOCKS5_AUTH_VERSION;
  p[n++] = c->username_len;
  memcpy (p + n, c->username, c->username_len);
  n += c->username_len;
  p[n++] = c->password_len;
  memcpy (p + n, c->password, c->password_len);
  n += c->password_len;
  out->len += n;
}

static void
socks5_client_forget_credentials (socks5_client_t *c)
{
  memset (c->username, 0, sizeof (c->username));
  memset (c->password, 0, sizeof (c->password));
  c->username_len = c->password_len = 0;
}

socks5_error_t
socks5_client_init (socks5_client_t *c, const socks5_client_cfg_t *cfg, socks5_out_t *out)
{
  uint8_t *p = out->data;

  memset (c, 0, sizeof (*c));
  out->len = 0;
  c->state = SOCKS5_CLIENT_CLOSED;
  c->error = SOCKS5_ERR_BAD_ARGUMENT;
  c->rep = SOCKS5_REP_GENERAL_FAILURE;
  if (!cfg || (cfg->defer_request && !cfg->pipeline) ||
      (!cfg->defer_request && !socks5_client_valid_request (cfg->cmd, &cfg->dst)) ||
      (cfg->username && !cfg->password && cfg->password_len) ||
      (!cfg->username && cfg->username_len))
    return SOCKS5_ERR_BAD_ARGUMENT;

  if (!cfg->defer_request)
    {
      c->cmd = cfg->cmd;
      c->dst = cfg->dst;
    }
  c->pipeline = !!cfg->pipeline;
  c->method = SOCKS5_METHOD_NO_ACCEPTABLE;
  if (cfg->username)
    {
      c->offer_userpass = 1;
      c->username_len = cfg->username_len;
      c->password_len = cfg->password_len;
      memcpy (c->username, cfg->username, cfg->username_len);
      if (cfg->password_len)
	memcpy (c->password, cfg->password, cfg->password_len);
    }

  p[0] = SOCKS5_VERSION;
  if (c->pipeline)
    {
      p[1] = 1;
      p[2] = c->offer_userpass ? SOCKS5_METHOD_USERPASS : SOCKS5_METHOD_NO_AUTH;
      out->len = 3;
      if (c->offer_userpass)
	socks5_client_put_auth (c, out);
      socks5_client_forget_credentials (c);
      if (!cfg->defer_request)
	socks5_client_put_request (c, out);
    }
  else if (c->offer_userpass)
    {
      p[1] = 2;
      p[2] = SOCKS5_METHOD_NO_AUTH;
      p[3] = SOCKS5_METHOD_USERPASS;
      out->len = 4;
    }
  else
    {
      p[1] = 1;
      p[2] = SOCKS5_METHOD_NO_AUTH;
      out->len = 3;
    }
  c->error = SOCKS5_ERR_NONE;
  c->rep = 0;
  c->state = SOCKS5_CLIENT_METHOD;
  return SOCKS5_ERR_NONE;
}

static socks5_event_type_t
socks5_client_fail (socks5_client_t *c, socks5_event_t *ev, socks5_error_t err, uint8_t rep)
{
  c->state = SOCKS5_CLIENT_CLOSED;
  c->error = err;
  c->rep = rep;
  c->rx_len = 0;
  socks5_client_forget_credentials (c);
  return socks5_event_error (ev, err, rep);
}

socks5_event_type_t
socks5_client_feed (socks5_client_t *c, const uint8_t *data, uint32_t len, uint32_t *consumed,
		    socks5_event_t *ev, socks5_out_t *out)
{
  uint32_t pos = 0;
  uint8_t *rx = c->rx;
  socks5_event_type_t t;
  int r;

  out->len = 0;
  socks5_event_reset (ev, c->method);
  if (!data)
    len = 0;

  for (;;)
    {
      switch (c->state)
	{
	case SOCKS5_CLIENT_METHOD:
	  if (!socks5_fill (rx, &c->rx_len, 1, data, len, &pos))
	    goto need_data;
	  if (rx[0] != SOCKS5_VERSION)
	    {
	      t = socks5_client_fail (c, ev, SOCKS5_ERR_BAD_VERSION, SOCKS5_REP_GENERAL_FAILURE);
	      goto done;
	    }
	  if (!socks5_fill (rx, &c->rx_len, 2, data, len, &pos))
	    goto need_data;
	  c->method = rx[1];
	  ev->method = c->method;
	  c->rx_len = 0;
	  if (c->method == SOCKS5_METHOD_NO_ACCEPTABLE)
	    {
	      t = socks5_client_fail (c, ev, SOCKS5_ERR_NO_ACCEPTABLE_METHOD,
				      SOCKS5_REP_GENERAL_FAILURE);
	      goto done;
	    }
	  if (c->pipeline)
	    {
	      /* what follows the greeting is already sent, for the one method offered */
	      if (c->method != (c->offer_userpass ? SOCKS5_METHOD_USERPASS : SOCKS5_METHOD_NO_AUTH))
		{
		  t = socks5_client_fail (c, ev, SOCKS5_ERR_METHOD_NOT_OFFERED,
					  SOCKS5_REP_GENERAL_FAILURE);
		  goto done;
		}
	      if (c->offer_userpass)
		{
		  c->state = SOCKS5_CLIENT_AUTH;
		  break;
		}
	      c->state = socks5_client_next_state (c);
	      if (c->state == SOCKS5_CLIENT_READY)
		goto ready;
	      break;
	    }
	  if (c->method == SOCKS5_METHOD_USERPASS && c->offer_userpass)
	    {
	      socks5_client_put_auth (c, out);
	      socks5_client_forget_credentials (c);
	      c->state = SOCKS5_CLIENT_AUTH;
	      break;
	    }
	  if (c->method != SOCKS5_METHOD_NO_AUTH)
	    {
	      t = socks5_client_fail (c, ev, SOCKS5_ERR_METHOD_NOT_OFFERED,
				      SOCKS5_REP_GENERAL_FAILURE);
	      goto done;
	    }
	  socks5_client_forget_credentials (c);
	  socks5_client_put_request (c, out);
	  c->state = SOCKS5_CLIENT_REPLY;
	  break;

	case SOCKS5_CLIENT_AUTH:
	  if (!socks5_fill (rx, &c->rx_len, 1, data, len, &pos))
	    goto need_data;
	  if (rx[0] != SOCKS5_AUTH_VERSION)
	    {
	      t =
		socks5_client_fail (c, ev, SOCKS5_ERR_BAD_AUTH_VERSION, SOCKS5_REP_GENERAL_FAILURE);
	      goto done;
	    }
	  if (!socks5_fill (rx, &c->rx_len, 2, data, len, &pos))
	    goto need_data;
	  if (rx[1] != SOCKS5_AUTH_STATUS_OK)
	    {
	      t = socks5_client_fail (c, ev, SOCKS5_ERR_AUTH_FAILED, SOCKS5_REP_GENERAL_FAILURE);
	      goto done;
	    }
	  c->rx_len = 0;
	  if (!c->pipeline)
	    socks5_client_put_request (c, out);
	  c->state = socks5_client_next_state (c);
	  if (c->state == SOCKS5_CLIENT_READY)
	    goto ready;
	  break;

	case SOCKS5_CLIENT_READY:
	  /* nothing is due from the server before the deferred request */
	  ev->type = SOCKS5_EV_PAUSED;
	  t = SOCKS5_EV_PAUSED;
	  goto done;

	case SOCKS5_CLIENT_REPLY:
	  if (!socks5_fill (rx, &c->rx_len, 1, data, len, &pos))
	    goto need_data;
	  if (rx[0] != SOCKS5_VERSION)
	    {
	      t = socks5_client_fail (c, ev, SOCKS5_ERR_BAD_VERSION, SOCKS5_REP_GENERAL_FAILURE);
	      goto done;
	    }
	  if (!socks5_fill (rx, &c->rx_len, 2, data, len, &pos))
	    goto need_data;
	  /* A refusal ends the connection; the rest of the reply carries nothing we would use,
	   * and some servers close without sending it. */
	  if (rx[1] != SOCKS5_REP_SUCCEEDED)
	    {
	      t = socks5_client_fail (c, ev, SOCKS5_ERR_REQUEST_FAILED, rx[1]);
	      goto done;
	    }
	  /* BND is only informational: accept any domain the server chose to send. */
	  r = socks5_fill_addr_msg (rx, &c->rx_len, data, len, &pos, &ev->addr, 0);
	  if (r == 0)
	    goto need_data;
	  if (r < 0)
	    {
	      t = socks5_client_fail (c, ev, (socks5_error_t) -r, SOCKS5_REP_GENERAL_FAILURE);
	      goto done;
	    }
	  c->rx_len = 0;
	  c->state = SOCKS5_CLIENT_CONNECTED;
	  ev->type = SOCKS5_EV_CONNECTED;
	  t = SOCKS5_EV_CONNECTED;
	  goto done;

	case SOCKS5_CLIENT_CONNECTED:
	  ev->type = SOCKS5_EV_PAUSED;
	  t = SOCKS5_EV_PAUSED;
	  goto done;

	default:
	  t = socks5_event_error (ev, (socks5_error_t) c->error, c->rep);
	  goto done;
	}
    }

ready:
  ev->type = SOCKS5_EV_READY;
  t = SOCKS5_EV_READY;
  goto done;
need_data:
  t = SOCKS5_EV_NEED_DATA;
done:
  *consumed = pos;
  return t;
}

socks5_error_t
socks5_client_request (socks5_client_t *c, uint8_t cmd, const socks5_addr_t *dst, socks5_out_t *out)
{
  out->len = 0;
  if (c->state == SOCKS5_CLIENT_CLOSED)
    return SOCKS5_ERR_CLOSED;
  if (!c->pipeline || c->request_sent)
    return SOCKS5_ERR_STATE;
  if (!dst || !socks5_client_valid_request (cmd, dst))
    return SOCKS5_ERR_BAD_ARGUMENT;
  c->cmd = cmd;
  c->dst = *dst;
  socks5_client_put_request (c, out);
  if (c->state == SOCKS5_CLIENT_READY)
    c->state = SOCKS5_CLIENT_REPLY;
  return SOCKS5_ERR_NONE;
}

socks5_client_state_t
socks5_client_state (const socks5_client_t *c)
{
  return (socks5_client_state_t) c->state;
}

socks5_error_t
socks5_client_error (const socks5_client_t *c)
{
  return (socks5_error_t) c->error;
}

/* UDP request header */

int
socks5_udp_header_parse (const uint8_t *data, uint32_t len, socks5_udp_header_t *h)
{
  int r;

  h->frag = 0;
  if (len < SOCKS5_HDR_LEN)
    return -SOCKS5_ERR_TRUNCATED;
  h->frag = data[2];
  if (h->frag != 0)
    return -SOCKS5_ERR_UDP_FRAGMENTED;
  r = socks5_addr_decode (data + 3, len - 3, &h->addr, 1);
  return r < 0 ? r : 3 + r;
}

int
socks5_udp_header_encode (const socks5_addr_t *addr, uint8_t *out, uint32_t out_size)
{
  uint32_t n = socks5_addr_encoded_len (addr);

  if (!n || (addr->atyp == SOCKS5_ATYP_DOMAIN && addr->domain_len == 0))
    return -SOCKS5_ERR_BAD_ARGUMENT;
  if (3 + n > out_size)
    return -SOCKS5_ERR_NO_SPACE;
  out[0] = 0;
  out[1] = 0;
  out[2] = 0;
  return (int) (3 + socks5_addr_encode (addr, out + 3));
}
