/* SPDX-License-Identifier: Apache-2.0
 * Copyright (c) 2026 vpp-singbox authors
 */

/* CLI of the product manual; every handler parses, calls the same action
 * as the binary API and reports its VNET_API_ERROR_* code. */

#include <ctype.h>
#include <singbox/singbox.h>
#include <singbox/singbox_group.h>
#include <vnet/fib/fib_table.h>

static clib_error_t *
singbox_cli_error (int rv, char *what)
{
  if (!rv)
    return 0;
  return clib_error_return (0, "%s failed: %U", what, format_vnet_api_errno, rv);
}

/* <ip4>:<port> or [<ip6>]:<port> */
static uword
unformat_singbox_endpoint (unformat_input_t *input, va_list *args)
{
  ip46_address_t *addr = va_arg (*args, ip46_address_t *);
  u8 *is_ip4 = va_arg (*args, u8 *);
  u16 *port = va_arg (*args, u16 *);
  ip46_address_t a = {};
  u32 p;
  u8 v4;

  /* write the outputs only on a match: the caller tries other tokens too */
  if (unformat (input, "%U:%u", unformat_ip4_address, &a.ip4, &p))
    v4 = 1;
  else if (unformat (input, "[%U]:%u", unformat_ip6_address, &a.ip6, &p))
    v4 = 0;
  else
    return 0;
  if (p == 0 || p > 65535)
    return 0;
  *addr = a;
  *is_ip4 = v4;
  *port = p;
  return 1;
}

/* A proxy: what unformat_singbox_endpoint takes, or <host name>:<port>
 * (*host a C string vec, else 0), the name resolved by VPP's dns plugin. */
static uword
unformat_singbox_proxy (unformat_input_t *input, va_list *args)
{
  ip46_address_t *addr = va_arg (*args, ip46_address_t *);
  u8 *is_ip4 = va_arg (*args, u8 *);
  u16 *port = va_arg (*args, u16 *);
  u8 **host = va_arg (*args, u8 **);
  u8 *name = 0, *c;
  u32 p;
  int letter = 0;

  if (unformat (input, "%U", unformat_singbox_endpoint, addr, is_ip4, port))
    {
      vec_free (*host);
      return 1;
    }
  if (!unformat (input, "%U:%u", unformat_token, "a-zA-Z0-9.-", &name, &p))
    return 0;
  vec_foreach (c, name)
    letter |= isalpha (*c);
  /* digits and dots only: a mistyped address, not a name */
  if (p == 0 || p > 65535 || !letter || vec_len (name) > 253)
    {
      vec_free (name);
      return 0;
    }
  vec_add1 (name, 0);
  vec_free (*host);
  *host = name;
  ip46_address_reset (addr);
  *is_ip4 = 0;
  *port = p;
  return 1;
}

/* Why a host name cannot be used: what to do about it. */
static clib_error_t *
singbox_cli_host_error (int rv, char *what, u8 *host)
{
  if (rv == VNET_API_ERROR_FEATURE_DISABLED)
    return clib_error_return (
      0,
      "%s failed: host names are resolved by VPP's dns plugin, which is not "
      "loaded (startup.conf: plugins { plugin dns_plugin.so { enable } }); "
      "or give the proxy's address",
      what);
  if (rv == VNET_API_ERROR_NAME_RESOLUTION_NOT_ENABLED || rv == VNET_API_ERROR_NO_NAME_SERVERS)
    return clib_error_return (0,
			      "%s failed: %s cannot be resolved: VPP's name resolution is off; "
			      "configure it first: 'dns name-server <ip>' and 'dns enable'",
			      what, host);
  return clib_error_return (0, "%s failed: %s: %U", what, host, format_vnet_api_errno, rv);
}

/*
 * Server
 */

