/* SPDX-License-Identifier: Apache-2.0
 * Copyright (c) 2026 vpp-singbox authors
 */

/* Binary API handlers: convert byte order, call the action, reply. */

#include <singbox/singbox.h>
#include <vnet/ip/ip_types_api.h>
#include <vnet/format_fns.h>
#include <vlibapi/api.h>
#include <vlibmemory/api.h>

#include <singbox/singbox.api_enum.h>
#include <singbox/singbox.api_types.h>
#include <singbox/singbox_group.h>
#include <singbox/singbox_group_api.h>

#define REPLY_MSG_ID_BASE sm->msg_id_base
#include <vlibapi/api_helper_macros.h>

/*
 * REPLY_MACRO_DETAILS4 does not zero the message: a fixed-size string copied without its NUL, or a
 * field left unset (no username), reaches the client as heap garbage that vpp_papi cannot decode.
 * Every details message here starts zeroed.
 */
#define SINGBOX_REPLY_DETAILS(t, rp, context, body)                                                \
  do                                                                                               \
    {                                                                                              \
      rmp = vl_msg_api_alloc_zero (sizeof (*rmp));                                                 \
      rmp->_vl_msg_id = htons ((t) + (REPLY_MSG_ID_BASE));                                         \
      rmp->context = context;                                                                      \
      do                                                                                           \
	{                                                                                          \
	  body;                                                                                    \
	}                                                                                          \
      while (0);                                                                                   \
      vl_api_send_msg (rp, (u8 *) rmp);                                                            \
    }                                                                                              \
  while (0)

/* fixed-size API strings: make sure they end */
#define SINGBOX_TERMINATE(field) ((field)[sizeof (field) - 1] = 0)

static u8
singbox_decode_address (const vl_api_address_t *in, ip46_address_t *out)
{
  return ip_address_decode (in, out) == IP46_TYPE_IP4;
}

static void
singbox_encode_address (ip46_address_t *in, u8 is_ip4, vl_api_address_t *out)
{
  ip_address_encode (in, is_ip4 ? IP46_TYPE_IP4 : IP46_TYPE_IP6, out);
}

static void
singbox_encode_prefix (singbox_prefix_t *p, vl_api_prefix_t *out)
{
  fib_prefix_t fp = {
    .fp_addr = p->addr,
    .fp_len = p->len,
    .fp_proto = p->is_ip4 ? FIB_PROTOCOL_IP4 : FIB_PROTOCOL_IP6,
  };
  ip_prefix_encode (&fp, out);
}

static void
singbox_decode_prefix (const vl_api_prefix_t *in, ip46_address_t *addr, u8 *len, u8 *is_ip4)
{
  fib_prefix_t fp;

  ip_prefix_decode (in, &fp);
  *addr = fp.fp_addr;
  *len = fp.fp_len;
  *is_ip4 = fp.fp_proto == FIB_PROTOCOL_IP4;
}

/*
 * Plugin
 */

static void
vl_api_singbox_plugin_get_version_t_handler (vl_api_singbox_plugin_get_version_t *mp)
{
  singbox_main_t *sm = &singbox_main;
  vl_api_singbox_plugin_get_version_reply_t *rmp;
  int rv = 0;

  REPLY_MACRO2 (VL_API_SINGBOX_PLUGIN_GET_VERSION_REPLY, ({
		  rmp->major = htonl (1);
		  rmp->minor = htonl (0);
		  rmp->patch = htonl (0);
		  strncpy ((char *) rmp->version, SINGBOX_PLUGIN_VERSION,
			   sizeof (rmp->version) - 1);
		}));
}

static void
vl_api_singbox_set_verbose_t_handler (vl_api_singbox_set_verbose_t *mp)
{
  singbox_main_t *sm = &singbox_main;
  vl_api_singbox_set_verbose_reply_t *rmp;
  int rv = singbox_set_log_level (mp->enable ? SINGBOX_LOG_DEBUG : SINGBOX_LOG_INFO);
  REPLY_MACRO (VL_API_SINGBOX_SET_VERBOSE_REPLY);
}

static void
vl_api_singbox_set_log_level_t_handler (vl_api_singbox_set_log_level_t *mp)
{
  singbox_main_t *sm = &singbox_main;
  vl_api_singbox_set_log_level_reply_t *rmp;
  int rv = singbox_set_log_level (mp->level);
  REPLY_MACRO (VL_API_SINGBOX_SET_LOG_LEVEL_REPLY);
}

