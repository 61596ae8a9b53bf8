/* SPDX-License-Identifier: Apache-2.0
 * Copyright (c) 2026 vpp-singbox authors
 */

/* Plugin registration, configuration objects of the SOCKS5 server and the
 * process that enforces timeouts. CLI and API handlers call the actions
 * here; the session-layer side is in singbox_server.c. */

#include <crypt.h>
#include <vnet/plugin/plugin.h>
#include <vpp/app/version.h>
#include <singbox/singbox.h>

singbox_main_t singbox_main;

static const char *singbox_server_counter_names[] = {
#define _(sym, str) "/singbox/server/" str,
  foreach_singbox_server_counter
#undef _
};

int
singbox_set_log_level (u8 level)
{
  if (level > SINGBOX_LOG_DEBUG)
    return VNET_API_ERROR_INVALID_VALUE;
  singbox_main.log_level = level;
  return 0;
}

/*
 * Listeners
 */

singbox_listener_t *
singbox_listener_find (u8 *name)
{
  singbox_main_t *sm = &singbox_main;
  singbox_listener_t *l;

  pool_foreach (l, sm->listeners)
    if (!strcmp ((char *) l->name, (char *) name))
      return l;
  return 0;
}

int
singbox_listener_add_del (int is_add, u8 *name, ip46_address_t *addr, u8 is_ip4, u16 port,
			  u32 table_id, u32 *listener_index)
{
  singbox_main_t *sm = &singbox_main;
  singbox_listener_t *l, *o;
  u32 len = strnlen ((char *) name, 64);
  int rv = 0;

  if (len == 0 || len > 63)
    return VNET_API_ERROR_INVALID_VALUE;

  l = singbox_listener_find (name);
  if (!is_add)
    {
      if (!l)
	return VNET_API_ERROR_NO_SUCH_ENTRY;
      if (l->is_listening)
	singbox_server_unlisten (l);
      vec_free (l->name);
      pool_put (sm->listeners, l);
      return 0;
    }

  if (port == 0)
    return VNET_API_ERROR_INVALID_VALUE;
  if (table_id != 0 &&
      fib_table_find (is_ip4 ? FIB_PROTOCOL_IP4 : FIB_PROTOCOL_IP6, table_id) == ~0)
    return VNET_API_ERROR_NO_SUCH_FIB;

  /* (addr, port, table) must stay unique, as in the YANG model */
  pool_foreach (o, sm->listeners)
    if (o != l && o->port == port && o->table_id == table_id && o->is_ip4 == is_ip4 &&
	ip46_address_is_equal (&o->addr, addr))
      return VNET_API_ERROR_VALUE_EXIST;

  if (l)
    {
      if (l->port == port && l->table_id == table_id && l->is_ip4 == is_ip4 &&
	  ip46_address_is_equal (&l->addr, addr))
	{
	  *listener_index = l - sm->listeners;
	  return 0;
	}
      if (l->is_listening)
	singbox_server_unlisten (l);
    }
  else
    {
      pool_get_zero (sm->listeners, l);
      l->name = format (0, "%s%c", name, 0);
      l->listen_handle = SESSION_INVALID_HANDLE;
    }
  l->addr = *addr;
  l->is_ip4 = is_ip4;
  l->port = port;
  l->table_id = table_id;
  *listener_index = l - sm->listeners;

  if (sm->server_enabled)
    rv = singbox_server_listen (l);
  return rv;
}

/*
 * Users
 */

int
singbox_user_add_del (int is_add, u8 *username, u8 *password, u8 is_hash)
{
  singbox_main_t *sm = &singbox_main;
  u32 ulen = strnlen ((char *) username, 256);
  u32 plen = password ? strnlen ((char *) password, 256) : 0;
  singbox_user_t *u = 0;
  uword *p;
  u8 *key;

  if (ulen == 0 || ulen > SOCKS5_MAX_CRED_LEN)
    return VNET_API_ERROR_INVALID_VALUE;
  key = format (0, "%s", username);
  p = hash_get_mem (sm->user_by_name, key);
  if (p)
    u = pool_elt_at_index (sm->users, p[0]);

  if (!is_add)
    {
      vec_free (key);
      if (!u)
	return VNET_API_ERROR_NO_SUCH_ENTRY;
      hash_unset_mem (sm->user_by_name, u->username);
      vec_free (u->username);
      vec_free (u->password);
      vec_free (u->verified);
      pool_put (sm->users, u);
      return 0;
    }

  if (plen == 0 || plen > SOCKS5_MAX_CRED_LEN || (is_hash && password[0] != '$'))
    {
      vec_free (key);
      return VNET_API_ERROR_INVALID_VALUE;
    }

  if (!u)
    {
      pool_get_zero (sm->users, u);
      u->username = key;
      hash_set_mem (sm->user_by_name, u->username, u - sm->users);
    }
  else
    vec_free (key);
  vec_free (u->password);
  vec_free (u->verified);
  vec_add (u->password, password, plen);
  u->is_hash = is_hash;
  return 0;
}