static clib_error_t *
singbox_server_start_command_fn (vlib_main_t *vm, unformat_input_t *input, vlib_cli_command_t *cmd)
{
  unformat_input_t _line, *line = &_line;
  singbox_main_t *sm = &singbox_main;
  u8 *username = 0, *password = 0, *name = 0;
  clib_error_t *error = 0;
  ip46_address_t addr;
  u8 is_ip4 = 0, have_addr = 0;
  u16 port = 0;
  u32 table_id = 0, index;
  int rv;

  /* "singbox server start" alone has no line input: nothing to free at done */
  clib_memset (line, 0, sizeof (*line));
  if (unformat_user (input, unformat_line_input, line))
    {
      while (unformat_check_input (line) != UNFORMAT_END_OF_INPUT)
	{
	  if (unformat (line, "%U", unformat_singbox_endpoint, &addr, &is_ip4, &port))
	    have_addr = 1;
	  else if (unformat (line, "auth username %s password %s", &username, &password))
	    ;
	  else if (unformat (line, "name %s", &name))
	    ;
	  else if (unformat (line, "table %u", &table_id))
	    ;
	  else
	    {
	      error = clib_error_return (0, "unknown input '%U'", format_unformat_error, line);
	      goto done;
	    }
	}
    }

  /* all or nothing for what is wrong in the command itself: credentials
   * checked first, the listener's settings by its add (which changes nothing
   * when it refuses them), so the user is added only with a listener */
  if (username &&
      (vec_len (username) > SOCKS5_MAX_CRED_LEN || vec_len (password) > SOCKS5_MAX_CRED_LEN))
    {
      error = clib_error_return (
	0, "server start failed: username and password are at most %u bytes", SOCKS5_MAX_CRED_LEN);
      goto done;
    }
  if (have_addr)
    {
      singbox_listener_t *l;

      if (!name)
	name = format (0, "%U-%u", format_ip46_address, &addr, IP46_TYPE_ANY, port);
      vec_add1 (name, 0);
      rv = singbox_listener_add_del (1, name, &addr, is_ip4, port, table_id, &index);
      /* a running server listens at once: a listen failure keeps the
       * listener, as in the YANG model (listen/listening), reported below */
      l = singbox_listener_find (name);
      if (rv && !(l && l->port == port && ip46_address_is_equal (&l->addr, &addr)))
	{
	  error = singbox_cli_error (rv, "listener add");
	  goto done;
	}
    }
  if (username)
    {
      vec_add1 (username, 0);
      vec_add1 (password, 0);
      rv = singbox_user_add_del (1, username, password, 0);
      if ((error = singbox_cli_error (rv, "user add")))
	goto done;
      sm->auth_required = 1;
    }
  else if (have_addr)
    sm->auth_required = pool_elts (sm->users) > 0 && sm->auth_required;

  rv = singbox_server_enable_disable (1);
  if (rv && rv != VNET_API_ERROR_ADDRESS_NOT_FOUND_FOR_INTERFACE)
    {
      error = singbox_cli_error (rv, "server start");
      goto done;
    }
  /* the server runs; a listener whose address no interface has yet stays
   * configured and listens at the next start (the agent's resync does it) */
  {
    singbox_listener_t *l;
    u8 *msg = 0;

    u32 fib_index;

    pool_foreach (l, sm->listeners)
      {
	if (l->is_listening)
	  continue;
	fib_index = fib_table_find (l->is_ip4 ? FIB_PROTOCOL_IP4 : FIB_PROTOCOL_IP6, l->table_id);
	msg = format (msg, "%slistener %s is not listening: ", msg ? "; " : "", l->name);
	if (fib_index != ~0 && !ip_is_local (fib_index, &l->addr, l->is_ip4))
	  msg = format (msg, "%U is not an address of any VPP interface in table %u",
			format_ip46_address, &l->addr, IP46_TYPE_ANY, l->table_id);
	else
	  msg = format (msg, "see 'show logging'");
      }
    if (msg)
      error = clib_error_return (0,
				 "server started, but %v (it stays configured: "
				 "'singbox server start' again once the address is there)",
				 msg);
    vec_free (msg);
  }

done:
  if (password)
    clib_memset (password, 0, vec_len (password));
  vec_free (username);
  vec_free (password);
  vec_free (name);
  unformat_free (line);
  return error;
}

/*?
 * Start the SOCKS5 server, adding a listener (and a user) first if given.
 * @cliexcmd{singbox server start 0.0.0.0:1080 auth username u password p}
?*/
VLIB_CLI_COMMAND (singbox_server_start_command, static) = {
  .path = "singbox server start",
  .short_help = "singbox server start [<addr>:<port>|[<ip6>]:<port>] "
		"[auth username <u> password <p>] [name <listener>] "
		"[table <id>]",
  .function = singbox_server_start_command_fn,
};

static clib_error_t *
singbox_server_stop_command_fn (vlib_main_t *vm, unformat_input_t *input, vlib_cli_command_t *cmd)
{
  return singbox_cli_error (singbox_server_enable_disable (0), "server stop");
}

/*?
 * Stop listening and close every server session. Listeners and users stay
 * configured for the next start.
?*/
VLIB_CLI_COMMAND (singbox_server_stop_command, static) = {
  .path = "singbox server stop",
  .short_help = "singbox server stop",
  .function = singbox_server_stop_command_fn,
};

static clib_error_t *
singbox_server_listener_command_fn (vlib_main_t *vm, unformat_input_t *input,
				    vlib_cli_command_t *cmd)
{
  ip46_address_t addr = {};
  u8 *name = 0, is_ip4 = 0;
  u16 port = 0;
  u32 table_id = 0, index;
  int is_add = 1, rv;

  while (unformat_check_input (input) != UNFORMAT_END_OF_INPUT)
    {
      if (unformat (input, "add"))
	is_add = 1;
      else if (unformat (input, "del"))
	is_add = 0;
      else if (unformat (input, "name %s", &name))
	;
      else if (unformat (input, "%U", unformat_singbox_endpoint, &addr, &is_ip4, &port))
	;
      else if (unformat (input, "table %u", &table_id))
	;
      else
	return clib_error_return (0, "unknown input '%U'", format_unformat_error, input);
    }
  if (!name)
    return clib_error_return (0, "name required");
  vec_add1 (name, 0);
  rv = singbox_listener_add_del (is_add, name, &addr, is_ip4, port, table_id, &index);
  vec_free (name);
  return singbox_cli_error (rv, "listener");
}