static void
vl_api_singbox_clear_stats_t_handler (vl_api_singbox_clear_stats_t *mp)
{
  singbox_main_t *sm = &singbox_main;
  vl_api_singbox_clear_stats_reply_t *rmp;
  u32 sw_if_index = ntohl (mp->sw_if_index);
  int rv = 0;

  SINGBOX_TERMINATE (mp->endpoint_name);
  switch (mp->scope)
    {
    case SINGBOX_API_STATS_SCOPE_ALL:
      singbox_clear_server_counters ();
      singbox_clear_interface_counters (~0);
      singbox_clear_endpoint_counters (0);
      singbox_group_clear_counters (0);
      break;
    case SINGBOX_API_STATS_SCOPE_SERVER:
      singbox_clear_server_counters ();
      break;
    case SINGBOX_API_STATS_SCOPE_INTERFACE:
      if (!singbox_interface_get (sw_if_index))
	rv = VNET_API_ERROR_NO_SUCH_ENTRY;
      else
	singbox_clear_interface_counters (sw_if_index);
      break;
    case SINGBOX_API_STATS_SCOPE_ENDPOINT:
      rv = mp->endpoint_name[0] ? singbox_clear_endpoint_counters (mp->endpoint_name) :
				  VNET_API_ERROR_INVALID_VALUE;
      break;
    case SINGBOX_API_STATS_SCOPE_ENDPOINT_GROUP:
      if (!mp->endpoint_name[0])
	rv = VNET_API_ERROR_INVALID_VALUE;
      else if (!singbox_group_find (mp->endpoint_name))
	rv = VNET_API_ERROR_NO_SUCH_ENTRY;
      else
	singbox_group_clear_counters (singbox_group_find (mp->endpoint_name));
      break;
    default:
      rv = VNET_API_ERROR_INVALID_VALUE;
    }
  REPLY_MACRO (VL_API_SINGBOX_CLEAR_STATS_REPLY);
}

/*
 * Server
 */

static void
vl_api_singbox_server_enable_disable_t_handler (vl_api_singbox_server_enable_disable_t *mp)
{
  singbox_main_t *sm = &singbox_main;
  vl_api_singbox_server_enable_disable_reply_t *rmp;
  int rv = singbox_server_enable_disable (mp->enable);
  REPLY_MACRO (VL_API_SINGBOX_SERVER_ENABLE_DISABLE_REPLY);
}

static void
vl_api_singbox_server_config_t_handler (vl_api_singbox_server_config_t *mp)
{
  singbox_main_t *sm = &singbox_main;
  vl_api_singbox_server_config_reply_t *rmp;
  singbox_server_config_t cfg = {
    .auth_required = mp->auth_required,
    .allow_connect = mp->allow_connect,
    .allow_udp_associate = mp->allow_udp_associate,
    .max_sessions = ntohl (mp->max_sessions),
    .handshake_timeout = ntohl (mp->handshake_timeout),
    .idle_timeout = ntohl (mp->idle_timeout),
    .connect_timeout = ntohl (mp->connect_timeout),
    .udp_idle_timeout = ntohl (mp->udp_idle_timeout),
    .dns_enabled = mp->dns_enabled,
    .dns_server_port = ntohs (mp->dns_server_port),
  };
  int rv;

  cfg.udp_public_is_ip4 = singbox_decode_address (&mp->udp_public_address, &cfg.udp_public_address);
  cfg.dns_server_is_ip4 = singbox_decode_address (&mp->dns_server, &cfg.dns_server);
  rv = singbox_server_set_config (&cfg);
  REPLY_MACRO (VL_API_SINGBOX_SERVER_CONFIG_REPLY);
}

static void
vl_api_singbox_server_dump_t_handler (vl_api_singbox_server_dump_t *mp)
{
  singbox_main_t *sm = &singbox_main;
  vl_api_singbox_server_details_t *rmp;
  vl_api_registration_t *reg;
  singbox_listener_t *l;
  u8 running = sm->server_enabled;

  u32 context = mp->context;

  if (!(reg = vl_api_client_index_to_registration (mp->client_index)))
    return;
  pool_foreach (l, sm->listeners)
    if (!l->is_listening)
      running = 0;

  SINGBOX_REPLY_DETAILS (VL_API_SINGBOX_SERVER_DETAILS, reg, context, ({
			   rmp->is_enabled = sm->server_enabled;
			   rmp->is_running = running;
			   rmp->auth_required = sm->auth_required;
			   rmp->allow_connect = sm->allow_connect;
			   rmp->allow_udp_associate = sm->allow_udp_associate;
			   rmp->max_sessions = htonl (sm->max_sessions);
			   rmp->handshake_timeout = htonl (sm->handshake_timeout);
			   rmp->idle_timeout = htonl (sm->idle_timeout);
			   rmp->connect_timeout = htonl (sm->connect_timeout);
			   rmp->udp_idle_timeout = htonl (sm->udp_idle_timeout);
			   singbox_encode_address (&sm->udp_public_address, sm->udp_public_is_ip4,
						   &rmp->udp_public_address);
			   rmp->dns_enabled = sm->dns_enabled;
			   singbox_encode_address (&sm->dns_server, sm->dns_server_is_ip4,
						   &rmp->dns_server);
			   rmp->dns_server_port = htons (sm->dns_server_port);
			   rmp->n_listeners = htonl (pool_elts (sm->listeners));
			   rmp->n_users = htonl (pool_elts (sm->users));
			   rmp->active_sessions = htonl (sm->n_active);
			   rmp->upstream_sw_if_index = htonl (sm->server_upstream_sw_if_index);
			 }));
}

