/* SPDX-License-Identifier: Apache-2.0
 * Copyright (c) 2026 vpp-singbox authors
 */

/*
 * Unit tests of the HTTP CONNECT core (http_connect_proto.c). Every sample is fed whole, byte by
 * byte, in uneven chunks and followed by tunnel bytes: all must give the same outcome, and the
 * bytes after the header block are never consumed.
 */

#include "harness.h"
#include "http_connect_driver.h"

#define S(lit) (const uint8_t *) (lit), (uint32_t) (sizeof (lit) - 1)
/* CHECK_MEM against a string literal (S () cannot be a macro argument: it is two) */
#define CHECK_LIT(a, alen, lit) CHECK_MEM ((a), (alen), (const uint8_t *) (lit), sizeof (lit) - 1)

static const uint8_t split_patterns[][5] = {
  { 1 }, { 2 }, { 3, 1 }, { 7, 2, 5 }, { 13, 1, 1, 40 }, { 64 },
};
static const char tunnel_bytes[] = "\x16\x03\x01\x00\x05hello TUNNEL\r\n\r\n";

/* Feeds data (plus tunnel bytes when trailing) every way; returns the whole-buffer result. */
static hc_result_t
every_split (int server, const uint8_t *data, uint32_t len, uint16_t reply, int trailing)
{
  uint8_t buf[16384];
  hc_result_t whole, r;
  uint32_t n = len, i;

  memcpy (buf, data, len);
  if (trailing)
    {
      memcpy (buf + len, tunnel_bytes, sizeof (tunnel_bytes) - 1);
      n += sizeof (tunnel_bytes) - 1;
    }
  if (server)
    hc_drive_server (buf, n, 0, 0, reply, &whole);
  else
    hc_drive_client (buf, n, 0, 0, &whole);
  CHECK (!whole.contract_broken);
  for (i = 0; i < sizeof (split_patterns) / sizeof (split_patterns[0]); i++)
    {
      if (server)
	hc_drive_server (buf, n, split_patterns[i], 5, reply, &r);
      else
	hc_drive_client (buf, n, split_patterns[i], 5, &r);
      CHECK (!r.contract_broken);
      if (!hc_result_equal (&whole, &r))
	test_report (__FILE__, __LINE__, "split pattern %u differs from whole feed", i);
    }
  return whole;
}

/* A sample whose outcome is final: the same with and without tunnel bytes after it. */
static hc_result_t
sample (int server, const uint8_t *data, uint32_t len, uint16_t reply)
{
  hc_result_t a = every_split (server, data, len, reply, 0);
  hc_result_t b = every_split (server, data, len, reply, 1);

  if (!hc_result_equal (&a, &b))
    test_report (__FILE__, __LINE__, "trailing bytes changed the outcome");
  return a;
}

static hc_result_t
client (const uint8_t *data, uint32_t len)
{
  return sample (0, data, len, 0);
}

static hc_result_t
server (const uint8_t *data, uint32_t len, uint16_t reply)
{
  return sample (1, data, len, reply);
}

/*
 * Client role: responses
 */

static void
test_client_singbox_200 (void)
{
  hc_result_t r = client (S ("HTTP/1.1 200 Connection established\r\n\r\n"));

  CHECK_EQ (r.type, HTTP_CONNECT_EV_CONNECTED);
  CHECK_EQ (r.status, 200);
  CHECK_EQ (r.consumed, 39);
}

static void
test_client_200_variants (void)
{
  hc_result_t r;

  r = client (S ("HTTP/1.0 200 OK\r\nProxy-Agent: squid/6\r\nVia: 1.1 p\r\n\r\n"));
  CHECK_EQ (r.type, HTTP_CONNECT_EV_CONNECTED);
  CHECK_EQ (r.consumed, 53);
  /* bare LF line ends, no reason phrase, another 2xx */
  r = client (S ("HTTP/1.1 204\nX: y\n\n"));
  CHECK_EQ (r.type, HTTP_CONNECT_EV_CONNECTED);
  CHECK_EQ (r.status, 204);
  CHECK_EQ (r.consumed, 19);
  /* a field longer than what is kept is still a field */
  {
    char buf[1200];
    int n = snprintf (buf, sizeof (buf), "HTTP/1.1 200 OK\r\nX-Long: %0900d\r\n\r\n", 7);
    r = client ((uint8_t *) buf, n);
    CHECK_EQ (r.type, HTTP_CONNECT_EV_CONNECTED);
    CHECK_EQ (r.consumed, n);
  }
}

