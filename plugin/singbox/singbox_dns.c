/* SPDX-License-Identifier: Apache-2.0
 * Copyright (c) 2026 vpp-singbox authors
 */

/* ATYP 3 names resolved by VPP's dns plugin. Its cache is not thread safe,
 * so every lookup runs on the main thread, started by RPC from the client's
 * worker. The plugin has no completion callback for in-VPP callers: a
 * lookup is polled by singbox-process until answered or timed out, as ikev2
 * does. But a negative answer (NXDOMAIN) leaves no trace to poll: the plugin
 * answers its pending requests, then deletes the entry, and the next poll
 * would only ask again. So the first request of each lookup is registered as
 * if it came from a binary API client, an internal one whose queue
 * singbox-process drains, and the plugin's reply message tells at once that
 * the name does not exist. Only negative replies are used: on success
 * v26.06's resolver fills that message through a mismatched prototype
 * (resolver_process.c vs dns.c vnet_dns_response_to_reply), while the cache
 * answers the next poll correctly. Without the message (another API
 * version), a missing name waits for the timeout. */

#include <singbox/singbox.h>
#include <vlib/unix/plugin.h>
#include <vnet/ip/ip_types.h>
#include <vlibmemory/api.h>
#include <vlibmemory/memory_api.h>

/* Mirrors of the dns plugin's types (its headers are not installed). */
typedef struct
{
  u32 request_type;
  u32 client_index;
  u32 client_context;
  u8 is_ip6;
  u16 dst_port;
  u16 id;
  u16 pad;
  u8 dst_address[16];
  u8 *name;
} singbox_dns_pending_request_t;

typedef struct
{
  ip_address_t address;
} singbox_dns_resolve_name_t;

typedef int (singbox_dns_resolve_name_fn_t) (u8 *name, void **ep, singbox_dns_pending_request_t *t,
					     singbox_dns_resolve_name_t *rn);

#define SINGBOX_DNS_PENDING_NAME_TO_IP 1

/* dns.api dns_resolve_name_reply, as sent to API clients */
#define SINGBOX_DNS_REPLY_MSG "dns_resolve_name_reply_c2d758c3"
typedef CLIB_PACKED (struct {
  u16 _vl_msg_id;
  u32 context;
  i32 retval;
  u8 ip4_set;
  u8 ip6_set;
  u8 ip4_address[4];
  u8 ip6_address[16];
}) singbox_dns_reply_t;

typedef struct
{
  u32 session_index;
  u32 context; /* matches the dns plugin's reply */
  u8 *name;    /* C string vec */
  f64 deadline;
  u64 udp_session_id; /* for a UDP association's datagram; 0: CONNECT */
  u8 *endpoint;	      /* for a client-mode endpoint's host (its name); 0: server mode */
} singbox_dns_query_t;

static singbox_dns_query_t *singbox_dns_queries;
/* asked for by RPC, started by singbox-process (singbox_dns_start_rpc) */
static singbox_dns_query_t *singbox_dns_to_start;

/* The internal API client the dns plugin answers; ~0 = poll instead. */
static u32 singbox_dns_api_client = ~0;
static svm_queue_t *singbox_dns_api_queue;
static u16 singbox_dns_reply_msg_id;
static u32 singbox_dns_next_context;

int
singbox_dns_init (void)
{
  /* resolved lazily: the dns plugin may load after us */
  return 0;
}

static void
singbox_dns_bind (void)
{
  singbox_main_t *sm = &singbox_main;
  u32 msg_id;

  if (!sm->dns_resolve_name_ptr)
    sm->dns_resolve_name_ptr = vlib_get_plugin_symbol ("dns_plugin.so", "dns_resolve_name");
  if (!sm->dns_resolve_name_ptr || singbox_dns_api_client != ~0)
    return;
  msg_id = vl_msg_api_get_msg_index ((u8 *) SINGBOX_DNS_REPLY_MSG);
  if (msg_id == ~0 || msg_id == 0)
    {
      SINGBOX_LOG (SINGBOX_LOG_WARNING, "%s unknown: missing names wait for the DNS timeout",
		   SINGBOX_DNS_REPLY_MSG);
      return;
    }
  singbox_dns_reply_msg_id = msg_id;
  /* consumer is VPP itself, so the API's dead-client scan keeps it */
  singbox_dns_api_queue = svm_queue_alloc_and_init (1024, sizeof (uword), getpid ());
  singbox_dns_api_client = vl_api_memclnt_create_internal ("singbox-dns", singbox_dns_api_queue);
}

