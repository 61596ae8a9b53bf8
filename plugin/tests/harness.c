/* SPDX-License-Identifier: Apache-2.0
 * Copyright (c) 2026 vpp-singbox authors
 */

#include <stdarg.h>

#include "harness.h"

const char *test_current;
int test_current_failed;

void
test_report (const char *file, int line, const char *fmt, ...)
{
  va_list ap;

  test_current_failed = 1;
  fprintf (stderr, "%s:%d: %s: ", file, line, test_current);
  va_start (ap, fmt);
  vfprintf (stderr, fmt, ap);
  va_end (ap);
  fputc ('\n', stderr);
}

static void
test_hex (const uint8_t *p, uint32_t len)
{
  uint32_t i;

  for (i = 0; i < len && i < 64; i++)
    fprintf (stderr, "%02x", p[i]);
  if (len > 64)
    fprintf (stderr, "...");
  fprintf (stderr, " (%u bytes)\n", len);
}

void
test_report_mem (const char *file, int line, const char *what, const uint8_t *a, uint32_t alen,
		 const uint8_t *b, uint32_t blen)
{
  test_report (file, line, "%s differ", what);
  fprintf (stderr, "    got      ");
  test_hex (a, alen);
  fprintf (stderr, "    expected ");
  test_hex (b, blen);
}

/* Usage: test_socks5 [substring]: runs the tests whose name contains substring. */
int
main (int argc, char **argv)
{
  int i, passed = 0, failed = 0;

  for (i = 0; i < n_test_cases; i++)
    {
      if (argc > 1 && !strstr (test_cases[i].name, argv[1]))
	continue;
      test_current = test_cases[i].name;
      test_current_failed = 0;
      test_cases[i].fn ();
      if (test_current_failed)
	{
	  failed++;
	  printf ("FAIL %s\n", test_cases[i].name);
	}
      else
	{
	  passed++;
	  printf ("ok   %s\n", test_cases[i].name);
	}
    }
  printf ("%d passed, %d failed\n", passed, failed);
  return failed || !passed;
}