VLIB_CLI_COMMAND (singbox_server_listener_command, static) = {
  .path = "singbox server listener",
  .short_help = "singbox server listener add|del name <name> "
		"[<addr>:<port>] [table <id>]",
  .function = singbox_server_listener_command_fn,
};

static clib_error_t *
singbox_server_user_command_fn (vlib_main_t *vm, unformat_input_t *input, vlib_cli_command_t *cmd)
{
  u8 *username = 0, *password = 0;
  int is_add = 1, is_hash = 0, rv;

  while (unformat_check_input (input) != UNFORMAT_END_OF_INPUT)
    {
      if (unformat (input, "add %s", &username))
	is_add = 1;
      else if (unformat (input, "del %s", &username))
	is_add = 0;
      else if (unformat (input, "password %s", &password))
	;
      else if (unformat (input, "hash %s", &password))
	is_hash = 1;
      else
	return clib_error_return (0, "unknown input '%U'", format_unformat_error, input);
    }
  if (!username)
    return clib_error_return (0, "username required");
  vec_add1 (username, 0);
  if (password)
    vec_add1 (password, 0);
  rv = singbox_user_add_del (is_add, username, password, is_hash);
  if (password)
    clib_memset (password, 0, vec_len (password));
  vec_free (username);
  vec_free (password);
  return singbox_cli_error (rv, "user");
}

VLIB_CLI_COMMAND (singbox_server_user_command, static) = {
  .path = "singbox server user",
  .short_help = "singbox server user add <u> password <p> | add <u> hash "
		"<crypt-hash> | del <u>",
  .function = singbox_server_user_command_fn,
};

static clib_error_t *
singbox_server_allow_command_fn (vlib_main_t *vm, unformat_input_t *input, vlib_cli_command_t *cmd)
{
  ip46_address_t addr = {};
  u32 len = 0;
  int is_add = 1, is_ip4 = 0, have = 0, rv;

  while (unformat_check_input (input) != UNFORMAT_END_OF_INPUT)
    {
      if (unformat (input, "del"))
	is_add = 0;
      else if (unformat (input, "%U/%u", unformat_ip4_address, &addr.ip4, &len))
	is_ip4 = have = 1;
      else if (unformat (input, "%U/%u", unformat_ip6_address, &addr.ip6, &len))
	have = 1;
      else
	return clib_error_return (0, "unknown input '%U'", format_unformat_error, input);
    }
  if (!have)
    return clib_error_return (0, "prefix required");
  rv = singbox_allowed_prefix_add_del (is_add, &addr, len, is_ip4);
  return singbox_cli_error (rv, "allowed prefix");
}

VLIB_CLI_COMMAND (singbox_server_allow_command, static) = {
  .path = "singbox server allow",
  .short_help = "singbox server allow [del] <prefix>",
  .function = singbox_server_allow_command_fn,
};