static int
singbox_password_matches (singbox_user_t *u, u8 *password, u32 plen)
{
  struct crypt_data *cd;
  char *clear, *res;
  int ok;

  if (!u->is_hash)
    return vec_len (u->password) == plen && !clib_memcmp (u->password, password, plen);

  if (u->verified && vec_len (u->verified) == plen && !clib_memcmp (u->verified, password, plen))
    return 1;

  /* crypt_r needs C strings; the hash is stored without the NUL */
  cd = clib_mem_alloc (sizeof (*cd));
  clib_memset (cd, 0, sizeof (*cd));
  clear = (char *) format (0, "%.*s%c", plen, password, 0);
  u8 *setting = format (0, "%v%c", u->password, 0);
  res = crypt_r (clear, (char *) setting, cd);
  ok = res && res[0] != '*' && strlen (res) == vec_len (u->password) &&
       !clib_memcmp (res, u->password, vec_len (u->password));
  if (ok)
    {
      vec_free (u->verified);
      vec_add (u->verified, password, plen);
    }
  clib_memset (clear, 0, plen);
  vec_free (clear);
  vec_free (setting);
  clib_mem_free (cd);
  return ok;
}

/* Called from workers; users change only under the barrier. */
int
singbox_user_check (u8 *username, u32 ulen, u8 *password, u32 plen, u32 *user_index)
{
  singbox_main_t *sm = &singbox_main;
  singbox_user_t *u;
  u8 *key = 0;
  uword *p;
  int ok = 0;

  vec_add (key, username, ulen);
  p = hash_get_mem (sm->user_by_name, key);
  vec_free (key);
  if (!p)
    return 0;
  u = pool_elt_at_index (sm->users, p[0]);
  clib_spinlock_lock_if_init (&sm->users_lock);
  ok = singbox_password_matches (u, password, plen);
  if (ok)
    u->sessions++;
  else
    u->auth_failures++;
  clib_spinlock_unlock_if_init (&sm->users_lock);
  *user_index = p[0];
  return ok;
}

/*
 * Allowed client prefixes
 */

int
singbox_allowed_prefix_add_del (int is_add, ip46_address_t *addr, u8 len, u8 is_ip4)
{
  singbox_main_t *sm = &singbox_main;
  singbox_prefix_t *p, np = {};
  u32 i;

  if (len > (is_ip4 ? 32 : 128))
    return VNET_API_ERROR_INVALID_VALUE;
  np.addr = *addr;
  np.len = len;
  np.is_ip4 = is_ip4;
  if (is_ip4)
    ip4_address_normalize (&np.addr.ip4, len);
  else
    ip6_address_normalize (&np.addr.ip6, len);

  vec_foreach_index (i, sm->allowed_prefixes)
    {
      p = vec_elt_at_index (sm->allowed_prefixes, i);
      if (p->is_ip4 == is_ip4 && p->len == len && ip46_address_is_equal (&p->addr, &np.addr))
	{
	  if (!is_add)
	    vec_del1 (sm->allowed_prefixes, i);
	  return 0;
	}
    }
  if (!is_add)
    return VNET_API_ERROR_NO_SUCH_ENTRY;
  vec_add1 (sm->allowed_prefixes, np);
  return 0;
}

