/* SPDX-License-Identifier: Apache-2.0
 * Copyright (c) 2026 vpp-singbox authors
 */

/*
 * UDP request header codec. Parsing arbitrary datagrams must either fail with one of the
 * documented errors or return a header that encodes back to the same bytes (RSV aside, which is
 * ignored); encoding arbitrary addresses into arbitrary space must parse back to the same address.
 */

#include <string.h>

#include "fuzz_common.h"

int
LLVMFuzzerTestOneInput (const uint8_t *data, size_t size)
{
  uint8_t buf[SOCKS5_UDP_HEADER_MAX_LEN];
  socks5_udp_header_t h, h2;
  socks5_addr_t a;
  int r, n;

  if (size > 65535)
    return 0;
  r = socks5_udp_header_parse (data, (uint32_t) size, &h);
  if (r > 0)
    {
      FUZZ_ASSERT ((size_t) r <= size && r <= SOCKS5_UDP_HEADER_MAX_LEN, "header length");
      FUZZ_ASSERT (h.frag == 0 && data[2] == 0, "fragment accepted");
      n = socks5_udp_header_encode (&h.addr, buf, sizeof (buf));
      FUZZ_ASSERT (n == r && !memcmp (buf + 2, data + 2, (size_t) r - 2), "re-encoding differs");
      if (h.addr.atyp == SOCKS5_ATYP_DOMAIN)
	FUZZ_ASSERT (h.addr.domain_len && !memchr (h.addr.domain, 0, h.addr.domain_len),
		     "unusable domain accepted");
    }
  else
    {
      FUZZ_ASSERT (r == -SOCKS5_ERR_TRUNCATED || r == -SOCKS5_ERR_UDP_FRAGMENTED ||
		     r == -SOCKS5_ERR_ADDRESS_TYPE_NOT_SUPPORTED || r == -SOCKS5_ERR_BAD_DOMAIN,
		   "undocumented parse error");
      if (r == -SOCKS5_ERR_UDP_FRAGMENTED)
	FUZZ_ASSERT (size >= 4 && data[2] != 0 && h.frag == data[2], "FRAG misreported");
    }

  /* The other way: an address from the input, into as much space as the input says. */
  if (size >= 4)
    {
      uint32_t space = data[0] % (sizeof (buf) + 1);
      uint8_t kind = data[1] % 3, dlen = data[2];

      if (kind == 0 && size < 7)
	return 0;
      if (kind == 1 && size < 19)
	return 0;
      if (kind == 0)
	socks5_addr_set_ip4 (&a, data + 3, (uint16_t) (data[0] << 8 | data[1]));
      else if (kind == 1)
	socks5_addr_set_ip6 (&a, data + 3, (uint16_t) (data[0] << 8 | data[1]));
      else if (socks5_addr_set_domain (&a, data + 3, dlen < size - 3 ? dlen : (uint32_t) size - 3,
				       (uint16_t) (data[0] << 8 | data[1])) != SOCKS5_ERR_NONE)
	return 0;
      n = socks5_udp_header_encode (&a, buf, space);
      if ((uint32_t) (3 + socks5_addr_encoded_len (&a)) > space)
	FUZZ_ASSERT (n == -SOCKS5_ERR_NO_SPACE, "encoded past the given space");
      else
	{
	  FUZZ_ASSERT (n == (int) (3 + socks5_addr_encoded_len (&a)), "encoded length");
	  r = socks5_udp_header_parse (buf, (uint32_t) n, &h2);
	  if (kind == 2 && memchr (a.domain, 0, a.domain_len))
	    FUZZ_ASSERT (r == -SOCKS5_ERR_BAD_DOMAIN, "NUL in domain parsed");
	  else
	    FUZZ_ASSERT (r == n && socks5_addr_equal (&h2.addr, &a), "round trip differs");
	}
    }
  return 0;
}