static void
vl_api_singbox_server_set_upstream_t_handler (vl_api_singbox_server_set_upstream_t *mp)
{
  singbox_main_t *sm = &singbox_main;
  vl_api_singbox_server_set_upstream_reply_t *rmp;
  int rv = singbox_server_set_upstream (ntohl (mp->sw_if_index));

  REPLY_MACRO (VL_API_SINGBOX_SERVER_SET_UPSTREAM_REPLY);
}

static void
vl_api_singbox_server_listener_add_del_t_handler (vl_api_singbox_server_listener_add_del_t *mp)
{
  singbox_main_t *sm = &singbox_main;
  vl_api_singbox_server_listener_add_del_reply_t *rmp;
  ip46_address_t addr;
  u32 index = ~0;
  u8 is_ip4;
  int rv;

  SINGBOX_TERMINATE (mp->name);
  is_ip4 = singbox_decode_address (&mp->addr, &addr);
  rv = singbox_listener_add_del (mp->is_add, mp->name, &addr, is_ip4, ntohs (mp->port),
				 ntohl (mp->table_id), &index);
  REPLY_MACRO2 (VL_API_SINGBOX_SERVER_LISTENER_ADD_DEL_REPLY,
		({ rmp->listener_index = htonl (index); }));
}

static void
vl_api_singbox_server_listener_dump_t_handler (vl_api_singbox_server_listener_dump_t *mp)
{
  singbox_main_t *sm = &singbox_main;
  vl_api_singbox_server_listener_details_t *rmp;
  vl_api_registration_t *reg;
  singbox_listener_t *l;

  u32 context = mp->context;

  if (!(reg = vl_api_client_index_to_registration (mp->client_index)))
    return;
  pool_foreach (l, sm->listeners)
    {
      SINGBOX_REPLY_DETAILS (VL_API_SINGBOX_SERVER_LISTENER_DETAILS, reg, context, ({
			       rmp->listener_index = htonl (l - sm->listeners);
			       strncpy ((char *) rmp->name, (char *) l->name,
					sizeof (rmp->name) - 1);
			       singbox_encode_address (&l->addr, l->is_ip4, &rmp->addr);
			       rmp->port = htons (l->port);
			       rmp->table_id = htonl (l->table_id);
			       rmp->is_listening = l->is_listening;
			     }));
    }
}

static void
vl_api_singbox_server_user_add_del_t_handler (vl_api_singbox_server_user_add_del_t *mp)
{
  singbox_main_t *sm = &singbox_main;
  vl_api_singbox_server_user_add_del_reply_t *rmp;
  int rv;

  SINGBOX_TERMINATE (mp->username);
  SINGBOX_TERMINATE (mp->password);
  rv = singbox_user_add_del (mp->is_add, mp->username, mp->password, mp->password_is_hash);
  clib_memset (mp->password, 0, sizeof (mp->password));
  REPLY_MACRO (VL_API_SINGBOX_SERVER_USER_ADD_DEL_REPLY);
}

static void
vl_api_singbox_server_user_dump_t_handler (vl_api_singbox_server_user_dump_t *mp)
{
  singbox_main_t *sm = &singbox_main;
  vl_api_singbox_server_user_details_t *rmp;
  vl_api_registration_t *reg;
  singbox_user_t *u;

  u32 context = mp->context;

  if (!(reg = vl_api_client_index_to_registration (mp->client_index)))
    return;
  pool_foreach (u, sm->users)
    {
      SINGBOX_REPLY_DETAILS (VL_API_SINGBOX_SERVER_USER_DETAILS, reg, context, ({
			       clib_memcpy (
				 rmp->username, u->username,
				 clib_min (vec_len (u->username), sizeof (rmp->username) - 1));
			       rmp->password_set = vec_len (u->password) > 0;
			       rmp->auth_failures = clib_host_to_net_u64 (u->auth_failures);
			       rmp->sessions = clib_host_to_net_u64 (u->sessions);
			     }));
    }
}

static void
vl_api_singbox_server_allowed_prefix_add_del_t_handler (
  vl_api_singbox_server_allowed_prefix_add_del_t *mp)
{
  singbox_main_t *sm = &singbox_main;
  vl_api_singbox_server_allowed_prefix_add_del_reply_t *rmp;
  ip46_address_t addr;
  u8 len, is_ip4;
  int rv;

  singbox_decode_prefix (&mp->prefix, &addr, &len, &is_ip4);
  rv = singbox_allowed_prefix_add_del (mp->is_add, &addr, len, is_ip4);
  REPLY_MACRO (VL_API_SINGBOX_SERVER_ALLOWED_PREFIX_ADD_DEL_REPLY);
}