static void
test_client_interim_then_200 (void)
{
  hc_result_t r = client (S ("HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\n\r\n"));

  CHECK_EQ (r.type, HTTP_CONNECT_EV_CONNECTED);
  CHECK_EQ (r.status, 200);
  CHECK_EQ (r.consumed, 44);
}

static void
test_client_non_2xx (void)
{
  static const struct
  {
    const char *resp;
    uint16_t status;
    http_connect_error_t err;
  } cases[] = {
    { "HTTP/1.1 407 Proxy Authentication Required\r\nProxy-Authenticate: Basic\r\n\r\n", 407,
      HTTP_CONNECT_ERR_AUTH_REQUIRED },
    { "HTTP/1.1 403 Forbidden\r\n\r\n", 403, HTTP_CONNECT_ERR_REFUSED },
    { "HTTP/1.1 502 Bad Gateway\r\nContent-Length: 3\r\n\r\nbad", 502, HTTP_CONNECT_ERR_REFUSED },
    { "HTTP/1.1 503 Service Unavailable\r\n\r\n", 503, HTTP_CONNECT_ERR_REFUSED },
    { "HTTP/1.1 301 Moved\r\n\r\n", 301, HTTP_CONNECT_ERR_REFUSED },
  };
  uint32_t i;

  for (i = 0; i < sizeof (cases) / sizeof (cases[0]); i++)
    {
      hc_result_t r = client ((const uint8_t *) cases[i].resp, strlen (cases[i].resp));
      CHECK_EQ (r.type, HTTP_CONNECT_EV_ERROR);
      CHECK_EQ (r.status, cases[i].status);
      CHECK_EQ (r.error, cases[i].err);
      /* the status line is enough to know */
      CHECK_EQ (r.consumed, (uint32_t) (strchr (cases[i].resp, '\n') - cases[i].resp + 1));
    }
}

static void
test_client_malformed (void)
{
  static const struct
  {
    const char *resp;
    http_connect_error_t err;
  } cases[] = {
    { "SSH-2.0-OpenSSH_9.2\r\n", HTTP_CONNECT_ERR_BAD_STATUS_LINE },
    { "\x05\x02", HTTP_CONNECT_ERR_BAD_STATUS_LINE }, /* a SOCKS5 method choice: known at once */
    { "HTTP/2", HTTP_CONNECT_ERR_BAD_STATUS_LINE },
    { "HTTP/2 200\r\n\r\n", HTTP_CONNECT_ERR_BAD_STATUS_LINE },
    { "HTTP/1.1 20x OK\r\n\r\n", HTTP_CONNECT_ERR_BAD_STATUS_LINE },
    { "HTTP/1.1 600 Huh\r\n\r\n", HTTP_CONNECT_ERR_BAD_STATUS_LINE },
    { "HTTP/1.1  200 OK\r\n\r\n", HTTP_CONNECT_ERR_BAD_STATUS_LINE },
    { "HTTP/1.1 2000\r\n\r\n", HTTP_CONNECT_ERR_BAD_STATUS_LINE },
    { "HTTP/1.1 200 O\x01K\r\n\r\n", HTTP_CONNECT_ERR_BAD_STATUS_LINE },
    { "\r\nHTTP/1.1 200 OK\r\n\r\n", HTTP_CONNECT_ERR_BAD_STATUS_LINE },
    { "HTTP/1.1 200 OK\rX", HTTP_CONNECT_ERR_BARE_CR },
    { "HTTP/1.1 200 OK\r\nNoColon\r\n\r\n", HTTP_CONNECT_ERR_BAD_HEADER },
    { "HTTP/1.1 200 OK\r\n: empty name\r\n\r\n", HTTP_CONNECT_ERR_BAD_HEADER },
    { "HTTP/1.1 200 OK\r\nA: b\r\n folded\r\n\r\n", HTTP_CONNECT_ERR_BAD_HEADER },
    { "HTTP/1.1 200 OK\r\nA: b\x01\r\n\r\n", HTTP_CONNECT_ERR_BAD_HEADER },
  };
  uint32_t i;

  for (i = 0; i < sizeof (cases) / sizeof (cases[0]); i++)
    {
      hc_result_t r = client ((const uint8_t *) cases[i].resp, strlen (cases[i].resp));
      if (r.type != HTTP_CONNECT_EV_ERROR || r.error != cases[i].err)
	test_report (__FILE__, __LINE__, "case %u: %s / %s", i, http_connect_event_name (r.type),
		     http_connect_error_name (r.error));
    }
}

