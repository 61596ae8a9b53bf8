/* SPDX-License-Identifier: Apache-2.0
 * Copyright (c) 2026 vpp-singbox authors
 */

/* Client mode's objects: upstream endpoints (SOCKS5 or HTTP CONNECT
 * proxies), the interfaces whose arriving TCP is relayed through them, and
 * which endpoint a new flow takes. Interception itself is
 * singbox_client.c's. */

#include <singbox/singbox.h>
#include <singbox/singbox_group.h>
#include <singbox/singbox_client_udp.h>
#include <vnet/fib/fib_table.h>
#include <vnet/fib/fib_entry.h>

/*
 * Endpoints
 */

singbox_endpoint_t *
singbox_endpoint_find (u8 *name)
{
  singbox_main_t *sm = &singbox_main;
  uword *p = hash_get_mem (sm->endpoint_by_name, name);

  return p ? pool_elt_at_index (sm->endpoints, p[0]) : 0;
}

u8 *
singbox_endpoint_name (u32 endpoint_index)
{
  singbox_main_t *sm = &singbox_main;

  if (endpoint_index == ~0 || pool_is_free_index (sm->endpoints, endpoint_index))
    return 0;
  return pool_elt_at_index (sm->endpoints, endpoint_index)->name;
}

int
singbox_endpoint_del (u8 *name)
{
  singbox_main_t *sm = &singbox_main;
  singbox_endpoint_t *ep;
  u32 len = strnlen ((char *) name, 64);

  if (len == 0 || len > 63)
    return VNET_API_ERROR_INVALID_VALUE;
  if (!(ep = singbox_endpoint_find (name)))
    return VNET_API_ERROR_NO_SUCH_ENTRY;
  if (ep->n_users)
    return VNET_API_ERROR_INSTANCE_IN_USE;
  if (sm->default_endpoint == ep - sm->endpoints)
    sm->default_endpoint = ~0;
  singbox_pool_flush (ep);
  vlib_stats_remove_entry (ep->stat_state);
  vlib_stats_remove_entry (ep->stat_rtt);
  vlib_stats_remove_entry (ep->stat_failures);
  vlib_stats_remove_entry (ep->stat_connections);
  /* the key is ep->name itself: unset before it is freed */
  hash_unset_mem (sm->endpoint_by_name, ep->name);
  vec_free (ep->name);
  vec_free (ep->host);
  vec_free (ep->username);
  vec_free (ep->password);
  pool_put (sm->endpoints, ep);
  return 0;
}

/* Whether cfg can make an endpoint (0) or which error it gets; the FIB
 * index of its table in *fib_index if asked. */
int
singbox_endpoint_check (const singbox_endpoint_config_t *cfg, u32 *fib_index)
{
  u8 *username = cfg->username, *password = cfg->password;
  u32 ulen = username ? strnlen ((char *) username, 256) : 0;
  u32 plen = password ? strnlen ((char *) password, 256) : 0;
  u8 is_ip4 = cfg->is_ip4, protocol = cfg->protocol;
  u32 fi;

  if (cfg->port == 0 || protocol > SINGBOX_PROTO_HTTP_CONNECT || ulen > SOCKS5_MAX_CRED_LEN ||
      plen > SOCKS5_MAX_CRED_LEN || (ulen && !plen) ||
      (cfg->host ? !cfg->host[0] || strnlen ((char *) cfg->host, 254) > 253 :
		   ip46_address_is_zero (&cfg->addr)))
    return VNET_API_ERROR_INVALID_VALUE;
  /* Basic credentials cannot carry a ':' in the user-id or control bytes (RFC 7617):
   * refused here rather than at every connection */
  if (protocol == SINGBOX_PROTO_HTTP_CONNECT && ulen)
    {
      u8 req[HTTP_CONNECT_REQUEST_MAX];
      if (http_connect_request_write (req, sizeof (req), "h", 1, 1, username, ulen, password,
				      plen) < 0)
	return VNET_API_ERROR_INVALID_VALUE;
    }
  if (cfg->hc_enabled && cfg->hc_timeout && cfg->hc_interval && cfg->hc_timeout >= cfg->hc_interval)
    return VNET_API_ERROR_INVALID_VALUE;
  fi = fib_table_find (is_ip4 ? FIB_PROTOCOL_IP4 : FIB_PROTOCOL_IP6, cfg->table_id);
  if (fi == ~0)
    return VNET_API_ERROR_NO_SUCH_FIB;
  if (fib_index)
    *fib_index = fi;
  return 0;
}

