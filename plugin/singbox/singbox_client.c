/* SPDX-License-Identifier: Apache-2.0
 * Copyright (c) 2026 vpp-singbox authors
 */

/* Client mode: upstream SOCKS5 endpoints and the interfaces whose arriving
 * TCP is relayed through them. */

#include <singbox/singbox.h>

/*
 * Endpoints
 */

singbox_endpoint_t *
singbox_endpoint_find (u8 *name)
{
  singbox_main_t *sm = &singbox_main;
  singbox_endpoint_t *ep;

  pool_foreach (ep, sm->endpoints)
    if (!strcmp ((char *) ep->name, (char *) name))
      return ep;
  return 0;
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
singbox_endpoint_add_del (int is_add, u8 *name, ip46_address_t *addr,
			  u8 is_ip4, u16 port, u8 protocol, u8 *username,
			  u8 *password, u32 priority, u16 connect_timeout,
			  u8 hc_enabled, u16 hc_interval, u16 hc_timeout,
			  u8 failure_threshold, u8 recovery_threshold,
			  u32 table_id)
{
  singbox_main_t *sm = &singbox_main;
  u32 len = strnlen ((char *) name, 64);
  u32 ulen = username ? strnlen ((char *) username, 256) : 0;
  u32 plen = password ? strnlen ((char *) password, 256) : 0;
  singbox_endpoint_t *ep;
  u32 fib_index;

  if (len == 0 || len > 63)
    return VNET_API_ERROR_INVALID_VALUE;
  ep = singbox_endpoint_find (name);
  if (!is_add)
    {
      if (!ep)
	return VNET_API_ERROR_NO_SUCH_ENTRY;
      if (ep->n_users)
	return VNET_API_ERROR_INSTANCE_IN_USE;
      if (sm->default_endpoint == ep - sm->endpoints)
	sm->default_endpoint = ~0;
      vec_free (ep->name);
      vec_free (ep->username);
      vec_free (ep->password);
      pool_put (sm->endpoints, ep);
      return 0;
    }

  if (port == 0 || protocol != 0 || ulen > SOCKS5_MAX_CRED_LEN ||
      plen > SOCKS5_MAX_CRED_LEN || (ulen && !plen) || ip46_address_is_zero (addr))
    return VNET_API_ERROR_INVALID_VALUE;
  if (hc_enabled && hc_timeout && hc_interval && hc_timeout >= hc_interval)
    return VNET_API_ERROR_INVALID_VALUE;
  fib_index =
    fib_table_find (is_ip4 ? FIB_PROTOCOL_IP4 : FIB_PROTOCOL_IP6, table_id);
  if (fib_index == ~0)
    return VNET_API_ERROR_NO_SUCH_FIB;

  if (!ep)
    {
      pool_get_zero (sm->endpoints, ep);
      ep->name = format (0, "%s%c", name, 0);
      ep->state = SINGBOX_EP_STATE_UNKNOWN;
      ep->last_change = vlib_time_now (vlib_get_main ());
    }
  ep->addr = *addr;
  ep->is_ip4 = is_ip4;
  ep->port = port;
  ep->protocol = protocol;
  vec_free (ep->username);
  vec_free (ep->password);
  if (ulen)
    {
      vec_add (ep->username, username, ulen);
      vec_add (ep->password, password, plen);
    }
  ep->priority = priority;
  ep->connect_timeout = connect_timeout ? connect_timeout : 10;
  ep->hc_enabled = hc_enabled;
  ep->hc_interval = hc_interval ? hc_interval : 30;
  ep->hc_timeout = hc_timeout ? hc_timeout : 5;
  ep->failure_threshold = failure_threshold ? failure_threshold : 3;
  ep->recovery_threshold = recovery_threshold ? recovery_threshold : 2;
  ep->table_id = table_id;
  ep->fib_index = fib_index;
  if (!hc_enabled)
    ep->state = SINGBOX_EP_STATE_UNKNOWN;
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

/*
 * Interfaces
 */

singbox_interface_t *
singbox_interface_get (u32 sw_if_index)
{
  singbox_main_t *sm = &singbox_main;

  if (sw_if_index >= vec_len (sm->interfaces) ||
      !sm->interfaces[sw_if_index].enabled)
    return 0;
  return vec_elt_at_index (sm->interfaces, sw_if_index);
}

void
singbox_clear_interface_counters (u32 sw_if_index)
{
  singbox_main_t *sm = &singbox_main;
  singbox_interface_t *itf;

  vec_foreach (itf, sm->interfaces)
    if (sw_if_index == ~0 || itf->sw_if_index == sw_if_index)
      itf->total = itf->failures = itf->packets = itf->bytes = 0;
}

/* The dataplane part of client mode (hsi interception + SOCKS5 CONNECT
 * upstream) is not implemented yet: refuse rather than pretend. */
static int
singbox_client_intercept_enable_disable (singbox_interface_t *itf, int enable)
{
  return VNET_API_ERROR_UNIMPLEMENTED;
}

int
singbox_interface_enable_disable (u32 sw_if_index, int enable,
				  ip46_address_t *proxy_addr, u8 proxy_is_ip4,
				  u16 proxy_port, u8 *endpoint_name,
				  u32 max_connections)
{
  singbox_main_t *sm = &singbox_main;
  vnet_main_t *vnm = vnet_get_main ();
  singbox_interface_t *itf;
  singbox_endpoint_t *ep = 0;
  int rv;

  if (!vnet_sw_interface_is_valid (vnm, sw_if_index))
    return VNET_API_ERROR_INVALID_SW_IF_INDEX;

  if (!enable)
    {
      if (!(itf = singbox_interface_get (sw_if_index)))
	return VNET_API_ERROR_NO_SUCH_ENTRY;
      singbox_client_intercept_enable_disable (itf, 0);
      if (itf->endpoint_index != ~0)
	pool_elt_at_index (sm->endpoints, itf->endpoint_index)->n_users--;
      vec_free (itf->bypass);
      itf->enabled = 0;
      return 0;
    }

  if (proxy_port)
    {
      u8 *name = format (0, "if-%u%c", sw_if_index, 0);
      rv = singbox_endpoint_add_del (1, name, proxy_addr, proxy_is_ip4,
				     proxy_port, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
				     0);
      ep = rv ? 0 : singbox_endpoint_find (name);
      vec_free (name);
      if (rv)
	return rv;
    }
  else if (endpoint_name && endpoint_name[0])
    {
      if (!(ep = singbox_endpoint_find (endpoint_name)))
	return VNET_API_ERROR_NO_SUCH_ENTRY;
    }
  else if (sm->default_endpoint == ~0)
    return VNET_API_ERROR_NO_SUCH_ENTRY;

  vec_validate (sm->interfaces, sw_if_index);
  itf = vec_elt_at_index (sm->interfaces, sw_if_index);
  if (!itf->enabled && (rv = singbox_client_intercept_enable_disable (itf, 1)))
    return rv;
  if (itf->enabled && itf->endpoint_index != ~0)
    pool_elt_at_index (sm->endpoints, itf->endpoint_index)->n_users--;
  itf->sw_if_index = sw_if_index;
  itf->enabled = 1;
  itf->endpoint_index = ep ? ep - sm->endpoints : ~0;
  itf->adhoc_endpoint = proxy_port != 0;
  itf->max_connections = max_connections;
  if (ep)
    ep->n_users++;
  return 0;
}

int
singbox_interface_bypass_add_del (u32 sw_if_index, int is_add,
				  ip46_address_t *addr, u8 len, u8 is_ip4)
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
      if (p->is_ip4 == is_ip4 && p->len == len &&
	  ip46_address_is_equal (&p->addr, addr))
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

int
singbox_set_client_timeout (u32 timeout)
{
  singbox_main.client_timeout = timeout;
  return 0;
}

int
singbox_set_pooling (u8 enable, u32 max_pool_size)
{
  singbox_main.pooling = enable;
  if (max_pool_size)
    singbox_main.max_pool_size = max_pool_size;
  return 0;
}

static const char *singbox_ep_state_names[] = { "unknown", "up", "down" };

u8 *
format_singbox_endpoint (u8 *s, va_list *args)
{
  singbox_endpoint_t *ep = va_arg (*args, singbox_endpoint_t *);
  u32 index = ep - singbox_main.endpoints;

  s = format (s, "%s%s: %U:%u (SOCKS5)%s", ep->name,
	      index == singbox_main.default_endpoint ? " (default)" : "",
	      format_ip46_address, &ep->addr, IP46_TYPE_ANY, ep->port,
	      ep->username ? " auth" : "");
  s = format (s, " state %s failures %lu rtt %uus connections %lu",
	      singbox_ep_state_names[ep->state % 3], ep->failures, ep->rtt_us,
	      ep->connections);
  return s;
}

u8 *
format_singbox_interface (u8 *s, va_list *args)
{
  singbox_interface_t *itf = va_arg (*args, singbox_interface_t *);
  vnet_main_t *vnm = vnet_get_main ();
  singbox_main_t *sm = &singbox_main;
  u8 *ep = singbox_endpoint_name (itf->endpoint_index != ~0 ?
				    itf->endpoint_index :
				    sm->default_endpoint);
  singbox_prefix_t *p;

  s = format (s, "Interface %U:\n", format_vnet_sw_if_index_name, vnm,
	      itf->sw_if_index);
  s = format (s, "  Status: %s\n", itf->enabled ? "enabled" : "disabled");
  s = format (s, "  Proxy: %s\n", ep ? (char *) ep : "-");
  if (itf->max_connections)
    s = format (s, "  Max connections: %u\n", itf->max_connections);
  vec_foreach (p, itf->bypass)
    s = format (s, "  Bypass: %U/%u\n", format_ip46_address, &p->addr,
		IP46_TYPE_ANY, p->len);
  s = format (s, "  Active connections: %u\n", itf->active);
  s = format (s, "  Total connections: %lu\n", itf->total);
  s = format (s, "  Packets redirected: %lu\n", itf->packets);
  s = format (s, "  Bytes redirected: %lu\n", itf->bytes);
  s = format (s, "  Connection failures: %lu\n", itf->failures);
  return s;
}

clib_error_t *
singbox_client_init (vlib_main_t *vm)
{
  singbox_main.default_endpoint = ~0;
  return 0;
}
