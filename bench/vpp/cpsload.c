/* SPDX-License-Identifier: Apache-2.0
 * Copyright (c) 2026 vpp-singbox authors
 *
 * Connection-rate load generator and its sink, in C because the Python
 * asyncio versions topped out near 3,000 connections/s on this 2-core VM —
 * below what the proxies under test do, so they measured the client.
 *
 *   cpsload sink <ip> <port>
 *       discard server; a connection whose first read is the single byte
 *       'x' or 'y' gets it echoed, and after 'x' is closed. A connection
 *       that starts with a SOCKS5 greeting (05 01 00) is answered like a
 *       SOCKS5 server would (method, then success for the request) before
 *       that: a plain TCP splice (hs_apps proxy) in front of it then sees
 *       the packets a SOCKS5 server sees, and its client goes through the
 *       same exchanges before the probe byte
 *   cpsload cps <proxy|-> <pport> <dst> <dport> <concurrency> <secs> [client|origin]
 *       -> {"connections": n, "seconds": s, "errors": e}; each connection:
 *          connect, SOCKS5 greeting, wait for the method, CONNECT, wait for
 *          the reply (not pipelined: microsocks drops pipelined handshakes),
 *          send one byte, read the echo, then
 *          client (default): close — as an HTTP/1.1 client ends its
 *            connection; the proxy's upstream leg ends in TIME_WAIT;
 *          origin: read the origin's EOF, then close — as an HTTP/1.0
 *            server ends a response; the proxy's client leg ends in
 *            TIME_WAIT.
 *
 * With CPSLOAD_HTTP=1 in the environment, cps asks the proxy with HTTP CONNECT
 * (RFC 9110 9.3.6) instead of SOCKS5: one request, a 2xx response read up to
 * its empty line, then the same probe byte.
 *
 * One thread, epoll, non-blocking sockets; every connection is bounded by a
 * 10 s timeout and the run by <secs>.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define CONN_TIMEOUT_S	10.0
#define RETRY_DELAY_S	0.01
#define MAX_CONCURRENCY 4096

typedef enum
{
  ST_IDLE,
  ST_CONNECTING,
  ST_METHOD,
  ST_REPLY,
  ST_ECHO,
  ST_EOF,
} conn_state_t;

typedef struct
{
  int fd;
  conn_state_t state;
  double started;
  double retry_at;
  size_t have;
  uint8_t buf[300]; /* the longest SOCKS5 reply: 4 + 1 + 255 + 2 */
} conn_t;

typedef struct
{
  struct sockaddr_storage sa;
  socklen_t len;
} endpoint_t;

static double
now (void)
{
  struct timespec ts;
  clock_gettime (CLOCK_MONOTONIC, &ts);
  return ts.tv_sec + ts.tv_nsec / 1e9;
}

static int
parse_endpoint (const char *ip, const char *port, endpoint_t *ep)
{
  struct sockaddr_in *v4 = (struct sockaddr_in *) &ep->sa;
  struct sockaddr_in6 *v6 = (struct sockaddr_in6 *) &ep->sa;
  memset (ep, 0, sizeof (*ep));
  if (inet_pton (AF_INET, ip, &v4->sin_addr) == 1)
    {
      v4->sin_family = AF_INET;
      v4->sin_port = htons (atoi (port));
      ep->len = sizeof (*v4);
      return 0;
    }
  if (inet_pton (AF_INET6, ip, &v6->sin6_addr) == 1)
    {
      v6->sin6_family = AF_INET6;
      v6->sin6_port = htons (atoi (port));
      ep->len = sizeof (*v6);
      return 0;
    }
  fprintf (stderr, "not an IP address: %s\n", ip);
  return -1;
}

static void
raise_fd_limit (void)
{
  struct rlimit rl;
  if (getrlimit (RLIMIT_NOFILE, &rl) == 0)
    {
      rl.rlim_cur = rl.rlim_max;
      setrlimit (RLIMIT_NOFILE, &rl);
    }
}

/* --- sink ---------------------------------------------------------------- */

/* A sink connection's state, in the low 2 bits of its epoll tag. */
#define SINK_DATA	0 /* discarding */
#define SINK_FIRST	1 /* nothing read yet */
#define SINK_REQUEST	2 /* greeted as a SOCKS5 server: the request comes next */
#define SINK_TAG(fd, st) (((uint64_t) (fd) << 2) | (st))

/* Play a SOCKS5 server's part of the handshake: a greeting gets the "no
 * authentication" method, the request after it a success reply; then the
 * connection is as new. Each message is one read: the client waits for each
 * reply before it sends on. Returns 1 when buf was one of those. */