static void
vl_api_singbox_server_allowed_prefix_dump_t_handler (
  vl_api_singbox_server_allowed_prefix_dump_t *mp)
{
  singbox_main_t *sm = &singbox_main;
  vl_api_singbox_server_allowed_prefix_details_t *rmp;
  vl_api_registration_t *reg;
  singbox_prefix_t *p;

  u32 context = mp->context;

  if (!(reg = vl_api_client_index_to_registration (mp->client_index)))
    return;
  vec_foreach (p, sm->allowed_prefixes)
    {
      SINGBOX_REPLY_DETAILS (VL_API_SINGBOX_SERVER_ALLOWED_PREFIX_DETAILS, reg, context,
			     ({ singbox_encode_prefix (p, &rmp->prefix); }));
    }
}

static void
vl_api_singbox_server_get_stats_t_handler (vl_api_singbox_server_get_stats_t *mp)
{
  singbox_main_t *sm = &singbox_main;
  vl_api_singbox_server_get_stats_reply_t *rmp;
  int rv = 0;

#define _get(c) clib_host_to_net_u64 (singbox_server_counter_get (c))
  REPLY_MACRO2 (VL_API_SINGBOX_SERVER_GET_STATS_REPLY, ({
		  rmp->accepted = _get (SINGBOX_SERVER_CTR_ACCEPTED);
		  rmp->rejected = _get (SINGBOX_SERVER_CTR_REJECTED);
		  rmp->auth_failures = _get (SINGBOX_SERVER_CTR_AUTH_FAILURES);
		  rmp->connect_failures = _get (SINGBOX_SERVER_CTR_CONNECT_FAILURES);
		  rmp->bytes_to_client = _get (SINGBOX_SERVER_CTR_BYTES_TO_CLIENT);
		  rmp->bytes_from_client = _get (SINGBOX_SERVER_CTR_BYTES_FROM_CLIENT);
		  rmp->udp_dropped = _get (SINGBOX_SERVER_CTR_UDP_DROPPED);
		  rmp->active_sessions = htonl (sm->n_active);
		}));
#undef _get
}

/*
 * Client
 */

static void
vl_api_singbox_set_endpoint_t_handler (vl_api_singbox_set_endpoint_t *mp)
{
  singbox_main_t *sm = &singbox_main;
  vl_api_singbox_set_endpoint_reply_t *rmp;
  singbox_endpoint_config_t cfg = {
    .port = ntohs (mp->proxy_port),
    .protocol = mp->protocol_type,
    .username = mp->username,
    .password = mp->password,
  };
  int rv;

  SINGBOX_TERMINATE (mp->username);
  SINGBOX_TERMINATE (mp->password);
  cfg.is_ip4 = singbox_decode_address (&mp->proxy_addr, &cfg.addr);
  rv = singbox_endpoint_add ((u8 *) "default", &cfg);
  if (!rv)
    rv = singbox_set_default_endpoint ((u8 *) "default");
  clib_memset (mp->password, 0, sizeof (mp->password));
  REPLY_MACRO (VL_API_SINGBOX_SET_ENDPOINT_REPLY);
}

static void
vl_api_singbox_endpoint_add_del_t_handler (vl_api_singbox_endpoint_add_del_t *mp)
{
  singbox_main_t *sm = &singbox_main;
  vl_api_singbox_endpoint_add_del_reply_t *rmp;
  singbox_endpoint_config_t cfg = {
    .port = ntohs (mp->proxy_port),
    .protocol = mp->protocol_type,
    .username = mp->username,
    .password = mp->password,
    .priority = ntohl (mp->priority),
    .connect_timeout = ntohs (mp->connect_timeout),
    .hc_enabled = mp->health_check_enabled,
    .hc_interval = ntohs (mp->health_check_interval),
    .hc_timeout = ntohs (mp->health_check_timeout),
    .failure_threshold = mp->failure_threshold,
    .recovery_threshold = mp->recovery_threshold,
    .table_id = ntohl (mp->table_id),
  };
  int rv;

  SINGBOX_TERMINATE (mp->name);
  SINGBOX_TERMINATE (mp->username);
  SINGBOX_TERMINATE (mp->password);
  cfg.is_ip4 = singbox_decode_address (&mp->proxy_addr, &cfg.addr);
  rv = mp->is_add ? singbox_endpoint_add (mp->name, &cfg) : singbox_endpoint_del (mp->name);
  clib_memset (mp->password, 0, sizeof (mp->password));
  REPLY_MACRO (VL_API_SINGBOX_ENDPOINT_ADD_DEL_REPLY);
}

