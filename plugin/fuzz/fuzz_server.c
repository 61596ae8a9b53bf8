/* SPDX-License-Identifier: Apache-2.0
 * Copyright (c) 2026 vpp-singbox authors
 */

/*
 * Server role under arbitrary client bytes. Input: two parameter bytes (configuration, how the
 * caller answers), chunk sizes, then the client's stream. Beyond "no crash", every input checks
 * that the same stream fed whole, in the fuzzed chunks and one byte at a time gives one and the
 * same transcript, that the driver saw no broken API promise, and that the server never chooses
 * a method the client did not offer nor reports a request it should have refused. With the top
 * bit of the first byte set, the rest is instead a sequence of API calls (see fuzz_api_sequence).
 */

#include <string.h>

#include "fuzz_common.h"

static const uint8_t fuzz_user[] = "alice", fuzz_pass[] = "secret";

static int
server_offered (const uint8_t *in, size_t len, uint8_t method)
{
  return len >= 2 && len >= 2u + in[1] && memchr (in + 2, method, in[1]) != 0;
}

/* Feeds n bytes from an exact-size copy, so AddressSanitizer sees any over-read. */
static socks5_event_type_t
api_feed (socks5_server_t *s, const uint8_t *data, uint32_t n, uint32_t *consumed,
	  socks5_event_t *ev, socks5_out_t *out)
{
  uint8_t *copy = n ? malloc (n) : 0;
  socks5_event_type_t t;

  if (n)
    memcpy (copy, data, n);
  t = socks5_server_feed (s, copy, n, consumed, ev, out);
  free (copy);
  return t;
}

/*
 * The plugin may call anything at any time: timers fire, sessions get killed, replies arrive
 * late. Any sequence of calls must keep the state machine consistent: a call out of turn returns
 * a local error and changes nothing, and every call that does act follows the protocol.
 */
