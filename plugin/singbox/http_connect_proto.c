/* SPDX-License-Identifier: Apache-2.0
 * Copyright (c) 2026 vpp-singbox authors
 */

#include <stdio.h>
#include <string.h>

#include "http_connect_proto.h"

typedef struct
{
  uint8_t remote;
  const char *name;
} http_connect_error_info_t;

static const http_connect_error_info_t http_connect_error_info[] = {
#define _(sym, remote, str) { remote, str },
  foreach_http_connect_error
#undef _
};

static const char *const http_connect_event_names[] = {
#define _(sym, str) str,
  foreach_http_connect_event
#undef _
};

static const char *const http_connect_state_names[] = {
#define _(sym, str) str,
  foreach_http_connect_state
#undef _
};

const char *
http_connect_error_name (http_connect_error_t err)
{
  return (unsigned) err < HTTP_CONNECT_N_ERROR ? http_connect_error_info[err].name : "unknown";
}

int
http_connect_error_is_remote (http_connect_error_t err)
{
  return (unsigned) err < HTTP_CONNECT_N_ERROR && err != HTTP_CONNECT_ERR_NONE &&
	 http_connect_error_info[err].remote;
}

const char *
http_connect_event_name (http_connect_event_type_t type)
{
  return (unsigned) type < HTTP_CONNECT_N_EVENT ? http_connect_event_names[type] : "unknown";
}

const char *
http_connect_state_name (http_connect_state_t state)
{
  return (unsigned) state < HTTP_CONNECT_N_STATE ? http_connect_state_names[state] : "unknown";
}

const char *
http_connect_reason_phrase (uint16_t status)
{
  switch (status)
    {
    case 200:
      /* what sing-box, squid and VPP's connect proxy send */
      return "Connection established";
    case 400:
      return "Bad Request";
    case 403:
      return "Forbidden";
    case 405:
      return "Method Not Allowed";
    case 407:
      return "Proxy Authentication Required";
    case 408:
      return "Request Timeout";
    case 414:
      return "URI Too Long";
    case 431:
      return "Request Header Fields Too Large";
    case 500:
      return "Internal Server Error";
    case 502:
      return "Bad Gateway";
    case 503:
      return "Service Unavailable";
    case 504:
      return "Gateway Timeout";
    case 505:
      return "HTTP Version Not Supported";
    }
  return status >= 200 && status < 300 ? "OK" : "Error";
}

uint16_t
http_connect_status_from_rep (uint8_t rep)
{
  switch (rep)
    {
    case 0x00:
      return 200;
    case 0x02: /* not allowed by ruleset */
      return 403;
    case 0x06: /* TTL expired: our connect timed out */
      return 504;
    }
  /* unreachable, refused, failed lookup, our own failure: the gateway could not reach it */
  return 502;
}

int
http_connect_is_http_start (uint8_t b)
{
  return (b >= 'A' && b <= 'Z') || (b >= 'a' && b <= 'z');
}

/*
 * Character classes
 */

static int
is_digit (uint8_t c)
{
  return c >= '0' && c <= '9';
}

static int
is_alpha (uint8_t c)
{
  return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z');
}

/* RFC 9110 section 5.6.2 tchar */
static int
is_tchar (uint8_t c)
{
  return is_alpha (c) || is_digit (c) || (c && strchr ("!#$%&'*+-.^_`|~", c));
}

/* The host bytes accepted in an authority: a DNS name, an IPv4 literal. */
static int
is_host_char (uint8_t c)
{
  return is_alpha (c) || is_digit (c) || c == '-' || c == '.' || c == '_' || c == '~';
}

static int
is_ip6_char (uint8_t c)
{
  return is_digit (c) || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F') || c == ':' || c == '.';
}

static int
is_ctl (uint8_t c)
{
  return c < 0x20 || c == 0x7f;
}

static int
lower (int c)
{
  return c >= 'A' && c <= 'Z' ? c + 32 : c;
}