static clib_error_t *
singbox_server_set_command_fn (vlib_main_t *vm, unformat_input_t *input, vlib_cli_command_t *cmd)
{
  singbox_main_t *sm = &singbox_main;
  singbox_server_config_t cfg = {
    .auth_required = sm->auth_required,
    .allow_connect = sm->allow_connect,
    .allow_udp_associate = sm->allow_udp_associate,
    .max_sessions = sm->max_sessions,
    .handshake_timeout = sm->handshake_timeout,
    .idle_timeout = sm->idle_timeout,
    .connect_timeout = sm->connect_timeout,
    .udp_idle_timeout = sm->udp_idle_timeout,
    .udp_public_address = sm->udp_public_address,
    .udp_public_is_ip4 = sm->udp_public_is_ip4,
    .dns_enabled = sm->dns_enabled,
    .dns_server = sm->dns_server,
    .dns_server_is_ip4 = sm->dns_server_is_ip4,
    .dns_server_port = sm->dns_server_port,
  };
  ip4_address_t ip4;
  int rv;

  while (unformat_check_input (input) != UNFORMAT_END_OF_INPUT)
    {
      if (unformat (input, "max-sessions %u", &cfg.max_sessions))
	;
      else if (unformat (input, "handshake-timeout %u", &cfg.handshake_timeout))
	;
      else if (unformat (input, "idle-timeout %u", &cfg.idle_timeout))
	;
      else if (unformat (input, "connect-timeout %u", &cfg.connect_timeout))
	;
      else if (unformat (input, "udp-idle-timeout %u", &cfg.udp_idle_timeout))
	;
      else if (unformat (input, "auth required"))
	cfg.auth_required = 1;
      else if (unformat (input, "auth none"))
	cfg.auth_required = 0;
      else if (unformat (input, "connect enable"))
	cfg.allow_connect = 1;
      else if (unformat (input, "connect disable"))
	cfg.allow_connect = 0;
      else if (unformat (input, "udp-associate enable"))
	cfg.allow_udp_associate = 1;
      else if (unformat (input, "udp-associate disable"))
	cfg.allow_udp_associate = 0;
      else if (unformat (input, "dns disable"))
	cfg.dns_enabled = 0;
      else if (unformat (input, "dns enable"))
	cfg.dns_enabled = 1;
      /* an IPv4 address goes through ip4 so the rest of the ip46 is zeroed */
      else if (unformat (input, "name-server %U", unformat_ip4_address, &ip4))
	{
	  ip46_address_set_ip4 (&cfg.dns_server, &ip4);
	  cfg.dns_server_is_ip4 = 1;
	}
      else if (unformat (input, "name-server %U", unformat_ip6_address, &cfg.dns_server.ip6))
	cfg.dns_server_is_ip4 = 0;
      else if (unformat (input, "udp-public-address %U", unformat_ip4_address, &ip4))
	{
	  ip46_address_set_ip4 (&cfg.udp_public_address, &ip4);
	  cfg.udp_public_is_ip4 = 1;
	}
      else if (unformat (input, "udp-public-address %U", unformat_ip6_address,
			 &cfg.udp_public_address.ip6))
	cfg.udp_public_is_ip4 = 0;
      else
	return clib_error_return (0, "unknown input '%U'", format_unformat_error, input);
    }
  rv = singbox_server_set_config (&cfg);
  return singbox_cli_error (rv, "server set");
}

/*?
 * Change the server settings; options not given keep their value.
 * udp-public-address is the BND.ADDR of UDP ASSOCIATE replies to clients of
 * its address family (IPv4 or IPv6); others get the local address.
 * @cliexcmd{singbox server set udp-associate enable udp-public-address 2001:db8::1}
?*/
VLIB_CLI_COMMAND (singbox_server_set_command, static) = {
  .path = "singbox server set",
  .short_help = "singbox server set [max-sessions <n>] "
		"[handshake-timeout <s>] [idle-timeout <s>] "
		"[connect-timeout <s>] [auth required|none] "
		"[connect enable|disable] [udp-associate enable|disable] "
		"[udp-idle-timeout <s>] [udp-public-address <ip>] "
		"[dns enable|disable] [name-server <ip>]",
  .function = singbox_server_set_command_fn,
};

static clib_error_t *
singbox_server_upstream_command_fn (vlib_main_t *vm, unformat_input_t *input,
				    vlib_cli_command_t *cmd)
{
  vnet_main_t *vnm = vnet_get_main ();
  u32 sw_if_index = ~0;

  if (unformat (input, "route"))
    ;
  else if (!unformat (input, "%U", unformat_vnet_sw_interface, vnm, &sw_if_index))
    return clib_error_return (0, "expected <interface> or route, got '%U'", format_unformat_error,
			      input);
  if (unformat_check_input (input) != UNFORMAT_END_OF_INPUT)
    return clib_error_return (0, "unknown input '%U'", format_unformat_error, input);
  return singbox_cli_error (singbox_server_set_upstream (sw_if_index), "server upstream");
}

/*?
 * The proxy chain: which client-mode upstream the server's CONNECTs take.
 * "route" (the default): a destination routed out of an interface with
 * client mode enabled goes through that interface's upstream (endpoint
 * group or endpoint); others connect directly. An interface: every CONNECT
 * goes through its upstream, names unresolved. The interface's bypass
 * prefixes and the endpoints' own addresses connect directly either way.
 * @cliexcmd{singbox server upstream GigabitEthernet0/0/0}
?*/
VLIB_CLI_COMMAND (singbox_server_upstream_command, static) = {
  .path = "singbox server upstream",
  .short_help = "singbox server upstream <interface>|route",
  .function = singbox_server_upstream_command_fn,
};