static void
vl_api_singbox_set_default_endpoint_t_handler (vl_api_singbox_set_default_endpoint_t *mp)
{
  singbox_main_t *sm = &singbox_main;
  vl_api_singbox_set_default_endpoint_reply_t *rmp;
  int rv;

  SINGBOX_TERMINATE (mp->name);
  rv = singbox_set_default_endpoint (mp->name);
  REPLY_MACRO (VL_API_SINGBOX_SET_DEFAULT_ENDPOINT_REPLY);
}

static void
vl_api_singbox_endpoint_dump_t_handler (vl_api_singbox_endpoint_dump_t *mp)
{
  singbox_main_t *sm = &singbox_main;
  vl_api_singbox_endpoint_details_t *rmp;
  vl_api_registration_t *reg;
  singbox_endpoint_t *ep;
  f64 now = vlib_time_now (vlib_get_main ());

  u32 context = mp->context;

  if (!(reg = vl_api_client_index_to_registration (mp->client_index)))
    return;
  pool_foreach (ep, sm->endpoints)
    {
      SINGBOX_REPLY_DETAILS (
	VL_API_SINGBOX_ENDPOINT_DETAILS, reg, context, ({
	  rmp->endpoint_index = htonl (ep - sm->endpoints);
	  strncpy ((char *) rmp->name, (char *) ep->name, sizeof (rmp->name) - 1);
	  singbox_encode_address (&ep->addr, ep->is_ip4, &rmp->proxy_addr);
	  rmp->proxy_port = htons (ep->port);
	  rmp->protocol_type = ep->protocol;
	  rmp->is_default = (ep - sm->endpoints) == sm->default_endpoint;
	  rmp->has_credentials = ep->username != 0;
	  if (ep->username)
	    clib_memcpy (rmp->username, ep->username,
			 clib_min (vec_len (ep->username), sizeof (rmp->username) - 1));
	  rmp->priority = htonl (ep->priority);
	  rmp->connect_timeout = htons (ep->connect_timeout);
	  rmp->health_check_enabled = ep->hc_enabled;
	  rmp->health_check_interval = htons (ep->hc_interval);
	  rmp->health_check_timeout = htons (ep->hc_timeout);
	  rmp->failure_threshold = ep->failure_threshold;
	  rmp->recovery_threshold = ep->recovery_threshold;
	  rmp->table_id = htonl (ep->table_id);
	  rmp->state = ep->state;
	  rmp->last_probe_result = ep->last_result;
	  rmp->last_change_age = htonl ((u32) (now - ep->last_change));
	  rmp->failures = clib_host_to_net_u64 (ep->failures);
	  rmp->consecutive_failures = htonl (ep->consecutive_failures);
	  rmp->rtt_us = htonl (ep->rtt_us);
	  rmp->connections = clib_host_to_net_u64 (ep->connections);
	}));
    }
}

static const char *singbox_probe_messages[] = {
  [SINGBOX_PROBE_SUCCESS] = "",
  [SINGBOX_PROBE_CONNECT_FAILED] = "TCP connection refused or reset",
  [SINGBOX_PROBE_TIMEOUT] = "no answer within the health-check timeout",
  [SINGBOX_PROBE_AUTH_FAILED] = "credentials or method refused",
  [SINGBOX_PROBE_PROTOCOL_ERROR] = "not a SOCKS5 answer",
  [SINGBOX_PROBE_NOT_RUN] = "probe could not be started",
};

static void
singbox_send_test_reply (u32 client_index, u32 context, int rv, u8 result, u32 rtt_us)
{
  singbox_main_t *sm = &singbox_main;
  vl_api_singbox_endpoint_test_reply_t *rmp;
  vl_api_registration_t *reg = vl_api_client_index_to_registration (client_index);

  if (!reg)
    return;
  rmp = vl_msg_api_alloc_zero (sizeof (*rmp));
  rmp->_vl_msg_id = htons (VL_API_SINGBOX_ENDPOINT_TEST_REPLY + sm->msg_id_base);
  rmp->context = context;
  rmp->retval = htonl (rv);
  rmp->result = result;
  rmp->rtt_us = htonl (rtt_us);
  if (result <= SINGBOX_PROBE_NOT_RUN)
    strncpy ((char *) rmp->message, singbox_probe_messages[result], sizeof (rmp->message) - 1);
  vl_api_send_msg (reg, (u8 *) rmp);
}

/* Probe finished (main thread): the deferred reply. */
static void
singbox_endpoint_test_done (void *probe)
{
  u32 client_index, context, rtt_us, ep_index;
  u8 result;

  singbox_probe_get (probe, &client_index, &context, &result, &rtt_us, &ep_index);
  singbox_send_test_reply (client_index, context, 0, result, rtt_us);
}

