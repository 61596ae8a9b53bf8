/* SPDX-License-Identifier: Apache-2.0
 * Copyright (c) 2026 vpp-singbox authors
 */

/*
 * Unit tests of the SOCKS5 core: every protocol-level conformance case of
 * shared/reference/socks5.md, each delivered whole, one byte at a time and split at every point.
 */

#include <errno.h>

#include "harness.h"
#include "socks5_driver.h"

/* Whether needle occurs in the memory at p: used to prove secrets were wiped. */
static int
contains (const void *p, size_t len, const uint8_t *needle, size_t n)
{
  const uint8_t *h = p;
  size_t i;

  for (i = 0; i + n <= len; i++)
    if (!memcmp (h + i, needle, n))
      return 1;
  return 0;
}

typedef struct
{
  uint8_t d[2048];
  uint32_t n;
} bytes_t;

static void
cat (bytes_t *b, const uint8_t *p, uint32_t n)
{
  if (b->n + n > sizeof (b->d))
    abort ();
  memcpy (b->d + b->n, p, n);
  b->n += n;
}

#define CAT(b, ...)                                                                                \
  cat (&(b), (const uint8_t[]){ __VA_ARGS__ }, sizeof ((const uint8_t[]){ __VA_ARGS__ }))

static void
cat_str (bytes_t *b, const char *s)
{
  cat (b, (const uint8_t *) s, (uint32_t) strlen (s));
}

/* A greeting, an RFC 1929 request and a SOCKS request on the wire. */
static void
cat_greeting (bytes_t *b, const uint8_t *methods, uint8_t n)
{
  CAT (*b, SOCKS5_VERSION, n);
  cat (b, methods, n);
}

static void
cat_auth (bytes_t *b, const uint8_t *user, uint8_t ulen, const uint8_t *pass, uint8_t plen)
{
  CAT (*b, SOCKS5_AUTH_VERSION, ulen);
  cat (b, user, ulen);
  CAT (*b, plen);
  cat (b, pass, plen);
}

static void
cat_addr (bytes_t *b, const socks5_addr_t *a)
{
  CAT (*b, a->atyp);
  if (a->atyp == SOCKS5_ATYP_IPV4)
    cat (b, a->ip4, 4);
  else if (a->atyp == SOCKS5_ATYP_IPV6)
    cat (b, a->ip6, 16);
  else
    {
      CAT (*b, a->domain_len);
      cat (b, a->domain, a->domain_len);
    }
  CAT (*b, (uint8_t) (a->port >> 8), (uint8_t) a->port);
}

static void
cat_request (bytes_t *b, uint8_t cmd_or_rep, const socks5_addr_t *a)
{
  CAT (*b, SOCKS5_VERSION, cmd_or_rep, 0);
  cat_addr (b, a);
}

static const uint8_t ip4_example[4] = { 192, 0, 2, 1 };
static const uint8_t ip4_public[4] = { 203, 0, 113, 7 };
static const uint8_t ip6_example[16] = {
  0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1
};
static const uint8_t m_no_auth[] = { SOCKS5_METHOD_NO_AUTH };
static const uint8_t m_userpass[] = { SOCKS5_METHOD_USERPASS };
static const uint8_t m_both[] = { SOCKS5_METHOD_NO_AUTH, SOCKS5_METHOD_USERPASS };
static const uint8_t alice[] = "alice", secret[] = "S3cr3t-P4ss!";

static const socks5_server_cfg_t cfg_no_auth = {
  SOCKS5_METHOD_F_NO_AUTH, SOCKS5_CMD_F_CONNECT | SOCKS5_CMD_F_UDP_ASSOCIATE
};
static const socks5_server_cfg_t cfg_userpass = {
  SOCKS5_METHOD_F_USERPASS, SOCKS5_CMD_F_CONNECT | SOCKS5_CMD_F_UDP_ASSOCIATE
};
static const socks5_server_cfg_t cfg_both = { SOCKS5_METHOD_F_NO_AUTH | SOCKS5_METHOD_F_USERPASS,
					      SOCKS5_CMD_F_CONNECT | SOCKS5_CMD_F_UDP_ASSOCIATE };

static driver_server_policy_t
policy_alice (void)
{
  driver_server_policy_t p = { 0 };

  p.user = alice;
  p.user_len = 5;
  p.pass = secret;
  p.pass_len = 12;
  return p;
}

static socks5_addr_t
addr_ip4 (const uint8_t *ip, uint16_t port)
{
  socks5_addr_t a;

  socks5_addr_set_ip4 (&a, ip, port);
  return a;
}

static socks5_addr_t
addr_ip6 (const uint8_t *ip, uint16_t port)
{
  socks5_addr_t a;

  socks5_addr_set_ip6 (&a, ip, port);
  return a;
}

static socks5_addr_t
addr_domain (const char *name, uint16_t port)
{
  socks5_addr_t a;

  if (socks5_addr_set_domain (&a, (const uint8_t *) name, (uint32_t) strlen (name), port))
    abort ();
  return a;
}

static socks5_addr_t
addr_domain_len (uint8_t len, uint16_t port)
{
  uint8_t name[SOCKS5_MAX_DOMAIN_LEN];
  socks5_addr_t a;
  int i;

  for (i = 0; i < len; i++)
    name[i] = (uint8_t) ('a' + i % 26);
  if (len > 2)
    name[len / 2] = '.';
  if (socks5_addr_set_domain (&a, name, len, port))
    abort ();
  return a;
}

static const socks5_addr_t zero_bnd = { .atyp = SOCKS5_ATYP_IPV4 };

/*
 * Runs the server over in whole, then one byte at a time, in every chunk size, and split once at
 * every point; every run must give the same transcript, which is returned.
 */
static void
server_all_splits (const socks5_server_cfg_t *cfg, const driver_server_policy_t *pol,
		   const bytes_t *in, driver_transcript_t *whole)
{
  static driver_transcript_t t;
  uint8_t sizes[2];
  driver_splits_t sp = { sizes, 1 };
  uint32_t k;

  driver_server_run (cfg, pol, in->d, in->n, 0, whole);
  CHECK (whole->violation == 0);
  if (whole->violation)
    fprintf (stderr, "    violation: %s\n", whole->violation);
  for (k = 1; k < in->n && k < 256; k++)
    {
      sizes[0] = (uint8_t) k;
      sp.n = 1;
      driver_server_run (cfg, pol, in->d, in->n, &sp, &t);
      if (t.violation || !driver_transcript_equal (&t, whole))
	{
	  test_report (__FILE__, __LINE__, "chunks of %u differ from whole input (%s)", k,
		       t.violation ? t.violation : "transcript");
	  return;
	}
    }
  /* One split point, wherever it falls: the second part arrives whole. */
  for (k = 1; k < in->n; k++)
    {
      uint32_t first = k, rest = in->n - k;

      if (first > 255 || rest > 255)
	continue;
      sizes[0] = (uint8_t) first;
      sizes[1] = (uint8_t) rest;
      sp.n = 2;
      driver_server_run (cfg, pol, in->d, in->n, &sp, &t);
      if (t.violation || !driver_transcript_equal (&t, whole))
	{
	  test_report (__FILE__, __LINE__, "split at %u differs from whole input", k);
	  return;
	}
    }
}

static void
client_all_splits (const socks5_client_cfg_t *cfg, const bytes_t *in, driver_transcript_t *whole)
{
  static driver_transcript_t t;
  uint8_t size;
  driver_splits_t sp = { &size, 1 };
  uint32_t k;

  driver_client_run (cfg, in->d, in->n, 0, whole);
  CHECK (whole->violation == 0);
  if (whole->violation)
    fprintf (stderr, "    violation: %s\n", whole->violation);
  for (k = 1; k < in->n && k < 256; k++)
    {
      size = (uint8_t) k;
      driver_client_run (cfg, in->d, in->n, &sp, &t);
      if (t.violation || !driver_transcript_equal (&t, whole))
	{
	  test_report (__FILE__, __LINE__, "chunks of %u differ from whole input (%s)", k,
		       t.violation ? t.violation : "transcript");
	  return;
	}
    }
}

static void
expect_events (const driver_transcript_t *t, int n, const socks5_event_type_t *ev, int line)
{
  int i, same = t->n_events == n;

  for (i = 0; same && i < n; i++)
    same = t->events[i] == ev[i];
  if (!same)
    {
      test_report (__FILE__, line, "events differ");
      fprintf (stderr, "    got     ");
      for (i = 0; i < t->n_events; i++)
	fprintf (stderr, " %s", socks5_event_name (t->events[i]));
      fprintf (stderr, "\n    expected");
      for (i = 0; i < n; i++)
	fprintf (stderr, " %s", socks5_event_name (ev[i]));
      fprintf (stderr, "\n");
    }
}

#define EXPECT_EVENTS(t, ...)                                                                      \
  expect_events ((t),                                                                              \
		 sizeof ((socks5_event_type_t[]){ __VA_ARGS__ }) / sizeof (socks5_event_type_t),   \
		 (socks5_event_type_t[]){ __VA_ARGS__ }, __LINE__)

/* Server: complete handshakes */

static void
check_server_success (const socks5_server_cfg_t *cfg, const driver_server_policy_t *pol,
		      const bytes_t *in, const bytes_t *expect_out, uint8_t cmd,
		      const socks5_addr_t *dst)
{
  static driver_transcript_t t;

  server_all_splits (cfg, pol, in, &t);
  CHECK_MEM (t.out, t.out_len, expect_out->d, expect_out->n);
  CHECK_EQ (t.consumed, in->n);
  CHECK (t.have_request);
  CHECK_EQ (t.cmd, cmd);
  CHECK (socks5_addr_equal (&t.addr, dst));
  CHECK (!t.have_error);
  CHECK_EQ (t.final_state, SOCKS5_SERVER_ESTABLISHED);
}

static void
test_server_no_auth_connect_ipv4 (void)
{
  socks5_addr_t dst = addr_ip4 (ip4_example, 443), bnd = addr_ip4 (ip4_public, 50000);
  driver_server_policy_t pol = { .bnd = &bnd };
  bytes_t in = { 0 }, out = { 0 };

  cat_greeting (&in, m_no_auth, 1);
  cat_request (&in, SOCKS5_CMD_CONNECT, &dst);
  CAT (out, 5, 0, 5, 0, 0, 1, 203, 0, 113, 7, 0xc3, 0x50);
  check_server_success (&cfg_no_auth, &pol, &in, &out, SOCKS5_CMD_CONNECT, &dst);
}

static void
test_server_userpass_connect_ipv6 (void)
{
  socks5_addr_t dst = addr_ip6 (ip6_example, 80);
  driver_server_policy_t pol = policy_alice ();
  bytes_t in = { 0 }, out = { 0 };
  static driver_transcript_t t;

  cat_greeting (&in, m_both, 2);
  cat_auth (&in, alice, 5, secret, 12);
  cat_request (&in, SOCKS5_CMD_CONNECT, &dst);
  CAT (out, 5, 2, 1, 0, 5, 0, 0, 1, 0, 0, 0, 0, 0, 0);
  check_server_success (&cfg_userpass, &pol, &in, &out, SOCKS5_CMD_CONNECT, &dst);

  server_all_splits (&cfg_userpass, &pol, &in, &t);
  EXPECT_EVENTS (&t, SOCKS5_EV_AUTH_REQUEST, SOCKS5_EV_REQUEST);
  CHECK_EQ (t.method, SOCKS5_METHOD_USERPASS);
  CHECK_MEM (t.user, t.user_len, alice, 5);
  CHECK_MEM (t.pass, t.pass_len, secret, 12);
}