static void
fuzz_api_sequence (const socks5_server_cfg_t *cfg, const uint8_t *data, size_t size)
{
  static const uint8_t ip4[4] = { 203, 0, 113, 1 };
  static const uint8_t ip6[16] = { 0x20, 0x01, 0x0d, 0xb8, [15] = 2 };
  socks5_server_t s;
  socks5_event_t ev;
  socks5_out_t out;
  socks5_addr_t bnd, *bp;
  socks5_server_state_t prev;
  socks5_event_type_t t;
  socks5_error_t e;
  uint32_t n, consumed;
  uint8_t op, rep;
  int ok;

  FUZZ_ASSERT (socks5_server_init (&s, cfg) == SOCKS5_ERR_NONE, "init");
  while (size)
    {
      op = fuzz_take (&data, &size);
      prev = socks5_server_state (&s);
      switch (op & 3)
	{
	case 0:
	  n = fuzz_take (&data, &size);
	  if (n > size)
	    n = (uint32_t) size;
	  t = api_feed (&s, data, n, &consumed, &ev, &out);
	  FUZZ_ASSERT (t == ev.type && t < SOCKS5_N_EVENT, "event type");
	  FUZZ_ASSERT (consumed <= n && out.len <= SOCKS5_OUT_MAX, "feed bounds");
	  if (t == SOCKS5_EV_NEED_DATA)
	    FUZZ_ASSERT (consumed == n, "NEED_DATA left bytes");
	  if (t == SOCKS5_EV_PAUSED || (t == SOCKS5_EV_ERROR && prev == SOCKS5_SERVER_CLOSED))
	    FUZZ_ASSERT (consumed == 0 && out.len == 0, "feed while paused or closed");
	  if (t == SOCKS5_EV_ERROR)
	    FUZZ_ASSERT (socks5_server_state (&s) == SOCKS5_SERVER_CLOSED, "error left open");
	  data += consumed;
	  size -= consumed;
	  break;
	case 1:
	  ok = (op >> 2) & 1;
	  e = socks5_server_auth_result (&s, ok, &out);
	  if (prev != SOCKS5_SERVER_AUTH_WAIT)
	    FUZZ_ASSERT ((e == SOCKS5_ERR_STATE || e == SOCKS5_ERR_CLOSED) && out.len == 0 &&
			   socks5_server_state (&s) == prev,
			 "auth_result out of turn acted");
	  else
	    FUZZ_ASSERT (e == (ok ? SOCKS5_ERR_NONE : SOCKS5_ERR_AUTH_FAILED) && out.len == 2 &&
			   out.data[0] == 1 && (out.data[1] == 0) == ok &&
			   socks5_server_state (&s) ==
			     (ok ? SOCKS5_SERVER_REQUEST : SOCKS5_SERVER_CLOSED),
			 "auth_result");
	  break;
	case 2:
	  rep = fuzz_take (&data, &size);
	  bp = &bnd;
	  switch ((op >> 2) & 3)
	    {
	    case 0:
	      bp = 0;
	      break;
	    case 1:
	      socks5_addr_set_ip4 (&bnd, ip4, 1);
	      break;
	    case 2:
	      socks5_addr_set_ip6 (&bnd, ip6, 2);
	      break;
	    default:
	      memset (&bnd, 0, sizeof (bnd));
	      bnd.atyp = op; /* mostly invalid */
	      break;
	    }
	  e = socks5_server_reply (&s, rep, bp, &out);
	  if (prev != SOCKS5_SERVER_REPLY_WAIT)
	    FUZZ_ASSERT ((e == SOCKS5_ERR_STATE || e == SOCKS5_ERR_CLOSED) && out.len == 0 &&
			   socks5_server_state (&s) == prev,
			 "reply out of turn acted");
	  else if (bp && !socks5_addr_encoded_len (bp))
	    FUZZ_ASSERT (e == SOCKS5_ERR_BAD_ARGUMENT && out.len == 0 &&
			   socks5_server_state (&s) == prev,
			 "reply with an invalid BND acted");
	  else
	    FUZZ_ASSERT (e == SOCKS5_ERR_NONE && out.len >= 10 && out.data[0] == 5 &&
			   out.data[1] == rep &&
			   socks5_server_state (&s) ==
			     (rep ? SOCKS5_SERVER_CLOSED : SOCKS5_SERVER_ESTABLISHED),
			 "reply");
	  break;
	default:
	  e = socks5_server_abort (&s, (socks5_reason_t) (fuzz_take (&data, &size) % 16), &out);
	  if (prev == SOCKS5_SERVER_CLOSED || prev == SOCKS5_SERVER_ESTABLISHED)
	    FUZZ_ASSERT (
	      e == (prev == SOCKS5_SERVER_CLOSED ? SOCKS5_ERR_CLOSED : SOCKS5_ERR_STATE) &&
		out.len == 0 && socks5_server_state (&s) == prev,
	      "abort out of turn acted");
	  else
	    FUZZ_ASSERT (e == SOCKS5_ERR_NONE && socks5_server_state (&s) == SOCKS5_SERVER_CLOSED &&
			   out.len == (prev == SOCKS5_SERVER_REPLY_WAIT ? 10 : 0),
			 "abort");
	  break;
	}
      FUZZ_ASSERT (strcmp (socks5_server_state_name (socks5_server_state (&s)), "unknown"),
		   "state out of range");
    }
}