static int
singbox_dns_cli (char *fmt, ...)
{
  vlib_main_t *vm = vlib_get_main ();
  unformat_input_t in;
  va_list va;
  u8 *cmd;
  int rv;

  va_start (va, fmt);
  cmd = va_format (0, fmt, &va);
  va_end (va);
  unformat_init_vector (&in, cmd);
  rv = vlib_cli_input (vm, &in, 0, 0);
  unformat_free (&in);
  return rv;
}

/* Point the dns plugin at the configured server and enable it. */
/* What singbox_dns_configure refuses, checked by singbox_server_set_config
 * before it stores anything: a refused configuration changes nothing. */
int
singbox_dns_config_check (const ip46_address_t *server, u8 is_ip4, u16 port)
{
  singbox_main_t *sm = &singbox_main;

  singbox_dns_bind ();
  if (!sm->dns_resolve_name_ptr)
    return VNET_API_ERROR_FEATURE_DISABLED;
  /* the dns plugin has no port setting: it always queries port 53 */
  if (port != 53)
    return VNET_API_ERROR_INVALID_VALUE;
  /* v26.06's resolver with IPv6 name servers only crashes VPP: its first
   * query goes to the empty IPv4 list (vnet_send_dns_request), and so does
   * "show dns servers" (it prints the IPv6 servers from the IPv4 list),
   * which singbox_dns_ready runs. Never added. */
  if (!ip46_address_is_zero (server) && !is_ip4)
    {
      SINGBOX_LOG (SINGBOX_LOG_WARNING,
		   "name server %U refused: VPP's resolver needs an IPv4 name server",
		   format_ip6_address, &server->ip6);
      return VNET_API_ERROR_INVALID_ADDRESS_FAMILY;
    }
  return 0;
}

int
singbox_dns_configure (void)
{
  singbox_main_t *sm = &singbox_main;
  int rv;

  if ((rv = singbox_dns_config_check (&sm->dns_server, sm->dns_server_is_ip4, sm->dns_server_port)))
    return rv;
  if (!ip46_address_is_zero (&sm->dns_server))
    singbox_dns_cli ("dns name-server %U", format_ip4_address, &sm->dns_server.ip4);
  singbox_dns_cli ("dns enable");
  return 0;
}

/* Answered or given up: tell whoever asked; frees the name. */
static void
singbox_dns_done (singbox_dns_query_t *q, int rv, ip46_address_t *ip, u8 is_ip4)
{
  if (q->endpoint)
    {
      singbox_endpoint_resolved (q->endpoint, q->name, rv, ip, is_ip4);
      vec_free (q->endpoint);
    }
  else if (q->udp_session_id)
    singbox_udp_resolved (q->udp_session_id, q->name, rv, ip, is_ip4);
  else
    singbox_session_resolved (q->session_index, rv, ip, is_ip4);
  vec_free (q->name);
}

/* 0: answered (rv in *result), 1: pending. notify: have the dns plugin
 * send its reply message for this request (the first one of a lookup). */
static int
singbox_dns_try (singbox_dns_query_t *q, int notify, int *result, ip46_address_t *ip, u8 *is_ip4)
{
  singbox_main_t *sm = &singbox_main;
  singbox_dns_pending_request_t t = {};
  singbox_dns_resolve_name_t rn = {};
  void *ep = 0;
  int rv;

  t.request_type = SINGBOX_DNS_PENDING_NAME_TO_IP;
  /* ~0: nobody to answer through the API */
  t.client_index = notify ? singbox_dns_api_client : ~0;
  t.client_context = q->context;
  rv = ((singbox_dns_resolve_name_fn_t *) sm->dns_resolve_name_ptr) (q->name, &ep, &t, &rn);
  SINGBOX_DBG ("resolve %s: rv %d %s", q->name, rv, ep ? "answered" : "pending");
  if (rv < 0)
    {
      *result = rv;
      return 0;
    }
  if (!ep)
    return 1;
  *result = 0;
  *is_ip4 = rn.address.version == AF_IP4;
  ip46_address_reset (ip);
  if (*is_ip4)
    ip->ip4 = rn.address.ip.ip4;
  else
    ip->ip6 = rn.address.ip.ip6;
  return 0;
}

static int singbox_dns_ready (void);

/* A lookup refused because VPP's resolver is not configured (no name
 * server, or "dns enable" missing): counted (/singbox/server/dns-unconfigured)
 * and logged, at most every 10 s with the count since, so a client looping
 * on names cannot flood the log. */
static void
singbox_dns_unconfigured (int rv)
{
  static f64 last_log = -1e9;
  static u32 unlogged;
  f64 now = vlib_time_now (vlib_get_main ());

  singbox_server_counter_inc (SINGBOX_SERVER_CTR_DNS_UNCONFIGURED, 1);
  unlogged++;
  if (now - last_log < 10.0)
    return;
  /* not the name: the client chose its bytes (a newline would forge a line) */
  SINGBOX_LOG (SINGBOX_LOG_WARNING,
	       "names not resolved: %U: configure VPP's resolver ('dns name-server <ip>' and "
	       "'dns enable', or 'singbox server set dns enable name-server <ip>'); "
	       "%u lookup(s) refused since the last warning",
	       format_vnet_api_errno, rv, unlogged);
  last_log = now;
  unlogged = 0;
}