static void
vl_api_singbox_endpoint_test_t_handler (vl_api_singbox_endpoint_test_t *mp)
{
  singbox_endpoint_t *ep;

  SINGBOX_TERMINATE (mp->name);
  if (!(ep = singbox_endpoint_find (mp->name)))
    {
      singbox_send_test_reply (mp->client_index, mp->context, VNET_API_ERROR_NO_SUCH_ENTRY,
			       SINGBOX_PROBE_NOT_RUN, 0);
      return;
    }
  /* the reply is sent when the probe ends (singbox_endpoint_test_done) */
  if (singbox_probe_start (ep, 1, mp->client_index, mp->context) == ~0)
    singbox_send_test_reply (mp->client_index, mp->context, VNET_API_ERROR_UNSPECIFIED,
			     SINGBOX_PROBE_NOT_RUN, 0);
}

void
singbox_endpoint_send_event (u32 client_index, singbox_endpoint_t *ep)
{
  singbox_main_t *sm = &singbox_main;
  vl_api_singbox_endpoint_event_t *mp;
  vl_api_registration_t *reg = vl_api_client_index_to_registration (client_index);

  if (!reg)
    {
      singbox_want_endpoint_events (client_index, 0);
      return;
    }
  mp = vl_msg_api_alloc_zero (sizeof (*mp));
  mp->_vl_msg_id = htons (VL_API_SINGBOX_ENDPOINT_EVENT + sm->msg_id_base);
  mp->client_index = client_index;
  mp->endpoint_index = htonl (ep - sm->endpoints);
  strncpy ((char *) mp->name, (char *) ep->name, sizeof (mp->name) - 1);
  mp->state = ep->state;
  mp->result = ep->last_result;
  mp->rtt_us = htonl (ep->rtt_us);
  vl_api_send_msg (reg, (u8 *) mp);
}

static void
vl_api_want_singbox_endpoint_events_t_handler (vl_api_want_singbox_endpoint_events_t *mp)
{
  singbox_main_t *sm = &singbox_main;
  vl_api_want_singbox_endpoint_events_reply_t *rmp;
  int rv = singbox_want_endpoint_events (mp->client_index, mp->enable_disable);
  REPLY_MACRO (VL_API_WANT_SINGBOX_ENDPOINT_EVENTS_REPLY);
}

static void
vl_api_singbox_enable_disable_t_handler (vl_api_singbox_enable_disable_t *mp)
{
  singbox_main_t *sm = &singbox_main;
  vl_api_singbox_enable_disable_reply_t *rmp;
  singbox_interface_config_t cfg = {
    .proxy_port = ntohs (mp->proxy_port),
    .endpoint_name = mp->endpoint_name,
    .max_connections = ntohl (mp->max_connections),
  };
  int rv;

  VALIDATE_SW_IF_INDEX (mp);
  SINGBOX_TERMINATE (mp->endpoint_name);
  cfg.proxy_is_ip4 = singbox_decode_address (&mp->proxy_addr, &cfg.proxy_addr);
  rv = mp->enable_disable ? singbox_interface_enable (ntohl (mp->sw_if_index), &cfg) :
			    singbox_interface_disable (ntohl (mp->sw_if_index));
  BAD_SW_IF_INDEX_LABEL;
  REPLY_MACRO (VL_API_SINGBOX_ENABLE_DISABLE_REPLY);
}

static void
vl_api_singbox_interface_bypass_add_del_t_handler (vl_api_singbox_interface_bypass_add_del_t *mp)
{
  singbox_main_t *sm = &singbox_main;
  vl_api_singbox_interface_bypass_add_del_reply_t *rmp;
  ip46_address_t addr;
  u8 len, is_ip4;
  int rv;

  VALIDATE_SW_IF_INDEX (mp);
  singbox_decode_prefix (&mp->prefix, &addr, &len, &is_ip4);
  rv = singbox_interface_bypass_add_del (ntohl (mp->sw_if_index), mp->is_add, &addr, len, is_ip4);
  BAD_SW_IF_INDEX_LABEL;
  REPLY_MACRO (VL_API_SINGBOX_INTERFACE_BYPASS_ADD_DEL_REPLY);
}