static int
str_ieq (const char *a, uint32_t alen, const char *b)
{
  uint32_t i, blen = strlen (b);

  if (alen != blen)
    return 0;
  for (i = 0; i < alen; i++)
    if (lower ((uint8_t) a[i]) != lower ((uint8_t) b[i]))
      return 0;
  return 1;
}

/*
 * Base64 (RFC 4648 section 4), for Basic credentials
 */

static const char b64_alphabet[] =
  "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

static uint32_t
b64_encode (const uint8_t *in, uint32_t n, uint8_t *out)
{
  uint32_t i, o = 0, v;

  for (i = 0; i + 2 < n; i += 3)
    {
      v = in[i] << 16 | in[i + 1] << 8 | in[i + 2];
      out[o++] = b64_alphabet[v >> 18];
      out[o++] = b64_alphabet[(v >> 12) & 63];
      out[o++] = b64_alphabet[(v >> 6) & 63];
      out[o++] = b64_alphabet[v & 63];
    }
  if (i < n)
    {
      v = in[i] << 16 | (i + 1 < n ? in[i + 1] << 8 : 0);
      out[o++] = b64_alphabet[v >> 18];
      out[o++] = b64_alphabet[(v >> 12) & 63];
      out[o++] = i + 1 < n ? b64_alphabet[(v >> 6) & 63] : '=';
      out[o++] = '=';
    }
  return o;
}

static int
b64_value (uint8_t c)
{
  if (c >= 'A' && c <= 'Z')
    return c - 'A';
  if (c >= 'a' && c <= 'z')
    return c - 'a' + 26;
  if (is_digit (c))
    return c - '0' + 52;
  if (c == '+')
    return 62;
  if (c == '/')
    return 63;
  return -1;
}

/* Padded or not; -1 when malformed or longer than cap. */
static int
b64_decode (const char *in, uint32_t n, uint8_t *out, uint32_t cap)
{
  uint32_t i, o = 0, bits = 0, nbits = 0, pad = 0;
  int v;

  for (i = 0; i < n; i++)
    {
      if (in[i] == '=')
	{
	  pad++;
	  continue;
	}
      if (pad || (v = b64_value (in[i])) < 0)
	return -1;
      bits = (bits << 6) | v;
      nbits += 6;
      if (nbits >= 8)
	{
	  nbits -= 8;
	  if (o == cap)
	    return -1;
	  out[o++] = bits >> nbits;
	  bits &= (1 << nbits) - 1;
	}
    }
  /* a lone sextet cannot end a group; padding only completes a group of four */
  if (nbits == 6 || (pad && (pad > 2 || (n % 4) != 0)))
    return -1;
  return o;
}

/*
 * Line reader: one byte at a time, so every split of the input gives the same result. Keeps at
 * most cap - 1 bytes of a line, NUL-terminated.
 */

typedef enum
{
  RD_MORE,
  RD_LINE,
  RD_END, /* an empty line */
  RD_ERR,
} rd_result_t;

static rd_result_t
reader_byte (http_connect_reader_t *r, char *line, uint32_t cap, uint8_t b, uint32_t *line_len,
	     http_connect_error_t *err)
{
  if (++r->head_len > HTTP_CONNECT_MAX_HEAD)
    {
      *err = HTTP_CONNECT_ERR_HEAD_TOO_LARGE;
      return RD_ERR;
    }
  if (r->cr)
    {
      r->cr = 0;
      if (b != '\n')
	{
	  *err = HTTP_CONNECT_ERR_BARE_CR;
	  return RD_ERR;
	}
    }
  else if (b == '\r')
    {
      r->cr = 1;
      return RD_MORE;
    }
  if (b != '\n')
    {
      /* line_len cannot wrap: the header block is bounded far below 64 KiB */
      if (r->line_len < cap)
	line[r->line_len] = b;
      r->line_len++;
      return RD_MORE;
    }
  /* the full length, which may exceed what was kept: the caller decides */
  *line_len = r->line_len;
  r->line_len = 0;
  if (*line_len == 0)
    return RD_END;
  line[*line_len < cap ? *line_len : cap - 1] = 0;
  return RD_LINE;
}