/* Start a lookup; in singbox-process. */
static void
singbox_dns_start_one (singbox_dns_query_t *arg)
{
  singbox_main_t *sm = &singbox_main;
  singbox_dns_query_t *q;
  ip46_address_t ip;
  u8 is_ip4 = 0;
  int result;

  singbox_dns_bind ();
  if (!sm->dns_resolve_name_ptr)
    {
      singbox_dns_done (arg, -1, &ip, 0);
      return;
    }
  /* No name server: never given one (then "dns enable" failed, but the
   * exported dns_resolve_name does not look at that and v26.06 sends the
   * query to a NULL address: SIGSEGV in ip4_sas), or its last one removed
   * with "dns name-server X del" (the query goes to the removed server,
   * read past the end of the emptied list). The client gets an answer. */
  if ((result = singbox_dns_ready ()))
    {
      singbox_dns_unconfigured (result);
      singbox_dns_done (arg, result, &ip, 0);
      return;
    }
  if (!singbox_dns_try (arg, 1 /* notify */, &result, &ip, &is_ip4))
    {
      singbox_dns_done (arg, result, &ip, is_ip4);
      return;
    }
  vec_add2 (singbox_dns_queries, q, 1);
  *q = *arg;
  q->deadline = vlib_time_now (vlib_get_main ()) + SINGBOX_DNS_TIMEOUT;
}

/* Main thread, but maybe inside a graph node: with no worker, a worker's
 * RPC runs inline in session-queue. The name-server check runs a CLI
 * command, which needs a process (vlib_cli_input in a node: SIGSEGV), so
 * the lookup is handed to singbox-process, woken at once. */
static void
singbox_dns_start_rpc (singbox_dns_query_t *arg)
{
  vec_add1 (singbox_dns_to_start, *arg);
  vlib_process_signal_event (vlib_get_main (), singbox_process_node.index, 0, 0);
}

void
singbox_dns_start (u32 session_index, u8 *name)
{
  singbox_dns_query_t q = {
    .session_index = session_index,
  };

  q.name = format (0, "%s%c", name, 0);
  q.context = clib_atomic_add_fetch (&singbox_dns_next_context, 1);
  vlib_rpc_call_main_thread (singbox_dns_start_rpc, (u8 *) &q, sizeof (q));
}

/* A UDP association's datagram to a name; any thread. */
void
singbox_dns_start_udp (u64 session_id, u8 *name)
{
  singbox_dns_query_t q = {
    .session_index = session_id & 0xffffffff,
    .udp_session_id = session_id,
  };

  q.name = format (0, "%s%c", name, 0);
  q.context = clib_atomic_add_fetch (&singbox_dns_next_context, 1);
  vlib_rpc_call_main_thread (singbox_dns_start_rpc, (u8 *) &q, sizeof (q));
}

static void
singbox_dns_capture (uword arg, u8 *buffer, uword n)
{
  u8 **out = (u8 **) arg;

  vec_add (*out, buffer, n);
}

/* What a CLI command of the dns plugin prints: its configuration is only
 * visible there. Needs a process (vlib_cli_input). */
static u8 *
singbox_dns_cli_output (char *cmd)
{
  unformat_input_t in;
  u8 *out = 0;

  unformat_init_string (&in, cmd, strlen (cmd));
  vlib_cli_input (vlib_get_main (), &in, singbox_dns_capture, pointer_to_uword (&out));
  unformat_free (&in);
  return out;
}

/* Whether the dns plugin can take a lookup: 0, or why not.
 * VNET_API_ERROR_NO_NAME_SERVERS: with none, v26.06's vnet_send_dns_request
 * sends to a NULL address (SIGSEGV in ip4_sas) or, after its last one was
 * removed, to that removed one. VNET_API_ERROR_NAME_RESOLUTION_NOT_ENABLED:
 * "dns enable" missing or "dns disable"; the exported dns_resolve_name does
 * not check it (only its API handler does), sends the query all the same
 * and its reply node drops the answer: the lookup would wait for the
 * timeout. */
