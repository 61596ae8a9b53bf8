/* SPDX-License-Identifier: Apache-2.0
 * Copyright (c) 2026 vpp-singbox authors
 */

/* Client mode's object model (singbox_endpoint.c): upstream proxies
 * (endpoints) and the interfaces whose arriving TCP is relayed through
 * them. */

#ifndef __included_singbox_endpoint_h__
#define __included_singbox_endpoint_h__

#include <vnet/vnet.h>
#include <vnet/ip/ip.h>

/* An address prefix: an interface's bypass, the server's allowed clients. */
typedef struct
{
  ip46_address_t addr;
  u8 len;
  u8 is_ip4;
} singbox_prefix_t;

/* singbox_endpoint_t.protocol, as vl_api_singbox_proxy_protocol_t */
#define SINGBOX_PROTO_SOCKS5	   0
#define SINGBOX_PROTO_HTTP_CONNECT 1

/* probe results, as vl_api_singbox_probe_result_t */
#define SINGBOX_PROBE_SUCCESS	     0
#define SINGBOX_PROBE_CONNECT_FAILED 1
#define SINGBOX_PROBE_TIMEOUT	     2
#define SINGBOX_PROBE_AUTH_FAILED    3
#define SINGBOX_PROBE_PROTOCOL_ERROR 4
#define SINGBOX_PROBE_NOT_RUN	     5

#define SINGBOX_EP_STATE_UNKNOWN 0
#define SINGBOX_EP_STATE_UP	 1
#define SINGBOX_EP_STATE_DOWN	 2

/* What configures an endpoint (singbox_endpoint_add); zeros are the
 * defaults of the YANG model. */
typedef struct
{
  ip46_address_t addr;
  u8 is_ip4;
  u8 *host; /* C string: a host name instead of addr (the CLI's), resolved by
	     * VPP's dns plugin; 0 = addr */
  u16 port;
  u8 protocol;	/* SINGBOX_PROTO_* */
  u8 *username; /* C strings, 0 = no auth */
  u8 *password;
  u32 priority;
  u16 connect_timeout;
  u8 hc_enabled;
  u16 hc_interval;
  u16 hc_timeout;
  u8 failure_threshold;
  u8 recovery_threshold;
  u32 table_id;
} singbox_endpoint_config_t;

/* Client mode: an upstream proxy (SOCKS5 or HTTP CONNECT). */
typedef struct
{
  u8 *name; /* vec, NUL-terminated */
  ip46_address_t addr;
  u8 is_ip4;
  u8 *host;	    /* vec, NUL-terminated: resolved into addr; 0 = none */
  u8 resolved;	    /* host: addr holds its address */
  u8 resolving;	    /* host: a lookup is under way */
  f64 next_resolve; /* host: looked up again then (the health-check period) */
  u16 port;
  u8 protocol;
  u8 *username; /* vec, not terminated; 0 = no auth */
  u8 *password;
  u32 priority;
  u16 connect_timeout;
  u8 hc_enabled;
  u16 hc_interval;
  u16 hc_timeout;
  u8 failure_threshold;
  u8 recovery_threshold;
  u32 table_id;
  u32 fib_index;

  /* state */
  u8 state; /* SINGBOX_EP_STATE_* */
  u8 last_result;
  f64 last_change;
  f64 next_probe;
  u8 probing;
  u64 failures;
  u32 consecutive_failures;
  u32 consecutive_successes;
  u32 rtt_us;
  u64 connections;
  u32 n_users;	    /* interfaces referring to it */
  u64 *pool_ready;  /* session ids of pre-authenticated connections */
  u32 pool_pending; /* pooled connections still connecting */
  u32 stat_state;   /* stats segment gauges */
  u32 stat_rtt;
  u32 stat_failures;
  u32 stat_connections;
} singbox_endpoint_t;

/* Client mode: an interface whose arriving TCP is intercepted. */
typedef struct
{
  u32 sw_if_index;
  u8 enabled;
  u32 endpoint_index; /* ~0: the default endpoint */
  u8 adhoc_endpoint;  /* endpoint created by "proxy <addr>:<port>" */
  u32 max_connections;
  singbox_prefix_t *bypass;
  volatile u32 active;
  u64 total;
  u64 failures;
  u64 packets;
  u64 bytes;
  u32 stat_active; /* stats segment gauge, ~0 = none */
} singbox_interface_t;

/* What enables interception on an interface (singbox_interface_enable). */
typedef struct
{
  /* an ad-hoc endpoint "if-<sw_if_index>" at this address (or host name)
   * when port != 0 */
  ip46_address_t proxy_addr;
  u8 proxy_is_ip4;
  u8 *proxy_host;
  u16 proxy_port;
  u8 *endpoint_name; /* else this endpoint; neither: the default */
  u8 *group_name;    /* else this endpoint group (singbox_group.h) */
  u32 max_connections;
} singbox_interface_config_t;

/* singbox_endpoint.c */
clib_error_t *singbox_endpoint_init (vlib_main_t *vm);
int singbox_endpoint_check (const singbox_endpoint_config_t *cfg, u32 *fib_index);
int singbox_endpoint_add (u8 *name, const singbox_endpoint_config_t *cfg);
int singbox_endpoint_del (u8 *name);
singbox_endpoint_t *singbox_endpoint_find (u8 *name);
u8 *singbox_endpoint_name (u32 endpoint_index);
int singbox_set_default_endpoint (u8 *name);
int singbox_clear_endpoint_counters (u8 *name);
singbox_endpoint_t *singbox_endpoint_pick (singbox_interface_t *itf);
int singbox_endpoint_is_proxy_traffic (transport_endpoint_t *rmt, transport_endpoint_t *lcl);
int singbox_interface_enable (u32 sw_if_index, const singbox_interface_config_t *cfg);
int singbox_interface_disable (u32 sw_if_index);
int singbox_interface_bypass_add_del (u32 sw_if_index, int is_add, ip46_address_t *addr, u8 len,
				      u8 is_ip4);
singbox_interface_t *singbox_interface_get (u32 sw_if_index);
singbox_interface_t *singbox_interface_of_client (ip46_address_t *ip, u8 is_ip4, u32 fib_index);
void singbox_clear_interface_counters (u32 sw_if_index);
int singbox_prefix_match (singbox_prefix_t *p, ip46_address_t *ip, u8 is_ip4);
void singbox_client_stats_update (void);
void singbox_endpoints_resolve (f64 now);
void singbox_endpoint_resolved (u8 *name, u8 *host, int rv, ip46_address_t *ip, u8 is_ip4);
int singbox_dns_resolve_endpoint (u8 *endpoint, u8 *host, ip46_address_t *ip, u8 *is_ip4);
format_function_t format_singbox_endpoint;
format_function_t format_singbox_endpoint_address;
const char *singbox_endpoint_protocol_name (singbox_endpoint_t *ep);
format_function_t format_singbox_interface;

#endif /* __included_singbox_endpoint_h__ */