static void
test_client_bounds (void)
{
  static char buf[12000];
  hc_result_t r;
  int n, i;

  /* status line longer than kept */
  n = snprintf (buf, sizeof (buf), "HTTP/1.1 200 %0300d\r\n\r\n", 1);
  r = client ((uint8_t *) buf, n);
  CHECK_EQ (r.error, HTTP_CONNECT_ERR_LINE_TOO_LONG);
  /* 64 fields pass, 65 do not */
  n = snprintf (buf, sizeof (buf), "HTTP/1.1 200 OK\r\n");
  for (i = 0; i < 64; i++)
    n += snprintf (buf + n, sizeof (buf) - n, "F%d: v\r\n", i);
  n += snprintf (buf + n, sizeof (buf) - n, "\r\n");
  r = client ((uint8_t *) buf, n);
  CHECK_EQ (r.type, HTTP_CONNECT_EV_CONNECTED);
  n -= 2;
  n += snprintf (buf + n, sizeof (buf) - n, "F64: v\r\n\r\n");
  r = client ((uint8_t *) buf, n);
  CHECK_EQ (r.error, HTTP_CONNECT_ERR_TOO_MANY_HEADERS);
  /* the whole block: 8192 bytes pass, 8193 do not */
  n = snprintf (buf, sizeof (buf), "HTTP/1.1 200 OK\r\nX: ");
  memset (buf + n, 'a', 8192 - n - 4);
  memcpy (buf + 8192 - 4, "\r\n\r\n", 4);
  r = client ((uint8_t *) buf, 8192);
  CHECK_EQ (r.type, HTTP_CONNECT_EV_CONNECTED);
  CHECK_EQ (r.consumed, 8192);
  memmove (buf + n + 1, buf + n, 8192 - n);
  buf[n] = 'a';
  r = client ((uint8_t *) buf, 8193);
  CHECK_EQ (r.error, HTTP_CONNECT_ERR_HEAD_TOO_LARGE);
  /* interim responses count against the same bound: no endless stream of 100s */
  n = 0;
  while (n + 30 < (int) sizeof (buf))
    n += snprintf (buf + n, sizeof (buf) - n, "HTTP/1.1 100 Continue\r\n\r\n");
  r = client ((uint8_t *) buf, n);
  CHECK_EQ (r.error, HTTP_CONNECT_ERR_HEAD_TOO_LARGE);
}

static void
test_client_incomplete (void)
{
  hc_result_t r = every_split (0, S ("HTTP/1.1 200 OK\r\nX: y\r\n"), 0, 0);

  CHECK_EQ (r.type, HTTP_CONNECT_EV_NEED_DATA);
  CHECK_EQ (r.consumed, 23);
}

static void
test_client_closed_and_bad_args (void)
{
  http_connect_client_t c;
  http_connect_event_t ev;
  uint32_t consumed;

  http_connect_client_init (&c);
  CHECK_EQ (http_connect_client_feed (&c, 0, 3, &consumed, &ev), HTTP_CONNECT_EV_ERROR);
  CHECK_EQ (ev.error, HTTP_CONNECT_ERR_BAD_ARGUMENT);
  CHECK_EQ (http_connect_client_feed (&c, S ("HTTP/1.1 403 No\r\n"), &consumed, &ev),
	    HTTP_CONNECT_EV_ERROR);
  CHECK_EQ (http_connect_client_feed (&c, S ("x"), &consumed, &ev), HTTP_CONNECT_EV_ERROR);
  CHECK_EQ (ev.error, HTTP_CONNECT_ERR_CLOSED);
  CHECK_EQ (consumed, 0);
  CHECK (!http_connect_error_is_remote (HTTP_CONNECT_ERR_CLOSED));
}

/*
 * Client role: requests
 */

static void
test_request_write (void)
{
  uint8_t out[HTTP_CONNECT_REQUEST_MAX];
  int n;

  n = http_connect_request_write (out, sizeof (out), "192.0.2.1", 9, 80, 0, 0, 0, 0);
  CHECK_LIT (out, n, ("CONNECT 192.0.2.1:80 HTTP/1.1\r\nHost: 192.0.2.1:80\r\n\r\n"));
  n =
    http_connect_request_write (out, sizeof (out), "2001:db8::1", 11, 443, S ("user"), S ("pass"));
  CHECK_LIT (out, n,
	     ("CONNECT [2001:db8::1]:443 HTTP/1.1\r\nHost: [2001:db8::1]:443\r\n"
	      "Proxy-Authorization: Basic dXNlcjpwYXNz\r\n\r\n"));
  /* RFC 7617's example, and the padding cases */
  n = http_connect_request_write (out, sizeof (out), "h", 1, 1, S ("Aladdin"), S ("open sesame"));
  CHECK (n > 0 && strstr ((char *) out, "Basic QWxhZGRpbjpvcGVuIHNlc2FtZQ==\r\n"));
  n = http_connect_request_write (out, sizeof (out), "h", 1, 1, S ("a"), 0, 0);
  CHECK (n > 0 && strstr ((char *) out, "Basic YTo=\r\n"));
}