/* Create the endpoint or change it in place (its counters, pool and users
 * stay). */
int
singbox_endpoint_add (u8 *name, const singbox_endpoint_config_t *cfg)
{
  singbox_main_t *sm = &singbox_main;
  u32 len = strnlen ((char *) name, 64);
  u8 *username = cfg->username, *password = cfg->password;
  u32 ulen = username ? strnlen ((char *) username, 256) : 0;
  u32 plen = password ? strnlen ((char *) password, 256) : 0;
  singbox_endpoint_t *ep;
  u32 fib_index;
  int rv;

  if (len == 0 || len > 63)
    return VNET_API_ERROR_INVALID_VALUE;
  ip46_address_t addr = cfg->addr;
  u8 is_ip4 = cfg->is_ip4;

  if ((rv = singbox_endpoint_check (cfg, &fib_index)))
    return rv;
  /* a host name: looked up first, so that a name VPP cannot resolve (no dns
   * plugin, "dns enable" missing, no such name) changes nothing */
  if (cfg->host && (rv = singbox_dns_resolve_endpoint (name, cfg->host, &addr, &is_ip4)) < 0)
    return rv;
  if (cfg->host && rv == 0 &&
      (fib_index = fib_table_find (is_ip4 ? FIB_PROTOCOL_IP4 : FIB_PROTOCOL_IP6, cfg->table_id)) ==
	~0)
    return VNET_API_ERROR_NO_SUCH_FIB;
  ep = singbox_endpoint_find (name);

  if (!ep)
    {
      pool_get_zero (sm->endpoints, ep);
      ep->name = format (0, "%s%c", name, 0);
      hash_set_mem (sm->endpoint_by_name, ep->name, ep - sm->endpoints);
      ep->state = SINGBOX_EP_STATE_UNKNOWN;
      ep->last_change = vlib_time_now (vlib_get_main ());
      ep->stat_state = vlib_stats_add_gauge ("/singbox/client/endpoint/%s/state", name);
      ep->stat_rtt = vlib_stats_add_gauge ("/singbox/client/endpoint/%s/rtt-us", name);
      ep->stat_failures = vlib_stats_add_gauge ("/singbox/client/endpoint/%s/failures", name);
      ep->stat_connections = vlib_stats_add_gauge ("/singbox/client/endpoint/%s/connections", name);
    }
  if (ep->addr.as_u64[0] != addr.as_u64[0] || ep->addr.as_u64[1] != addr.as_u64[1] ||
      ep->port != cfg->port)
    singbox_pool_flush (ep);
  ep->addr = addr;
  ep->is_ip4 = is_ip4;
  vec_free (ep->host);
  ep->resolved = ep->resolving = 0;
  if (cfg->host)
    {
      ep->host = format (0, "%s%c", cfg->host, 0);
      ep->resolved = rv == 0;
      ep->resolving = rv == 1;
    }
  ep->port = cfg->port;
  ep->protocol = cfg->protocol;
  vec_free (ep->username);
  vec_free (ep->password);
  if (ulen)
    {
      vec_add (ep->username, username, ulen);
      vec_add (ep->password, password, plen);
    }
  ep->priority = cfg->priority;
  ep->connect_timeout = cfg->connect_timeout ? cfg->connect_timeout : 10;
  ep->hc_enabled = cfg->hc_enabled;
  ep->hc_interval = cfg->hc_interval ? cfg->hc_interval : 30;
  ep->hc_timeout = cfg->hc_timeout ? cfg->hc_timeout : 5;
  ep->failure_threshold = cfg->failure_threshold ? cfg->failure_threshold : 3;
  ep->recovery_threshold = cfg->recovery_threshold ? cfg->recovery_threshold : 2;
  ep->table_id = cfg->table_id;
  ep->fib_index = fib_index;
  if (!cfg->hc_enabled)
    ep->state = SINGBOX_EP_STATE_UNKNOWN;
  /* no address yet: no flow, probe or pooled connection goes there */
  if (ep->host && !ep->resolved)
    ep->state = SINGBOX_EP_STATE_DOWN;
  ep->next_resolve = vlib_time_now (vlib_get_main ()) + ep->hc_interval;
  /* probe the new settings soon, but never all of a resync in one poll */
  singbox_probe_schedule_first (ep);
  return 0;
}