static clib_error_t *
show_singbox_server_command_fn (vlib_main_t *vm, unformat_input_t *input, vlib_cli_command_t *cmd)
{
  singbox_main_t *sm = &singbox_main;
  singbox_listener_t *l;
  singbox_prefix_t *p;
  singbox_user_t *u;

  vlib_cli_output (vm, "SOCKS5 Server Status: %s", sm->server_enabled ? "Running" : "Stopped");
  pool_foreach (l, sm->listeners)
    vlib_cli_output (vm, "  Listen address: %U", format_singbox_listener, l);
  vlib_cli_output (vm, "  Authentication: %s", sm->auth_required ? "Required" : "None");
  pool_foreach (u, sm->users)
    vlib_cli_output (vm, "    user %v: sessions %lu auth-failures %lu", u->username, u->sessions,
		     u->auth_failures);
  vec_foreach (p, sm->allowed_prefixes)
    vlib_cli_output (vm, "  Allowed clients: %U/%u", format_ip46_address, &p->addr, IP46_TYPE_ANY,
		     p->len);
  vlib_cli_output (vm, "  Max sessions: %u", sm->max_sessions);
  vlib_cli_output (vm, "  Timeouts: handshake %us, connect %us, idle %us%s", sm->handshake_timeout,
		   sm->connect_timeout, sm->idle_timeout, sm->idle_timeout ? "" : " (none)");
  vlib_cli_output (vm, "  Names (ATYP 3): %s",
		   sm->server_upstream_sw_if_index != ~0 ? "resolved by the upstream" :
		   sm->dns_enabled			 ? "resolved in VPP" :
							   "refused");
  if (sm->server_upstream_sw_if_index == ~0)
    vlib_cli_output (vm, "  Upstream: by route (client-mode interfaces' upstream, else direct)");
  else
    vlib_cli_output (vm, "  Upstream: %U's client-mode upstream", format_vnet_sw_if_index_name,
		     vnet_get_main (), sm->server_upstream_sw_if_index);
  vlib_cli_output (vm, "  Connections accepted: %lu",
		   singbox_server_counter_get (SINGBOX_SERVER_CTR_ACCEPTED));
  vlib_cli_output (vm, "  Connections rejected: %lu (max-sessions %lu, prefix %lu)",
		   singbox_server_counter_get (SINGBOX_SERVER_CTR_REJECTED),
		   singbox_server_counter_get (SINGBOX_SERVER_CTR_REJECTED_MAX_SESSIONS),
		   singbox_server_counter_get (SINGBOX_SERVER_CTR_REJECTED_PREFIX));
  vlib_cli_output (vm, "  Auth failures: %lu",
		   singbox_server_counter_get (SINGBOX_SERVER_CTR_AUTH_FAILURES));
  vlib_cli_output (vm, "  Connect failures: %lu",
		   singbox_server_counter_get (SINGBOX_SERVER_CTR_CONNECT_FAILURES));
  vlib_cli_output (vm, "  Bytes forwarded: %lu (to clients %lu, from clients %lu)",
		   singbox_server_counter_get (SINGBOX_SERVER_CTR_BYTES_TO_CLIENT) +
		     singbox_server_counter_get (SINGBOX_SERVER_CTR_BYTES_FROM_CLIENT),
		   singbox_server_counter_get (SINGBOX_SERVER_CTR_BYTES_TO_CLIENT),
		   singbox_server_counter_get (SINGBOX_SERVER_CTR_BYTES_FROM_CLIENT));
  {
    vlib_counter_t from, to;
    vlib_get_combined_counter (&sm->udp_counters, 0, &from);
    vlib_get_combined_counter (&sm->udp_counters, 1, &to);
    vlib_cli_output (vm,
		     "  UDP datagrams: from clients %lu (%lu bytes), to "
		     "clients %lu (%lu bytes), dropped %lu",
		     from.packets, from.bytes, to.packets, to.bytes,
		     singbox_server_counter_get (SINGBOX_SERVER_CTR_UDP_DROPPED));
  }
  /* HTTP CONNECT on the same ports: requests taken, upstream failures answered */
  vlib_cli_output (vm, "  HTTP CONNECT: %lu requests, %lu upstream failures",
		   singbox_server_counter_get (SINGBOX_SERVER_CTR_HTTP_CONNECT),
		   singbox_server_counter_get (SINGBOX_SERVER_CTR_HTTP_CONNECT_FAILURES));
  vlib_cli_output (vm, "  Active sessions: %u", sm->n_active);
  /* all on the singbox_crypt thread, none on a VPP thread */
  vlib_cli_output (vm, "  Password hash checks: %lu", singbox_users_crypt_checks ());
  /* answers of the crypt thread that waited for a full event queue */
  vlib_cli_output (vm, "  Password answers delayed (queue full): %lu",
		   singbox_users_crypt_waits ());
  /* under the barrier (not mp-safe): every thread's pool can be read */
  SINGBOX_ASSERT_BARRIER ();
  {
    singbox_worker_t *wrk;
    u32 in_use = 0, size = 0, legs = 0, deferred = 0;
    u64 n_deferred = 0;

    vec_foreach (wrk, sm->workers)
      {
	in_use += pool_elts (wrk->sessions);
	size += pool_len (wrk->sessions);
	legs += pool_elts (wrk->legs);
	deferred += vec_len (wrk->deferred);
	n_deferred += wrk->n_rpc_deferred;
      }
    vlib_cli_output (vm, "  Session records: %u in use, pool size %u", in_use, size);
    /* singbox_session.c: upstream legs on another thread than their
     * records; messages that found a thread's event queue full */
    vlib_cli_output (vm, "  Upstream legs of other threads' records: %u", legs);
    vlib_cli_output (vm, "  Messages deferred (queue full): %lu, waiting %u", n_deferred, deferred);
    if (vec_len (sm->workers) > 1)
      vec_foreach (wrk, sm->workers)
	vlib_cli_output (vm, "    thread %u: %u in use, pool size %u", wrk - sm->workers,
			 pool_elts (wrk->sessions), pool_len (wrk->sessions));
  }
  return 0;
}