static void
test_request_write_rejects (void)
{
  uint8_t out[HTTP_CONNECT_REQUEST_MAX], big[300];

  memset (big, 'a', sizeof (big));
  CHECK_EQ (http_connect_request_write (out, sizeof (out), "", 0, 80, 0, 0, 0, 0),
	    -HTTP_CONNECT_ERR_BAD_ARGUMENT);
  CHECK_EQ (http_connect_request_write (out, sizeof (out), (char *) big, 256, 80, 0, 0, 0, 0),
	    -HTTP_CONNECT_ERR_BAD_ARGUMENT);
  CHECK_EQ (http_connect_request_write (out, sizeof (out), "a b", 3, 80, 0, 0, 0, 0),
	    -HTTP_CONNECT_ERR_BAD_ARGUMENT);
  CHECK_EQ (http_connect_request_write (out, sizeof (out), "a\r\nX: y", 7, 80, 0, 0, 0, 0),
	    -HTTP_CONNECT_ERR_BAD_ARGUMENT);
  CHECK_EQ (http_connect_request_write (out, sizeof (out), "::1]", 4, 80, 0, 0, 0, 0),
	    -HTTP_CONNECT_ERR_BAD_ARGUMENT);
  CHECK_EQ (http_connect_request_write (out, sizeof (out), "h", 1, 0, 0, 0, 0, 0),
	    -HTTP_CONNECT_ERR_BAD_ARGUMENT);
  CHECK_EQ (http_connect_request_write (out, sizeof (out), "h", 1, 1, S ("a:b"), S ("p")),
	    -HTTP_CONNECT_ERR_BAD_ARGUMENT);
  CHECK_EQ (http_connect_request_write (out, sizeof (out), "h", 1, 1, S ("a"), S ("p\r\n")),
	    -HTTP_CONNECT_ERR_BAD_ARGUMENT);
  CHECK_EQ (http_connect_request_write (out, sizeof (out), "h", 1, 1, 0, 0, S ("p")),
	    -HTTP_CONNECT_ERR_BAD_ARGUMENT);
  CHECK_EQ (http_connect_request_write (out, sizeof (out), "h", 1, 1, big, 256, S ("p")),
	    -HTTP_CONNECT_ERR_BAD_ARGUMENT);
  CHECK_EQ (http_connect_request_write (out, 40, "h", 1, 1, S ("u"), S ("p")),
	    -HTTP_CONNECT_ERR_NO_SPACE);
  CHECK_EQ (http_connect_request_write (out, 10, "h", 1, 1, 0, 0, 0, 0),
	    -HTTP_CONNECT_ERR_NO_SPACE);
}

static void
test_probe_write (void)
{
  uint8_t out[HTTP_CONNECT_REQUEST_MAX];
  hc_result_t r;
  int n;

  n = http_connect_probe_write (out, sizeof (out), 0, 0, 0, 0);
  CHECK_LIT (out, n, ("OPTIONS * HTTP/1.1\r\nHost: proxy\r\n\r\n"));
  n = http_connect_probe_write (out, sizeof (out), S ("vpp"), S ("s3cret"));
  CHECK_LIT (out, n,
	     ("OPTIONS * HTTP/1.1\r\nHost: proxy\r\nProxy-Authorization: Basic dnBwOnMzY3JldA==\r\n"
	      "\r\n"));
  CHECK_EQ (http_connect_probe_write (out, sizeof (out), S ("a:b"), S ("p")),
	    -HTTP_CONNECT_ERR_BAD_ARGUMENT);
  CHECK_EQ (http_connect_probe_write (out, 40, S ("vpp"), S ("s3cret")),
	    -HTTP_CONNECT_ERR_NO_SPACE);
  /* what sing-box answers it, with good and with missing credentials */
  r = client (S ("HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n"));
  CHECK_EQ (r.error, HTTP_CONNECT_ERR_REFUSED);
  r = client (S ("HTTP/1.1 407 Proxy Authentication Required\r\n"));
  CHECK_EQ (r.error, HTTP_CONNECT_ERR_AUTH_REQUIRED);
}