int
singbox_set_default_endpoint (u8 *name)
{
  singbox_main_t *sm = &singbox_main;
  singbox_endpoint_t *ep;

  if (!name || !name[0])
    {
      sm->default_endpoint = ~0;
      return 0;
    }
  if (!(ep = singbox_endpoint_find (name)))
    return VNET_API_ERROR_NO_SUCH_ENTRY;
  sm->default_endpoint = ep - sm->endpoints;
  return 0;
}

int
singbox_clear_endpoint_counters (u8 *name)
{
  singbox_main_t *sm = &singbox_main;
  singbox_endpoint_t *ep;

  if (name && name[0])
    {
      if (!(ep = singbox_endpoint_find (name)))
	return VNET_API_ERROR_NO_SUCH_ENTRY;
      ep->failures = ep->connections = 0;
      return 0;
    }
  pool_foreach (ep, sm->endpoints)
    ep->failures = ep->connections = 0;
  return 0;
}

static int
singbox_ip46_equal (ip46_address_t *a, ip46_address_t *b, u8 is_ip4)
{
  return is_ip4 ? a->ip4.as_u32 == b->ip4.as_u32 : ip6_address_is_equal (&a->ip6, &b->ip6);
}

/* A proxy's own connections (from an endpoint's address, e.g. sing-box
 * reaching a destination behind another enabled interface) or connections
 * to an endpoint itself: relaying them through a proxy would loop. */
int
singbox_endpoint_is_proxy_traffic (transport_endpoint_t *rmt, transport_endpoint_t *lcl)
{
  singbox_endpoint_t *ep;

  pool_foreach (ep, singbox_main.endpoints)
    {
      if (ep->is_ip4 == rmt->is_ip4 && singbox_ip46_equal (&ep->addr, &rmt->ip, ep->is_ip4))
	return 1;
      if (ep->is_ip4 == lcl->is_ip4 && singbox_ip46_equal (&ep->addr, &lcl->ip, ep->is_ip4) &&
	  ep->port == clib_net_to_host_u16 (lcl->port))
	return 1;
    }
  return 0;
}

/* The endpoint to use: the interface's, or the default; when health checks
 * have it down, the up endpoint with the lowest priority (failover). */
singbox_endpoint_t *
singbox_endpoint_pick (singbox_interface_t *itf)
{
  singbox_main_t *sm = &singbox_main;
  singbox_endpoint_t *ep = 0, *e, *best = 0;
  u32 idx = itf && itf->endpoint_index != ~0 ? itf->endpoint_index : sm->default_endpoint;

  if (idx != ~0 && !pool_is_free_index (sm->endpoints, idx))
    ep = pool_elt_at_index (sm->endpoints, idx);
  if (ep && ep->state != SINGBOX_EP_STATE_DOWN)
    return ep;
  pool_foreach (e, sm->endpoints)
    if (e->state != SINGBOX_EP_STATE_DOWN && (!best || e->priority < best->priority))
      best = e;
  if (!best && ep && ep->host && !ep->resolved)
    return 0; /* its name has no address (yet) */
  return best ? best : ep;
}

/* A host name's answer (singbox_dns.c, main thread): the endpoint `name`
 * takes the address if it still has that host. */