static void
test_server_connect_domain (void)
{
  socks5_addr_t dst = addr_domain ("example.com", 443);
  driver_server_policy_t pol = { 0 };
  bytes_t in = { 0 }, out = { 0 };

  cat_greeting (&in, m_no_auth, 1);
  cat_request (&in, SOCKS5_CMD_CONNECT, &dst);
  CHECK_EQ (in.n, 3 + 4 + 1 + 11 + 2);
  CAT (out, 5, 0, 5, 0, 0, 1, 0, 0, 0, 0, 0, 0);
  check_server_success (&cfg_no_auth, &pol, &in, &out, SOCKS5_CMD_CONNECT, &dst);
}

static void
test_server_udp_associate_public_bnd (void)
{
  /* The client does not know its source yet: DST 0.0.0.0:0. BND is the configured public
   * address of the UDP relay, not whatever local address the listener has. */
  static const uint8_t any[4] = { 0 };
  socks5_addr_t dst = addr_ip4 (any, 0), bnd = addr_ip4 (ip4_public, 40000);
  driver_server_policy_t pol = { .bnd = &bnd };
  bytes_t in = { 0 }, out = { 0 };

  cat_greeting (&in, m_no_auth, 1);
  cat_request (&in, SOCKS5_CMD_UDP_ASSOCIATE, &dst);
  CAT (out, 5, 0, 5, 0, 0, 1, 203, 0, 113, 7, 0x9c, 0x40);
  check_server_success (&cfg_no_auth, &pol, &in, &out, SOCKS5_CMD_UDP_ASSOCIATE, &dst);
}

static void
test_server_awaits_message (void)
{
  /* Between messages, and only there, the core says it waits for the client's next one: the
   * plugin then holds back its ACK of that message for the answer to carry. */
  socks5_addr_t dst = addr_ip4 (ip4_public, 80);
  bytes_t in = { 0 };
  socks5_server_t s;
  socks5_event_t ev;
  socks5_out_t out;
  uint32_t consumed, greet_end, auth_end;

  cat_greeting (&in, m_both, 2);
  greet_end = in.n;
  cat_auth (&in, alice, 5, secret, 12);
  auth_end = in.n;
  cat_request (&in, SOCKS5_CMD_CONNECT, &dst);

  CHECK_EQ (socks5_server_init (&s, &cfg_both), SOCKS5_ERR_NONE);
  CHECK (!socks5_server_awaits_message (&s)); /* the greeting is the client's first */
  CHECK_EQ (socks5_server_feed (&s, in.d, greet_end, &consumed, &ev, &out), SOCKS5_EV_NEED_DATA);
  CHECK (socks5_server_awaits_message (&s));
  /* part of the credentials: a message is under way */
  CHECK_EQ (socks5_server_feed (&s, in.d + greet_end, 2, &consumed, &ev, &out),
	    SOCKS5_EV_NEED_DATA);
  CHECK (!socks5_server_awaits_message (&s));
  CHECK_EQ (socks5_server_feed (&s, in.d + greet_end + 2, auth_end - greet_end - 2, &consumed,
				&ev, &out),
	    SOCKS5_EV_AUTH_REQUEST);
  CHECK (!socks5_server_awaits_message (&s)); /* the credentials are being checked */
  CHECK_EQ (socks5_server_auth_result (&s, 1, &out), SOCKS5_ERR_NONE);
  CHECK (socks5_server_awaits_message (&s));
  CHECK_EQ (socks5_server_feed (&s, in.d + auth_end, 1, &consumed, &ev, &out),
	    SOCKS5_EV_NEED_DATA);
  CHECK (!socks5_server_awaits_message (&s));
  CHECK_EQ (socks5_server_feed (&s, in.d + auth_end + 1, in.n - auth_end - 1, &consumed, &ev,
				&out),
	    SOCKS5_EV_REQUEST);
  CHECK (!socks5_server_awaits_message (&s)); /* the reply is owed */
  CHECK_EQ (socks5_server_reply (&s, SOCKS5_REP_SUCCEEDED, 0, &out), SOCKS5_ERR_NONE);
  CHECK (!socks5_server_awaits_message (&s));
}

static void
test_server_pipelined_one_write (void)
{
  /* Greeting, auth and request in one write, followed by the first bytes of the relayed
   * stream: the core takes the handshake and leaves the stream. */
  socks5_addr_t dst = addr_domain ("example.com", 80);
  bytes_t in = { 0 };
  socks5_server_t s;
  socks5_event_t ev;
  socks5_out_t out;
  uint32_t consumed, auth_end, req_end;

  cat_greeting (&in, m_both, 2);
  cat_auth (&in, alice, 5, secret, 12);
  auth_end = in.n;
  cat_request (&in, SOCKS5_CMD_CONNECT, &dst);
  req_end = in.n;
  cat_str (&in, "GET / HTTP/1.1\r\n");

  CHECK_EQ (socks5_server_init (&s, &cfg_both), SOCKS5_ERR_NONE);
  CHECK_EQ (socks5_server_feed (&s, in.d, in.n, &consumed, &ev, &out), SOCKS5_EV_AUTH_REQUEST);
  CHECK_EQ (consumed, auth_end);
  CHECK_MEM (out.data, out.len, ((const uint8_t[]){ 5, 2 }), 2);
  CHECK_MEM (ev.username, ev.username_len, alice, 5);
  CHECK_MEM (ev.password, ev.password_len, secret, 12);

  /* Until the caller has answered, the core takes nothing more. */
  CHECK_EQ (socks5_server_feed (&s, in.d + auth_end, in.n - auth_end, &consumed, &ev, &out),
	    SOCKS5_EV_PAUSED);
  CHECK_EQ (consumed, 0);
  CHECK_EQ (socks5_server_auth_result (&s, 1, &out), SOCKS5_ERR_NONE);
  CHECK_MEM (out.data, out.len, ((const uint8_t[]){ 1, 0 }), 2);

  CHECK_EQ (socks5_server_feed (&s, in.d + auth_end, in.n - auth_end, &consumed, &ev, &out),
	    SOCKS5_EV_REQUEST);
  CHECK_EQ (consumed, req_end - auth_end);
  CHECK_EQ (out.len, 0);
  CHECK (socks5_addr_equal (&ev.addr, &dst));

  CHECK_EQ (socks5_server_reply (&s, SOCKS5_REP_SUCCEEDED, 0, &out), SOCKS5_ERR_NONE);
  CHECK_EQ (socks5_server_state (&s), SOCKS5_SERVER_ESTABLISHED);
  /* The stream belongs to the relay. */
  CHECK_EQ (socks5_server_feed (&s, in.d + req_end, in.n - req_end, &consumed, &ev, &out),
	    SOCKS5_EV_PAUSED);
  CHECK_EQ (consumed, 0);
}

static void
test_server_pipelined_trailing_data_all_splits (void)
{
  static driver_transcript_t t;
  socks5_addr_t dst = addr_ip4 (ip4_example, 22);
  driver_server_policy_t pol = policy_alice ();
  bytes_t in = { 0 };
  uint32_t hs;

  cat_greeting (&in, m_userpass, 1);
  cat_auth (&in, alice, 5, secret, 12);
  cat_request (&in, SOCKS5_CMD_CONNECT, &dst);
  hs = in.n;
  cat_str (&in, "SSH-2.0-OpenSSH_9.2\r\n");
  server_all_splits (&cfg_userpass, &pol, &in, &t);
  CHECK_EQ (t.consumed, hs);
  EXPECT_EVENTS (&t, SOCKS5_EV_AUTH_REQUEST, SOCKS5_EV_REQUEST);
  CHECK_EQ (t.final_state, SOCKS5_SERVER_ESTABLISHED);
}

static void
test_server_capped_peek_loop (void)
{
  /* The plugin peeks at most SOCKS5_MAX_MSG_LEN bytes of its fifo at a time. A greeting with 255
   * methods, 255-byte credentials and a 255-byte domain arrive in one segment (1037 bytes): the
   * adapter loop documented in socks5_proto.h must reach REQUEST with no further rx event. */
  uint8_t methods[255], cred[255], peek[SOCKS5_MAX_MSG_LEN];
  socks5_addr_t dst = addr_domain_len (255, 443);
  bytes_t fifo = { 0 };
  socks5_server_t s;
  socks5_event_t ev;
  socks5_out_t out;
  uint32_t head = 0, n, consumed, calls = 0;
  socks5_event_type_t t = SOCKS5_EV_NEED_DATA;
  int i;

  for (i = 0; i < 255; i++)
    {
      methods[i] = (uint8_t) (i == 200 ? SOCKS5_METHOD_USERPASS : 0x80 + i % 0x7f);
      cred[i] = (uint8_t) ('0' + i % 10);
    }
  cat_greeting (&fifo, methods, 255);
  cat_auth (&fifo, cred, 255, cred, 255);
  cat_request (&fifo, SOCKS5_CMD_CONNECT, &dst);
  CHECK (fifo.n > 2 * sizeof (peek));
  socks5_server_init (&s, &cfg_userpass);
  while (calls++ < 16)
    {
      n = fifo.n - head < sizeof (peek) ? fifo.n - head : (uint32_t) sizeof (peek);
      memcpy (peek, fifo.d + head, n);
      t = socks5_server_feed (&s, peek, n, &consumed, &ev, &out);
      head += consumed;
      if (t == SOCKS5_EV_AUTH_REQUEST)
	{
	  CHECK_MEM (ev.username, ev.username_len, cred, 255);
	  socks5_server_auth_result (&s, 1, &out);
	  continue;
	}
      if (t != SOCKS5_EV_NEED_DATA || head == fifo.n)
	break;
    }
  CHECK_EQ (t, SOCKS5_EV_REQUEST);
  CHECK_EQ (head, fifo.n);
  CHECK (socks5_addr_equal (&ev.addr, &dst));
}

/* Server: method negotiation */

static void
test_server_nmethods_zero (void)
{
  static driver_transcript_t t;
  driver_server_policy_t pol = { 0 };
  bytes_t in = { 0 };

  CAT (in, 5, 0, 5, 1, 0); /* a second greeting after it must not be read */
  server_all_splits (&cfg_both, &pol, &in, &t);
  CHECK_MEM (t.out, t.out_len, ((const uint8_t[]){ 5, 0xff }), 2);
  EXPECT_EVENTS (&t, SOCKS5_EV_ERROR);
  CHECK_EQ (t.error, SOCKS5_ERR_NO_METHODS);
  CHECK (t.remote);
  CHECK_EQ (t.consumed, 2);
  CHECK_EQ (t.final_state, SOCKS5_SERVER_CLOSED);
}

static void
test_server_only_unknown_methods (void)
{
  static const uint8_t unknown[] = { SOCKS5_METHOD_GSSAPI, 0x03, 0x80, 0xfe, 0xff };
  static driver_transcript_t t;
  driver_server_policy_t pol = { 0 };
  bytes_t in = { 0 };

  cat_greeting (&in, unknown, sizeof (unknown));
  CAT (in, 1, 1, 'x', 1, 'y');
  server_all_splits (&cfg_both, &pol, &in, &t);
  CHECK_MEM (t.out, t.out_len, ((const uint8_t[]){ 5, 0xff }), 2);
  EXPECT_EVENTS (&t, SOCKS5_EV_ERROR);
  CHECK_EQ (t.error, SOCKS5_ERR_NO_ACCEPTABLE_METHOD);
  CHECK_EQ (t.consumed, 2 + sizeof (unknown));
  CHECK_EQ (t.final_state, SOCKS5_SERVER_CLOSED);
}

