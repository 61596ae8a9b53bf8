/* SPDX-License-Identifier: Apache-2.0
 * Copyright (c) 2026 vpp-singbox authors
 */

/*
 * Server role under arbitrary client bytes. Input: the status to answer a request with (a
 * parameter byte picks 200, 407, 502 or none), chunk sizes, then the client's request. The
 * outcome must not depend on the split; a request ends exactly at the first empty line after the
 * request line; and a request, written back by the client role, reads back the same (host,
 * port, credentials).
 */

#include "fuzz_http_common.h"

static const uint8_t bytewise[1] = { 1 };
static const uint16_t replies[4] = { 0, 200, 407, 502 };

int
LLVMFuzzerTestOneInput (const uint8_t *data, size_t size)
{
  uint16_t reply = replies[fuzz_take (&data, &size) & 3];
  uint8_t sizes[8], req[HTTP_CONNECT_REQUEST_MAX];
  uint32_t n_sizes = fuzz_take_splits (&data, &size, sizes), i;
  hc_result_t whole, split, bytes, again;
  int n, user_ok;

  if (size > 16384)
    return 0;
  hc_drive_server (data, size, 0, 0, reply, &whole);
  hc_drive_server (data, size, sizes, n_sizes, reply, &split);
  hc_drive_server (data, size, bytewise, 1, reply, &bytes);
  FUZZ_ASSERT (!whole.contract_broken && !split.contract_broken && !bytes.contract_broken,
	       "API contract");
  FUZZ_ASSERT (hc_result_equal (&whole, &split) && hc_result_equal (&whole, &bytes),
	       "outcome depends on the split");
  FUZZ_ASSERT (whole.consumed <= size, "consumed more than offered");
  if (whole.type == HTTP_CONNECT_EV_ERROR)
    FUZZ_ASSERT (whole.out_len > 12 && !memcmp (whole.out, "HTTP/1.1 ", 9) && whole.status >= 400,
		 "refusal without a response");
  if (!whole.have_request)
    return 0;
  FUZZ_ASSERT (whole.consumed == fuzz_head_end (data, size) ||
		 /* empty lines before the request line are skipped, not the end */
		 whole.consumed > fuzz_head_end (data, size),
	       "request ends before an empty line");
  FUZZ_ASSERT (data[whole.consumed - 1] == '\n', "request ends mid-line");
  FUZZ_ASSERT (whole.consumed <= HTTP_CONNECT_MAX_HEAD, "header block over the bound");
  if (reply == 200)
    FUZZ_ASSERT (whole.out_len == 39, "200 response");

  /* round trip through the client role, when the writer accepts these credentials */
  user_ok = whole.auth && whole.user_len > 0;
  for (i = 0; user_ok && i < whole.user_len; i++)
    if (whole.user[i] < 0x20 || whole.user[i] == 0x7f)
      user_ok = 0;
  for (i = 0; user_ok && i < whole.pass_len; i++)
    if (whole.pass[i] < 0x20 || whole.pass[i] == 0x7f)
      user_ok = 0;
  n = http_connect_request_write (req, sizeof (req), whole.host, whole.host_len, whole.port,
				  user_ok ? whole.user : 0, user_ok ? whole.user_len : 0,
				  user_ok ? whole.pass : 0, user_ok ? whole.pass_len : 0);
  FUZZ_ASSERT (n > 0, "a parsed target is writable");
  hc_drive_server (req, n, 0, 0, 0, &again);
  FUZZ_ASSERT (again.have_request && again.host_len == whole.host_len &&
		 !memcmp (again.host, whole.host, whole.host_len) && again.port == whole.port &&
		 again.host_is_ip6 == whole.host_is_ip6 && again.auth == user_ok,
	       "round trip");
  if (user_ok)
    FUZZ_ASSERT (
      again.user_len == whole.user_len && !memcmp (again.user, whole.user, whole.user_len) &&
	again.pass_len == whole.pass_len && !memcmp (again.pass, whole.pass, whole.pass_len),
      "credentials round trip");
  return 0;
}
