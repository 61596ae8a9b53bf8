/* SPDX-License-Identifier: Apache-2.0
 * Copyright (c) 2026 vpp-singbox authors
 */

/* What the HTTP CONNECT fuzzers share: failing loudly, parameters read from the front. */

#ifndef included_http_connect_fuzz_common_h
#define included_http_connect_fuzz_common_h

#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "http_connect_driver.h"

int LLVMFuzzerTestOneInput (const uint8_t *data, size_t size);

#define FUZZ_ASSERT(cond, what)                                                                    \
  do                                                                                               \
    {                                                                                              \
      if (!(cond))                                                                                 \
	{                                                                                          \
	  fprintf (stderr, "%s:%d: invariant broken: %s (%s)\n", __FILE__, __LINE__, what, #cond); \
	  abort ();                                                                                \
	}                                                                                          \
    }                                                                                              \
  while (0)

static inline uint8_t
fuzz_take (const uint8_t **data, size_t *size)
{
  uint8_t b;

  if (!*size)
    return 0;
  b = **data;
  (*data)++;
  (*size)--;
  return b;
}

/* A count then up to 8 chunk sizes. */
static inline uint32_t
fuzz_take_splits (const uint8_t **data, size_t *size, uint8_t sizes[8])
{
  uint32_t n = fuzz_take (data, size) % 9, i;

  for (i = 0; i < n; i++)
    sizes[i] = fuzz_take (data, size);
  return n;
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