/*
 * A header field line: token ":" OWS value OWS. Returns 0 with the name and the trimmed value,
 * or -1. A line starting with whitespace is obsolete line folding (RFC 9112 section 5.2), which
 * a proxy must reject or replace; rejecting it keeps one reading of every request.
 */
static int
parse_field (char *line, uint32_t len, uint32_t *name_len, char **value, uint32_t *value_len)
{
  uint32_t i = 0, e;

  while (i < len && is_tchar (line[i]))
    i++;
  if (i == 0 || i == len || line[i] != ':')
    return -1;
  *name_len = i++;
  while (i < len && (line[i] == ' ' || line[i] == '\t'))
    i++;
  e = len;
  while (e > i && (line[e - 1] == ' ' || line[e - 1] == '\t'))
    e--;
  for (uint32_t k = i; k < e; k++)
    if (is_ctl (line[k]) && line[k] != '\t')
      return -1;
  *value = line + i;
  *value_len = e - i;
  return 0;
}

/* "HTTP/1." DIGIT: returns 0 if p[0..8) is that. */
static int
parse_version (const char *p, uint32_t len)
{
  return len == 8 && !memcmp (p, "HTTP/1.", 7) && is_digit (p[7]) ? 0 : -1;
}

/*
 * Client role
 */

static int
host_ok (const char *host, uint32_t len, int *is_ip6)
{
  uint32_t i;

  *is_ip6 = 0;
  if (len == 0 || len > HTTP_CONNECT_MAX_HOST_LEN)
    return 0;
  for (i = 0; i < len; i++)
    if (host[i] == ':')
      *is_ip6 = 1;
  for (i = 0; i < len; i++)
    if (!(*is_ip6 ? is_ip6_char (host[i]) : is_host_char (host[i])))
      return 0;
  return 1;
}

static int
creds_ok (const uint8_t *user, uint32_t user_len, const uint8_t *pass, uint32_t pass_len)
{
  uint32_t i;

  if (user_len > HTTP_CONNECT_MAX_CRED_LEN || pass_len > HTTP_CONNECT_MAX_CRED_LEN ||
      (pass_len && !user_len) || (user_len && !user) || (pass_len && !pass))
    return 0;
  for (i = 0; i < user_len; i++)
    if (is_ctl (user[i]) || user[i] == ':')
      return 0;
  for (i = 0; i < pass_len; i++)
    if (is_ctl (pass[i]))
      return 0;
  return 1;
}

/* The request line and Host written by the caller (o bytes): adds the credentials and the end. */
static int
request_finish (uint8_t *out, uint32_t cap, uint32_t o, const uint8_t *user, uint32_t user_len,
		const uint8_t *pass, uint32_t pass_len)
{
  uint8_t cred[2 * HTTP_CONNECT_MAX_CRED_LEN + 1];

  if (o + (user_len ? 27 + 4 * ((user_len + pass_len + 3) / 3) + 2 : 0) + 2 > cap)
    return -HTTP_CONNECT_ERR_NO_SPACE;
  if (user_len)
    {
      memcpy (cred, user, user_len);
      cred[user_len] = ':';
      if (pass_len)
	memcpy (cred + user_len + 1, pass, pass_len);
      memcpy (out + o, "Proxy-Authorization: Basic ", 27);
      o += 27;
      o += b64_encode (cred, user_len + 1 + pass_len, out + o);
      memset (cred, 0, sizeof (cred));
      out[o++] = '\r';
      out[o++] = '\n';
    }
  out[o++] = '\r';
  out[o++] = '\n';
  return o;
}

