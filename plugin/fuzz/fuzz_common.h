/* SPDX-License-Identifier: Apache-2.0
 * Copyright (c) 2026 vpp-singbox authors
 */

/* What the SOCKS5 fuzzers share beyond fuzz_input.h: chunk splits and the driver's contract check.
 */

#ifndef included_socks5_fuzz_common_h
#define included_socks5_fuzz_common_h

#include "fuzz_input.h"
#include "socks5_driver.h"

/* Consumes up to max chunk sizes: a count, then the sizes. */
static inline void
fuzz_take_splits (const uint8_t **data, size_t *size, uint8_t *sizes, uint32_t max,
		  driver_splits_t *sp)
{
  sp->n = fuzz_take_sizes (data, size, sizes, max);
  sp->sizes = sizes;
}

static inline void
fuzz_check_transcript (const driver_transcript_t *t)
{
  if (t->violation)
    {
      fprintf (stderr, "API contract broken: %s\n", t->violation);
      abort ();
    }
}

#endif /* included_socks5_fuzz_common_h */