int
LLVMFuzzerTestOneInput (const uint8_t *data, size_t size)
{
  static driver_transcript_t whole, split, bytewise;
  static const uint8_t one = 1;
  static const uint8_t ip4[4] = { 198, 51, 100, 9 };
  static const uint8_t ip6[16] = { 0x20, 0x01, 0x0d, 0xb8, [15] = 9 };
  driver_splits_t sp, bw = { &one, 1 };
  driver_server_policy_t pol = { 0 };
  socks5_server_cfg_t cfg;
  socks5_addr_t bnd;
  uint8_t sizes[16], p0, p1, rep;

  if (size > 2048)
    return 0;
  p0 = fuzz_take (&data, &size);
  p1 = fuzz_take (&data, &size);
  cfg.methods = (p0 & 3) ? (p0 & 3) : (SOCKS5_METHOD_F_NO_AUTH | SOCKS5_METHOD_F_USERPASS);
  cfg.commands = (p0 >> 2) & 3;
  if (p0 & 0x80)
    {
      fuzz_api_sequence (&cfg, data, size);
      return 0;
    }
  fuzz_take_splits (&data, &size, sizes, sizeof (sizes), &sp);

  pol.accept_any = (p0 >> 4) & 1;
  pol.user = fuzz_user;
  pol.user_len = 5;
  pol.pass = fuzz_pass;
  pol.pass_len = 6;
  rep = p1 & 15;
  pol.rep = rep > 9 ? 0 : rep == 9 ? 0x42 : rep;
  switch (p1 >> 6)
    {
    case 0:
      pol.bnd = 0;
      break;
    case 1:
      socks5_addr_set_ip4 (&bnd, ip4, 1080);
      pol.bnd = &bnd;
      break;
    case 2:
      socks5_addr_set_ip6 (&bnd, ip6, 65535);
      pol.bnd = &bnd;
      break;
    default:
      socks5_addr_set_domain (&bnd, (const uint8_t *) "relay.example", 13, 1);
      pol.bnd = &bnd;
      break;
    }

  driver_server_run (&cfg, &pol, data, (uint32_t) size, 0, &whole);
  fuzz_check_transcript (&whole);
  driver_server_run (&cfg, &pol, data, (uint32_t) size, &sp, &split);
  fuzz_check_transcript (&split);
  FUZZ_ASSERT (driver_transcript_equal (&whole, &split), "fuzzed chunks differ from whole input");
  driver_server_run (&cfg, &pol, data, (uint32_t) size, &bw, &bytewise);
  fuzz_check_transcript (&bytewise);
  FUZZ_ASSERT (driver_transcript_equal (&whole, &bytewise), "bytewise differs from whole input");

  FUZZ_ASSERT (whole.consumed <= size, "consumed beyond input");
  if (whole.out_len >= 2)
    {
      uint8_t m = whole.out[1];

      FUZZ_ASSERT (whole.out[0] == SOCKS5_VERSION, "method selection version");
      if (m != SOCKS5_METHOD_NO_ACCEPTABLE)
	{
	  FUZZ_ASSERT (server_offered (data, size, m), "chose a method the client did not offer");
	  FUZZ_ASSERT ((m == SOCKS5_METHOD_NO_AUTH && (cfg.methods & SOCKS5_METHOD_F_NO_AUTH)) ||
			 (m == SOCKS5_METHOD_USERPASS && (cfg.methods & SOCKS5_METHOD_F_USERPASS)),
		       "chose a method not allowed by the configuration");
	}
    }
  if (whole.have_request)
    {
      FUZZ_ASSERT (
	(whole.cmd == SOCKS5_CMD_CONNECT && (cfg.commands & SOCKS5_CMD_F_CONNECT)) ||
	  (whole.cmd == SOCKS5_CMD_UDP_ASSOCIATE && (cfg.commands & SOCKS5_CMD_F_UDP_ASSOCIATE)),
	"reported a command the configuration refuses");
      FUZZ_ASSERT (socks5_addr_encoded_len (&whole.addr) != 0, "reported an invalid ATYP");
      if (whole.addr.atyp == SOCKS5_ATYP_DOMAIN)
	FUZZ_ASSERT (whole.addr.domain_len &&
		       !memchr (whole.addr.domain, 0, whole.addr.domain_len) &&
		       whole.addr.domain[whole.addr.domain_len] == 0,
		     "reported an unusable domain");
      FUZZ_ASSERT (!whole.have_auth || cfg.methods & SOCKS5_METHOD_F_USERPASS, "auth not allowed");
    }
  if (whole.final_state == SOCKS5_SERVER_ESTABLISHED)
    FUZZ_ASSERT (whole.have_request && pol.rep == SOCKS5_REP_SUCCEEDED,
		 "established without a successful reply");
  if (whole.have_error)
    FUZZ_ASSERT (whole.final_state == SOCKS5_SERVER_CLOSED, "error without close");
  return 0;
}