/*?
 * Show the SOCKS5 server's configuration and counters.
?*/
VLIB_CLI_COMMAND (show_singbox_server_command, static) = {
  .path = "show singbox server",
  .short_help = "show singbox server",
  .function = show_singbox_server_command_fn,
};

static clib_error_t *
show_singbox_sessions_command_fn (vlib_main_t *vm, unformat_input_t *input, vlib_cli_command_t *cmd)
{
  singbox_main_t *sm = &singbox_main;
  singbox_session_t *ss;
  u8 verbose = unformat (input, "verbose");
  singbox_worker_t *wrk;
  u32 n = 0;

  vlib_cli_output (vm, "Active Sessions:");
  /* not mp-safe: under the barrier every thread's records can be read */
  SINGBOX_ASSERT_BARRIER ();
  vec_foreach (wrk, sm->workers)
    pool_foreach (ss, wrk->sessions)
      {
	vlib_cli_output (vm, "%U", format_singbox_session, ss);
	if (verbose)
	  vlib_cli_output (vm, "  %U", format_singbox_session_legs, ss);
	n++;
      }
  vlib_cli_output (vm, "%u session(s)", n);
  return 0;
}

VLIB_CLI_COMMAND (show_singbox_sessions_command, static) = {
  .path = "show singbox sessions",
  .short_help = "show singbox sessions [verbose]",
  .function = show_singbox_sessions_command_fn,
  .is_mp_safe = 0,
};

static clib_error_t *
singbox_session_disconnect_command_fn (vlib_main_t *vm, unformat_input_t *input,
				       vlib_cli_command_t *cmd)
{
  u64 id;

  if (!unformat (input, "%lu", &id))
    return clib_error_return (0, "session id required");
  return singbox_cli_error (singbox_session_disconnect (id), "session disconnect");
}

VLIB_CLI_COMMAND (singbox_session_disconnect_command, static) = {
  .path = "singbox session disconnect",
  .short_help = "singbox session disconnect <id>",
  .function = singbox_session_disconnect_command_fn,
};

static clib_error_t *
clear_singbox_counters_command_fn (vlib_main_t *vm, unformat_input_t *input,
				   vlib_cli_command_t *cmd)
{
  singbox_clear_server_counters ();
  singbox_clear_interface_counters (~0);
  singbox_clear_endpoint_counters (0);
  singbox_group_clear_counters (0);
  return 0;
}

VLIB_CLI_COMMAND (clear_singbox_counters_command, static) = {
  .path = "clear singbox counters",
  .short_help = "clear singbox counters",
  .function = clear_singbox_counters_command_fn,
};

/*
 * Client mode
 */

static clib_error_t *
singbox_set_endpoint_command_fn (vlib_main_t *vm, unformat_input_t *input, vlib_cli_command_t *cmd)
{
  u8 *username = 0, *password = 0, *name = 0, *host = 0;
  ip46_address_t addr;
  u8 is_ip4 = 0, have = 0, protocol = SINGBOX_PROTO_SOCKS5;
  u32 priority = 0;
  u16 port;
  clib_error_t *error;
  int rv;

  while (unformat_check_input (input) != UNFORMAT_END_OF_INPUT)
    {
      if (unformat (input, "%U", unformat_singbox_proxy, &addr, &is_ip4, &port, &host))
	have = 1;
      else if (unformat (input, "priority %u", &priority))
	;
      else if (unformat (input, "socks5"))
	protocol = SINGBOX_PROTO_SOCKS5;
      else if (unformat (input, "http-connect"))
	protocol = SINGBOX_PROTO_HTTP_CONNECT;
      else if (unformat (input, "username %s password %s", &username, &password))
	;
      else if (unformat (input, "name %s", &name))
	;
      else
	{
	  vec_free (host);
	  vec_free (username);
	  vec_free (password);
	  vec_free (name);
	  return clib_error_return (0, "unknown input '%U'", format_unformat_error, input);
	}
    }
  if (!have)
    {
      vec_free (host);
      return clib_error_return (0, "<addr>:<port> or <host>:<port> required");
    }
  if (username)
    {
      vec_add1 (username, 0);
      vec_add1 (password, 0);
    }
  if (!name)
    name = format (0, "default");
  vec_add1 (name, 0);
  singbox_endpoint_config_t cfg = {
    .addr = addr,
    .is_ip4 = is_ip4,
    .host = host,
    .port = port,
    .protocol = protocol,
    .username = username,
    .password = password,
    .priority = priority,
  };
  rv = singbox_endpoint_add (name, &cfg);
  if (!rv)
    rv = singbox_set_default_endpoint (name);
  if (password)
    clib_memset (password, 0, vec_len (password));
  vec_free (username);
  vec_free (password);
  vec_free (name);
  if (rv && host && rv != VNET_API_ERROR_INVALID_VALUE)
    error = singbox_cli_host_error (rv, "set endpoint", host);
  else
    error = singbox_cli_error (rv, "set endpoint");
  vec_free (host);
  return error;
}