static void
test_server_never_chooses_unoffered_method (void)
{
  /* go-gost/x#6: every subset of these methods, against every server configuration. */
  static const uint8_t pool[] = { 0x00, 0x01, 0x02, 0x03, 0x80, 0xff };
  static const socks5_server_cfg_t *cfgs[] = { &cfg_no_auth, &cfg_userpass, &cfg_both };
  unsigned set, c, i;

  for (c = 0; c < 3; c++)
    for (set = 1; set < (1u << sizeof (pool)); set++)
      {
	uint8_t offered[sizeof (pool)], n = 0, method, expect;
	int has_none = 0, has_up = 0;
	socks5_server_t s;
	socks5_event_t ev;
	socks5_out_t out;
	bytes_t in = { 0 };
	uint32_t consumed;

	for (i = 0; i < sizeof (pool); i++)
	  if (set & (1u << i))
	    {
	      offered[n++] = pool[i];
	      has_none |= pool[i] == 0;
	      has_up |= pool[i] == 2;
	    }
	cat_greeting (&in, offered, n);
	socks5_server_init (&s, cfgs[c]);
	socks5_server_feed (&s, in.d, in.n, &consumed, &ev, &out);
	CHECK_EQ (out.len, 2);
	method = out.data[1];
	if (has_up && (cfgs[c]->methods & SOCKS5_METHOD_F_USERPASS))
	  expect = SOCKS5_METHOD_USERPASS;
	else if (has_none && (cfgs[c]->methods & SOCKS5_METHOD_F_NO_AUTH))
	  expect = SOCKS5_METHOD_NO_AUTH;
	else
	  expect = SOCKS5_METHOD_NO_ACCEPTABLE;
	CHECK_EQ (method, expect);
	CHECK (method == 0xff || memchr (offered, method, n));
	CHECK_EQ (ev.method, method);
	CHECK_EQ (ev.type, method == 0xff ? SOCKS5_EV_ERROR : SOCKS5_EV_NEED_DATA);
      }
}

static void
test_server_greeting_version_not_5 (void)
{
  /* SOCKS4, TLS, HTTP: closed at the first byte, nothing sent back. */
  static const char *const starts[] = { "\x04\x01\x00\x50", "\x16\x03\x01", "GET / HTTP/1.1",
					"\x00\x01\x00" };
  static driver_transcript_t t;
  driver_server_policy_t pol = { 0 };
  unsigned i;

  for (i = 0; i < 4; i++)
    {
      bytes_t in = { 0 };

      if (i == 3)
	CAT (in, 0, 1, 0);
      else
	cat_str (&in, starts[i]);
      server_all_splits (&cfg_no_auth, &pol, &in, &t);
      CHECK_EQ (t.out_len, 0);
      EXPECT_EVENTS (&t, SOCKS5_EV_ERROR);
      CHECK_EQ (t.error, SOCKS5_ERR_BAD_VERSION);
      CHECK_EQ (t.consumed, 1);
      CHECK_EQ (t.final_state, SOCKS5_SERVER_CLOSED);
    }
}

static void
test_server_request_version_not_5 (void)
{
  static driver_transcript_t t;
  driver_server_policy_t pol = { 0 };
  bytes_t in = { 0 };

  cat_greeting (&in, m_no_auth, 1);
  CAT (in, 4, 1, 0, 1, 192, 0, 2, 1, 0, 80);
  server_all_splits (&cfg_no_auth, &pol, &in, &t);
  CHECK_MEM (t.out, t.out_len, ((const uint8_t[]){ 5, 0 }), 2);
  EXPECT_EVENTS (&t, SOCKS5_EV_ERROR);
  CHECK_EQ (t.error, SOCKS5_ERR_BAD_VERSION);
  CHECK_EQ (t.consumed, 3 + 1);
  CHECK_EQ (t.final_state, SOCKS5_SERVER_CLOSED);
}

/* Server: RFC 1929 */

static void
test_server_auth_version_not_1 (void)
{
  static const uint8_t versions[] = { 0, 2, 5, 0xff };
  static driver_transcript_t t;
  driver_server_policy_t pol = policy_alice ();
  unsigned i;

  for (i = 0; i < sizeof (versions); i++)
    {
      bytes_t in = { 0 };

      cat_greeting (&in, m_userpass, 1);
      CAT (in, versions[i], 5, 'a', 'l', 'i', 'c', 'e', 1, 'x');
      server_all_splits (&cfg_userpass, &pol, &in, &t);
      CHECK_MEM (t.out, t.out_len, ((const uint8_t[]){ 5, 2 }), 2);
      EXPECT_EVENTS (&t, SOCKS5_EV_ERROR);
      CHECK_EQ (t.error, SOCKS5_ERR_BAD_AUTH_VERSION);
      CHECK_EQ (t.consumed, 3 + 1);
      CHECK (!t.have_auth);
      CHECK_EQ (t.final_state, SOCKS5_SERVER_CLOSED);
    }
}

static void
test_server_credential_lengths_0_and_255 (void)
{
  static const uint8_t lens[][2] = { { 0, 0 }, { 0, 255 }, { 255, 0 }, { 255, 255 }, { 1, 1 } };
  static driver_transcript_t t;
  socks5_addr_t dst = addr_ip4 (ip4_example, 443);
  uint8_t user[255], pass[255];
  unsigned i, k;

  for (k = 0; k < 255; k++)
    {
      user[k] = (uint8_t) ('A' + k % 26);
      pass[k] = (uint8_t) (k + 1); /* every byte value but 0 */
    }
  for (i = 0; i < sizeof (lens) / sizeof (lens[0]); i++)
    {
      driver_server_policy_t pol = { 0 };
      bytes_t in = { 0 };

      pol.user = user;
      pol.user_len = lens[i][0];
      pol.pass = pass;
      pol.pass_len = lens[i][1];
      cat_greeting (&in, m_userpass, 1);
      cat_auth (&in, user, lens[i][0], pass, lens[i][1]);
      cat_request (&in, SOCKS5_CMD_CONNECT, &dst);
      server_all_splits (&cfg_userpass, &pol, &in, &t);
      EXPECT_EVENTS (&t, SOCKS5_EV_AUTH_REQUEST, SOCKS5_EV_REQUEST);
      CHECK_MEM (t.user, t.user_len, user, lens[i][0]);
      CHECK_MEM (t.pass, t.pass_len, pass, lens[i][1]);
      CHECK_EQ (t.consumed, in.n);
      CHECK_EQ (t.final_state, SOCKS5_SERVER_ESTABLISHED);
    }
}

static void
test_server_wrong_password_closes (void)
{
  static driver_transcript_t t;
  socks5_addr_t dst = addr_ip4 (ip4_example, 443);
  driver_server_policy_t pol = policy_alice ();
  static const uint8_t wrong[] = "S3cr3t-P4ss?";
  unsigned wrong_user;

  for (wrong_user = 0; wrong_user < 2; wrong_user++)
    {
      bytes_t in = { 0 };
      uint32_t auth_end;

      cat_greeting (&in, m_userpass, 1);
      if (wrong_user)
	cat_auth (&in, (const uint8_t *) "alicf", 5, secret, 12);
      else
	cat_auth (&in, alice, 5, wrong, 12);
      auth_end = in.n;
      cat_request (&in, SOCKS5_CMD_CONNECT, &dst);
      server_all_splits (&cfg_userpass, &pol, &in, &t);
      CHECK_EQ (t.out_len, 4);
      CHECK_MEM (t.out, 3, ((const uint8_t[]){ 5, 2, 1 }), 3);
      CHECK (t.out[3] != 0);
      EXPECT_EVENTS (&t, SOCKS5_EV_AUTH_REQUEST);
      CHECK (!t.have_request);
      CHECK_EQ (t.consumed, auth_end);
      CHECK_EQ (t.final_state, SOCKS5_SERVER_CLOSED);
    }
}

static void
test_server_wipes_credentials (void)
{
  bytes_t in = { 0 };
  socks5_server_t s;
  socks5_event_t ev;
  socks5_out_t out;
  uint32_t consumed;

  cat_greeting (&in, m_userpass, 1);
  cat_auth (&in, alice, 5, secret, 12);
  socks5_server_init (&s, &cfg_userpass);
  CHECK_EQ (socks5_server_feed (&s, in.d, in.n, &consumed, &ev, &out), SOCKS5_EV_AUTH_REQUEST);
  CHECK (contains (&s, sizeof (s), secret, 12));
  socks5_server_auth_result (&s, 1, &out);
  CHECK (!contains (&s, sizeof (s), secret, 12));
}

/* Server: requests */

static void
check_server_request_error (const bytes_t *in, const socks5_server_cfg_t *cfg, uint32_t consumed,
			    socks5_error_t err, uint8_t rep, int line)
{
  static driver_transcript_t t;
  driver_server_policy_t pol = { 0 };
  bytes_t out = { 0 };
  int was_failed = test_current_failed;

  test_current_failed = 0;
  CAT (out, 5, 0, 5, rep, 0, 1, 0, 0, 0, 0, 0, 0);
  server_all_splits (cfg, &pol, in, &t);
  CHECK_MEM (t.out, t.out_len, out.d, out.n);
  EXPECT_EVENTS (&t, SOCKS5_EV_ERROR);
  CHECK_EQ (t.error, err);
  CHECK_EQ (t.rep, rep);
  CHECK (t.remote);
  CHECK_EQ (t.consumed, consumed);
  CHECK (!t.have_request);
  CHECK_EQ (t.final_state, SOCKS5_SERVER_CLOSED);
  if (test_current_failed)
    fprintf (stderr, "    (from line %d)\n", line);
  test_current_failed |= was_failed;
}

static void
test_server_domain_len_0_and_nul (void)
{
  /* An empty name or one with NUL cannot be resolved: same REP as a failed lookup. */
  bytes_t in = { 0 };

  cat_greeting (&in, m_no_auth, 1);
  CAT (in, 5, 1, 0, 3, 0, 0, 80);
  check_server_request_error (&in, &cfg_no_auth, in.n, SOCKS5_ERR_BAD_DOMAIN, 0x04, __LINE__);

  in.n = 0;
  cat_greeting (&in, m_no_auth, 1);
  CAT (in, 5, 1, 0, 3, 9, 'e', 'v', 'i', 'l', 0, '.', 'o', 'r', 'g', 0, 80);
  check_server_request_error (&in, &cfg_no_auth, in.n, SOCKS5_ERR_BAD_DOMAIN, 0x04, __LINE__);
}

static void
test_server_domain_len_255 (void)
{
  socks5_addr_t dst = addr_domain_len (255, 8443);
  driver_server_policy_t pol = { 0 };
  bytes_t in = { 0 }, out = { 0 };

  cat_greeting (&in, m_no_auth, 1);
  cat_request (&in, SOCKS5_CMD_CONNECT, &dst);
  CHECK_EQ (in.n, 3 + 4 + 1 + 255 + 2);
  CAT (out, 5, 0, 5, 0, 0, 1, 0, 0, 0, 0, 0, 0);
  check_server_success (&cfg_no_auth, &pol, &in, &out, SOCKS5_CMD_CONNECT, &dst);
  CHECK_EQ (dst.domain_len, 255);
}

