/* SPDX-License-Identifier: Apache-2.0
 * Copyright (c) 2026 vpp-singbox authors
 */

/*
 * A minimal test harness, so the core's tests need nothing but a C compiler. A test is a function
 * registered in a table; a failed CHECK marks it failed and the test carries on, so one run shows
 * every broken expectation. main () ends with "N passed, N failed" alone on a line.
 */

#ifndef included_socks5_harness_h
#define included_socks5_harness_h

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct
{
  const char *name;
  void (*fn) (void);
} test_case_t;

extern const char *test_current;
extern int test_current_failed;

void test_report (const char *file, int line, const char *fmt, ...)
  __attribute__ ((format (printf, 3, 4)));
void test_report_mem (const char *file, int line, const char *what, const uint8_t *a, uint32_t alen,
		      const uint8_t *b, uint32_t blen);

#define CHECK(cond)                                                                                \
  do                                                                                               \
    {                                                                                              \
      if (!(cond))                                                                                 \
	test_report (__FILE__, __LINE__, "CHECK (%s)", #cond);                                     \
    }                                                                                              \
  while (0)

#define CHECK_EQ(a, b)                                                                             \
  do                                                                                               \
    {                                                                                              \
      long long _a = (long long) (a), _b = (long long) (b);                                        \
      if (_a != _b)                                                                                \
	test_report (__FILE__, __LINE__, "%s == %s: %lld != %lld", #a, #b, _a, _b);                \
    }                                                                                              \
  while (0)

#define CHECK_MEM(a, alen, b, blen)                                                                \
  do                                                                                               \
    {                                                                                              \
      uint32_t _al = (uint32_t) (alen), _bl = (uint32_t) (blen);                                   \
      if (_al != _bl || memcmp ((a), (b), _al))                                                    \
	test_report_mem (__FILE__, __LINE__, #a " == " #b, (a), _al, (b), _bl);                    \
    }                                                                                              \
  while (0)

/* The tests of one file, for main () to run. */
extern const test_case_t test_cases[];
extern const int n_test_cases;

#endif /* included_socks5_harness_h */