int
singbox_prefix_allowed (ip46_address_t *ip, u8 is_ip4)
{
  singbox_main_t *sm = &singbox_main;
  singbox_prefix_t *p;

  if (vec_len (sm->allowed_prefixes) == 0)
    return 1;
  vec_foreach (p, sm->allowed_prefixes)
    {
      if (p->is_ip4 != is_ip4)
	continue;
      if (is_ip4)
	{
	  ip4_address_t a = ip->ip4;
	  ip4_address_normalize (&a, p->len);
	  if (a.as_u32 == p->addr.ip4.as_u32)
	    return 1;
	}
      else
	{
	  ip6_address_t a = ip->ip6;
	  ip6_address_normalize (&a, p->len);
	  if (ip6_address_is_equal (&a, &p->addr.ip6))
	    return 1;
	}
    }
  return 0;
}

/*
 * Server switch and settings
 */

int
singbox_server_enable_disable (int enable)
{
  singbox_main_t *sm = &singbox_main;
  singbox_listener_t *l;
  int rv, first_rv = 0;

  if (enable)
    {
      if ((rv = singbox_server_attach ()))
	return rv;
      sm->server_enabled = 1;
      pool_foreach (l, sm->listeners)
	if (!l->is_listening && (rv = singbox_server_listen (l)) && !first_rv)
	  first_rv = rv;
      return first_rv;
    }

  sm->server_enabled = 0;
  pool_foreach (l, sm->listeners)
    if (l->is_listening)
      singbox_server_unlisten (l);
  singbox_server_close_all ();
  return 0;
}

int
singbox_server_set_config (u8 auth_required, u8 allow_connect, u8 allow_udp, u32 max_sessions,
			   u32 handshake_timeout, u32 idle_timeout, u32 connect_timeout,
			   u32 udp_idle_timeout, ip46_address_t *udp_public, u8 udp_public_is_ip4,
			   u8 dns_enabled, ip46_address_t *dns_server, u8 dns_server_is_ip4,
			   u16 dns_server_port)
{
  singbox_main_t *sm = &singbox_main;
  int rv = 0;

  if (handshake_timeout > 3600 || connect_timeout > 3600)
    return VNET_API_ERROR_INVALID_VALUE;

  sm->auth_required = auth_required;
  sm->allow_connect = allow_connect;
  sm->allow_udp_associate = allow_udp;
  sm->max_sessions = max_sessions;
  sm->handshake_timeout = handshake_timeout ? handshake_timeout : SINGBOX_DEFAULT_HANDSHAKE_TIMEOUT;
  sm->idle_timeout = idle_timeout;
  sm->connect_timeout = connect_timeout ? connect_timeout : SINGBOX_DEFAULT_CONNECT_TIMEOUT;
  sm->udp_idle_timeout = udp_idle_timeout ? udp_idle_timeout : SINGBOX_DEFAULT_UDP_IDLE_TIMEOUT;
  sm->udp_public_address = *udp_public;
  sm->udp_public_is_ip4 = udp_public_is_ip4;
  sm->dns_server = *dns_server;
  sm->dns_server_is_ip4 = dns_server_is_ip4;
  sm->dns_server_port = dns_server_port ? dns_server_port : 53;
  sm->dns_enabled = dns_enabled;
  if (dns_enabled)
    rv = singbox_dns_configure ();
  return rv;
}

/*
 * Counters
 */

u64
singbox_server_counter_get (singbox_server_counter_t c)
{
  return vlib_get_simple_counter (&singbox_main.server_counters[c], 0);
}

void
singbox_clear_server_counters (void)
{
  singbox_main_t *sm = &singbox_main;
  int i;

  for (i = 0; i < SINGBOX_SERVER_N_CTR; i++)
    vlib_zero_simple_counter (&sm->server_counters[i], 0);
  vlib_zero_combined_counter (&sm->udp_counters, 0);
  vlib_zero_combined_counter (&sm->udp_counters, 1);
  pool_foreach_index (i, sm->users)
    {
      sm->users[i].auth_failures = 0;
      sm->users[i].sessions = 0;
    }
}

static void
singbox_counters_init (void)
{
  singbox_main_t *sm = &singbox_main;
  int i;

  for (i = 0; i < SINGBOX_SERVER_N_CTR; i++)
    {
      sm->server_counters[i].name = (char *) singbox_server_counter_names[i];
      sm->server_counters[i].stat_segment_name = (char *) singbox_server_counter_names[i];
      vlib_validate_simple_counter (&sm->server_counters[i], 0);
      vlib_zero_simple_counter (&sm->server_counters[i], 0);
    }
  sm->active_sessions_gauge = vlib_stats_add_gauge ("/singbox/server/active-sessions");
}