void
singbox_endpoint_resolved (u8 *name, u8 *host, int rv, ip46_address_t *ip, u8 is_ip4)
{
  vlib_main_t *vm = vlib_get_main ();
  singbox_endpoint_t *ep = singbox_endpoint_find (name);
  u32 fib_index;

  if (!ep || !ep->host || strcmp ((char *) ep->host, (char *) host))
    return;
  ep->resolving = 0;
  if (rv || (fib_index =
	       fib_table_find (is_ip4 ? FIB_PROTOCOL_IP4 : FIB_PROTOCOL_IP6, ep->table_id)) == ~0)
    {
      /* a known address stays until a lookup gives another */
      SINGBOX_LOG (SINGBOX_LOG_WARNING, "endpoint %s: %s not resolved: %U%s", ep->name, ep->host,
		   format_vnet_api_errno, rv, ep->resolved ? " (keeps its last address)" : "");
      return;
    }
  if (ep->resolved && ep->is_ip4 == is_ip4 && ip46_address_is_equal (&ep->addr, ip))
    return;
  SINGBOX_LOG (SINGBOX_LOG_INFO, "endpoint %s: %s is %U", ep->name, ep->host, format_ip46_address,
	       ip, IP46_TYPE_ANY);
  /* workers read the address of the endpoint a flow picks */
  vlib_worker_thread_barrier_sync (vm);
  ep->addr = *ip;
  ep->is_ip4 = is_ip4;
  ep->fib_index = fib_index;
  vlib_worker_thread_barrier_release (vm);
  singbox_pool_flush (ep);
  if (!ep->resolved)
    ep->state = SINGBOX_EP_STATE_UNKNOWN;
  ep->resolved = 1;
  singbox_probe_schedule_first (ep);
}

/* singbox-process: host names are looked up again every health-check
 * period (the dns plugin's cache honours the records' TTL). */
void
singbox_endpoints_resolve (f64 now)
{
  singbox_main_t *sm = &singbox_main;
  singbox_endpoint_t *ep;
  ip46_address_t ip;
  u8 is_ip4 = 0;
  int rv;

  pool_foreach (ep, sm->endpoints)
    {
      if (!ep->host || ep->resolving || now < ep->next_resolve)
	continue;
      ep->next_resolve = now + ep->hc_interval;
      rv = singbox_dns_resolve_endpoint (ep->name, ep->host, &ip, &is_ip4);
      if (rv == 1)
	ep->resolving = 1;
      else
	singbox_endpoint_resolved (ep->name, ep->host, rv, &ip, is_ip4);
      /* the endpoint pool may have moved: no pointer kept */
    }
}

/*
 * Interfaces
 */

singbox_interface_t *
singbox_interface_get (u32 sw_if_index)
{
  singbox_main_t *sm = &singbox_main;

  if (sw_if_index >= vec_len (sm->interfaces) || !sm->interfaces[sw_if_index].enabled)
    return 0;
  return vec_elt_at_index (sm->interfaces, sw_if_index);
}

/* The enabled interface a client is behind: where the route back to it
 * points; if that is none of them (asymmetric route), the first enabled
 * interface. 0: no interface is enabled. */
singbox_interface_t *
singbox_interface_of_client (ip46_address_t *ip, u8 is_ip4, u32 fib_index)
{
  singbox_main_t *sm = &singbox_main;
  singbox_interface_t *itf;
  fib_prefix_t pfx = {
    .fp_addr = *ip,
    .fp_len = is_ip4 ? 32 : 128,
    .fp_proto = is_ip4 ? FIB_PROTOCOL_IP4 : FIB_PROTOCOL_IP6,
  };
  fib_node_index_t fei = fib_table_lookup (fib_index, &pfx);

  if (fei != FIB_NODE_INDEX_INVALID &&
      (itf = singbox_interface_get (fib_entry_get_resolving_interface (fei))))
    return itf;
  vec_foreach (itf, sm->interfaces)
    if (itf->enabled)
      return itf;
  return 0;
}

int
singbox_prefix_match (singbox_prefix_t *p, ip46_address_t *ip, u8 is_ip4)
{
  if (p->is_ip4 != is_ip4)
    return 0;
  if (is_ip4)
    {
      ip4_address_t a = ip->ip4, b = p->addr.ip4;
      ip4_address_normalize (&a, p->len);
      ip4_address_normalize (&b, p->len);
      return a.as_u32 == b.as_u32;
    }
  ip6_address_t a = ip->ip6, b = p->addr.ip6;
  ip6_address_normalize (&a, p->len);
  ip6_address_normalize (&b, p->len);
  return ip6_address_is_equal (&a, &b);
}