/*?
 * Set the default upstream endpoint of client mode: a SOCKS5 proxy, or an
 * HTTP proxy that relays through CONNECT (Basic credentials). priority is
 * the failover order (lower first) among endpoints that are not down.
 * @cliexcmd{singbox set endpoint 127.0.0.1:1080 socks5}
 * @cliexcmd{singbox set endpoint 127.0.0.1:8080 http-connect username u password p}
?*/
VLIB_CLI_COMMAND (singbox_set_endpoint_command, static) = {
  .path = "singbox set endpoint",
  .short_help = "singbox set endpoint <addr>:<port>|<host>:<port> [socks5|http-connect] "
		"[username <u> password <p>] [name <name>] [priority <n>]",
  .function = singbox_set_endpoint_command_fn,
};

static clib_error_t *
singbox_enable_command_fn (vlib_main_t *vm, unformat_input_t *input, vlib_cli_command_t *cmd)
{
  vnet_main_t *vnm = vnet_get_main ();
  u32 sw_if_index = ~0, max_conn = 0;
  ip46_address_t addr = {};
  u8 is_ip4 = 0, *ep_name = 0, *group_name = 0, *host = 0;
  u16 port = 0;
  clib_error_t *error;
  int rv;

  while (unformat_check_input (input) != UNFORMAT_END_OF_INPUT)
    {
      if (unformat (input, "proxy %U", unformat_singbox_proxy, &addr, &is_ip4, &port, &host))
	;
      else if (unformat (input, "endpoint-group %s", &group_name))
	;
      else if (unformat (input, "endpoint %s", &ep_name))
	;
      else if (unformat (input, "max-connections %u", &max_conn))
	;
      else if (unformat (input, "%U", unformat_vnet_sw_interface, vnm, &sw_if_index))
	;
      else
	{
	  error = clib_error_return (0, "unknown input '%U'", format_unformat_error, input);
	  goto done;
	}
    }
  if (sw_if_index == ~0)
    {
      error = clib_error_return (0, "interface required");
      goto done;
    }
  if (ep_name)
    vec_add1 (ep_name, 0);
  if (group_name)
    vec_add1 (group_name, 0);
  singbox_interface_config_t cfg = {
    .proxy_addr = addr,
    .proxy_is_ip4 = is_ip4,
    .proxy_host = host,
    .proxy_port = port,
    .endpoint_name = ep_name,
    .group_name = group_name,
    .max_connections = max_conn,
  };
  rv = singbox_interface_enable (sw_if_index, &cfg);
  if (rv && host && rv != VNET_API_ERROR_INVALID_VALUE &&
      (rv != VNET_API_ERROR_FEATURE_DISABLED || !singbox_main.dns_resolve_name_ptr))
    error = singbox_cli_host_error (rv, "enable", host);
  else if (rv == VNET_API_ERROR_FEATURE_DISABLED)
    error = clib_error_return (0, "enable failed: client mode needs the hsi plugin "
				  "(startup.conf: plugins { plugin hsi_plugin.so { enable } })");
  else
    error = singbox_cli_error (rv, "enable");
done:
  vec_free (ep_name);
  vec_free (group_name);
  vec_free (host);
  return error;
}

VLIB_CLI_COMMAND (singbox_enable_command, static) = {
  .path = "singbox enable",
  .short_help = "singbox enable <interface> [proxy <addr>:<port>|<host>:<port>] "
		"[endpoint <name>|endpoint-group <name>] [max-connections <n>]",
  .function = singbox_enable_command_fn,
};

static clib_error_t *
singbox_disable_command_fn (vlib_main_t *vm, unformat_input_t *input, vlib_cli_command_t *cmd)
{
  vnet_main_t *vnm = vnet_get_main ();
  u32 sw_if_index = ~0;

  if (!unformat (input, "%U", unformat_vnet_sw_interface, vnm, &sw_if_index))
    return clib_error_return (0, "interface required");
  return singbox_cli_error (singbox_interface_disable (sw_if_index), "disable");
}

VLIB_CLI_COMMAND (singbox_disable_command, static) = {
  .path = "singbox disable",
  .short_help = "singbox disable <interface>",
  .function = singbox_disable_command_fn,
};

static clib_error_t *
singbox_set_timeout_command_fn (vlib_main_t *vm, unformat_input_t *input, vlib_cli_command_t *cmd)
{
  u32 t;

  if (!unformat (input, "%u", &t))
    return clib_error_return (0, "seconds required");
  return singbox_cli_error (singbox_set_client_timeout (t), "set timeout");
}