/* What the client writes, the server reads back: host, port, credentials, at every size. */
static void
test_pair_round_trip (void)
{
  static const uint32_t lens[] = { 1, 2, 3, 4, 63, 64, 254, 255 };
  uint8_t out[HTTP_CONNECT_REQUEST_MAX], user[255], pass[255];
  char host[255];
  hc_result_t r;
  uint32_t i, j;
  int n;

  for (i = 0; i < 255; i++)
    {
      user[i] = 'A' + i % 26;
      pass[i] = i % 3 ? ':' : (uint8_t) (0x80 + i % 100); /* colons and UTF-8-ish bytes */
      host[i] = i % 10 == 9 ? '.' : 'a' + i % 26;
    }
  for (i = 0; i < sizeof (lens) / sizeof (lens[0]); i++)
    for (j = 0; j < sizeof (lens) / sizeof (lens[0]); j++)
      {
	n = http_connect_request_write (out, sizeof (out), host, lens[i], 65535, user, lens[j],
					pass, lens[(i + j) % 8]);
	CHECK (n > 0 && n <= HTTP_CONNECT_REQUEST_MAX);
	if (n <= 0)
	  continue;
	r = server (out, n, 200);
	CHECK_EQ (r.type, HTTP_CONNECT_EV_REQUEST);
	CHECK_EQ (r.consumed, n);
	CHECK_MEM ((uint8_t *) r.host, r.host_len, (uint8_t *) host, lens[i]);
	CHECK_EQ (r.port, 65535);
	CHECK_EQ (r.auth, 1);
	CHECK_MEM (r.user, r.user_len, user, lens[j]);
	CHECK_MEM (r.pass, r.pass_len, pass, lens[(i + j) % 8]);
	CHECK_LIT (r.out, r.out_len, ("HTTP/1.1 200 Connection established\r\n\r\n"));
      }
  n = http_connect_request_write (out, sizeof (out), "fe80::1:2", 9, 8080, 0, 0, 0, 0);
  r = server (out, n, 0);
  CHECK_LIT ((uint8_t *) r.host, r.host_len, ("fe80::1:2"));
  CHECK_EQ (r.host_is_ip6, 1);
  CHECK_EQ (r.auth, 0);
}

/*
 * Server role
 */

static void
test_server_curl_request (void)
{
  hc_result_t r = server (S ("CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\n"
			     "User-Agent: curl/8.14.1\r\nProxy-Connection: Keep-Alive\r\n\r\n"),
			  200);

  CHECK_EQ (r.type, HTTP_CONNECT_EV_REQUEST);
  CHECK_LIT ((uint8_t *) r.host, r.host_len, ("example.com"));
  CHECK_EQ (r.host_is_ip6, 0);
  CHECK_EQ (r.port, 443);
  CHECK_EQ (r.auth, 0);
  CHECK_EQ (r.consumed, 114);
  CHECK_LIT (r.out, r.out_len, ("HTTP/1.1 200 Connection established\r\n\r\n"));
}

static void
test_server_auth (void)
{
  hc_result_t r;

  r = server (S ("CONNECT 10.0.0.1:22 HTTP/1.1\r\nproxy-authorization:   basic   "
		 "dXNlcjpwYTpzcw==  \r\n\r\n"),
	      0);
  CHECK_EQ (r.type, HTTP_CONNECT_EV_REQUEST);
  CHECK_EQ (r.auth, 1);
  CHECK_LIT (r.user, r.user_len, ("user"));
  CHECK_LIT (r.pass, r.pass_len, ("pa:ss"));
  /* unpadded base64 is read too */
  r = server (S ("CONNECT h:1 HTTP/1.1\r\nProxy-Authorization: Basic dXNlcjpw\r\n\r\n"), 0);
  CHECK_EQ (r.auth, 1);
  CHECK_LIT (r.pass, r.pass_len, ("p"));
  /* credentials that cannot be read are no credentials: the caller answers 407 */
  r = server (S ("CONNECT h:1 HTTP/1.1\r\nProxy-Authorization: Digest x=y\r\n\r\n"), 407);
  CHECK_EQ (r.type, HTTP_CONNECT_EV_REQUEST);
  CHECK_EQ (r.auth, 0);
  CHECK_LIT (r.out, r.out_len,
	     ("HTTP/1.1 407 Proxy Authentication Required\r\nProxy-Authenticate: Basic "
	      "realm=\"singbox\"\r\nConnection: close\r\nContent-Length: 0\r\n\r\n"));
  r = server (S ("CONNECT h:1 HTTP/1.1\r\nProxy-Authorization: Basic dXNlcg==\r\n\r\n"), 0);
  CHECK_EQ (r.auth, 0); /* no colon */
  r = server (S ("CONNECT h:1 HTTP/1.1\r\nProxy-Authorization: Basic d!Nlcg==\r\n\r\n"), 0);
  CHECK_EQ (r.auth, 0);
  r = server (S ("CONNECT h:1 HTTP/1.1\r\nProxy-Authorization: Basic dXNlcjpw=\r\n\r\n"), 0);
  CHECK_EQ (r.auth, 0); /* padding that does not complete a group */
  r = server (S ("CONNECT h:1 HTTP/1.1\r\nProxy-Authorization: Basic\r\n\r\n"), 0);
  CHECK_EQ (r.auth, 0);
  /* two are refused */
  r = server (S ("CONNECT h:1 HTTP/1.1\r\nProxy-Authorization: Basic dXNlcjpw\r\n"
		 "Proxy-Authorization: Basic YTpi\r\n\r\n"),
	      0);
  CHECK_EQ (r.type, HTTP_CONNECT_EV_ERROR);
  CHECK_EQ (r.status, 400);
}