void
singbox_clear_interface_counters (u32 sw_if_index)
{
  singbox_main_t *sm = &singbox_main;
  singbox_interface_t *itf;

  singbox_client_udp_clear_counters (sw_if_index);
  vec_foreach (itf, sm->interfaces)
    /* entries never enabled have sw_if_index 0, whose counters exist */
    if (sw_if_index == ~0 || itf->sw_if_index == sw_if_index)
      {
	itf->total = itf->failures = itf->packets = itf->bytes = 0;
	vlib_zero_simple_counter (&sm->itf_connections, itf->sw_if_index);
	vlib_zero_simple_counter (&sm->itf_failures, itf->sw_if_index);
	vlib_zero_combined_counter (&sm->itf_redirected, itf->sw_if_index);
      }
}

/* The ad-hoc endpoint "if-<n>" of an interface that no longer uses it:
 * it goes with the interface's proxy setting (unless something else took
 * it up meanwhile, as the default endpoint or another interface's). */
static void
singbox_interface_adhoc_del (u32 sw_if_index, u32 endpoint_index)
{
  singbox_main_t *sm = &singbox_main;
  singbox_endpoint_t *ep;
  u8 *name;

  if (endpoint_index == ~0 || pool_is_free_index (sm->endpoints, endpoint_index))
    return;
  ep = pool_elt_at_index (sm->endpoints, endpoint_index);
  if (ep->n_users || endpoint_index == sm->default_endpoint)
    return;
  name = format (0, "if-%u%c", sw_if_index, 0);
  if (!strcmp ((char *) ep->name, (char *) name))
    singbox_endpoint_del (name);
  vec_free (name);
}

/* Intercept the interface's TCP, through its own ad-hoc endpoint, a named
 * one or the default; again on an enabled interface changes its settings.
 * All or nothing: everything is checked before anything changes, and
 * interception (which can fail: no hsi plugin) is started before the
 * ad-hoc endpoint is made. */
int
singbox_interface_enable (u32 sw_if_index, const singbox_interface_config_t *cfg)
{
  singbox_main_t *sm = &singbox_main;
  vnet_main_t *vnm = vnet_get_main ();
  singbox_interface_t *itf;
  singbox_endpoint_t *ep = 0;
  singbox_group_t *group = 0;
  singbox_endpoint_config_t ecfg = {
    .addr = cfg->proxy_addr,
    .is_ip4 = cfg->proxy_is_ip4,
    .host = cfg->proxy_host,
    .port = cfg->proxy_port,
  };
  u32 old_ep = ~0;
  u8 old_adhoc = 0;
  int rv;

  if (!vnet_sw_interface_is_valid (vnm, sw_if_index))
    return VNET_API_ERROR_INVALID_SW_IF_INDEX;
  if (cfg->group_name && cfg->group_name[0])
    {
      if (!(group = singbox_group_find (cfg->group_name)))
	return VNET_API_ERROR_NO_SUCH_ENTRY;
    }
  else if (cfg->proxy_port)
    {
      ip46_address_t ip;
      u8 is_ip4, *name = format (0, "if-%u%c", sw_if_index, 0);

      rv = singbox_endpoint_check (&ecfg, 0);
      /* a name VPP cannot resolve fails here, before interception starts */
      if (!rv && ecfg.host &&
	  (rv = singbox_dns_resolve_endpoint (name, ecfg.host, &ip, &is_ip4)) > 0)
	rv = 0;
      vec_free (name);
      if (rv)
	return rv;
    }
  else if (cfg->endpoint_name && cfg->endpoint_name[0])
    {
      if (!(ep = singbox_endpoint_find (cfg->endpoint_name)))
	return VNET_API_ERROR_NO_SUCH_ENTRY;
    }
  else if (sm->default_endpoint == ~0 && singbox_group_main.default_group == ~0)
    return VNET_API_ERROR_NO_SUCH_ENTRY;
  vec_validate (sm->interfaces, sw_if_index);
  itf = vec_elt_at_index (sm->interfaces, sw_if_index);
  if (!itf->enabled)
    {
      itf->sw_if_index = sw_if_index;
      if ((rv = singbox_client_intercept_enable_disable (itf, 1)))
	{
	  /* what did start (the first features) goes again */
	  singbox_client_intercept_enable_disable (itf, 0);
	  return rv;
	}
      /* an interface's counters start when it is enabled */
      itf->total = itf->failures = itf->packets = itf->bytes = 0;
      itf->stat_active = vlib_stats_add_gauge ("/singbox/client/interface/%u/active", sw_if_index);
      sm->n_enabled_interfaces++;
    }
  else
    {
      old_ep = itf->endpoint_index;
      old_adhoc = itf->adhoc_endpoint;
      if (old_ep != ~0)
	pool_elt_at_index (sm->endpoints, old_ep)->n_users--;
    }
  if (cfg->proxy_port && !group)
    {
      u8 *name = format (0, "if-%u%c", sw_if_index, 0);
      /* checked above: cannot fail (a name answered then is in the cache) */
      singbox_endpoint_add (name, &ecfg);
      ep = singbox_endpoint_find (name);
      vec_free (name);
    }
  itf->sw_if_index = sw_if_index;
  itf->enabled = 1;
  itf->endpoint_index = ep ? ep - sm->endpoints : ~0;
  itf->adhoc_endpoint = ep && cfg->proxy_port && !group;
  itf->max_connections = cfg->max_connections;
  if (ep)
    ep->n_users++;
  if (old_adhoc && old_ep != itf->endpoint_index)
    singbox_interface_adhoc_del (sw_if_index, old_ep);
  singbox_group_interface_set (sw_if_index, group ? group - singbox_group_main.groups : ~0);
  return 0;
}