static int
sink_socks5 (int ep_fd, int fd, int st, const uint8_t *buf, ssize_t n)
{
  static const uint8_t reply[10] = { 5, 0, 0, 1 };
  struct epoll_event cev = { .events = EPOLLIN };

  if (st == SINK_FIRST && n == 3 && !memcmp (buf, "\x05\x01\x00", 3))
    {
      (void) !write (fd, "\x05\x00", 2);
      cev.data.u64 = SINK_TAG (fd, SINK_REQUEST);
    }
  else if (st == SINK_REQUEST && (n == 10 || n == 22) && buf[0] == 5 && buf[1] == 1)
    {
      (void) !write (fd, reply, sizeof (reply));
      cev.data.u64 = SINK_TAG (fd, SINK_FIRST);
    }
  else
    return 0;
  epoll_ctl (ep_fd, EPOLL_CTL_MOD, fd, &cev);
  return 1;
}

static int
sink (const endpoint_t *ep)
{
  static uint8_t buf[1 << 20];
  int one = 1, ep_fd = epoll_create1 (0);
  int lfd = socket (ep->sa.ss_family, SOCK_STREAM | SOCK_NONBLOCK, 0);
  struct epoll_event ev = { .events = EPOLLIN, .data.u64 = UINT64_MAX }, evs[256];

  raise_fd_limit ();
  setsockopt (lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof (one));
  if (bind (lfd, (struct sockaddr *) &ep->sa, ep->len) || listen (lfd, 4096))
    {
      perror ("sink: bind/listen");
      return 1;
    }
  epoll_ctl (ep_fd, EPOLL_CTL_ADD, lfd, &ev);
  for (;;)
    {
      int n = epoll_wait (ep_fd, evs, 256, -1);
      for (int i = 0; i < n; i++)
	{
	  if (evs[i].data.u64 == UINT64_MAX)
	    {
	      int cfd;
	      while ((cfd = accept4 (lfd, 0, 0, SOCK_NONBLOCK)) >= 0)
		{
		  struct epoll_event cev = { .events = EPOLLIN,
					     .data.u64 = SINK_TAG (cfd, SINK_FIRST) };
		  epoll_ctl (ep_fd, EPOLL_CTL_ADD, cfd, &cev);
		}
	      continue;
	    }
	  int fd = evs[i].data.u64 >> 2;
	  int first = (evs[i].data.u64 & 3) == SINK_FIRST;
	  ssize_t r = read (fd, buf, sizeof (buf));
	  if (r < 0 && (errno == EAGAIN || errno == EINTR))
	    continue;
	  if (r > 0 && sink_socks5 (ep_fd, fd, evs[i].data.u64 & 3, buf, r))
	    continue;
	  if (r <= 0 || (first && r == 1 && buf[0] == 'x'))
	    {
	      if (r == 1)
		(void) !write (fd, "x", 1); /* the prober counts failures */
	      close (fd);
	      continue;
	    }
	  if (first && r == 1 && buf[0] == 'y')
	    (void) !write (fd, "y", 1);
	  if (first)
	    {
	      struct epoll_event cev = { .events = EPOLLIN, .data.u64 = SINK_TAG (fd, SINK_DATA) };
	      epoll_ctl (ep_fd, EPOLL_CTL_MOD, fd, &cev);
	    }
	}
    }
}

/* --- cps ----------------------------------------------------------------- */

typedef struct
{
  int ep_fd;
  const endpoint_t *target; /* the proxy, or the origin with no proxy */
  const endpoint_t *dst;
  int via_proxy;
  uint8_t request[128]; /* SOCKS5 CONNECT, or the HTTP CONNECT request */
  size_t request_len;
  int http;
  char probe; /* 'x': the origin closes first, 'y': we do */
  uint64_t done, errors;
} cps_t;

static void
conn_end (cps_t *g, conn_t *c, int ok, double t)
{
  if (c->fd >= 0)
    close (c->fd);
  c->fd = -1;
  c->state = ST_IDLE;
  if (ok)
    {
      g->done++;
      c->retry_at = t;
    }
  else
    {
      g->errors++;
      c->retry_at = t + RETRY_DELAY_S;
    }
}