static void
test_server_targets (void)
{
  static const struct
  {
    const char *target;
    const char *host;
    uint16_t port;
  } ok[] = {
    { "127.0.0.1:80", "127.0.0.1", 80 },
    { "[::1]:8080", "::1", 8080 },
    { "[::ffff:192.0.2.1]:1", "::ffff:192.0.2.1", 1 },
    { "a-b_c.example~:65535", "a-b_c.example~", 65535 },
  };
  static const char *const bad[] = {
    "example.com",  "example.com:", "example.com:0", "example.com:65536", "example.com:80x",
    ":80",	    "[::1:80",	    "[]:80",	     "[2011]:80",	  "[::g]:80",
    "ex%41mple:80", "a:b:80",	    "[::1]80",	     "h:000080",	  "/index.html",
    "http://h:80/", "h:+80",
  };
  char buf[512];
  hc_result_t r;
  uint32_t i;
  int n;

  for (i = 0; i < sizeof (ok) / sizeof (ok[0]); i++)
    {
      n = snprintf (buf, sizeof (buf), "CONNECT %s HTTP/1.1\r\n\r\n", ok[i].target);
      r = server ((uint8_t *) buf, n, 0);
      CHECK_EQ (r.type, HTTP_CONNECT_EV_REQUEST);
      CHECK_MEM ((uint8_t *) r.host, r.host_len, (uint8_t *) ok[i].host, strlen (ok[i].host));
      CHECK_EQ (r.port, ok[i].port);
    }
  for (i = 0; i < sizeof (bad) / sizeof (bad[0]); i++)
    {
      n = snprintf (buf, sizeof (buf), "CONNECT %s HTTP/1.1\r\n\r\n", bad[i]);
      r = server ((uint8_t *) buf, n, 0);
      if (r.type != HTTP_CONNECT_EV_ERROR || r.error != HTTP_CONNECT_ERR_BAD_TARGET ||
	  r.status != 400)
	test_report (__FILE__, __LINE__, "target %s: %s %u", bad[i],
		     http_connect_error_name (r.error), r.status);
    }
}

