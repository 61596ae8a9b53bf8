/* SPDX-License-Identifier: Apache-2.0
 * Copyright (c) 2026 vpp-singbox authors
 */

/*
 * Client role under arbitrary proxy bytes. Input: chunk sizes, then the proxy's response. The
 * outcome must not depend on how the bytes arrive (whole, byte by byte, the fuzzer's chunks), a
 * tunnel opens only on a 2xx status line whose header block ends exactly where consumption
 * stopped, and nothing after that is taken.
 */

#include "fuzz_http_common.h"

static const uint8_t bytewise[1] = { 1 };

int
LLVMFuzzerTestOneInput (const uint8_t *data, size_t size)
{
  uint8_t sizes[8];
  uint32_t n_sizes = fuzz_take_splits (&data, &size, sizes), end;
  hc_result_t whole, split, bytes;

  if (size > 16384)
    return 0;
  hc_drive_client (data, size, 0, 0, &whole);
  hc_drive_client (data, size, sizes, n_sizes, &split);
  hc_drive_client (data, size, bytewise, 1, &bytes);
  FUZZ_ASSERT (!whole.contract_broken && !split.contract_broken && !bytes.contract_broken,
	       "API contract");
  FUZZ_ASSERT (hc_result_equal (&whole, &split) && hc_result_equal (&whole, &bytes),
	       "outcome depends on the split");
  FUZZ_ASSERT (whole.consumed <= size, "consumed more than offered");
  if (whole.type == HTTP_CONNECT_EV_CONNECTED)
    {
      /* the consumed bytes end with an empty line, and the last response's status line is 2xx:
       * the only 2xx-looking status line before it would have to be a 1xx's */
      end = whole.consumed;
      FUZZ_ASSERT (
	end >= 2 && data[end - 1] == '\n' &&
	  (data[end - 2] == '\n' || (end >= 3 && data[end - 2] == '\r' && data[end - 3] == '\n')),
	"tunnel opened before an empty line");
      FUZZ_ASSERT (whole.status >= 200 && whole.status <= 299, "tunnel on a non-2xx status");
      FUZZ_ASSERT (end <= HTTP_CONNECT_MAX_HEAD, "header block over the bound");
      FUZZ_ASSERT (size >= 12 && !memcmp (data, "HTTP/1.", 7), "tunnel without a status line");
    }
  if (whole.type == HTTP_CONNECT_EV_NEED_DATA)
    FUZZ_ASSERT (whole.consumed == size && size <= HTTP_CONNECT_MAX_HEAD, "need-data");
  return 0;
}