int
singbox_interface_disable (u32 sw_if_index)
{
  singbox_main_t *sm = &singbox_main;
  singbox_interface_t *itf;
  u32 old_ep;

  if (!vnet_sw_interface_is_valid (vnet_get_main (), sw_if_index))
    return VNET_API_ERROR_INVALID_SW_IF_INDEX;
  if (!(itf = singbox_interface_get (sw_if_index)))
    return VNET_API_ERROR_NO_SUCH_ENTRY;
  singbox_client_close_interface (sw_if_index);
  singbox_client_udp_interface_disable (sw_if_index);
  singbox_client_intercept_enable_disable (itf, 0);
  old_ep = itf->endpoint_index;
  if (old_ep != ~0)
    pool_elt_at_index (sm->endpoints, old_ep)->n_users--;
  vec_free (itf->bypass);
  singbox_group_interface_set (sw_if_index, ~0);
  itf->enabled = 0;
  itf->endpoint_index = ~0;
  if (itf->adhoc_endpoint)
    singbox_interface_adhoc_del (sw_if_index, old_ep);
  itf->adhoc_endpoint = 0;
  sm->n_enabled_interfaces--;
  if (itf->stat_active && itf->stat_active != ~0)
    vlib_stats_remove_entry (itf->stat_active);
  itf->stat_active = ~0;
  return 0;
}

int
singbox_interface_bypass_add_del (u32 sw_if_index, int is_add, ip46_address_t *addr, u8 len,
				  u8 is_ip4)
{
  singbox_interface_t *itf = singbox_interface_get (sw_if_index);
  singbox_prefix_t *p, np = {};
  u32 i;

  if (!itf)
    return VNET_API_ERROR_NO_SUCH_ENTRY;
  if (len > (is_ip4 ? 32 : 128))
    return VNET_API_ERROR_INVALID_VALUE;
  np.addr = *addr;
  np.len = len;
  np.is_ip4 = is_ip4;
  vec_foreach_index (i, itf->bypass)
    {
      p = vec_elt_at_index (itf->bypass, i);
      if (p->is_ip4 == is_ip4 && p->len == len && ip46_address_is_equal (&p->addr, addr))
	{
	  if (!is_add)
	    vec_del1 (itf->bypass, i);
	  return 0;
	}
    }
  if (!is_add)
    return VNET_API_ERROR_NO_SUCH_ENTRY;
  vec_add1 (itf->bypass, np);
  return 0;
}

static const char *singbox_ep_state_names[] = { "unknown", "up", "down" };

/* Where an endpoint is, as the CLI takes it: <ip4>:<port> or [<ip6>]:<port>. */
u8 *
format_singbox_endpoint_address (u8 *s, va_list *args)
{
  singbox_endpoint_t *ep = va_arg (*args, singbox_endpoint_t *);

  if (ep->host)
    return format (s, "%s:%u", ep->host, ep->port);
  if (ep->is_ip4)
    return format (s, "%U:%u", format_ip4_address, &ep->addr.ip4, ep->port);
  return format (s, "[%U]:%u", format_ip6_address, &ep->addr.ip6, ep->port);
}