static void
test_server_refusals (void)
{
  static const struct
  {
    const char *req;
    uint16_t status;
    http_connect_error_t err;
  } cases[] = {
    { "GET http://example.com/ HTTP/1.1\r\nHost: example.com\r\n\r\n", 405,
      HTTP_CONNECT_ERR_BAD_METHOD },
    { "connect h:1 HTTP/1.1\r\n\r\n", 405, HTTP_CONNECT_ERR_BAD_METHOD },
    { "CONNECT h:1 HTTP/2.0\r\n\r\n", 505, HTTP_CONNECT_ERR_BAD_VERSION },
    { "CONNECT h:1 HTTP/1.1 x\r\n\r\n", 400, HTTP_CONNECT_ERR_BAD_REQUEST_LINE },
    { "CONNECT h:1\r\n\r\n", 400, HTTP_CONNECT_ERR_BAD_REQUEST_LINE },
    { "CONNECT  h:1 HTTP/1.1\r\n\r\n", 400, HTTP_CONNECT_ERR_BAD_REQUEST_LINE },
    { "CONNECT h:1 FTP/1.1\r\n\r\n", 400, HTTP_CONNECT_ERR_BAD_REQUEST_LINE },
    { "C(NNECT h:1 HTTP/1.1\r\n\r\n", 400, HTTP_CONNECT_ERR_BAD_REQUEST_LINE },
    { "CONNECT h:1 HTTP/1.1\r\nContent-Length: 5\r\n\r\nhello", 400, HTTP_CONNECT_ERR_BAD_CONTENT },
    { "CONNECT h:1 HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n", 400,
      HTTP_CONNECT_ERR_BAD_CONTENT },
    { "CONNECT h:1 HTTP/1.1\r\nHost h\r\n\r\n", 400, HTTP_CONNECT_ERR_BAD_HEADER },
    { "CONNECT h:1 HTTP/1.1\r\nA: b\r\n\tfolded\r\n\r\n", 400, HTTP_CONNECT_ERR_BAD_HEADER },
    { "CONNECT h:1 HTTP/1.1\r\nA b: c\r\n\r\n", 400, HTTP_CONNECT_ERR_BAD_HEADER },
    { "CONNECT h:1 HTTP/1.1\rX\r\n\r\n", 400, HTTP_CONNECT_ERR_BARE_CR },
  };
  char want[256];
  uint32_t i;
  int n;

  for (i = 0; i < sizeof (cases) / sizeof (cases[0]); i++)
    {
      hc_result_t r = server ((const uint8_t *) cases[i].req, strlen (cases[i].req), 200);
      if (r.type != HTTP_CONNECT_EV_ERROR || r.status != cases[i].status || r.error != cases[i].err)
	test_report (__FILE__, __LINE__, "case %u: %s %s %u", i, http_connect_event_name (r.type),
		     http_connect_error_name (r.error), r.status);
      n = snprintf (want, sizeof (want), "HTTP/1.1 %u %s\r\n%sConnection: close\r\n", r.status,
		    http_connect_reason_phrase (r.status),
		    r.status == 405 ? "Allow: CONNECT\r\n" : "");
      CHECK (r.out_len > (uint32_t) n && !memcmp (r.out, want, n));
    }
  /* Content-Length: 0 is no content, and empty lines before the request line are skipped */
  {
    hc_result_t r = server (S ("\r\n\nCONNECT h:1 HTTP/1.0\r\nContent-Length: 0\r\n\r\n"), 0);
    CHECK_EQ (r.type, HTTP_CONNECT_EV_REQUEST);
    CHECK_EQ (r.consumed, 46);
  }
}

static void
test_server_bounds (void)
{
  static char buf[12000];
  hc_result_t r;
  int n, i;

  n = snprintf (buf, sizeof (buf), "CONNECT %01100d:1 HTTP/1.1\r\n\r\n", 1);
  r = server ((uint8_t *) buf, n, 0);
  CHECK_EQ (r.status, 414);
  CHECK_EQ (r.error, HTTP_CONNECT_ERR_LINE_TOO_LONG);
  n = snprintf (buf, sizeof (buf), "CONNECT h:1 HTTP/1.1\r\nX: %01100d\r\n\r\n", 1);
  r = server ((uint8_t *) buf, n, 0);
  CHECK_EQ (r.status, 431);
  /* a host of 256 bytes is one too many */
  n = snprintf (buf, sizeof (buf), "CONNECT %0256d:1 HTTP/1.1\r\n\r\n", 1);
  r = server ((uint8_t *) buf, n, 0);
  CHECK_EQ (r.error, HTTP_CONNECT_ERR_BAD_TARGET);
  n = snprintf (buf, sizeof (buf), "CONNECT h:1 HTTP/1.1\r\n");
  for (i = 0; i < 65; i++)
    n += snprintf (buf + n, sizeof (buf) - n, "F%d: v\r\n", i);
  n += snprintf (buf + n, sizeof (buf) - n, "\r\n");
  r = server ((uint8_t *) buf, n, 0);
  CHECK_EQ (r.error, HTTP_CONNECT_ERR_TOO_MANY_HEADERS);
  CHECK_EQ (r.status, 431);
  n = snprintf (buf, sizeof (buf), "CONNECT h:1 HTTP/1.1\r\n");
  for (i = 0; i < 10; i++)
    {
      memset (buf + n, 'a', 900);
      buf[n] = 'X';
      buf[n + 1] = ':';
      memcpy (buf + n + 898, "\r\n", 2);
      n += 900;
    }
  n += snprintf (buf + n, sizeof (buf) - n, "\r\n");
  r = server ((uint8_t *) buf, n, 0);
  CHECK_EQ (r.error, HTTP_CONNECT_ERR_HEAD_TOO_LARGE);
  CHECK_EQ (r.status, 431);
  CHECK_EQ (r.consumed, 8193);
}