static void
test_server_bad_command (void)
{
  static const uint8_t cmds[] = { SOCKS5_CMD_BIND, 0, 4, 0x81, 0xff };
  const socks5_server_cfg_t connect_only = { SOCKS5_METHOD_F_NO_AUTH, SOCKS5_CMD_F_CONNECT };
  const socks5_server_cfg_t udp_only = { SOCKS5_METHOD_F_NO_AUTH, SOCKS5_CMD_F_UDP_ASSOCIATE };
  socks5_addr_t dst = addr_ip4 (ip4_example, 80);
  unsigned i;

  /* Refused at the CMD byte: the address is never read. */
  for (i = 0; i < sizeof (cmds); i++)
    {
      bytes_t in = { 0 };

      cat_greeting (&in, m_no_auth, 1);
      cat_request (&in, cmds[i], &dst);
      check_server_request_error (&in, &cfg_no_auth, 3 + 2, SOCKS5_ERR_COMMAND_NOT_SUPPORTED, 0x07,
				  __LINE__);
    }
  {
    bytes_t in = { 0 };

    cat_greeting (&in, m_no_auth, 1);
    cat_request (&in, SOCKS5_CMD_UDP_ASSOCIATE, &dst);
    check_server_request_error (&in, &connect_only, 3 + 2, SOCKS5_ERR_COMMAND_NOT_SUPPORTED, 0x07,
				__LINE__);
    in.n = 0;
    cat_greeting (&in, m_no_auth, 1);
    cat_request (&in, SOCKS5_CMD_CONNECT, &dst);
    check_server_request_error (&in, &udp_only, 3 + 2, SOCKS5_ERR_COMMAND_NOT_SUPPORTED, 0x07,
				__LINE__);
  }
}

static void
test_server_bad_address_type (void)
{
  static const uint8_t atyps[] = { 0, 2, 5, 0xff };
  unsigned i;

  for (i = 0; i < sizeof (atyps); i++)
    {
      bytes_t in = { 0 };

      cat_greeting (&in, m_no_auth, 1);
      CAT (in, 5, 1, 0, atyps[i], 1, 2, 3, 4, 0, 80);
      check_server_request_error (&in, &cfg_no_auth, 3 + 4, SOCKS5_ERR_ADDRESS_TYPE_NOT_SUPPORTED,
				  0x08, __LINE__);
    }
}

static void
test_server_rsv_ignored (void)
{
  socks5_addr_t dst = addr_ip4 (ip4_example, 80);
  driver_server_policy_t pol = { 0 };
  bytes_t in = { 0 }, out = { 0 };

  cat_greeting (&in, m_no_auth, 1);
  cat_request (&in, SOCKS5_CMD_CONNECT, &dst);
  in.d[3 + 2] = 0x5a;
  CAT (out, 5, 0, 5, 0, 0, 1, 0, 0, 0, 0, 0, 0);
  check_server_success (&cfg_no_auth, &pol, &in, &out, SOCKS5_CMD_CONNECT, &dst);
}

/* Server: replies */

static void
test_server_each_reply_code (void)
{
  static driver_transcript_t t;
  socks5_addr_t dst = addr_ip4 (ip4_example, 80);
  unsigned rep;

  for (rep = 0; rep <= 8; rep++)
    {
      driver_server_policy_t pol = { .rep = (uint8_t) rep };
      bytes_t in = { 0 }, out = { 0 };

      cat_greeting (&in, m_no_auth, 1);
      cat_request (&in, SOCKS5_CMD_CONNECT, &dst);
      CAT (out, 5, 0, 5, (uint8_t) rep, 0, 1, 0, 0, 0, 0, 0, 0);
      server_all_splits (&cfg_no_auth, &pol, &in, &t);
      CHECK_MEM (t.out, t.out_len, out.d, out.n);
      CHECK_EQ (t.final_state, rep ? SOCKS5_SERVER_CLOSED : SOCKS5_SERVER_ESTABLISHED);
      CHECK (strcmp (socks5_rep_name ((uint8_t) rep), "unassigned") != 0);
    }
}

static void
test_reply_code_mapping (void)
{
  CHECK_EQ (socks5_rep_from_errno (ENETUNREACH), 0x03);
  CHECK_EQ (socks5_rep_from_errno (EHOSTUNREACH), 0x04);
  CHECK_EQ (socks5_rep_from_errno (ECONNREFUSED), 0x05);
  CHECK_EQ (socks5_rep_from_errno (-ECONNREFUSED), 0x05);
  CHECK_EQ (socks5_rep_from_errno (ETIMEDOUT), 0x06);
  CHECK_EQ (socks5_rep_from_errno (EACCES), 0x02);
  CHECK_EQ (socks5_rep_from_errno (EPERM), 0x02);
  CHECK_EQ (socks5_rep_from_errno (ENOMEM), 0x01);
  CHECK_EQ (socks5_rep_from_errno (0), 0x01);

  CHECK_EQ (socks5_rep_from_reason (SOCKS5_REASON_DENIED), 0x02);
  CHECK_EQ (socks5_rep_from_reason (SOCKS5_REASON_NETWORK_UNREACHABLE), 0x03);
  CHECK_EQ (socks5_rep_from_reason (SOCKS5_REASON_HOST_UNREACHABLE), 0x04);
  CHECK_EQ (socks5_rep_from_reason (SOCKS5_REASON_CONNECTION_REFUSED), 0x05);
  CHECK_EQ (socks5_rep_from_reason (SOCKS5_REASON_TIMEOUT), 0x06);
  CHECK_EQ (socks5_rep_from_reason (SOCKS5_REASON_BAD_COMMAND), 0x07);
  CHECK_EQ (socks5_rep_from_reason (SOCKS5_REASON_BAD_ADDRESS_TYPE), 0x08);
  /* The documented choice: a failed lookup is "host unreachable", as Dante and 3proxy send. */
  CHECK_EQ (socks5_rep_from_reason (SOCKS5_REASON_DNS_FAILURE), 0x04);
  CHECK_EQ (socks5_rep_from_reason (SOCKS5_REASON_OTHER), 0x01);
  CHECK_EQ (socks5_rep_from_reason ((socks5_reason_t) 1000), 0x01);
}

static void
test_server_reply_only_after_connect (void)
{
  /* The core never answers a request by itself, and refuses replies out of turn. */
  socks5_addr_t dst = addr_ip4 (ip4_example, 80);
  bytes_t in = { 0 };
  socks5_server_t s;
  socks5_event_t ev;
  socks5_out_t out;
  uint32_t consumed;

  cat_greeting (&in, m_no_auth, 1);
  cat_request (&in, SOCKS5_CMD_CONNECT, &dst);
  socks5_server_init (&s, &cfg_no_auth);
  CHECK_EQ (socks5_server_reply (&s, 0, 0, &out), SOCKS5_ERR_STATE);
  CHECK_EQ (out.len, 0);
  CHECK_EQ (socks5_server_feed (&s, in.d, 3, &consumed, &ev, &out), SOCKS5_EV_NEED_DATA);
  CHECK_EQ (socks5_server_reply (&s, 0, 0, &out), SOCKS5_ERR_STATE);
  CHECK_EQ (socks5_server_auth_result (&s, 1, &out), SOCKS5_ERR_STATE);
  CHECK_EQ (socks5_server_feed (&s, in.d + 3, in.n - 3, &consumed, &ev, &out), SOCKS5_EV_REQUEST);
  CHECK_EQ (out.len, 0);
  CHECK_EQ (socks5_server_state (&s), SOCKS5_SERVER_REPLY_WAIT);
  CHECK_EQ (socks5_server_feed (&s, in.d, 0, &consumed, &ev, &out), SOCKS5_EV_PAUSED);
  CHECK_EQ (out.len, 0);
  CHECK_EQ (socks5_server_reply (&s, 0, 0, &out), SOCKS5_ERR_NONE);
  CHECK_EQ (out.len, 10);
  CHECK_EQ (socks5_server_reply (&s, 0, 0, &out), SOCKS5_ERR_STATE);
  CHECK_EQ (out.len, 0);
}

static void
check_bnd (const socks5_addr_t *bnd, const bytes_t *expect, int line)
{
  socks5_addr_t dst = addr_ip4 (ip4_example, 80);
  bytes_t in = { 0 };
  socks5_server_t s;
  socks5_event_t ev;
  socks5_out_t out;
  uint32_t consumed;

  cat_greeting (&in, m_no_auth, 1);
  cat_request (&in, SOCKS5_CMD_CONNECT, &dst);
  socks5_server_init (&s, &cfg_no_auth);
  socks5_server_feed (&s, in.d, in.n, &consumed, &ev, &out);
  CHECK_EQ (socks5_server_reply (&s, 0, bnd, &out), SOCKS5_ERR_NONE);
  if (out.len != expect->n || memcmp (out.data, expect->d, out.len))
    test_report_mem (__FILE__, line, "reply", out.data, out.len, expect->d, expect->n);
}

static void
test_server_bnd_encoding (void)
{
  socks5_addr_t v4 = addr_ip4 (ip4_public, 1080), v6 = addr_ip6 (ip6_example, 65535);
  socks5_addr_t d1 = addr_domain ("a", 0), d255 = addr_domain_len (255, 443);
  bytes_t e = { 0 };

  CAT (e, 5, 0, 0, 1, 203, 0, 113, 7, 0x04, 0x38);
  check_bnd (&v4, &e, __LINE__);
  e.n = 0;
  CAT (e, 5, 0, 0, 4);
  cat (&e, ip6_example, 16);
  CAT (e, 0xff, 0xff);
  check_bnd (&v6, &e, __LINE__);
  e.n = 0;
  CAT (e, 5, 0, 0, 3, 1, 'a', 0, 0);
  check_bnd (&d1, &e, __LINE__);
  e.n = 0;
  CAT (e, 5, 0, 0, 3, 255);
  cat (&e, d255.domain, 255);
  CAT (e, 0x01, 0xbb);
  check_bnd (&d255, &e, __LINE__);
  e.n = 0;
  CAT (e, 5, 0, 0, 1, 0, 0, 0, 0, 0, 0);
  check_bnd (0, &e, __LINE__);
  check_bnd (&zero_bnd, &e, __LINE__);

  {
    socks5_addr_t bad = { .atyp = 2 };
    socks5_addr_t dst = addr_ip4 (ip4_example, 80);
    bytes_t in = { 0 };
    socks5_server_t s;
    socks5_event_t ev;
    socks5_out_t out;
    uint32_t consumed;

    cat_greeting (&in, m_no_auth, 1);
    cat_request (&in, SOCKS5_CMD_CONNECT, &dst);
    socks5_server_init (&s, &cfg_no_auth);
    socks5_server_feed (&s, in.d, in.n, &consumed, &ev, &out);
    CHECK_EQ (socks5_server_reply (&s, 0, &bad, &out), SOCKS5_ERR_BAD_ARGUMENT);
    CHECK_EQ (socks5_server_state (&s), SOCKS5_SERVER_REPLY_WAIT);
  }
}