int
http_connect_request_write (uint8_t *out, uint32_t cap, const char *host, uint32_t host_len,
			    uint16_t port, const uint8_t *user, uint32_t user_len,
			    const uint8_t *pass, uint32_t pass_len)
{
  char authority[HTTP_CONNECT_MAX_HOST_LEN + 9];
  int is_ip6, alen, o;

  if (!out || !host || !host_ok (host, host_len, &is_ip6) || port == 0 ||
      !creds_ok (user, user_len, pass, pass_len))
    return -HTTP_CONNECT_ERR_BAD_ARGUMENT;
  alen = snprintf (authority, sizeof (authority), is_ip6 ? "[%.*s]:%u" : "%.*s:%u", (int) host_len,
		   host, port);
  if ((uint32_t) (8 + alen + 11 + 6 + alen + 2) >= cap)
    return -HTTP_CONNECT_ERR_NO_SPACE;
  o = snprintf ((char *) out, cap, "CONNECT %s HTTP/1.1\r\nHost: %s\r\n", authority, authority);
  return request_finish (out, cap, o, user, user_len, pass, pass_len);
}

int
http_connect_probe_write (uint8_t *out, uint32_t cap, const uint8_t *user, uint32_t user_len,
			  const uint8_t *pass, uint32_t pass_len)
{
  static const char line[] = "OPTIONS * HTTP/1.1\r\nHost: proxy\r\n";

  if (!out || !creds_ok (user, user_len, pass, pass_len))
    return -HTTP_CONNECT_ERR_BAD_ARGUMENT;
  if (sizeof (line) - 1 >= cap)
    return -HTTP_CONNECT_ERR_NO_SPACE;
  memcpy (out, line, sizeof (line) - 1);
  return request_finish (out, cap, sizeof (line) - 1, user, user_len, pass, pass_len);
}

void
http_connect_client_init (http_connect_client_t *c)
{
  memset (c, 0, sizeof (*c));
  c->state = HTTP_CONNECT_START_LINE;
}

/* "HTTP/1.x SP 3DIGIT [SP reason]": the status, or 0. */
static uint16_t
parse_status_line (const char *l, uint32_t len)
{
  uint16_t status;
  uint32_t i;

  if (len < 12 || parse_version (l, 8) || l[8] != ' ' || !is_digit (l[9]) || !is_digit (l[10]) ||
      !is_digit (l[11]) || (len > 12 && l[12] != ' '))
    return 0;
  for (i = 13; i < len; i++)
    if (is_ctl (l[i]) && l[i] != '\t')
      return 0;
  status = (l[9] - '0') * 100 + (l[10] - '0') * 10 + (l[11] - '0');
  return status >= 100 && status <= 599 ? status : 0;
}

static http_connect_event_type_t
event_error (http_connect_event_t *ev, http_connect_error_t err, uint16_t status)
{
  ev->type = HTTP_CONNECT_EV_ERROR;
  ev->error = err;
  ev->status = status;
  return HTTP_CONNECT_EV_ERROR;
}

/* What both feeds refuse before reading a byte: a closed parser, or bytes
 * promised without a buffer. Sets the error event and returns 1 then. */
static int
feed_refused (http_connect_state_t state, const uint8_t *data, uint32_t len,
	      http_connect_event_t *ev)
{
  if (state == HTTP_CONNECT_CLOSED)
    return event_error (ev, HTTP_CONNECT_ERR_CLOSED, 0), 1;
  if (!data && len)
    return event_error (ev, HTTP_CONNECT_ERR_BAD_ARGUMENT, 0), 1;
  return 0;
}

static http_connect_event_type_t
client_fail (http_connect_client_t *c, http_connect_error_t err, http_connect_event_t *ev)
{
  c->state = HTTP_CONNECT_CLOSED;
  c->error = err;
  return event_error (ev, err, c->status);
}