static void
test_server_reply_and_abort (void)
{
  http_connect_server_t s;
  http_connect_event_t ev;
  http_connect_out_t out;
  uint32_t consumed;

  http_connect_server_init (&s);
  CHECK_EQ (http_connect_server_reply (&s, 200, &out), HTTP_CONNECT_ERR_STATE);
  CHECK_EQ (http_connect_server_feed (&s,
				      S ("CONNECT h:1 HTTP/1.1\r\nProxy-Authorization: "
					 "Basic dXNlcjpwYXNz\r\n\r\n"),
				      &consumed, &ev, &out),
	    HTTP_CONNECT_EV_REQUEST);
  CHECK_EQ (http_connect_server_feed (&s, S ("x"), &consumed, &ev, &out), HTTP_CONNECT_EV_PAUSED);
  CHECK_EQ (http_connect_server_reply (&s, 99, &out), HTTP_CONNECT_ERR_BAD_ARGUMENT);
  CHECK_EQ (http_connect_server_reply (&s, 504, &out), HTTP_CONNECT_ERR_NONE);
  CHECK_LIT (out.data, 33, ("HTTP/1.1 504 Gateway Timeout\r\nCon"));
  CHECK_EQ (http_connect_server_state (&s), HTTP_CONNECT_CLOSED);
  CHECK_EQ (http_connect_server_error (&s), HTTP_CONNECT_ERR_REFUSED);
  /* the credentials are wiped once answered */
  CHECK_EQ (s.password[0], 0);
  CHECK_EQ (http_connect_server_abort (&s, 408, &out), HTTP_CONNECT_ERR_STATE);
  CHECK_EQ (out.len, 0);

  http_connect_server_init (&s);
  CHECK_EQ (http_connect_server_feed (&s, S ("CONN"), &consumed, &ev, &out),
	    HTTP_CONNECT_EV_NEED_DATA);
  CHECK_EQ (http_connect_server_abort (&s, 200, &out), HTTP_CONNECT_ERR_BAD_ARGUMENT);
  CHECK_EQ (http_connect_server_abort (&s, 408, &out), HTTP_CONNECT_ERR_NONE);
  CHECK_LIT (out.data, 30, ("HTTP/1.1 408 Request Timeout\r\n"));
  CHECK_EQ (http_connect_server_feed (&s, S ("x"), &consumed, &ev, &out), HTTP_CONNECT_EV_ERROR);
  CHECK_EQ (ev.error, HTTP_CONNECT_ERR_CLOSED);
}

static void
test_status_mapping_and_names (void)
{
  CHECK_EQ (http_connect_status_from_rep (0), 200);
  CHECK_EQ (http_connect_status_from_rep (0x01), 502);
  CHECK_EQ (http_connect_status_from_rep (0x02), 403);
  CHECK_EQ (http_connect_status_from_rep (0x04), 502);
  CHECK_EQ (http_connect_status_from_rep (0x05), 502);
  CHECK_EQ (http_connect_status_from_rep (0x06), 504);
  CHECK (http_connect_is_http_start ('C'));
  CHECK (http_connect_is_http_start ('g'));
  CHECK (!http_connect_is_http_start (0x05));
  CHECK (!http_connect_is_http_start (0x04));
  CHECK (!http_connect_is_http_start ('\r'));
  CHECK (!strcmp (http_connect_error_name (HTTP_CONNECT_N_ERROR), "unknown"));
  CHECK (!strcmp (http_connect_event_name (HTTP_CONNECT_N_EVENT), "unknown"));
  CHECK (!strcmp (http_connect_state_name (HTTP_CONNECT_ESTABLISHED), "established"));
  CHECK (!strcmp (http_connect_reason_phrase (431), "Request Header Fields Too Large"));
}

#define T(fn)                                                                                      \
  {                                                                                                \
#fn, fn                                                                                        \
  }
const test_case_t test_cases[] = {
  T (test_client_singbox_200),
  T (test_client_200_variants),
  T (test_client_interim_then_200),
  T (test_client_non_2xx),
  T (test_client_malformed),
  T (test_client_bounds),
  T (test_client_incomplete),
  T (test_client_closed_and_bad_args),
  T (test_request_write),
  T (test_request_write_rejects),
  T (test_probe_write),
  T (test_pair_round_trip),
  T (test_server_curl_request),
  T (test_server_auth),
  T (test_server_targets),
  T (test_server_refusals),
  T (test_server_bounds),
  T (test_server_reply_and_abort),
  T (test_status_mapping_and_names),
};
const int n_test_cases = sizeof (test_cases) / sizeof (test_cases[0]);
