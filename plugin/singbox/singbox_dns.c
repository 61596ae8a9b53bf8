/* SPDX-License-Identifier: Apache-2.0
 * Copyright (c) 2026 vpp-singbox authors
 */

/* ATYP 3 names resolved by VPP's dns plugin. Its cache is not thread safe
 * and has no completion callback for in-VPP callers, so every lookup runs
 * on the main thread: started by RPC from the client's worker, then polled
 * by singbox-process until answered or timed out (as ikev2 does). */

#include <singbox/singbox.h>
#include <vlib/unix/plugin.h>
#include <vnet/ip/ip_types.h>

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

typedef struct
{
  u32 session_index;
  u8 *name; /* C string vec */
  f64 deadline;
} singbox_dns_query_t;

static singbox_dns_query_t *singbox_dns_queries;

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

  if (!sm->dns_resolve_name_ptr)
    sm->dns_resolve_name_ptr = vlib_get_plugin_symbol ("dns_plugin.so", "dns_resolve_name");
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
int
singbox_dns_configure (void)
{
  singbox_main_t *sm = &singbox_main;

  singbox_dns_bind ();
  if (!sm->dns_resolve_name_ptr)
    return VNET_API_ERROR_FEATURE_DISABLED;
  if (!ip46_address_is_zero (&sm->dns_server))
    {
      if (sm->dns_server_is_ip4)
	singbox_dns_cli ("dns name-server %U", format_ip4_address, &sm->dns_server.ip4);
      else
	singbox_dns_cli ("dns name-server %U", format_ip6_address, &sm->dns_server.ip6);
    }
  singbox_dns_cli ("dns enable");
  return 0;
}

/* 0: answered (rv in *result), 1: pending */
static int
singbox_dns_try (singbox_dns_query_t *q, int *result, ip46_address_t *ip, u8 *is_ip4)
{
  singbox_main_t *sm = &singbox_main;
  singbox_dns_pending_request_t t = {};
  singbox_dns_resolve_name_t rn = {};
  void *ep = 0;
  int rv;

  t.request_type = SINGBOX_DNS_PENDING_NAME_TO_IP;
  t.client_index = ~0; /* nobody to answer through the API */
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

static void
singbox_dns_start_rpc (singbox_dns_query_t *arg)
{
  singbox_main_t *sm = &singbox_main;
  singbox_dns_query_t *q;
  ip46_address_t ip;
  u8 is_ip4 = 0;
  int result;

  singbox_dns_bind ();
  if (!sm->dns_resolve_name_ptr)
    {
      vec_free (arg->name);
      singbox_session_resolved (arg->session_index, -1, 0, 0);
      return;
    }
  if (!singbox_dns_try (arg, &result, &ip, &is_ip4))
    {
      vec_free (arg->name);
      singbox_session_resolved (arg->session_index, result, &ip, is_ip4);
      return;
    }
  vec_add2 (singbox_dns_queries, q, 1);
  *q = *arg;
  q->deadline = vlib_time_now (vlib_get_main ()) + SINGBOX_DNS_TIMEOUT;
}

void
singbox_dns_start (u32 session_index, u8 *name)
{
  singbox_dns_query_t q = {
    .session_index = session_index,
  };

  q.name = format (0, "%s%c", name, 0);
  vlib_rpc_call_main_thread (singbox_dns_start_rpc, (u8 *) &q, sizeof (q));
}

void
singbox_dns_poll (f64 now)
{
  singbox_dns_query_t *q;
  ip46_address_t ip;
  u8 is_ip4 = 0;
  int result, i;

  for (i = vec_len (singbox_dns_queries) - 1; i >= 0; i--)
    {
      q = vec_elt_at_index (singbox_dns_queries, i);
      if (singbox_dns_try (q, &result, &ip, &is_ip4))
	{
	  if (now < q->deadline)
	    continue;
	  result = -1;
	}
      singbox_session_resolved (q->session_index, result, &ip, is_ip4);
      vec_free (q->name);
      vec_del1 (singbox_dns_queries, i);
    }
}
