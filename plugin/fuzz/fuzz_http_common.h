/* SPDX-License-Identifier: Apache-2.0
 * Copyright (c) 2026 vpp-singbox authors
 */

/* What the HTTP CONNECT fuzzers share beyond fuzz_input.h: chunk splits and the header block's end.
 */

#ifndef included_http_connect_fuzz_common_h
#define included_http_connect_fuzz_common_h

#include <string.h>

#include "fuzz_input.h"
#include "http_connect_driver.h"

/* A count then up to 8 chunk sizes. */
static inline uint32_t
fuzz_take_splits (const uint8_t **data, size_t *size, uint8_t sizes[8])
{
  return fuzz_take_sizes (data, size, sizes, 8);
}

/*
 * Where the header block ends in the naive reading: the first empty line (CRLF or LF after a line
 * end). The core consumes exactly this much when it succeeds.
 */
static inline uint32_t
fuzz_head_end (const uint8_t *d, uint32_t n)
{
  uint32_t i;

  for (i = 1; i < n; i++)
    if (d[i] == '\n' && (d[i - 1] == '\n' || (i >= 2 && d[i - 1] == '\r' && d[i - 2] == '\n')))
      return i + 1;
  return 0;
}

#endif /* included_http_connect_fuzz_common_h */