static void
send_singbox_interface_details (singbox_interface_t *itf, vl_api_registration_t *reg, u32 context)
{
  singbox_main_t *sm = &singbox_main;
  vl_api_singbox_interface_details_t *rmp;
  u32 n = vec_len (itf->bypass), i;
  u8 *ep = singbox_endpoint_name (itf->endpoint_index);
  u8 *active =
    singbox_endpoint_name (itf->endpoint_index != ~0 ? itf->endpoint_index : sm->default_endpoint);
  u8 *group = singbox_group_name_of_interface (itf->sw_if_index);

  /* through a group each flow has its own member: no one active endpoint */
  if (singbox_group_of_interface (itf->sw_if_index, itf->endpoint_index) != ~0)
    active = 0;

  rmp = vl_msg_api_alloc_zero (sizeof (*rmp) + n * sizeof (rmp->bypass[0]));
  rmp->_vl_msg_id = htons (VL_API_SINGBOX_INTERFACE_DETAILS + sm->msg_id_base);
  rmp->context = context;
  rmp->sw_if_index = htonl (itf->sw_if_index);
  if (ep)
    strncpy ((char *) rmp->endpoint_name, (char *) ep, sizeof (rmp->endpoint_name) - 1);
  if (active)
    strncpy ((char *) rmp->active_endpoint_name, (char *) active,
	     sizeof (rmp->active_endpoint_name) - 1);
  if (group)
    strncpy ((char *) rmp->endpoint_group_name, (char *) group,
	     sizeof (rmp->endpoint_group_name) - 1);
  rmp->max_connections = htonl (itf->max_connections);
  rmp->active_connections = htonl (itf->active);
  rmp->total_connections = clib_host_to_net_u64 (itf->total);
  rmp->packets_redirected = clib_host_to_net_u64 (itf->packets);
  rmp->bytes_redirected = clib_host_to_net_u64 (itf->bytes);
  rmp->connection_failures = clib_host_to_net_u64 (itf->failures);
  rmp->n_bypass = n;
  for (i = 0; i < n; i++)
    singbox_encode_prefix (&itf->bypass[i], &rmp->bypass[i]);
  vl_api_send_msg (reg, (u8 *) rmp);
}

static void
vl_api_singbox_interface_dump_t_handler (vl_api_singbox_interface_dump_t *mp)
{
  singbox_main_t *sm = &singbox_main;
  vl_api_registration_t *reg;
  singbox_interface_t *itf;
  u32 sw_if_index = ntohl (mp->sw_if_index);

  u32 context = mp->context;

  if (!(reg = vl_api_client_index_to_registration (mp->client_index)))
    return;
  vec_foreach (itf, sm->interfaces)
    if (itf->enabled && (sw_if_index == ~0 || itf->sw_if_index == sw_if_index))
      send_singbox_interface_details (itf, reg, context);
}

static void
vl_api_singbox_set_timeout_t_handler (vl_api_singbox_set_timeout_t *mp)
{
  singbox_main_t *sm = &singbox_main;
  vl_api_singbox_set_timeout_reply_t *rmp;
  int rv = singbox_set_client_timeout (ntohl (mp->timeout));
  REPLY_MACRO (VL_API_SINGBOX_SET_TIMEOUT_REPLY);
}

static void
vl_api_singbox_set_pooling_t_handler (vl_api_singbox_set_pooling_t *mp)
{
  singbox_main_t *sm = &singbox_main;
  vl_api_singbox_set_pooling_reply_t *rmp;
  int rv = singbox_set_pooling (mp->enable, ntohl (mp->max_pool_size));
  REPLY_MACRO (VL_API_SINGBOX_SET_POOLING_REPLY);
}

static void
vl_api_singbox_client_dump_t_handler (vl_api_singbox_client_dump_t *mp)
{
  singbox_main_t *sm = &singbox_main;
  vl_api_singbox_client_details_t *rmp;
  vl_api_registration_t *reg;
  singbox_interface_t *itf;
  u8 *def = singbox_endpoint_name (sm->default_endpoint);
  u32 n_itf = 0;

  u32 context = mp->context;

  if (!(reg = vl_api_client_index_to_registration (mp->client_index)))
    return;
  vec_foreach (itf, sm->interfaces)
    n_itf += itf->enabled;
  SINGBOX_REPLY_DETAILS (VL_API_SINGBOX_CLIENT_DETAILS, reg, context, ({
			   if (def)
			     strncpy ((char *) rmp->default_endpoint, (char *) def,
				      sizeof (rmp->default_endpoint) - 1);
			   rmp->timeout = htonl (sm->client_timeout);
			   rmp->pooling = sm->pooling;
			   rmp->max_pool_size = htonl (sm->max_pool_size);
			   rmp->verbose = sm->log_level >= SINGBOX_LOG_DEBUG;
			   rmp->log_level = sm->log_level;
			   rmp->n_interfaces = htonl (n_itf);
			   rmp->n_endpoints = htonl (pool_elts (sm->endpoints));
			 }));
}

static void
vl_api_singbox_get_stats_t_handler (vl_api_singbox_get_stats_t *mp)
{
  singbox_main_t *sm = &singbox_main;
  vl_api_singbox_get_stats_reply_t *rmp;
  u32 sw_if_index = ntohl (mp->sw_if_index);
  u64 packets = 0, bytes = 0, failures = 0, total = 0;
  u32 active = 0;
  singbox_interface_t *itf;
  int rv = 0, found = 0;

  vec_foreach (itf, sm->interfaces)
    if (itf->enabled && (sw_if_index == ~0 || itf->sw_if_index == sw_if_index))
      {
	packets += itf->packets;
	bytes += itf->bytes;
	failures += itf->failures;
	total += itf->total;
	active += itf->active;
	found = 1;
      }
  if (!found && sw_if_index != ~0)
    rv = VNET_API_ERROR_NO_SUCH_ENTRY;
  REPLY_MACRO2 (VL_API_SINGBOX_GET_STATS_REPLY, ({
		  rmp->packets_redirected = clib_host_to_net_u64 (packets);
		  rmp->bytes_redirected = clib_host_to_net_u64 (bytes);
		  rmp->connection_failures = clib_host_to_net_u64 (failures);
		  rmp->total_connections = clib_host_to_net_u64 (total);
		  rmp->active_connections = htonl (active);
		}));
}