static void
test_server_abort (void)
{
  socks5_addr_t dst = addr_ip4 (ip4_example, 80);
  bytes_t in = { 0 };
  socks5_server_t s;
  socks5_event_t ev;
  socks5_out_t out;
  uint32_t consumed;

  /* Handshake timeout before the request: nothing the client would understand, just close. */
  socks5_server_init (&s, &cfg_no_auth);
  socks5_server_feed (&s, (const uint8_t *) "\x05", 1, &consumed, &ev, &out);
  CHECK_EQ (socks5_server_abort (&s, SOCKS5_REASON_TIMEOUT, &out), SOCKS5_ERR_NONE);
  CHECK_EQ (out.len, 0);
  CHECK_EQ (socks5_server_state (&s), SOCKS5_SERVER_CLOSED);
  CHECK_EQ (socks5_server_error (&s), SOCKS5_ERR_ABORTED);
  CHECK_EQ (socks5_server_abort (&s, SOCKS5_REASON_TIMEOUT, &out), SOCKS5_ERR_CLOSED);
  CHECK_EQ (socks5_server_feed (&s, in.d, 0, &consumed, &ev, &out), SOCKS5_EV_ERROR);
  CHECK_EQ (ev.error, SOCKS5_ERR_ABORTED);
  CHECK (!ev.remote);

  /* Upstream connect timed out: the pending request gets REP 0x06. */
  cat_greeting (&in, m_no_auth, 1);
  cat_request (&in, SOCKS5_CMD_CONNECT, &dst);
  socks5_server_init (&s, &cfg_no_auth);
  socks5_server_feed (&s, in.d, in.n, &consumed, &ev, &out);
  CHECK_EQ (socks5_server_abort (&s, SOCKS5_REASON_TIMEOUT, &out), SOCKS5_ERR_NONE);
  CHECK_MEM (out.data, out.len, ((const uint8_t[]){ 5, 6, 0, 1, 0, 0, 0, 0, 0, 0 }), 10);

  /* An established session is the relay's to close. */
  socks5_server_init (&s, &cfg_no_auth);
  socks5_server_feed (&s, in.d, in.n, &consumed, &ev, &out);
  socks5_server_reply (&s, 0, 0, &out);
  CHECK_EQ (socks5_server_abort (&s, SOCKS5_REASON_OTHER, &out), SOCKS5_ERR_STATE);
  CHECK_EQ (socks5_server_state (&s), SOCKS5_SERVER_ESTABLISHED);
}

static void
test_server_init_rejects_bad_config (void)
{
  socks5_server_cfg_t cfg = { 0, SOCKS5_CMD_F_CONNECT };
  socks5_server_t s;
  socks5_event_t ev;
  socks5_out_t out;
  uint32_t consumed;

  CHECK_EQ (socks5_server_init (&s, &cfg), SOCKS5_ERR_BAD_ARGUMENT);
  /* A server that failed to initialise must not talk. */
  CHECK_EQ (socks5_server_feed (&s, (const uint8_t *) "\x05\x01\x00", 3, &consumed, &ev, &out),
	    SOCKS5_EV_ERROR);
  CHECK_EQ (consumed, 0);
  CHECK_EQ (out.len, 0);
  cfg.methods = 0x80;
  CHECK_EQ (socks5_server_init (&s, &cfg), SOCKS5_ERR_BAD_ARGUMENT);
  cfg.methods = SOCKS5_METHOD_F_NO_AUTH;
  cfg.commands = 0x80;
  CHECK_EQ (socks5_server_init (&s, &cfg), SOCKS5_ERR_BAD_ARGUMENT);
  CHECK_EQ (socks5_server_init (&s, 0), SOCKS5_ERR_BAD_ARGUMENT);
  CHECK_EQ (socks5_server_init (&s, &cfg_both), SOCKS5_ERR_NONE);
  CHECK_EQ (socks5_server_state (&s), SOCKS5_SERVER_GREETING);
}

/* UDP request header */

static void
test_udp_frag_nonzero_dropped (void)
{
  uint8_t dgram[] = { 0, 0, 0, 1, 192, 0, 2, 1, 0, 53, 'q' };
  socks5_udp_header_t h;
  unsigned frag;

  CHECK_EQ (socks5_udp_header_parse (dgram, sizeof (dgram), &h), 10);
  for (frag = 1; frag <= 255; frag++)
    {
      dgram[2] = (uint8_t) frag;
      CHECK_EQ (socks5_udp_header_parse (dgram, sizeof (dgram), &h), -SOCKS5_ERR_UDP_FRAGMENTED);
      CHECK_EQ (h.frag, frag);
    }
}

static void
check_udp_round_trip (const socks5_addr_t *a, int line)
{
  uint8_t buf[SOCKS5_UDP_HEADER_MAX_LEN + 4];
  socks5_udp_header_t h;
  int n, m;
  int was_failed = test_current_failed;

  test_current_failed = 0;
  n = socks5_udp_header_encode (a, buf, sizeof (buf));
  CHECK_EQ (n, 3 + (int) socks5_addr_encoded_len (a));
  CHECK_EQ (socks5_udp_header_encode (a, buf, (uint32_t) n - 1), -SOCKS5_ERR_NO_SPACE);
  CHECK_EQ (socks5_udp_header_encode (a, buf, (uint32_t) n), n);
  CHECK (buf[0] == 0 && buf[1] == 0 && buf[2] == 0);
  memcpy (buf + n, "DATA", 4);
  m = socks5_udp_header_parse (buf, (uint32_t) n + 4, &h);
  CHECK_EQ (m, n);
  CHECK_EQ (h.frag, 0);
  CHECK (socks5_addr_equal (&h.addr, a));
  if (a->atyp == SOCKS5_ATYP_DOMAIN)
    CHECK_EQ (h.addr.domain[h.addr.domain_len], 0);
  if (test_current_failed)
    fprintf (stderr, "    (from line %d)\n", line);
  test_current_failed |= was_failed;
}

static void
test_udp_header_round_trip (void)
{
  socks5_addr_t a;

  a = addr_ip4 (ip4_example, 53);
  check_udp_round_trip (&a, __LINE__);
  a = addr_ip4 (ip4_example, 0);
  check_udp_round_trip (&a, __LINE__);
  a = addr_ip6 (ip6_example, 65535);
  check_udp_round_trip (&a, __LINE__);
  a = addr_domain ("a", 443);
  check_udp_round_trip (&a, __LINE__);
  a = addr_domain_len (255, 8080);
  check_udp_round_trip (&a, __LINE__);
  {
    /* Known bytes, not only our own encoding. */
    static const uint8_t wire[] = { 0, 0, 0, 3, 3, 'f', 'o', 'o', 0x1f, 0x90 };
    socks5_udp_header_t h;

    CHECK_EQ (socks5_udp_header_parse (wire, sizeof (wire), &h), 10);
    a = addr_domain ("foo", 8080);
    CHECK (socks5_addr_equal (&h.addr, &a));
  }
}

static void
test_udp_header_truncated_and_invalid (void)
{
  socks5_addr_t addrs[3];
  uint8_t buf[SOCKS5_UDP_HEADER_MAX_LEN];
  socks5_udp_header_t h;
  unsigned i;
  int n;
  uint32_t k;

  addrs[0] = addr_ip4 (ip4_example, 53);
  addrs[1] = addr_ip6 (ip6_example, 53);
  addrs[2] = addr_domain_len (255, 53);
  for (i = 0; i < 3; i++)
    {
      n = socks5_udp_header_encode (&addrs[i], buf, sizeof (buf));
      /* Every prefix, in an exact-size buffer so AddressSanitizer sees any over-read. */
      for (k = 0; k < (uint32_t) n; k++)
	{
	  uint8_t *p = malloc (k ? k : 1);

	  memcpy (p, buf, k);
	  CHECK_EQ (socks5_udp_header_parse (p, k, &h), -SOCKS5_ERR_TRUNCATED);
	  free (p);
	}
    }
  CHECK_EQ (socks5_udp_header_parse ((const uint8_t[]){ 0, 0, 0, 2, 1, 2, 3, 4, 0, 53 }, 10, &h),
	    -SOCKS5_ERR_ADDRESS_TYPE_NOT_SUPPORTED);
  CHECK_EQ (socks5_udp_header_parse ((const uint8_t[]){ 0, 0, 0, 3, 0, 0, 53 }, 7, &h),
	    -SOCKS5_ERR_BAD_DOMAIN);
  /* RSV is ignored, as sing-box does. */
  CHECK_EQ (
    socks5_udp_header_parse ((const uint8_t[]){ 0xff, 0xff, 0, 1, 1, 2, 3, 4, 0, 53 }, 10, &h), 10);
  {
    socks5_addr_t bad = { .atyp = 7 }, empty = { .atyp = SOCKS5_ATYP_DOMAIN };

    CHECK_EQ (socks5_udp_header_encode (&bad, buf, sizeof (buf)), -SOCKS5_ERR_BAD_ARGUMENT);
    CHECK_EQ (socks5_udp_header_encode (&empty, buf, sizeof (buf)), -SOCKS5_ERR_BAD_ARGUMENT);
  }
}

/* Client role */

static socks5_client_cfg_t
client_cfg (uint8_t cmd, const socks5_addr_t *dst, int with_creds)
{
  socks5_client_cfg_t c = { 0 };

  c.cmd = cmd;
  c.dst = *dst;
  if (with_creds)
    {
      c.username = alice;
      c.username_len = 5;
      c.password = secret;
      c.password_len = 12;
    }
  return c;
}

static void
test_client_greeting (void)
{
  socks5_addr_t dst = addr_ip4 (ip4_example, 80);
  socks5_client_cfg_t cfg = client_cfg (SOCKS5_CMD_CONNECT, &dst, 0);
  socks5_client_t c;
  socks5_out_t out;

  CHECK_EQ (socks5_client_init (&c, &cfg, &out), SOCKS5_ERR_NONE);
  CHECK_MEM (out.data, out.len, ((const uint8_t[]){ 5, 1, 0 }), 3);
  cfg = client_cfg (SOCKS5_CMD_CONNECT, &dst, 1);
  CHECK_EQ (socks5_client_init (&c, &cfg, &out), SOCKS5_ERR_NONE);
  CHECK_MEM (out.data, out.len, ((const uint8_t[]){ 5, 2, 0, 2 }), 4);
  CHECK_EQ (socks5_client_state (&c), SOCKS5_CLIENT_METHOD);
}

static void
test_client_init_rejects_bad_config (void)
{
  socks5_addr_t dst = addr_ip4 (ip4_example, 80), bad_atyp = { .atyp = 2 };
  socks5_addr_t empty = { .atyp = SOCKS5_ATYP_DOMAIN };
  socks5_client_cfg_t cfg;
  socks5_client_t c;
  socks5_event_t ev;
  socks5_out_t out;
  uint32_t consumed;

  cfg = client_cfg (SOCKS5_CMD_BIND, &dst, 0);
  CHECK_EQ (socks5_client_init (&c, &cfg, &out), SOCKS5_ERR_BAD_ARGUMENT);
  CHECK_EQ (out.len, 0);
  CHECK_EQ (socks5_client_feed (&c, (const uint8_t *) "\x05\x00", 2, &consumed, &ev, &out),
	    SOCKS5_EV_ERROR);
  CHECK_EQ (consumed, 0);
  cfg = client_cfg (SOCKS5_CMD_CONNECT, &bad_atyp, 0);
  CHECK_EQ (socks5_client_init (&c, &cfg, &out), SOCKS5_ERR_BAD_ARGUMENT);
  cfg = client_cfg (SOCKS5_CMD_CONNECT, &empty, 0);
  CHECK_EQ (socks5_client_init (&c, &cfg, &out), SOCKS5_ERR_BAD_ARGUMENT);
  CHECK_EQ (socks5_client_init (&c, 0, &out), SOCKS5_ERR_BAD_ARGUMENT);
}

