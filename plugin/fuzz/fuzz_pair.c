/* SPDX-License-Identifier: Apache-2.0
 * Copyright (c) 2026 vpp-singbox authors
 */

/*
 * Client role against server role in process, with fuzzed destination, credentials, replies,
 * chunking in both directions and relay data. Whatever the input, the outcome is predictable from
 * the parameters alone: the handshake completes with DST and BND carried intact and the relay
 * bytes left untouched, or fails with exactly the error the parameters call for.
 */

#include <string.h>

#include "fuzz_common.h"

int
LLVMFuzzerTestOneInput (const uint8_t *data, size_t size)
{
  static driver_pair_t p;
  static const uint8_t ip4[4] = { 10, 1, 2, 3 };
  static const uint8_t ip6[16] = { 0x20, 0x01, 0x0d, 0xb8, [14] = 0xbe, [15] = 0xef };
  socks5_client_cfg_t ccfg = { 0 };
  socks5_server_cfg_t scfg;
  driver_server_policy_t pol = { 0 };
  driver_splits_t c2s, s2c;
  socks5_addr_t bnd;
  uint8_t c2s_sizes[8], s2c_sizes[8], user[255], pass[255], name[255];
  uint8_t p0, p1, ulen = 0, plen = 0, nlen, i;
  int creds, wrong_pass, nul_in_name = 0;
  uint16_t port;
  const char *err;

  if (size > 4096)
    return 0;
  p0 = fuzz_take (&data, &size);
  p1 = fuzz_take (&data, &size);
  port = (uint16_t) (fuzz_take (&data, &size) << 8 | fuzz_take (&data, &size));
  creds = p0 & 1;
  wrong_pass = creds && (p0 & 2);
  ccfg.cmd = (p0 & 4) ? SOCKS5_CMD_UDP_ASSOCIATE : SOCKS5_CMD_CONNECT;
  /* pipelined handshake, its request sent at once or deferred (a pooled connection) */
  ccfg.pipeline = !!(p0 & 0x80);
  ccfg.defer_request = ccfg.pipeline && (port & 1);
  switch ((p0 >> 3) & 3)
    {
    case 0:
      socks5_addr_set_ip4 (&ccfg.dst, ip4, port);
      break;
    case 1:
      socks5_addr_set_ip6 (&ccfg.dst, ip6, port);
      break;
    default:
      nlen = (uint8_t) (fuzz_take (&data, &size) % 255 + 1);
      for (i = 0; i < nlen; i++)
	{
	  name[i] = fuzz_take (&data, &size);
	  nul_in_name |= name[i] == 0;
	}
      socks5_addr_set_domain (&ccfg.dst, name, nlen, port);
      break;
    }
  if (creds)
    {
      ulen = fuzz_take (&data, &size);
      plen = fuzz_take (&data, &size);
      for (i = 0; i < ulen; i++)
	user[i] = fuzz_take (&data, &size);
      for (i = 0; i < plen; i++)
	pass[i] = fuzz_take (&data, &size);
      ccfg.username = user;
      ccfg.username_len = ulen;
      ccfg.password = pass;
      ccfg.password_len = plen;
    }
  /* The server asks for a password exactly when the client has one, or offers both. */
  scfg.methods = (p0 & 0x20) ? (SOCKS5_METHOD_F_NO_AUTH | SOCKS5_METHOD_F_USERPASS) :
		 creds	     ? SOCKS5_METHOD_F_USERPASS :
			       SOCKS5_METHOD_F_NO_AUTH;
  scfg.commands = SOCKS5_CMD_F_CONNECT | SOCKS5_CMD_F_UDP_ASSOCIATE;
  pol.user = user;
  pol.user_len = ulen;
  pol.pass = pass;
  pol.pass_len = wrong_pass ? (uint8_t) (plen ^ 1) : plen;
  pol.rep = (p1 & 0x80) ? (p1 & 0x7f) : 0;
  if (p0 & 0x40)
    socks5_addr_set_ip6 (&bnd, ip6, port ^ 0xffff);
  else
    socks5_addr_set_ip4 (&bnd, ip4, port ^ 0x5555);
  pol.bnd = &bnd;
  fuzz_take_splits (&data, &size, c2s_sizes, sizeof (c2s_sizes), &c2s);
  fuzz_take_splits (&data, &size, s2c_sizes, sizeof (s2c_sizes), &s2c);

  err = driver_pair_run (&ccfg, &scfg, &pol, &c2s, &s2c, data, (uint32_t) size, &p);
  if (err)
    {
      fprintf (stderr, "pair run failed: %s\n", err);
      abort ();
    }

  if (creds && wrong_pass)
    {
      FUZZ_ASSERT (p.client.have_error && p.client.error == SOCKS5_ERR_AUTH_FAILED,
		   "wrong password not reported");
      FUZZ_ASSERT (!p.server.have_request, "request past a failed authentication");
    }
  else if (nul_in_name)
    FUZZ_ASSERT (p.client.have_error && p.client.error == SOCKS5_ERR_REQUEST_FAILED &&
		   p.client.rep == SOCKS5_REP_HOST_UNREACHABLE && !p.server.have_request,
		 "domain with NUL not refused with 0x04");
  else if (pol.rep != SOCKS5_REP_SUCCEEDED)
    FUZZ_ASSERT (p.client.have_error && p.client.error == SOCKS5_ERR_REQUEST_FAILED &&
		   p.client.rep == pol.rep,
		 "failure REP not carried to the client");
  else
    {
      FUZZ_ASSERT (p.client.n_events == 1 + ccfg.defer_request &&
		     p.client.events[p.client.n_events - 1] == SOCKS5_EV_CONNECTED &&
		     (!ccfg.defer_request || p.client.events[0] == SOCKS5_EV_READY),
		   "not connected");
      FUZZ_ASSERT (p.server.have_request && p.server.cmd == ccfg.cmd &&
		     socks5_addr_equal (&p.server.addr, &ccfg.dst),
		   "DST changed on the way");
      FUZZ_ASSERT (socks5_addr_equal (&p.client.addr, &bnd), "BND changed on the way");
      FUZZ_ASSERT (p.left_len == size && !memcmp (p.left, data, size), "relay bytes touched");
      FUZZ_ASSERT (p.server.have_auth == (creds != 0), "authentication when none was due");
      if (creds)
	FUZZ_ASSERT (p.server.user_len == ulen && !memcmp (p.server.user, user, ulen) &&
		       p.server.pass_len == plen && !memcmp (p.server.pass, pass, plen),
		     "credentials changed on the way");
    }
  return 0;
}