http_connect_event_type_t
http_connect_client_feed (http_connect_client_t *c, const uint8_t *data, uint32_t len,
			  uint32_t *consumed, http_connect_event_t *ev)
{
  http_connect_error_t err = HTTP_CONNECT_ERR_NONE;
  uint32_t i, line_len, name_len, value_len;
  char *value;
  rd_result_t rd;

  memset (ev, 0, sizeof (*ev));
  *consumed = 0;
  if (c->state == HTTP_CONNECT_ESTABLISHED)
    return ev->type = HTTP_CONNECT_EV_PAUSED;
  if (feed_refused (c->state, data, len, ev))
    return HTTP_CONNECT_EV_ERROR;

  for (i = 0; i < len; i++)
    {
      rd = reader_byte (&c->r, c->line, sizeof (c->line), data[i], &line_len, &err);
      /* not an HTTP/1.x response (a SOCKS5 reply, a banner): say so at once rather than wait
       * for a line end that may never come */
      if (rd == RD_MORE && c->state == HTTP_CONNECT_START_LINE && c->r.line_len > 0 &&
	  c->r.line_len <= 7 && c->line[c->r.line_len - 1] != "HTTP/1."[c->r.line_len - 1])
	{
	  *consumed = i + 1;
	  return client_fail (c, HTTP_CONNECT_ERR_BAD_STATUS_LINE, ev);
	}
      if (rd == RD_MORE)
	continue;
      *consumed = i + 1;
      if (rd == RD_ERR)
	return client_fail (c, err, ev);
      if (c->state == HTTP_CONNECT_START_LINE)
	{
	  if (rd == RD_LINE && line_len >= sizeof (c->line))
	    return client_fail (c, HTTP_CONNECT_ERR_LINE_TOO_LONG, ev);
	  if (rd == RD_END || !(c->status = parse_status_line (c->line, line_len)))
	    return client_fail (c, HTTP_CONNECT_ERR_BAD_STATUS_LINE, ev);
	  /* a final non-2xx needs no more reading: the connection is of no use */
	  if (c->status == 407)
	    return client_fail (c, HTTP_CONNECT_ERR_AUTH_REQUIRED, ev);
	  if (c->status >= 300)
	    return client_fail (c, HTTP_CONNECT_ERR_REFUSED, ev);
	  c->interim = c->status < 200;
	  c->state = HTTP_CONNECT_HEADERS;
	  continue;
	}
      if (rd == RD_LINE)
	{
	  if (++c->r.n_fields > HTTP_CONNECT_MAX_HEADERS)
	    return client_fail (c, HTTP_CONNECT_ERR_TOO_MANY_HEADERS, ev);
	  /* only the status line is kept: a longer field is checked for its name alone */
	  if (parse_field (c->line, line_len < sizeof (c->line) ? line_len : sizeof (c->line) - 1,
			   &name_len, &value, &value_len))
	    return client_fail (c, HTTP_CONNECT_ERR_BAD_HEADER, ev);
	  continue;
	}
      /* end of a header block: a 1xx is followed by the real response (RFC 9110 15.2) */
      if (c->interim)
	{
	  c->interim = 0;
	  c->r.n_fields = 0;
	  c->state = HTTP_CONNECT_START_LINE;
	  continue;
	}
      c->state = HTTP_CONNECT_ESTABLISHED;
      ev->type = HTTP_CONNECT_EV_CONNECTED;
      ev->status = c->status;
      return HTTP_CONNECT_EV_CONNECTED;
    }
  *consumed = len;
  return ev->type = HTTP_CONNECT_EV_NEED_DATA;
}

http_connect_state_t
http_connect_client_state (const http_connect_client_t *c)
{
  return c->state;
}

http_connect_error_t
http_connect_client_error (const http_connect_client_t *c)
{
  return c->error;
}

/*
 * Server role
 */

void
http_connect_server_init (http_connect_server_t *s)
{
  memset (s, 0, sizeof (*s));
  s->state = HTTP_CONNECT_START_LINE;
}