static void
test_client_no_auth_connect_leaves_relay_bytes (void)
{
  static driver_transcript_t t;
  socks5_addr_t dst = addr_domain ("example.com", 443), bnd = addr_ip4 (ip4_public, 61000);
  socks5_client_cfg_t cfg = client_cfg (SOCKS5_CMD_CONNECT, &dst, 0);
  bytes_t in = { 0 }, out = { 0 };
  uint32_t reply_end;

  CAT (in, 5, 0);
  cat_request (&in, 0, &bnd);
  reply_end = in.n;
  cat_str (&in, "HTTP/1.1 200 OK\r\n"); /* the relayed stream, already there */
  client_all_splits (&cfg, &in, &t);
  CHECK_EQ (t.consumed, reply_end);
  EXPECT_EVENTS (&t, SOCKS5_EV_CONNECTED);
  CHECK (socks5_addr_equal (&t.addr, &bnd));
  CHECK_EQ (t.final_state, SOCKS5_CLIENT_CONNECTED);
  CAT (out, 5, 1, 0);
  cat_request (&out, SOCKS5_CMD_CONNECT, &dst);
  CHECK_MEM (t.out, t.out_len, out.d, out.n);
}

static void
test_client_userpass_pipelined_replies (void)
{
  /* Method choice, auth status and reply in one segment: the client answers both and stops
   * at the end of the reply; the relay bytes after it stay. */
  static driver_transcript_t t;
  socks5_addr_t dst = addr_ip6 (ip6_example, 22), bnd = addr_domain_len (255, 1);
  socks5_client_cfg_t cfg = client_cfg (SOCKS5_CMD_CONNECT, &dst, 1);
  bytes_t in = { 0 }, out = { 0 };
  uint32_t reply_end;

  CAT (in, 5, 2, 1, 0);
  cat_request (&in, 0, &bnd);
  reply_end = in.n;
  CAT (in, 5, 0, 0, 1); /* looks like another reply: must not be read */
  client_all_splits (&cfg, &in, &t);
  CHECK_EQ (t.consumed, reply_end);
  EXPECT_EVENTS (&t, SOCKS5_EV_CONNECTED);
  CHECK_EQ (t.method, SOCKS5_METHOD_USERPASS);
  CHECK (socks5_addr_equal (&t.addr, &bnd));
  CAT (out, 5, 2, 0, 2);
  cat_auth (&out, alice, 5, secret, 12);
  cat_request (&out, SOCKS5_CMD_CONNECT, &dst);
  CHECK_MEM (t.out, t.out_len, out.d, out.n);
}

static void
test_client_bnd_ipv6_and_empty_domain (void)
{
  static driver_transcript_t t;
  socks5_addr_t dst = addr_ip4 (ip4_example, 80), bnd = addr_ip6 (ip6_example, 443);
  socks5_client_cfg_t cfg = client_cfg (SOCKS5_CMD_UDP_ASSOCIATE, &dst, 0);
  bytes_t in = { 0 };

  CAT (in, 5, 0);
  cat_request (&in, 0, &bnd);
  client_all_splits (&cfg, &in, &t);
  CHECK (socks5_addr_equal (&t.addr, &bnd));
  CHECK_EQ (t.consumed, in.n);

  /* BND is informational: an empty domain from the server is not a reason to fail. */
  in.n = 0;
  CAT (in, 5, 0, 5, 0, 0, 3, 0, 0x12, 0x34);
  client_all_splits (&cfg, &in, &t);
  EXPECT_EVENTS (&t, SOCKS5_EV_CONNECTED);
  CHECK_EQ (t.addr.atyp, SOCKS5_ATYP_DOMAIN);
  CHECK_EQ (t.addr.domain_len, 0);
  CHECK_EQ (t.addr.port, 0x1234);
}

static void
check_client_error (const socks5_client_cfg_t *cfg, const bytes_t *in, uint32_t consumed,
		    socks5_error_t err, uint8_t rep, int line)
{
  static driver_transcript_t t;
  int was_failed = test_current_failed;

  test_current_failed = 0;
  client_all_splits (cfg, in, &t);
  EXPECT_EVENTS (&t, SOCKS5_EV_ERROR);
  CHECK_EQ (t.error, err);
  CHECK_EQ (t.rep, rep);
  CHECK_EQ (t.consumed, consumed);
  CHECK_EQ (t.final_state, SOCKS5_CLIENT_CLOSED);
  if (test_current_failed)
    fprintf (stderr, "    (from line %d)\n", line);
  test_current_failed |= was_failed;
}

/* Client role, pipelined: greeting + auth + request in one write */

static socks5_client_cfg_t
pipelined_cfg (const socks5_addr_t *dst, int with_creds, int defer)
{
  socks5_client_cfg_t c = client_cfg (SOCKS5_CMD_CONNECT, dst, with_creds);

  c.pipeline = 1;
  c.defer_request = (uint8_t) defer;
  return c;
}

static void
test_client_pipelined_one_write (void)
{
  /* init writes everything; the server's three answers, whole or split anywhere, produce no
   * further bytes and stop at the end of the reply */
  static driver_transcript_t t;
  socks5_addr_t dst = addr_ip6 (ip6_example, 443), bnd = addr_ip4 (ip4_public, 1);
  socks5_client_cfg_t cfg = pipelined_cfg (&dst, 1, 0);
  bytes_t in = { 0 }, out = { 0 };
  socks5_client_t c;
  socks5_out_t o;
  uint32_t reply_end;

  CHECK_EQ (socks5_client_init (&c, &cfg, &o), SOCKS5_ERR_NONE);
  CAT (out, 5, 1, 2);
  cat_auth (&out, alice, 5, secret, 12);
  cat_request (&out, SOCKS5_CMD_CONNECT, &dst);
  CHECK_MEM (o.data, o.len, out.d, out.n);
  /* the credentials went out with the greeting: none stay in session memory */
  CHECK (!contains (&c, sizeof (c), secret, 12));

  CAT (in, 5, 2, 1, 0);
  cat_request (&in, 0, &bnd);
  reply_end = in.n;
  cat_str (&in, "relay");
  client_all_splits (&cfg, &in, &t);
  CHECK_EQ (t.consumed, reply_end);
  EXPECT_EVENTS (&t, SOCKS5_EV_CONNECTED);
  CHECK (socks5_addr_equal (&t.addr, &bnd));
  CHECK_MEM (t.out, t.out_len, out.d, out.n);

  /* no credentials: one method, no-auth, and the request */
  cfg = pipelined_cfg (&dst, 0, 0);
  out.n = 0;
  CAT (out, 5, 1, 0);
  cat_request (&out, SOCKS5_CMD_CONNECT, &dst);
  in.n = 0;
  CAT (in, 5, 0);
  cat_request (&in, 0, &bnd);
  client_all_splits (&cfg, &in, &t);
  CHECK_EQ (t.consumed, in.n);
  EXPECT_EVENTS (&t, SOCKS5_EV_CONNECTED);
  CHECK_MEM (t.out, t.out_len, out.d, out.n);
}

static void
test_client_pipelined_longest_write_fits (void)
{
  /* 255-byte credentials and a 255-byte domain: the longest pipelined write */
  uint8_t u[255], pw[255];
  socks5_addr_t dst = addr_domain_len (255, 8080);
  socks5_client_cfg_t cfg = pipelined_cfg (&dst, 0, 0);
  socks5_client_t c;
  socks5_out_t o;

  memset (u, 'u', sizeof (u));
  memset (pw, 'p', sizeof (pw));
  cfg.username = u;
  cfg.username_len = 255;
  cfg.password = pw;
  cfg.password_len = 255;
  CHECK_EQ (socks5_client_init (&c, &cfg, &o), SOCKS5_ERR_NONE);
  CHECK_EQ (o.len, 3 + 3 + 255 + 255 + 4 + 1 + 255 + 2);
  CHECK (o.len <= SOCKS5_OUT_MAX);
}

static void
test_client_pipelined_deferred_request (void)
{
  /* a pooled connection: greeting + auth now, READY after the auth status, the request when a
   * flow takes it; each input whole and split at every point */
  static driver_transcript_t t;
  socks5_addr_t dst = addr_ip4 (ip4_example, 80), bnd = addr_ip4 (ip4_public, 2);
  socks5_addr_t other = addr_domain ("example.com", 443);
  socks5_client_cfg_t cfg = pipelined_cfg (&dst, 1, 1);
  bytes_t in = { 0 }, out = { 0 };
  socks5_client_t c;
  socks5_event_t ev;
  socks5_out_t o;
  uint32_t consumed;

  CHECK_EQ (socks5_client_init (&c, &cfg, &o), SOCKS5_ERR_NONE);
  CAT (out, 5, 1, 2);
  cat_auth (&out, alice, 5, secret, 12);
  CHECK_MEM (o.data, o.len, out.d, out.n);
  cat_request (&out, SOCKS5_CMD_CONNECT, &dst);

  CAT (in, 5, 2, 1, 0);
  cat_request (&in, 0, &bnd);
  client_all_splits (&cfg, &in, &t);
  CHECK_EQ (t.consumed, in.n);
  EXPECT_EVENTS (&t, SOCKS5_EV_READY, SOCKS5_EV_CONNECTED);
  CHECK_MEM (t.out, t.out_len, out.d, out.n);

  /* after READY no bytes are taken (a reply to a request not sent stays unread) */
  CHECK_EQ (socks5_client_feed (&c, in.d, in.n, &consumed, &ev, &o), SOCKS5_EV_READY);
  CHECK_EQ (consumed, 4);
  CHECK_EQ (o.len, 0);
  CHECK_EQ (socks5_client_state (&c), SOCKS5_CLIENT_READY);
  CHECK_EQ (socks5_client_feed (&c, in.d + 4, in.n - 4, &consumed, &ev, &o), SOCKS5_EV_PAUSED);
  CHECK_EQ (consumed, 0);
  CHECK_EQ (o.len, 0);
  /* a bad destination is refused and changes nothing */
  CHECK_EQ (socks5_client_request (&c, SOCKS5_CMD_BIND, &other, &o), SOCKS5_ERR_BAD_ARGUMENT);
  CHECK_EQ (socks5_client_state (&c), SOCKS5_CLIENT_READY);
  CHECK_EQ (socks5_client_request (&c, SOCKS5_CMD_CONNECT, &other, &o), SOCKS5_ERR_NONE);
  out.n = 0;
  cat_request (&out, SOCKS5_CMD_CONNECT, &other);
  CHECK_MEM (o.data, o.len, out.d, out.n);
  CHECK_EQ (socks5_client_state (&c), SOCKS5_CLIENT_REPLY);
  /* one request per connection */
  CHECK_EQ (socks5_client_request (&c, SOCKS5_CMD_CONNECT, &other, &o), SOCKS5_ERR_STATE);
  CHECK_EQ (o.len, 0);
  CHECK_EQ (socks5_client_feed (&c, in.d + 4, in.n - 4, &consumed, &ev, &o), SOCKS5_EV_CONNECTED);
  CHECK_EQ (consumed, in.n - 4);

  /* sent before the server's answers arrive: straight to REPLY, like the one-write case */
  CHECK_EQ (socks5_client_init (&c, &cfg, &o), SOCKS5_ERR_NONE);
  CHECK_EQ (socks5_client_request (&c, SOCKS5_CMD_CONNECT, &dst, &o), SOCKS5_ERR_NONE);
  CHECK_EQ (socks5_client_state (&c), SOCKS5_CLIENT_METHOD);
  CHECK_EQ (socks5_client_feed (&c, in.d, in.n, &consumed, &ev, &o), SOCKS5_EV_CONNECTED);
  CHECK_EQ (consumed, in.n);
  CHECK_EQ (o.len, 0);
}

