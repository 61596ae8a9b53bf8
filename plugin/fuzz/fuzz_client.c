/* SPDX-License-Identifier: Apache-2.0
 * Copyright (c) 2026 vpp-singbox authors
 */

/*
 * Client role under arbitrary server bytes. Input: a parameter byte (credentials, command,
 * destination type), credential lengths, chunk sizes, then the server's stream. Every input is
 * checked against a second, deliberately naive reading of RFC 1928/1929 over the whole buffer:
 * same outcome, same error, same REP, and exactly the bytes of the handshake consumed, never one
 * more (what follows the reply belongs to the relay). Split and bytewise feeding must agree.
 */

#include <string.h>

#include "fuzz_common.h"

typedef struct
{
  socks5_event_type_t type;
  socks5_error_t error;
  uint8_t rep;
  uint32_t consumed;
  int sent_auth;
  int sent_request;
} oracle_t;

static oracle_t
oracle (const uint8_t *d, uint32_t n, int offer_userpass)
{
  oracle_t o = { SOCKS5_EV_NEED_DATA, SOCKS5_ERR_NONE, 0, n, 0, 0 };
  uint32_t p = 0, len;

#define NEED(k)                                                                                    \
  if (n < p + (k))                                                                                 \
  return o
#define FAIL(e, at, r)                                                                             \
  do                                                                                               \
    {                                                                                              \
      o.type = SOCKS5_EV_ERROR;                                                                    \
      o.error = (e);                                                                               \
      o.consumed = (at);                                                                           \
      o.rep = (r);                                                                                 \
      return o;                                                                                    \
    }                                                                                              \
  while (0)

  NEED (1);
  if (d[0] != 5)
    FAIL (SOCKS5_ERR_BAD_VERSION, 1, 1);
  NEED (2);
  p = 2;
  if (d[1] == 0xff)
    FAIL (SOCKS5_ERR_NO_ACCEPTABLE_METHOD, 2, 1);
  if (d[1] == 2 && offer_userpass)
    {
      o.sent_auth = 1;
      NEED (1);
      if (d[p] != 1)
	FAIL (SOCKS5_ERR_BAD_AUTH_VERSION, p + 1, 1);
      NEED (2);
      if (d[p + 1] != 0)
	FAIL (SOCKS5_ERR_AUTH_FAILED, p + 2, 1);
      p += 2;
    }
  else if (d[1] != 0)
    FAIL (SOCKS5_ERR_METHOD_NOT_OFFERED, 2, 1);
  o.sent_request = 1;
  NEED (1);
  if (d[p] != 5)
    FAIL (SOCKS5_ERR_BAD_VERSION, p + 1, 1);
  NEED (2);
  if (d[p + 1] != 0)
    FAIL (SOCKS5_ERR_REQUEST_FAILED, p + 2, d[p + 1]);
  NEED (4);
  if (d[p + 3] == 1)
    len = 10;
  else if (d[p + 3] == 4)
    len = 22;
  else if (d[p + 3] == 3)
    {
      NEED (5);
      len = 7 + d[p + 4];
    }
  else
    FAIL (SOCKS5_ERR_ADDRESS_TYPE_NOT_SUPPORTED, p + 4, 1);
  NEED (len);
  o.type = SOCKS5_EV_CONNECTED;
  o.consumed = p + len;
  return o;
#undef NEED
#undef FAIL
}