static void
write_response (http_connect_out_t *out, uint16_t status)
{
  const char *extra = "";
  int n;

  if (status == 407)
    extra = "Proxy-Authenticate: Basic realm=\"singbox\"\r\n";
  else if (status == 405)
    extra = "Allow: CONNECT\r\n";
  if (status >= 200 && status < 300)
    n = snprintf ((char *) out->data, sizeof (out->data), "HTTP/1.1 %u %s\r\n\r\n", status,
		  http_connect_reason_phrase (status));
  else
    n = snprintf ((char *) out->data, sizeof (out->data),
		  "HTTP/1.1 %u %s\r\n%sConnection: close\r\nContent-Length: 0\r\n\r\n", status,
		  http_connect_reason_phrase (status), extra);
  out->len = n;
}

static http_connect_event_type_t
server_fail (http_connect_server_t *s, http_connect_error_t err, uint16_t status,
	     http_connect_event_t *ev, http_connect_out_t *out)
{
  s->state = HTTP_CONNECT_CLOSED;
  s->error = err;
  s->status = status;
  write_response (out, status);
  memset (s->username, 0, sizeof (s->username));
  memset (s->password, 0, sizeof (s->password));
  return event_error (ev, err, status);
}

/* authority-form (RFC 9112 section 3.2.3): host ":" port, host a name, IPv4 or [IPv6]. */
static int
parse_target (http_connect_server_t *s, const char *t, uint32_t len)
{
  uint32_t i, hs, he, p;
  uint32_t port = 0;

  if (len && t[0] == '[')
    {
      for (he = 1; he < len && t[he] != ']'; he++)
	if (!is_ip6_char (t[he]))
	  return -1;
      /* every IPv6 literal has a colon; without one it would read back as a name */
      if (he == len || he == 1 || !memchr (t + 1, ':', he - 1))
	return -1;
      hs = 1;
      p = he + 1;
      s->host_is_ip6 = 1;
    }
  else
    {
      for (he = 0; he < len && t[he] != ':'; he++)
	if (!is_host_char (t[he]))
	  return -1;
      hs = 0;
      p = he;
      s->host_is_ip6 = 0;
    }
  if (he - hs == 0 || he - hs > HTTP_CONNECT_MAX_HOST_LEN || p >= len || t[p] != ':' ||
      len - p - 1 == 0 || len - p - 1 > 5)
    return -1;
  for (i = p + 1; i < len; i++)
    {
      if (!is_digit (t[i]))
	return -1;
      port = port * 10 + (t[i] - '0');
    }
  if (port == 0 || port > 65535)
    return -1;
  memcpy (s->host, t + hs, he - hs);
  s->host[he - hs] = 0;
  s->host_len = he - hs;
  s->port = port;
  return 0;
}

/* Returns the status to refuse with, or 0. */
static uint16_t
parse_request_line (http_connect_server_t *s, char *l, uint32_t len, http_connect_error_t *err)
{
  char *sp1 = memchr (l, ' ', len), *sp2;
  uint32_t mlen, tlen;

  *err = HTTP_CONNECT_ERR_BAD_REQUEST_LINE;
  if (!sp1)
    return 400;
  mlen = sp1 - l;
  sp2 = memchr (sp1 + 1, ' ', len - mlen - 1);
  if (!sp2)
    return 400;
  tlen = sp2 - sp1 - 1;
  for (uint32_t i = 0; i < mlen; i++)
    if (!is_tchar (l[i]))
      return 400;
  if (mlen == 0 || tlen == 0)
    return 400;
  if (parse_version (sp2 + 1, len - (sp2 + 1 - l)))
    {
      /* "HTTP/2.0" and the like are versions; anything else is not a request line */
      const char *v = sp2 + 1;
      if (len - (v - l) == 8 && !memcmp (v, "HTTP/", 5) && is_digit (v[5]) && v[6] == '.' &&
	  is_digit (v[7]))
	{
	  *err = HTTP_CONNECT_ERR_BAD_VERSION;
	  return 505;
	}
      return 400;
    }
  if (mlen != 7 || memcmp (l, "CONNECT", 7))
    {
      *err = HTTP_CONNECT_ERR_BAD_METHOD;
      return 405;
    }
  if (parse_target (s, sp1 + 1, tlen))
    {
      *err = HTTP_CONNECT_ERR_BAD_TARGET;
      return 400;
    }
  return 0;
}