static void
test_client_pipelined_errors (void)
{
  socks5_addr_t dst = addr_ip4 (ip4_example, 80);
  socks5_client_cfg_t creds = pipelined_cfg (&dst, 1, 0), none = pipelined_cfg (&dst, 0, 0);
  socks5_client_cfg_t cfg;
  socks5_client_t c;
  socks5_out_t o;
  bytes_t in = { 0 };

  /* the server must pick the one method offered: the pipelined bytes assumed it */
  CAT (in, 5, 0);
  check_client_error (&creds, &in, 2, SOCKS5_ERR_METHOD_NOT_OFFERED, 1, __LINE__);
  in.n = 0;
  CAT (in, 5, 2);
  check_client_error (&none, &in, 2, SOCKS5_ERR_METHOD_NOT_OFFERED, 1, __LINE__);
  in.n = 0;
  CAT (in, 5, 0xff);
  check_client_error (&creds, &in, 2, SOCKS5_ERR_NO_ACCEPTABLE_METHOD, 1, __LINE__);
  in.n = 0;
  CAT (in, 5, 2, 1, 1);
  check_client_error (&creds, &in, 4, SOCKS5_ERR_AUTH_FAILED, 1, __LINE__);
  in.n = 0;
  CAT (in, 5, 0, 5, 5, 0);
  check_client_error (&none, &in, 4, SOCKS5_ERR_REQUEST_FAILED, 5, __LINE__);

  /* defer_request needs pipeline; a non-deferred one needs a valid request */
  cfg = client_cfg (SOCKS5_CMD_CONNECT, &dst, 1);
  cfg.defer_request = 1;
  CHECK_EQ (socks5_client_init (&c, &cfg, &o), SOCKS5_ERR_BAD_ARGUMENT);
  cfg = pipelined_cfg (&dst, 0, 0);
  cfg.cmd = SOCKS5_CMD_BIND;
  CHECK_EQ (socks5_client_init (&c, &cfg, &o), SOCKS5_ERR_BAD_ARGUMENT);
  cfg.defer_request = 1; /* cmd/dst unused when deferred */
  CHECK_EQ (socks5_client_init (&c, &cfg, &o), SOCKS5_ERR_NONE);
  /* request outside the pipelined mode, or after the close */
  cfg = client_cfg (SOCKS5_CMD_CONNECT, &dst, 0);
  CHECK_EQ (socks5_client_init (&c, &cfg, &o), SOCKS5_ERR_NONE);
  CHECK_EQ (socks5_client_request (&c, SOCKS5_CMD_CONNECT, &dst, &o), SOCKS5_ERR_STATE);
  CHECK_EQ (o.len, 0);
  cfg = client_cfg (SOCKS5_CMD_BIND, &dst, 0);
  CHECK_EQ (socks5_client_init (&c, &cfg, &o), SOCKS5_ERR_BAD_ARGUMENT);
  CHECK_EQ (socks5_client_request (&c, SOCKS5_CMD_CONNECT, &dst, &o), SOCKS5_ERR_CLOSED);
}

static void
test_pair_pipelined_client (void)
{
  /* the pipelined client against our own server, every split of both directions */
  static driver_pair_t p;
  static const uint8_t relay[] = "HTTP/1.1 200 OK\r\n";
  socks5_addr_t dst = addr_domain ("origin.test", 8080);
  socks5_server_cfg_t scfg = { SOCKS5_METHOD_F_NO_AUTH | SOCKS5_METHOD_F_USERPASS,
			       SOCKS5_CMD_F_CONNECT };
  driver_server_policy_t pol = { .user = alice, .user_len = 5, .pass = secret, .pass_len = 12 };
  uint8_t size;
  driver_splits_t sp = { &size, 1 };
  const char *err;
  int defer, creds;

  pol.rep = SOCKS5_REP_SUCCEEDED;
  for (defer = 0; defer <= 1; defer++)
    for (creds = 0; creds <= 1; creds++)
      for (size = 1; size < 40; size++)
	{
	  socks5_client_cfg_t ccfg = pipelined_cfg (&dst, creds, defer);

	  err = driver_pair_run (&ccfg, &scfg, &pol, &sp, &sp, relay, sizeof (relay) - 1, &p);
	  if (err)
	    {
	      test_report (__FILE__, __LINE__, "defer %d creds %d chunks %u: %s", defer, creds,
			   size, err);
	      return;
	    }
	  CHECK_EQ (p.client.final_state, SOCKS5_CLIENT_CONNECTED);
	  CHECK_EQ (p.server.final_state, SOCKS5_SERVER_ESTABLISHED);
	  CHECK (socks5_addr_equal (&p.server.addr, &dst));
	  CHECK_EQ (p.server.have_auth, creds);
	  CHECK_MEM (p.left, p.left_len, relay, sizeof (relay) - 1);
	}
}

static void
test_pair_pipelined_udp_associate (void)
{
  /* what the plugin's client-mode UDP sends: greeting, auth and UDP ASSOCIATE in one write, DST
   * all zeros of the endpoint's family (its relay port is not known yet, RFC 1928 section 7);
   * the reply's BND, unspecified or not, is where the datagrams go. Every split both ways. */
  static driver_pair_t p;
  static const uint8_t zero[16];
  socks5_server_cfg_t scfg = { SOCKS5_METHOD_F_USERPASS, SOCKS5_CMD_F_UDP_ASSOCIATE };
  driver_server_policy_t pol = { .user = alice, .user_len = 5, .pass = secret, .pass_len = 12 };
  socks5_addr_t dsts[2] = { addr_ip4 (zero, 0), addr_ip6 (zero, 0) };
  socks5_addr_t bnds[3] = { addr_ip4 (ip4_example, 40001), addr_ip6 (ip6_example, 40002),
			    addr_ip4 (zero, 40003) };
  uint8_t size;
  driver_splits_t sp = { &size, 1 };
  const char *err;
  unsigned d, b;

  pol.rep = SOCKS5_REP_SUCCEEDED;
  for (d = 0; d < 2; d++)
    for (b = 0; b < 3; b++)
      for (size = 1; size < 48; size += 3)
	{
	  socks5_client_cfg_t ccfg = client_cfg (SOCKS5_CMD_UDP_ASSOCIATE, &dsts[d], 1);

	  ccfg.pipeline = 1;
	  pol.bnd = &bnds[b];
	  err = driver_pair_run (&ccfg, &scfg, &pol, &sp, &sp, zero, 0, &p);
	  if (err)
	    {
	      test_report (__FILE__, __LINE__, "dst %u bnd %u chunks %u: %s", d, b, size, err);
	      return;
	    }
	  CHECK_EQ (p.client.final_state, SOCKS5_CLIENT_CONNECTED);
	  CHECK_EQ (p.server.cmd, SOCKS5_CMD_UDP_ASSOCIATE);
	  CHECK (socks5_addr_equal (&p.server.addr, &dsts[d]));
	  CHECK (socks5_addr_equal (&p.client.addr, &bnds[b]));
	  CHECK_EQ (p.server.have_auth, 1);
	}
}

static void
test_client_method_errors (void)
{
  socks5_addr_t dst = addr_ip4 (ip4_example, 80);
  socks5_client_cfg_t no_creds = client_cfg (SOCKS5_CMD_CONNECT, &dst, 0);
  socks5_client_cfg_t creds = client_cfg (SOCKS5_CMD_CONNECT, &dst, 1);
  bytes_t in = { 0 };

  /* A server choosing a method we did not offer is refused, not followed. */
  CAT (in, 5, 2, 1, 0);
  check_client_error (&no_creds, &in, 2, SOCKS5_ERR_METHOD_NOT_OFFERED, 1, __LINE__);
  in.n = 0;
  CAT (in, 5, 1);
  check_client_error (&creds, &in, 2, SOCKS5_ERR_METHOD_NOT_OFFERED, 1, __LINE__);
  in.n = 0;
  CAT (in, 5, 0x80);
  check_client_error (&creds, &in, 2, SOCKS5_ERR_METHOD_NOT_OFFERED, 1, __LINE__);
  in.n = 0;
  CAT (in, 5, 0xff);
  check_client_error (&creds, &in, 2, SOCKS5_ERR_NO_ACCEPTABLE_METHOD, 1, __LINE__);
  in.n = 0;
  CAT (in, 4, 0);
  check_client_error (&creds, &in, 1, SOCKS5_ERR_BAD_VERSION, 1, __LINE__);
}

static void
test_client_auth_errors (void)
{
  socks5_addr_t dst = addr_ip4 (ip4_example, 80);
  socks5_client_cfg_t creds = client_cfg (SOCKS5_CMD_CONNECT, &dst, 1);
  bytes_t in = { 0 };
  unsigned status;

  for (status = 1; status <= 255; status += 127)
    {
      in.n = 0;
      CAT (in, 5, 2, 1, (uint8_t) status, 5, 0);
      check_client_error (&creds, &in, 4, SOCKS5_ERR_AUTH_FAILED, 1, __LINE__);
    }
  in.n = 0;
  CAT (in, 5, 2, 5, 0);
  check_client_error (&creds, &in, 3, SOCKS5_ERR_BAD_AUTH_VERSION, 1, __LINE__);
}

static void
test_client_reply_errors (void)
{
  socks5_addr_t dst = addr_ip4 (ip4_example, 80);
  socks5_client_cfg_t cfg = client_cfg (SOCKS5_CMD_CONNECT, &dst, 0);
  bytes_t in = { 0 };
  unsigned rep;

  /* Every REP the server may send, reported as received; nothing past it is read. */
  for (rep = 1; rep <= 9; rep++)
    {
      uint8_t r = rep == 9 ? 0x42 : (uint8_t) rep;

      in.n = 0;
      CAT (in, 5, 0, 5, r, 0, 1, 0, 0, 0, 0, 0, 0);
      check_client_error (&cfg, &in, 4, SOCKS5_ERR_REQUEST_FAILED, r, __LINE__);
    }
  in.n = 0;
  CAT (in, 5, 0, 1, 0, 0, 1, 0, 0, 0, 0, 0, 0);
  check_client_error (&cfg, &in, 3, SOCKS5_ERR_BAD_VERSION, 1, __LINE__);
  in.n = 0;
  CAT (in, 5, 0, 5, 0, 0, 2, 0, 0, 0, 0, 0, 0);
  check_client_error (&cfg, &in, 6, SOCKS5_ERR_ADDRESS_TYPE_NOT_SUPPORTED, 1, __LINE__);
}

static void
test_client_wipes_credentials (void)
{
  socks5_addr_t dst = addr_ip4 (ip4_example, 80);
  socks5_client_cfg_t cfg = client_cfg (SOCKS5_CMD_CONNECT, &dst, 1);
  socks5_client_t c;
  socks5_event_t ev;
  socks5_out_t out;
  uint32_t consumed;

  socks5_client_init (&c, &cfg, &out);
  CHECK (contains (&c, sizeof (c), secret, 12));
  CHECK_EQ (socks5_client_feed (&c, (const uint8_t *) "\x05\x02", 2, &consumed, &ev, &out),
	    SOCKS5_EV_NEED_DATA);
  CHECK (contains (out.data, out.len, secret, 12));
  CHECK (!contains (&c, sizeof (c), secret, 12));
}

/* Client against server, in process */