static void
conn_start (cps_t *g, conn_t *c, double t)
{
  int one = 1;
  c->fd = socket (g->target->sa.ss_family, SOCK_STREAM | SOCK_NONBLOCK, 0);
  c->started = t;
  c->have = 0;
  if (c->fd < 0)
    {
      conn_end (g, c, 0, t);
      return;
    }
  setsockopt (c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof (one));
  if (connect (c->fd, (struct sockaddr *) &g->target->sa, g->target->len) && errno != EINPROGRESS)
    {
      conn_end (g, c, 0, t);
      return;
    }
  c->state = ST_CONNECTING;
  struct epoll_event ev = { .events = EPOLLOUT, .data.ptr = c };
  epoll_ctl (g->ep_fd, EPOLL_CTL_ADD, c->fd, &ev);
}

static int
send_all (int fd, const void *p, size_t n)
{
  /* handshake messages are tiny: a short write on a fresh socket is an error */
  return write (fd, p, n) == (ssize_t) n ? 0 : -1;
}

/* Length of the SOCKS5 reply in buf, or 0 while it is incomplete. */
static size_t
reply_len (const conn_t *c)
{
  if (c->have < 5)
    return 0;
  switch (c->buf[3])
    {
    case 1:
      return 10;
    case 4:
      return 22;
    case 3:
      return 7 + c->buf[4];
    default:
      return SIZE_MAX; /* malformed: fails the check below */
    }
}

static void
conn_io (cps_t *g, conn_t *c, double t)
{
  if (c->state == ST_CONNECTING)
    {
      int err = 0;
      socklen_t len = sizeof (err);
      getsockopt (c->fd, SOL_SOCKET, SO_ERROR, &err, &len);
      if (err)
	return conn_end (g, c, 0, t);
      struct epoll_event ev = { .events = EPOLLIN, .data.ptr = c };
      epoll_ctl (g->ep_fd, EPOLL_CTL_MOD, c->fd, &ev);
      if (g->via_proxy && g->http)
	{
	  c->state = ST_REPLY;
	  if (send_all (c->fd, g->request, g->request_len))
	    return conn_end (g, c, 0, t);
	}
      else if (g->via_proxy)
	{
	  c->state = ST_METHOD;
	  if (send_all (c->fd, "\x05\x01\x00", 3))
	    return conn_end (g, c, 0, t);
	}
      else
	{
	  c->state = ST_ECHO;
	  if (send_all (c->fd, &g->probe, 1))
	    return conn_end (g, c, 0, t);
	}
      return;
    }

  ssize_t r = read (c->fd, c->buf + c->have, sizeof (c->buf) - c->have);
  if (r < 0 && (errno == EAGAIN || errno == EINTR))
    return;
  if (r == 0 && c->state == ST_EOF)
    return conn_end (g, c, 1, t);
  if (r <= 0)
    return conn_end (g, c, 0, t);
  c->have += r;

  switch (c->state)
    {
    case ST_METHOD:
      if (c->have < 2)
	return;
      if (c->have != 2 || c->buf[0] != 5 || c->buf[1] != 0)
	return conn_end (g, c, 0, t);
      c->have = 0;
      c->state = ST_REPLY;
      if (send_all (c->fd, g->request, g->request_len))
	return conn_end (g, c, 0, t);
      return;
    case ST_REPLY:
      if (g->http)
	{
	  uint8_t *end = memmem (c->buf, c->have, "\r\n\r\n", 4);
	  if (!end)
	    return c->have == sizeof (c->buf) ? conn_end (g, c, 0, t) : (void) 0;
	  /* the whole response and nothing after it: the probe has not been sent */
	  if (end + 4 != c->buf + c->have || c->have < 12 || memcmp (c->buf, "HTTP/1.", 7) ||
	      c->buf[9] != '2')
	    return conn_end (g, c, 0, t);
	  c->have = 0;
	  c->state = ST_ECHO;
	  if (send_all (c->fd, &g->probe, 1))
	    return conn_end (g, c, 0, t);
	  return;
	}
      {
	size_t need = reply_len (c);
	if (!need || (need != SIZE_MAX && c->have < need))
	  return;
	if (need == SIZE_MAX || c->have != need || c->buf[1] != 0)
	  return conn_end (g, c, 0, t);
	c->have = 0;
	c->state = ST_ECHO;
	if (send_all (c->fd, &g->probe, 1))
	  return conn_end (g, c, 0, t);
	return;
      }
    case ST_ECHO:
      if (c->buf[0] != g->probe || c->have != 1)
	return conn_end (g, c, 0, t);
      if (g->probe == 'y')
	return conn_end (g, c, 1, t);
      c->have = 0;
      c->state = ST_EOF;
      return;
    case ST_EOF:
      c->have = 0; /* nothing more is expected; only the EOF counts */
      return;
    default:
      return conn_end (g, c, 0, t);
    }
}