/* Proxy-Authorization: Basic token68. Malformed credentials are not a malformed request: they
 * are credentials that do not match, answered by the caller (407 when auth is required). */
static void
parse_basic (http_connect_server_t *s, const char *v, uint32_t len)
{
  uint8_t cred[2 * HTTP_CONNECT_MAX_CRED_LEN + 1];
  uint32_t i = 0, ulen, plen;
  uint8_t *colon;
  int n;

  s->auth_ok = 0;
  while (i < len && v[i] != ' ')
    i++;
  if (!str_ieq (v, i, "Basic"))
    return;
  while (i < len && v[i] == ' ')
    i++;
  n = b64_decode (v + i, len - i, cred, sizeof (cred));
  if (n < 0 || !(colon = memchr (cred, ':', n)))
    goto done;
  ulen = colon - cred;
  plen = n - ulen - 1;
  if (ulen > HTTP_CONNECT_MAX_CRED_LEN || plen > HTTP_CONNECT_MAX_CRED_LEN)
    goto done;
  s->username_len = ulen;
  s->password_len = plen;
  memcpy (s->username, cred, s->username_len);
  memcpy (s->password, colon + 1, s->password_len);
  s->auth_ok = 1;
done:
  memset (cred, 0, sizeof (cred));
}

/* Returns the status to refuse with, or 0. */
static uint16_t
server_field (http_connect_server_t *s, char *line, uint32_t len, http_connect_error_t *err)
{
  uint32_t name_len, value_len;
  char *value;

  *err = HTTP_CONNECT_ERR_BAD_HEADER;
  if (parse_field (line, len, &name_len, &value, &value_len))
    return 400;
  if (str_ieq (line, name_len, "Proxy-Authorization"))
    {
      /* two would leave which one counts to the reader: refuse */
      if (s->auth_seen)
	return 400;
      s->auth_seen = 1;
      parse_basic (s, value, value_len);
    }
  /* "A CONNECT request message does not have content" (RFC 9110 9.3.6): content here
   * would be read as tunnel bytes by us and as a body by someone else */
  else if (str_ieq (line, name_len, "Transfer-Encoding") ||
	   (str_ieq (line, name_len, "Content-Length") && !(value_len == 1 && value[0] == '0')))
    {
      *err = HTTP_CONNECT_ERR_BAD_CONTENT;
      return 400;
    }
  return 0;
}