VLIB_CLI_COMMAND (singbox_set_timeout_command, static) = {
  .path = "singbox set timeout",
  .short_help = "singbox set timeout <seconds>",
  .function = singbox_set_timeout_command_fn,
};

static clib_error_t *
singbox_set_pooling_command_fn (vlib_main_t *vm, unformat_input_t *input, vlib_cli_command_t *cmd)
{
  if (unformat (input, "enable"))
    return singbox_cli_error (singbox_set_pooling (1, 0), "set pooling");
  if (unformat (input, "disable"))
    return singbox_cli_error (singbox_set_pooling (0, 0), "set pooling");
  return clib_error_return (0, "enable|disable required");
}

VLIB_CLI_COMMAND (singbox_set_pooling_command, static) = {
  .path = "singbox set pooling",
  .short_help = "singbox set pooling enable|disable",
  .function = singbox_set_pooling_command_fn,
};

static clib_error_t *
singbox_set_max_pool_size_command_fn (vlib_main_t *vm, unformat_input_t *input,
				      vlib_cli_command_t *cmd)
{
  u32 n;

  if (!unformat (input, "%u", &n) || n == 0)
    return clib_error_return (0, "a size > 0 required");
  return singbox_cli_error (singbox_set_pooling (singbox_main.pooling, n), "set max-pool-size");
}

VLIB_CLI_COMMAND (singbox_set_max_pool_size_command, static) = {
  .path = "singbox set max-pool-size",
  .short_help = "singbox set max-pool-size <n>",
  .function = singbox_set_max_pool_size_command_fn,
};

static clib_error_t *
singbox_set_verbose_command_fn (vlib_main_t *vm, unformat_input_t *input, vlib_cli_command_t *cmd)
{
  if (unformat (input, "enable"))
    return singbox_cli_error (singbox_set_log_level (SINGBOX_LOG_DEBUG), "set verbose");
  if (unformat (input, "disable"))
    return singbox_cli_error (singbox_set_log_level (SINGBOX_LOG_INFO), "set verbose");
  return clib_error_return (0, "enable|disable required");
}

VLIB_CLI_COMMAND (singbox_set_verbose_command, static) = {
  .path = "singbox set verbose",
  .short_help = "singbox set verbose enable|disable",
  .function = singbox_set_verbose_command_fn,
};

static clib_error_t *
show_singbox_command_fn (vlib_main_t *vm, unformat_input_t *input, vlib_cli_command_t *cmd)
{
  singbox_main_t *sm = &singbox_main;
  vnet_main_t *vnm = vnet_get_main ();
  singbox_interface_t *itf;
  singbox_endpoint_t *ep;
  u32 sw_if_index = ~0;
  u8 *def;

  if (unformat (input, "%U", unformat_vnet_sw_interface, vnm, &sw_if_index))
    {
      if (!(itf = singbox_interface_get (sw_if_index)))
	return clib_error_return (0, "singbox not enabled on %U", format_vnet_sw_if_index_name, vnm,
				  sw_if_index);
      vlib_cli_output (vm, "%U", format_singbox_interface, itf);
      return 0;
    }

  def = singbox_endpoint_name (sm->default_endpoint);
  vlib_cli_output (vm, "Sing-box Global Configuration:");
  if (def)
    {
      ep = pool_elt_at_index (sm->endpoints, sm->default_endpoint);
      vlib_cli_output (vm, "  Default endpoint: %U (%s) endpoint %s",
		       format_singbox_endpoint_address, ep, singbox_endpoint_protocol_name (ep),
		       def);
    }
  else
    vlib_cli_output (vm, "  Default endpoint: none");
  vlib_cli_output (vm, "  Session timeout: %u seconds", sm->client_timeout);
  vlib_cli_output (vm, "  Connection pooling: %s (max pool size %u)",
		   sm->pooling ? "enabled" : "disabled", sm->max_pool_size);
  vlib_cli_output (vm, "  Verbose logging: %s",
		   sm->log_level >= SINGBOX_LOG_DEBUG ? "enabled" : "disabled");
  vlib_cli_output (vm, "  SOCKS5 server: %s", sm->server_enabled ? "running" : "stopped");
  pool_foreach (ep, sm->endpoints)
    vlib_cli_output (vm, "  Endpoint %U", format_singbox_endpoint, ep);
  vec_foreach (itf, sm->interfaces)
    if (itf->enabled)
      vlib_cli_output (vm, "\n%U", format_singbox_interface, itf);
  return 0;
}

/*?
 * Show client-mode configuration and counters, or one interface's.
?*/
VLIB_CLI_COMMAND (show_singbox_command, static) = {
  .path = "show singbox",
  .short_help = "show singbox [<interface>]",
  .function = show_singbox_command_fn,
};