/*
 * Sessions
 */

static void
send_singbox_session_details (singbox_session_t *ss, vl_api_registration_t *reg, u32 context)
{
  singbox_main_t *sm = &singbox_main;
  vl_api_singbox_session_details_t *rmp;
  f64 now = vlib_time_now (vlib_get_main ());
  u64 tx, rx;

  singbox_session_bytes (ss, &tx, &rx);
  SINGBOX_REPLY_DETAILS (
    VL_API_SINGBOX_SESSION_DETAILS, reg, context, ({
      rmp->session_id = clib_host_to_net_u64 (singbox_session_id (ss));
      rmp->mode = ss->mode;
      rmp->state = ss->state;
      rmp->command = ss->cmd;
      singbox_encode_address (&ss->client_ip, ss->client_is_ip4, &rmp->client_addr);
      rmp->client_port = htons (ss->client_port);
      singbox_encode_address (&ss->dst_ip, ss->dst_is_ip4, &rmp->dst_addr);
      rmp->dst_port = htons (ss->dst_port);
      if (ss->dst.atyp == SOCKS5_ATYP_DOMAIN)
	strncpy ((char *) rmp->dst_name, (char *) ss->dst.domain, sizeof (rmp->dst_name) - 1);
      if (ss->user_index != ~0 && !pool_is_free_index (sm->users, ss->user_index))
	{
	  singbox_user_t *u = pool_elt_at_index (sm->users, ss->user_index);
	  clib_memcpy (rmp->username, u->username,
		       clib_min (vec_len (u->username), sizeof (rmp->username) - 1));
	}
      rmp->listener_index = htonl (ss->mode == SINGBOX_MODE_SERVER ? ss->listener_index : ~0);
      rmp->sw_if_index = htonl (ss->mode == SINGBOX_MODE_CLIENT ? ss->sw_if_index : ~0);
      /* a server session chained through client mode has one too */
      rmp->endpoint_index = htonl (ss->endpoint_index);
      rmp->bytes_to_client = clib_host_to_net_u64 (tx);
      rmp->bytes_from_client = clib_host_to_net_u64 (rx);
      rmp->age = htonl ((u32) (now - ss->created));
      rmp->idle = htonl ((u32) (now - ss->last_active));
    }));
}

static void
vl_api_singbox_session_dump_t_handler (vl_api_singbox_session_dump_t *mp)
{
  singbox_main_t *sm = &singbox_main;
  vl_api_registration_t *reg;
  singbox_session_t *ss;
  singbox_worker_t *wrk;

  u32 context = mp->context;

  if (!(reg = vl_api_client_index_to_registration (mp->client_index)))
    return;
  /* not mp-safe: the workers are stopped, every thread's records can be
   * read without their locks */
  SINGBOX_ASSERT_BARRIER ();
  vec_foreach (wrk, sm->workers)
    pool_foreach (ss, wrk->sessions)
      if (ss->po_handle != SESSION_INVALID_HANDLE &&
	  (mp->mode == SINGBOX_API_SESSION_MODE_ANY || mp->mode == ss->mode) &&
	  (ntohl (mp->sw_if_index) == ~0 ||
	   (ss->mode == SINGBOX_MODE_CLIENT && ss->sw_if_index == ntohl (mp->sw_if_index))))
	send_singbox_session_details (ss, reg, context);
}

static void
vl_api_singbox_session_disconnect_t_handler (vl_api_singbox_session_disconnect_t *mp)
{
  singbox_main_t *sm = &singbox_main;
  vl_api_singbox_session_disconnect_reply_t *rmp;
  int rv = singbox_session_disconnect (clib_net_to_host_u64 (mp->session_id));
  REPLY_MACRO (VL_API_SINGBOX_SESSION_DISCONNECT_REPLY);
}

#include <singbox/singbox_client_udp_api.h>
#include <singbox/singbox.api.c>

static clib_error_t *
singbox_api_hookup (vlib_main_t *vm)
{
  singbox_main_t *sm = &singbox_main;

  sm->msg_id_base = setup_message_id_table ();
  singbox_probe_set_test_reply (singbox_endpoint_test_done);
  return 0;
}

VLIB_API_INIT_FUNCTION (singbox_api_hookup);