http_connect_event_type_t
http_connect_server_feed (http_connect_server_t *s, const uint8_t *data, uint32_t len,
			  uint32_t *consumed, http_connect_event_t *ev, http_connect_out_t *out)
{
  http_connect_error_t err = HTTP_CONNECT_ERR_NONE;
  uint32_t i, line_len;
  uint16_t status;
  rd_result_t rd;

  memset (ev, 0, sizeof (*ev));
  *consumed = 0;
  out->len = 0;
  if (s->state == HTTP_CONNECT_REPLY_WAIT || s->state == HTTP_CONNECT_ESTABLISHED)
    return ev->type = HTTP_CONNECT_EV_PAUSED;
  if (feed_refused (s->state, data, len, ev))
    return HTTP_CONNECT_EV_ERROR;

  for (i = 0; i < len; i++)
    {
      rd = reader_byte (&s->r, s->line, sizeof (s->line), data[i], &line_len, &err);
      if (rd == RD_MORE)
	continue;
      *consumed = i + 1;
      if (rd == RD_ERR)
	return server_fail (s, err, err == HTTP_CONNECT_ERR_HEAD_TOO_LARGE ? 431 : 400, ev, out);
      if (rd == RD_LINE && line_len >= sizeof (s->line))
	return server_fail (s, HTTP_CONNECT_ERR_LINE_TOO_LONG,
			    s->state == HTTP_CONNECT_START_LINE ? 414 : 431, ev, out);
      if (s->state == HTTP_CONNECT_START_LINE)
	{
	  /* empty lines before the request line are ignored (RFC 9112 section 2.2) */
	  if (rd == RD_END)
	    continue;
	  if ((status = parse_request_line (s, s->line, line_len, &err)))
	    return server_fail (s, err, status, ev, out);
	  s->state = HTTP_CONNECT_HEADERS;
	  continue;
	}
      if (rd == RD_LINE)
	{
	  if (++s->r.n_fields > HTTP_CONNECT_MAX_HEADERS)
	    return server_fail (s, HTTP_CONNECT_ERR_TOO_MANY_HEADERS, 431, ev, out);
	  if ((status = server_field (s, s->line, line_len, &err)))
	    return server_fail (s, err, status, ev, out);
	  continue;
	}
      s->state = HTTP_CONNECT_REPLY_WAIT;
      ev->type = HTTP_CONNECT_EV_REQUEST;
      ev->host = s->host;
      ev->host_len = s->host_len;
      ev->host_is_ip6 = s->host_is_ip6;
      ev->port = s->port;
      ev->auth = s->auth_ok;
      if (s->auth_ok)
	{
	  ev->username = s->username;
	  ev->username_len = s->username_len;
	  ev->password = s->password;
	  ev->password_len = s->password_len;
	}
      return HTTP_CONNECT_EV_REQUEST;
    }
  *consumed = len;
  return ev->type = HTTP_CONNECT_EV_NEED_DATA;
}

http_connect_error_t
http_connect_server_reply (http_connect_server_t *s, uint16_t status, http_connect_out_t *out)
{
  out->len = 0;
  if (s->state != HTTP_CONNECT_REPLY_WAIT)
    return HTTP_CONNECT_ERR_STATE;
  if (status < 200 || status > 599)
    return HTTP_CONNECT_ERR_BAD_ARGUMENT;
  write_response (out, status);
  s->status = status;
  /* the credentials were checked by now: do not keep them */
  memset (s->username, 0, sizeof (s->username));
  memset (s->password, 0, sizeof (s->password));
  if (status < 300)
    {
      s->state = HTTP_CONNECT_ESTABLISHED;
      return HTTP_CONNECT_ERR_NONE;
    }
  s->state = HTTP_CONNECT_CLOSED;
  s->error = status == 407 ? HTTP_CONNECT_ERR_AUTH_REQUIRED : HTTP_CONNECT_ERR_REFUSED;
  return HTTP_CONNECT_ERR_NONE;
}

http_connect_error_t
http_connect_server_abort (http_connect_server_t *s, uint16_t status, http_connect_out_t *out)
{
  out->len = 0;
  if (s->state == HTTP_CONNECT_CLOSED || s->state == HTTP_CONNECT_ESTABLISHED)
    return HTTP_CONNECT_ERR_STATE;
  if (status < 300 || status > 599)
    return HTTP_CONNECT_ERR_BAD_ARGUMENT;
  write_response (out, status);
  s->status = status;
  s->state = HTTP_CONNECT_CLOSED;
  s->error = HTTP_CONNECT_ERR_REFUSED;
  memset (s->username, 0, sizeof (s->username));
  memset (s->password, 0, sizeof (s->password));
  return HTTP_CONNECT_ERR_NONE;
}

http_connect_state_t
http_connect_server_state (const http_connect_server_t *s)
{
  return s->state;
}

http_connect_error_t
http_connect_server_error (const http_connect_server_t *s)
{
  return s->error;
}