const char *
singbox_endpoint_protocol_name (singbox_endpoint_t *ep)
{
  return ep->protocol == SINGBOX_PROTO_HTTP_CONNECT ? "HTTP CONNECT" : "SOCKS5";
}

u8 *
format_singbox_endpoint (u8 *s, va_list *args)
{
  singbox_endpoint_t *ep = va_arg (*args, singbox_endpoint_t *);
  u32 index = ep - singbox_main.endpoints;

  s = format (s, "%s%s: %U (%s)%s", ep->name,
	      index == singbox_main.default_endpoint ? " (default)" : "",
	      format_singbox_endpoint_address, ep, singbox_endpoint_protocol_name (ep),
	      ep->username ? " auth" : "");
  if (ep->host && ep->resolved)
    s = format (s, " address %U", format_ip46_address, &ep->addr, IP46_TYPE_ANY);
  else if (ep->host)
    s = format (s, " address unresolved");
  s = format (s, " state %s failures %lu rtt %uus connections %lu",
	      singbox_ep_state_names[ep->state % 3], ep->failures, ep->rtt_us, ep->connections);
  if (singbox_main.pooling)
    s = format (s, " pool %u ready %u connecting", vec_len (ep->pool_ready), ep->pool_pending);
  return s;
}

u8 *
format_singbox_interface (u8 *s, va_list *args)
{
  singbox_interface_t *itf = va_arg (*args, singbox_interface_t *);
  vnet_main_t *vnm = vnet_get_main ();
  singbox_main_t *sm = &singbox_main;
  u32 ep_index = itf->endpoint_index != ~0 ? itf->endpoint_index : sm->default_endpoint;
  u8 *ep = singbox_endpoint_name (ep_index);
  u32 group_index = singbox_group_of_interface (itf->sw_if_index, itf->endpoint_index);
  singbox_prefix_t *p;

  s = format (s, "Interface %U:\n", format_vnet_sw_if_index_name, vnm, itf->sw_if_index);
  s = format (s, "  Status: %s\n", itf->enabled ? "enabled" : "disabled");
  if (group_index != ~0)
    s = format (s, "  Proxy: endpoint group %s\n", singbox_group_name (group_index));
  else if (ep)
    /* the manual's "Proxy: 127.0.0.1:1080", then which endpoint that is */
    s = format (s, "  Proxy: %U (endpoint %s)\n", format_singbox_endpoint_address,
		pool_elt_at_index (sm->endpoints, ep_index), ep);
  else
    s = format (s, "  Proxy: -\n");
  if (itf->max_connections)
    s = format (s, "  Max connections: %u\n", itf->max_connections);
  vec_foreach (p, itf->bypass)
    s = format (s, "  Bypass: %U/%u\n", format_ip46_address, &p->addr, IP46_TYPE_ANY, p->len);
  s = format (s, "  Active connections: %u\n", itf->active);
  s = format (s, "  Total connections: %lu\n", itf->total);
  s = format (s, "  Packets redirected: %lu\n", itf->packets);
  s = format (s, "  Bytes redirected: %lu\n", itf->bytes);
  s = format (s, "  Connection failures: %lu\n", itf->failures);
  return s;
}

/* singbox-process: per-object gauges in the stats segment. */
void
singbox_client_stats_update (void)
{
  singbox_main_t *sm = &singbox_main;
  singbox_endpoint_t *ep;
  singbox_interface_t *itf;

  pool_foreach (ep, sm->endpoints)
    {
      vlib_stats_set_gauge (ep->stat_state, ep->state);
      vlib_stats_set_gauge (ep->stat_rtt, ep->rtt_us);
      vlib_stats_set_gauge (ep->stat_failures, ep->failures);
      vlib_stats_set_gauge (ep->stat_connections, ep->connections);
    }
  vec_foreach (itf, sm->interfaces)
    if (itf->enabled && itf->stat_active != ~0 && itf->stat_active != 0)
      vlib_stats_set_gauge (itf->stat_active, itf->active);
  singbox_group_stats_update ();
}

clib_error_t *
singbox_endpoint_init (vlib_main_t *vm)
{
  singbox_main_t *sm = &singbox_main;

  sm->default_endpoint = ~0;
  sm->endpoint_by_name = hash_create_string (0, sizeof (uword));
  return 0;
}