/*
 * Timeouts: one process on main scans the sessions every 100 ms (deadlines)
 * and hands expired ones to their owning thread; every 0.5 s each thread
 * adds its sessions' traffic to the counters.
 */

static uword
singbox_process (vlib_main_t *vm, vlib_node_runtime_t *rt, vlib_frame_t *f)
{
  singbox_main_t *sm = &singbox_main;
  f64 now, last_scan = 0;

  while (1)
    {
      vlib_process_wait_for_event_or_clock (vm, 0.1);
      vlib_process_get_events (vm, 0);
      now = vlib_time_now (vm);
      singbox_dns_poll (now);
      singbox_probes_poll (now);
      singbox_client_pool_poll (now);
      if (now - last_scan >= 0.5)
	{
	  singbox_sessions_expire (now);
	  singbox_sessions_count_traffic ();
	  vlib_stats_set_gauge (sm->active_sessions_gauge, sm->n_active);
	  singbox_client_stats_update ();
	  last_scan = now;
	}
    }
  return 0;
}

VLIB_REGISTER_NODE (singbox_process_node) = {
  .function = singbox_process,
  .type = VLIB_NODE_TYPE_PROCESS,
  .name = "singbox-process",
};

/*
 * startup.conf: singbox { fifo-size <n> max-fifo-size <n> segment-size <n> }
 */
static clib_error_t *
singbox_config_fn (vlib_main_t *vm, unformat_input_t *input)
{
  singbox_main_t *sm = &singbox_main;
  uword tmp;

  while (unformat_check_input (input) != UNFORMAT_END_OF_INPUT)
    {
      if (unformat (input, "fifo-size %U", unformat_memory_size, &tmp))
	sm->fifo_size = tmp;
      else if (unformat (input, "max-fifo-size %U", unformat_memory_size, &tmp))
	sm->max_fifo_size = tmp;
      else if (unformat (input, "segment-size %U", unformat_memory_size, &tmp))
	sm->segment_size = tmp;
      else
	return clib_error_return (0, "unknown input '%U'", format_unformat_error, input);
    }
  return 0;
}

VLIB_CONFIG_FUNCTION (singbox_config_fn, "singbox");

static clib_error_t *
singbox_init (vlib_main_t *vm)
{
  singbox_main_t *sm = &singbox_main;

  sm->vlib_main = vm;
  sm->server_app_index = APP_INVALID_INDEX;
  sm->upstream_app_index = APP_INVALID_INDEX;
  sm->udp_app_index = APP_INVALID_INDEX;
  sm->udp_assoc_by_port = hash_create (0, sizeof (uword));
  sm->fifo_size = 64 << 10;
  sm->max_fifo_size = 4 << 20;
  sm->segment_size = 256 << 20;
  sm->allow_connect = 1;
  sm->max_sessions = SINGBOX_DEFAULT_MAX_SESSIONS;
  sm->handshake_timeout = SINGBOX_DEFAULT_HANDSHAKE_TIMEOUT;
  sm->idle_timeout = SINGBOX_DEFAULT_IDLE_TIMEOUT;
  sm->connect_timeout = SINGBOX_DEFAULT_CONNECT_TIMEOUT;
  sm->udp_idle_timeout = SINGBOX_DEFAULT_UDP_IDLE_TIMEOUT;
  sm->dns_server_port = 53;
  sm->log_level = SINGBOX_LOG_INFO;
  sm->client_timeout = SINGBOX_DEFAULT_CLIENT_TIMEOUT;
  sm->max_pool_size = SINGBOX_DEFAULT_MAX_POOL_SIZE;
  sm->user_by_name = hash_create_vec (0, sizeof (u8), sizeof (uword));
  singbox_counters_init ();
  singbox_udp_counters_init ();
  singbox_dns_init ();
  return singbox_client_init (vm);
}

VLIB_INIT_FUNCTION (singbox_init);

VLIB_PLUGIN_REGISTER () = {
  .version = SINGBOX_PLUGIN_VERSION,
  .description = "SOCKS5 server and sing-box client (singbox)",
};
