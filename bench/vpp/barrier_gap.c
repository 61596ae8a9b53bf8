/* SPDX-License-Identifier: Apache-2.0
 * Copyright (c) 2026 vpp-singbox authors
 *
 * How long VPP's worker barrier would take on this machine, without VPP:
 * a main thread that, every period, raises a flag and spins until both
 * "workers" (spinning threads pinned to CPU 0 and 1, as vpptopo spreads
 * VPP's) have seen it, then lowers it and spins until they left, as
 * vlib_worker_thread_barrier_sync/_release do. VPP (release build) aborts
 * past 1 s. Run it in a session of its own, with its autogroup's nice:
 *
 *   gcc -O2 -pthread bench/vpp/barrier_gap.c -o /tmp/barrier_gap
 *   setsid sh -c 'echo -15 > /proc/self/autogroup; exec /tmp/barrier_gap 0 30 50000'
 *
 * arguments: sleeping (1: workers sleep in epoll when no barrier came for
 * 0.5 s, as VPP's interrupt-mode workers do), seconds, period in us.
 * tests/vpp/README.md ("Workers and VPP's barrier") has the numbers. */
#define _GNU_SOURCE
#include <pthread.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <stdatomic.h>
#include <time.h>
#include <unistd.h>
#include <sys/eventfd.h>
#include <sys/epoll.h>
static atomic_int wait_at, at_barrier;
static int sleeping, period_us;
static int efd[2];
static double
now (void)
{
  struct timespec t;
  clock_gettime (CLOCK_MONOTONIC, &t);
  return t.tv_sec + t.tv_nsec * 1e-9;
}
static void *
wk (void *a)
{
  long i = (long) a;
  cpu_set_t c;
  CPU_ZERO (&c);
  CPU_SET (i % 2, &c);
  pthread_setaffinity_np (pthread_self (), sizeof c, &c);
  int ep = epoll_create1 (0);
  struct epoll_event e = { .events = EPOLLIN };
  epoll_ctl (ep, EPOLL_CTL_ADD, efd[i - 1], &e);
  double last_bar = 0;
  for (;;)
    {
      if (atomic_load (&wait_at))
	{
	  atomic_fetch_add (&at_barrier, 1);
	  while (atomic_load (&wait_at))
	    ;
	  atomic_fetch_sub (&at_barrier, 1);
	  last_bar = now ();
	}
      if (sleeping && now () - last_bar > 0.5)
	{
	  struct epoll_event ev;
	  if (epoll_wait (ep, &ev, 1, 10) > 0)
	    {
	      uint64_t v;
	      if (read (efd[i - 1], &v, 8) < 0)
		v = 0;
	    }
	}
      else
	{
	  volatile int k;
	  for (k = 0; k < 2000; k++)
	    ;
	}
    }
  return 0;
}
int
main (int argc, char **argv)
{
  sleeping = atoi (argv[1]);
  double dur = atof (argv[2]);
  period_us = atoi (argv[3]);
  efd[0] = eventfd (0, EFD_NONBLOCK);
  efd[1] = eventfd (0, EFD_NONBLOCK);
  pthread_t t;
  pthread_create (&t, 0, wk, (void *) 1L);
  pthread_create (&t, 0, wk, (void *) 2L);
  double t0 = now (), mx = 0;
  int n = 0, over100 = 0, over1000 = 0;
  while (now () - t0 < dur)
    {
      usleep (period_us);
      double s = now ();
      atomic_store (&wait_at, 1);
      uint64_t one = 1;
      if (write (efd[0], &one, 8) < 0 || write (efd[1], &one, 8) < 0)
	return 1;
      while (atomic_load (&at_barrier) != 2)
	;
      atomic_store (&wait_at, 0);
      while (atomic_load (&at_barrier) != 0)
	;
      double d = now () - s;
      if (d > mx)
	mx = d;
      n++;
      if (d > 0.1)
	over100++;
      if (d > 1)
	over1000++;
    }
  printf ("sleeping=%d syncs=%d max=%.3fs >0.1s=%d >1s=%d\n", sleeping, n, mx, over100, over1000);
  return 0;
}
