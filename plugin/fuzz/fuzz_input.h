/* SPDX-License-Identifier: Apache-2.0
 * Copyright (c) 2026 vpp-singbox authors
 */

/* What every fuzzer shares, whatever protocol core it drives: a way to fail loudly, and input
 * parameters read from the front. */

#ifndef included_singbox_fuzz_input_h
#define included_singbox_fuzz_input_h

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

int LLVMFuzzerTestOneInput (const uint8_t *data, size_t size);

/* libFuzzer saves the input that got here as a crash reproducer. */
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

/* Consumes one parameter byte from the front of the input; 0 once it is used up. */
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

/* Consumes a count, then up to max chunk sizes into sizes; returns how many. */
static inline uint32_t
fuzz_take_sizes (const uint8_t **data, size_t *size, uint8_t *sizes, uint32_t max)
{
  uint32_t n = fuzz_take (data, size) % (max + 1), i;

  for (i = 0; i < n; i++)
    sizes[i] = fuzz_take (data, size);
  return n;
}

#endif /* included_singbox_fuzz_input_h */