static int
cps (cps_t *g, int concurrency, double secs)
{
  static conn_t conns[MAX_CONCURRENCY];
  struct epoll_event evs[256];
  double t0 = now (), t = t0, deadline = t0 + secs, next_sweep = t0;

  raise_fd_limit ();
  g->ep_fd = epoll_create1 (0);
  for (int i = 0; i < concurrency; i++)
    {
      conns[i].fd = -1;
      conns[i].state = ST_IDLE;
      conns[i].retry_at = t0;
    }
  while (t < deadline)
    {
      if (t >= next_sweep)
	{
	  for (int i = 0; i < concurrency; i++)
	    if (conns[i].state != ST_IDLE && t - conns[i].started > CONN_TIMEOUT_S)
	      conn_end (g, &conns[i], 0, t);
	  next_sweep = t + 0.1;
	}
      for (int i = 0; i < concurrency; i++)
	if (conns[i].state == ST_IDLE && conns[i].retry_at <= t)
	  conn_start (g, &conns[i], t);
      int n = epoll_wait (g->ep_fd, evs, 256, 1);
      t = now ();
      for (int i = 0; i < n; i++)
	conn_io (g, evs[i].data.ptr, t);
    }
  printf ("{\"connections\": %llu, \"seconds\": %.6f, \"errors\": %llu}\n",
	  (unsigned long long) g->done, now () - t0, (unsigned long long) g->errors);
  return 0;
}

int
main (int argc, char **argv)
{
  endpoint_t target, dst;
  if (argc == 4 && !strcmp (argv[1], "sink"))
    return parse_endpoint (argv[2], argv[3], &target) ? 2 : sink (&target);
  if ((argc != 8 && argc != 9) || strcmp (argv[1], "cps") ||
      (argc == 9 && strcmp (argv[8], "client") && strcmp (argv[8], "origin")))
    {
      fprintf (stderr, "usage: cpsload sink <ip> <port>\n"
		       "       cpsload cps <proxy|-> <pport> <dst> <dport> <concurrency> <secs> "
		       "[client|origin]\n");
      return 2;
    }
  cps_t g = { .via_proxy = strcmp (argv[2], "-") != 0,
	      .probe = argc == 9 && !strcmp (argv[8], "origin") ? 'x' : 'y' };
  int concurrency = atoi (argv[6]);
  if (parse_endpoint (argv[4], argv[5], &dst) ||
      (g.via_proxy && parse_endpoint (argv[2], argv[3], &target)) || concurrency < 1 ||
      concurrency > MAX_CONCURRENCY)
    return 2;
  g.dst = &dst;
  g.target = g.via_proxy ? &target : &dst;
  /* CONNECT to the destination's address, as the Python prober sends it */
  memcpy (g.request, "\x05\x01\x00", 3);
  if (dst.sa.ss_family == AF_INET)
    {
      struct sockaddr_in *v4 = (struct sockaddr_in *) &dst.sa;
      g.request[3] = 1;
      memcpy (g.request + 4, &v4->sin_addr, 4);
      memcpy (g.request + 8, &v4->sin_port, 2);
      g.request_len = 10;
    }
  else
    {
      struct sockaddr_in6 *v6 = (struct sockaddr_in6 *) &dst.sa;
      g.request[3] = 4;
      memcpy (g.request + 4, &v6->sin6_addr, 16);
      memcpy (g.request + 20, &v6->sin6_port, 2);
      g.request_len = 22;
    }
  if (getenv ("CPSLOAD_HTTP") && !strcmp (getenv ("CPSLOAD_HTTP"), "1"))
    {
      char host[INET6_ADDRSTRLEN + 2];
      uint16_t port;
      g.http = 1;
      if (dst.sa.ss_family == AF_INET)
	{
	  inet_ntop (AF_INET, &((struct sockaddr_in *) &dst.sa)->sin_addr, host, sizeof (host));
	  port = ntohs (((struct sockaddr_in *) &dst.sa)->sin_port);
	}
      else
	{
	  host[0] = '[';
	  inet_ntop (AF_INET6, &((struct sockaddr_in6 *) &dst.sa)->sin6_addr, host + 1,
		     sizeof (host) - 2);
	  strcat (host, "]");
	  port = ntohs (((struct sockaddr_in6 *) &dst.sa)->sin6_port);
	}
      g.request_len = snprintf ((char *) g.request, sizeof (g.request),
				"CONNECT %s:%u HTTP/1.1\r\nHost: %s:%u\r\n\r\n", host, port, host, port);
    }
  return cps (&g, concurrency, atof (argv[7]));
}