static void
test_pair_round_trip_matrix (void)
{
  static driver_pair_t p;
  static const uint8_t chunk_sizes[] = { 0, 1, 2, 3, 7 };
  uint8_t user255[255], pass255[255];
  socks5_addr_t dsts[4], bnd = addr_ip6 (ip6_example, 4242);
  static const char relay[] = "relay bytes that follow the reply";
  unsigned d, cr, cmd, a, b, k;

  for (k = 0; k < 255; k++)
    user255[k] = pass255[k] = (uint8_t) (255 - k);
  dsts[0] = addr_ip4 (ip4_example, 443);
  dsts[1] = addr_ip6 (ip6_example, 80);
  dsts[2] = addr_domain ("example.com", 8080);
  dsts[3] = addr_domain_len (255, 1);

  for (d = 0; d < 4; d++)
    for (cr = 0; cr < 3; cr++)
      for (cmd = SOCKS5_CMD_CONNECT; cmd <= SOCKS5_CMD_UDP_ASSOCIATE; cmd += 2)
	for (a = 0; a < sizeof (chunk_sizes); a++)
	  for (b = 0; b < sizeof (chunk_sizes); b++)
	    {
	      socks5_client_cfg_t ccfg = client_cfg ((uint8_t) cmd, &dsts[d], cr == 1);
	      driver_server_policy_t pol = policy_alice ();
	      const socks5_server_cfg_t *scfg = cr ? &cfg_userpass : &cfg_no_auth;
	      driver_splits_t c2s = { &chunk_sizes[a], a ? 1 : 0 };
	      driver_splits_t s2c = { &chunk_sizes[b], b ? 1 : 0 };
	      const char *err;

	      if (cr == 2)
		{
		  ccfg.username = user255;
		  ccfg.username_len = 255;
		  ccfg.password = pass255;
		  ccfg.password_len = 0;
		  pol.user = user255;
		  pol.user_len = 255;
		  pol.pass = pass255;
		  pol.pass_len = 0;
		}
	      pol.bnd = &bnd;
	      err = driver_pair_run (&ccfg, scfg, &pol, &c2s, &s2c, (const uint8_t *) relay,
				     sizeof (relay), &p);
	      if (err || !p.server.have_request || p.client.n_events != 1 ||
		  p.client.events[0] != SOCKS5_EV_CONNECTED)
		{
		  test_report (__FILE__, __LINE__, "dst %u creds %u cmd %u splits %u/%u: %s", d, cr,
			       cmd, a, b, err ? err : "not connected");
		  return;
		}
	      CHECK_EQ (p.server.cmd, cmd);
	      CHECK (socks5_addr_equal (&p.server.addr, &dsts[d]));
	      CHECK (socks5_addr_equal (&p.client.addr, &bnd));
	      CHECK_EQ (p.server.have_auth, cr != 0);
	      CHECK_MEM (p.left, p.left_len, (const uint8_t *) relay, sizeof (relay));
	    }
}

static void
test_pair_failures (void)
{
  static driver_pair_t p;
  socks5_addr_t dst = addr_domain ("unresolvable.invalid", 80);
  socks5_client_cfg_t ccfg = client_cfg (SOCKS5_CMD_CONNECT, &dst, 0);
  driver_server_policy_t pol = policy_alice ();
  static const uint8_t one = 1;
  driver_splits_t bytewise = { &one, 1 };
  unsigned rep;

  for (rep = 1; rep <= 8; rep++)
    {
      pol.rep = (uint8_t) rep;
      CHECK (driver_pair_run (&ccfg, &cfg_no_auth, &pol, &bytewise, &bytewise, 0, 0, &p) == 0);
      CHECK (p.client.have_error);
      CHECK_EQ (p.client.error, SOCKS5_ERR_REQUEST_FAILED);
      CHECK_EQ (p.client.rep, rep);
      CHECK_EQ (p.server.final_state, SOCKS5_SERVER_CLOSED);
    }

  /* Wrong password: the client learns it from the status byte. */
  pol.rep = 0;
  ccfg = client_cfg (SOCKS5_CMD_CONNECT, &dst, 1);
  ccfg.password_len = 11;
  CHECK (driver_pair_run (&ccfg, &cfg_userpass, &pol, 0, &bytewise, 0, 0, &p) == 0);
  CHECK_EQ (p.client.error, SOCKS5_ERR_AUTH_FAILED);
  CHECK (!p.server.have_request);

  /* A server that requires a password, a client without one. */
  ccfg = client_cfg (SOCKS5_CMD_CONNECT, &dst, 0);
  CHECK (driver_pair_run (&ccfg, &cfg_userpass, &pol, 0, 0, 0, 0, &p) == 0);
  CHECK_EQ (p.client.error, SOCKS5_ERR_NO_ACCEPTABLE_METHOD);
  CHECK_EQ (p.server.error, SOCKS5_ERR_NO_ACCEPTABLE_METHOD);
}

static void
test_addr_helpers (void)
{
  socks5_addr_t a, b;
  uint8_t long_name[256];

  memset (long_name, 'x', sizeof (long_name));
  CHECK_EQ (socks5_addr_set_domain (&a, long_name, 0, 1), SOCKS5_ERR_BAD_ARGUMENT);
  CHECK_EQ (socks5_addr_set_domain (&a, long_name, 256, 1), SOCKS5_ERR_BAD_ARGUMENT);
  CHECK_EQ (socks5_addr_set_domain (&a, 0, 3, 1), SOCKS5_ERR_BAD_ARGUMENT);
  CHECK_EQ (socks5_addr_set_domain (&a, long_name, 255, 1), SOCKS5_ERR_NONE);
  CHECK_EQ (a.domain[255], 0);
  CHECK_EQ (socks5_addr_encoded_len (&a), 1 + 1 + 255 + 2);
  b = a;
  CHECK (socks5_addr_equal (&a, &b));
  b.domain[7] = 'y';
  CHECK (!socks5_addr_equal (&a, &b));
  b = addr_ip4 (ip4_example, 1);
  a = addr_ip4 (ip4_example, 2);
  CHECK (!socks5_addr_equal (&a, &b));
  a = addr_ip6 (ip6_example, 1);
  CHECK (!socks5_addr_equal (&a, &b));
  memset (&a, 0, sizeof (a));
  a.atyp = 9;
  CHECK_EQ (socks5_addr_encoded_len (&a), 0);
}

static void
test_client_error_accessor (void)
{
  socks5_addr_t dst = addr_ip4 (ip4_example, 80);
  socks5_client_cfg_t cfg = client_cfg (SOCKS5_CMD_CONNECT, &dst, 0);
  socks5_client_t c;
  socks5_event_t ev;
  socks5_out_t out;
  uint32_t consumed;

  socks5_client_init (&c, &cfg, &out);
  CHECK_EQ (socks5_client_error (&c), SOCKS5_ERR_NONE);
  CHECK_EQ (socks5_client_feed (&c, (const uint8_t *) "\x05\x00\x05\x04", 4, &consumed, &ev, &out),
	    SOCKS5_EV_ERROR);
  CHECK_EQ (socks5_client_error (&c), SOCKS5_ERR_REQUEST_FAILED);
  CHECK_EQ (ev.rep, SOCKS5_REP_HOST_UNREACHABLE);
  CHECK_EQ (socks5_client_state (&c), SOCKS5_CLIENT_CLOSED);
  /* Asking again gives the same answer and takes nothing. */
  CHECK_EQ (socks5_client_feed (&c, (const uint8_t *) "\x05", 1, &consumed, &ev, &out),
	    SOCKS5_EV_ERROR);
  CHECK_EQ (consumed, 0);
  CHECK_EQ (ev.rep, SOCKS5_REP_HOST_UNREACHABLE);
}

/* Names for show output */

static void
test_names (void)
{
  int i;

  for (i = 0; i < SOCKS5_N_ERROR; i++)
    CHECK (strcmp (socks5_error_name ((socks5_error_t) i), "unknown") != 0);
  for (i = 0; i < SOCKS5_N_EVENT; i++)
    CHECK (strcmp (socks5_event_name ((socks5_event_type_t) i), "unknown") != 0);
  for (i = 0; i < SOCKS5_SERVER_N_STATE; i++)
    CHECK (strcmp (socks5_server_state_name ((socks5_server_state_t) i), "unknown") != 0);
  for (i = 0; i < SOCKS5_CLIENT_N_STATE; i++)
    CHECK (strcmp (socks5_client_state_name ((socks5_client_state_t) i), "unknown") != 0);
  for (i = 0; i < SOCKS5_N_REASON; i++)
    CHECK (strcmp (socks5_reason_name ((socks5_reason_t) i), "unknown") != 0);
  CHECK (!strcmp (socks5_error_name (SOCKS5_N_ERROR), "unknown"));
  CHECK (!strcmp (socks5_event_name ((socks5_event_type_t) -1), "unknown"));
  CHECK (!strcmp (socks5_rep_name (0x09), "unassigned"));
  CHECK (!strcmp (socks5_rep_name (0x04), "host unreachable"));
  CHECK (!strcmp (socks5_server_state_name (SOCKS5_SERVER_REPLY_WAIT), "reply-wait"));
  CHECK_EQ (socks5_error_rep (SOCKS5_ERR_COMMAND_NOT_SUPPORTED), 0x07);
  CHECK (!socks5_error_is_remote (SOCKS5_ERR_STATE));
  CHECK (socks5_error_is_remote (SOCKS5_ERR_BAD_VERSION));
}

#define T(name)                                                                                    \
  {                                                                                                \
#name, name                                                                                    \
  }
const test_case_t test_cases[] = {
  T (test_server_no_auth_connect_ipv4),
  T (test_server_userpass_connect_ipv6),
  T (test_server_connect_domain),
  T (test_server_udp_associate_public_bnd),
  T (test_server_pipelined_one_write),
  T (test_server_pipelined_trailing_data_all_splits),
  T (test_server_capped_peek_loop),
  T (test_server_nmethods_zero),
  T (test_server_only_unknown_methods),
  T (test_server_never_chooses_unoffered_method),
  T (test_server_greeting_version_not_5),
  T (test_server_request_version_not_5),
  T (test_server_auth_version_not_1),
  T (test_server_credential_lengths_0_and_255),
  T (test_server_wrong_password_closes),
  T (test_server_wipes_credentials),
  T (test_server_domain_len_0_and_nul),
  T (test_server_domain_len_255),
  T (test_server_bad_command),
  T (test_server_bad_address_type),
  T (test_server_rsv_ignored),
  T (test_server_each_reply_code),
  T (test_reply_code_mapping),
  T (test_server_reply_only_after_connect),
  T (test_server_bnd_encoding),
  T (test_server_abort),
  T (test_server_awaits_message),
  T (test_server_init_rejects_bad_config),
  T (test_udp_frag_nonzero_dropped),
  T (test_udp_header_round_trip),
  T (test_udp_header_truncated_and_invalid),
  T (test_client_greeting),
  T (test_client_init_rejects_bad_config),
  T (test_client_no_auth_connect_leaves_relay_bytes),
  T (test_client_userpass_pipelined_replies),
  T (test_client_bnd_ipv6_and_empty_domain),
  T (test_client_pipelined_one_write),
  T (test_client_pipelined_longest_write_fits),
  T (test_client_pipelined_deferred_request),
  T (test_client_pipelined_errors),
  T (test_pair_pipelined_client),
  T (test_pair_pipelined_udp_associate),
  T (test_client_method_errors),
  T (test_client_auth_errors),
  T (test_client_reply_errors),
  T (test_client_wipes_credentials),
  T (test_pair_round_trip_matrix),
  T (test_pair_failures),
  T (test_addr_helpers),
  T (test_client_error_accessor),
  T (test_names),
};
const int n_test_cases = sizeof (test_cases) / sizeof (test_cases[0]);