static int
singbox_dns_ready (void)
{
  unformat_input_t in, line;
  u8 *out;
  ip4_address_t a4;
  ip6_address_t a6;
  int have = 0;

  out = singbox_dns_cli_output ("show dns servers");
  unformat_init_vector (&in, out);
  while (!have && unformat_user (&in, unformat_line_input, &line))
    {
      if (unformat (&line, "%U", unformat_ip4_address, &a4) ||
	  unformat (&line, "%U", unformat_ip6_address, &a6))
	have = 1;
      unformat_free (&line);
    }
  unformat_free (&in);
  if (!have)
    return VNET_API_ERROR_NO_NAME_SERVERS;
  /* a name lookup in its cache, not a dump: "disabled" when it is off */
  out = singbox_dns_cli_output ("show dns cache name singbox.invalid");
  vec_add1 (out, 0);
  have = !strstr ((char *) out, "disabled");
  vec_free (out);
  return have ? 0 : VNET_API_ERROR_NAME_RESOLUTION_NOT_ENABLED;
}

/* Client mode: the host name of the endpoint `endpoint` (main thread;
 * the dns plugin's cache answers at once when it can). 0: answered in
 * ip and is_ip4; 1: asked, the answer goes to singbox_endpoint_resolved;
 * < 0: VNET_API_ERROR_FEATURE_DISABLED without the dns plugin, or the
 * plugin's error (NAME_RESOLUTION_NOT_ENABLED: "dns enable" missing). */
int
singbox_dns_resolve_endpoint (u8 *endpoint, u8 *host, ip46_address_t *ip, u8 *is_ip4)
{
  singbox_main_t *sm = &singbox_main;
  singbox_dns_query_t q = {}, *qp;
  int result;

  singbox_dns_bind ();
  if (!sm->dns_resolve_name_ptr)
    return VNET_API_ERROR_FEATURE_DISABLED;
  if ((result = singbox_dns_ready ()))
    return result;
  q.name = format (0, "%s%c", host, 0);
  q.context = clib_atomic_add_fetch (&singbox_dns_next_context, 1);
  if (!singbox_dns_try (&q, 1 /* notify */, &result, ip, is_ip4))
    {
      vec_free (q.name);
      return result;
    }
  q.endpoint = format (0, "%s%c", endpoint, 0);
  q.deadline = vlib_time_now (vlib_get_main ()) + SINGBOX_DNS_TIMEOUT;
  vec_add2 (singbox_dns_queries, qp, 1);
  *qp = q;
  return 1;
}

/* The dns plugin's reply to the first request of a lookup: a name that does
 * not exist, or that no server would resolve, fails now. */
static void
singbox_dns_api_reply (singbox_dns_reply_t *mp)
{
  int rv = clib_net_to_host_u32 (mp->retval);
  singbox_dns_query_t *q;
  int i;

  if (rv != VNET_API_ERROR_NAME_SERVER_NO_SUCH_NAME && rv != VNET_API_ERROR_NAME_SERVER_NEXT_SERVER)
    return;
  vec_foreach_index (i, singbox_dns_queries)
    {
      q = vec_elt_at_index (singbox_dns_queries, i);
      if (q->context != mp->context)
	continue;
      SINGBOX_DBG ("resolve %s: %U", q->name, format_vnet_api_errno, rv);
      singbox_dns_done (q, rv, 0, 0);
      vec_del1 (singbox_dns_queries, i);
      return;
    }
}

static void
singbox_dns_api_drain (void)
{
  uword msg;

  while (!svm_queue_sub (singbox_dns_api_queue, (u8 *) &msg, SVM_Q_NOWAIT, 0))
    {
      singbox_dns_reply_t *mp = uword_to_pointer (msg, singbox_dns_reply_t *);

      /* anything else is the API's keepalive */
      if (clib_net_to_host_u16 (mp->_vl_msg_id) == singbox_dns_reply_msg_id)
	singbox_dns_api_reply (mp);
      vl_msg_api_free (mp);
    }
}

void
singbox_dns_poll (f64 now)
{
  singbox_dns_query_t *q, *start;
  ip46_address_t ip;
  u8 is_ip4 = 0;
  int result, i;

  if (singbox_dns_api_client != ~0)
    singbox_dns_api_drain ();
  /* new ones first: an answer from the cache costs no poll. Taken out of
   * the vector: an answer's callback may ask for another lookup. */
  start = singbox_dns_to_start;
  singbox_dns_to_start = 0;
  vec_foreach (q, start)
    singbox_dns_start_one (q);
  vec_free (start);
  for (i = vec_len (singbox_dns_queries) - 1; i >= 0; i--)
    {
      q = vec_elt_at_index (singbox_dns_queries, i);
      if (singbox_dns_try (q, 0, &result, &ip, &is_ip4))
	{
	  if (now < q->deadline)
	    continue;
	  result = -1;
	}
      singbox_dns_done (q, result, &ip, is_ip4);
      vec_del1 (singbox_dns_queries, i);
    }
}