int
LLVMFuzzerTestOneInput (const uint8_t *data, size_t size)
{
  static driver_transcript_t whole, split, bytewise;
  static const uint8_t one = 1;
  static const uint8_t ip4[4] = { 192, 0, 2, 44 };
  static const uint8_t ip6[16] = { 0xfe, 0x80, [15] = 1 };
  static uint8_t user[255], pass[255], expect[2048];
  driver_splits_t sp, bw = { &one, 1 };
  socks5_client_cfg_t cfg = { 0 };
  uint8_t sizes[16], p0;
  uint32_t i, n;
  oracle_t o;

  if (size > 2048)
    return 0;
  if (!user[0])
    for (i = 0; i < 255; i++)
      {
	user[i] = (uint8_t) ('a' + i % 26);
	pass[i] = (uint8_t) (255 - i);
      }
  p0 = fuzz_take (&data, &size);
  cfg.cmd = (p0 & 2) ? SOCKS5_CMD_UDP_ASSOCIATE : SOCKS5_CMD_CONNECT;
  if (p0 & 1)
    {
      cfg.username = user;
      cfg.password = pass;
      cfg.username_len = fuzz_take (&data, &size);
      cfg.password_len = fuzz_take (&data, &size);
    }
  switch ((p0 >> 2) & 3)
    {
    case 0:
      socks5_addr_set_ip4 (&cfg.dst, ip4, 443);
      break;
    case 1:
      socks5_addr_set_ip6 (&cfg.dst, ip6, 80);
      break;
    default:
      socks5_addr_set_domain (&cfg.dst, user, 1 + (p0 >> 4) * 16, 8080);
      break;
    }
  fuzz_take_splits (&data, &size, sizes, sizeof (sizes), &sp);

  driver_client_run (&cfg, data, (uint32_t) size, 0, &whole);
  fuzz_check_transcript (&whole);
  driver_client_run (&cfg, data, (uint32_t) size, &sp, &split);
  fuzz_check_transcript (&split);
  FUZZ_ASSERT (driver_transcript_equal (&whole, &split), "fuzzed chunks differ from whole input");
  driver_client_run (&cfg, data, (uint32_t) size, &bw, &bytewise);
  fuzz_check_transcript (&bytewise);
  FUZZ_ASSERT (driver_transcript_equal (&whole, &bytewise), "bytewise differs from whole input");

  o = oracle (data, (uint32_t) size, cfg.username != 0);
  FUZZ_ASSERT (whole.consumed == o.consumed, "consumed differs from the oracle");
  if (o.type == SOCKS5_EV_NEED_DATA)
    FUZZ_ASSERT (whole.n_events == 0, "event where the oracle needs more data");
  else
    {
      FUZZ_ASSERT (whole.n_events == 1 && whole.events[0] == o.type, "outcome differs");
      if (o.type == SOCKS5_EV_ERROR)
	FUZZ_ASSERT (whole.error == o.error && whole.rep == o.rep, "error differs from oracle");
    }

  /* What the client sent: greeting, then auth and request only when their turn came. */
  n = 0;
  expect[n++] = 5;
  if (cfg.username)
    {
      memcpy (expect + n, "\x02\x00\x02", 3);
      n += 3;
    }
  else
    {
      memcpy (expect + n, "\x01\x00", 2);
      n += 2;
    }
  if (o.sent_auth)
    {
      expect[n++] = 1;
      expect[n++] = cfg.username_len;
      memcpy (expect + n, user, cfg.username_len);
      n += cfg.username_len;
      expect[n++] = cfg.password_len;
      memcpy (expect + n, pass, cfg.password_len);
      n += cfg.password_len;
    }
  if (o.sent_request)
    {
      expect[n++] = 5;
      expect[n++] = cfg.cmd;
      expect[n++] = 0;
      expect[n++] = cfg.dst.atyp;
      if (cfg.dst.atyp == SOCKS5_ATYP_IPV4)
	memcpy (expect + n, ip4, 4), n += 4;
      else if (cfg.dst.atyp == SOCKS5_ATYP_IPV6)
	memcpy (expect + n, ip6, 16), n += 16;
      else
	{
	  expect[n++] = cfg.dst.domain_len;
	  memcpy (expect + n, user, cfg.dst.domain_len);
	  n += cfg.dst.domain_len;
	}
      expect[n++] = (uint8_t) (cfg.dst.port >> 8);
      expect[n++] = (uint8_t) cfg.dst.port;
    }
  FUZZ_ASSERT (whole.out_len == n && !memcmp (whole.out, expect, n), "client sent wrong bytes");
  return 0;
}
