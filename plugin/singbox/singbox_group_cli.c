/* SPDX-License-Identifier: Apache-2.0
 * Copyright (c) 2026 vpp-singbox authors
 */

/* CLI of endpoint groups: thin, over the actions of singbox_group.c. An
 * interface is put on a group with "singbox enable <itf> endpoint-group
 * <name>" (singbox_cli.c). */

#include <singbox/singbox.h>
#include <singbox/singbox_group.h>

static clib_error_t *
singbox_group_cli_error (int rv, char *what)
{
  if (!rv)
    return 0;
  return clib_error_return (0, "%s failed: %U", what, format_vnet_api_errno, rv);
}

static uword
unformat_singbox_lb_policy (unformat_input_t *input, va_list *args)
{
  sbx_lb_policy_t *policy = va_arg (*args, sbx_lb_policy_t *);

#define _(sym, str)                                                                                \
  if (unformat (input, str))                                                                       \
    {                                                                                              \
      *policy = SBX_LB_##sym;                                                                      \
      return 1;                                                                                    \
    }
  foreach_sbx_lb_policy
#undef _
    return 0;
}

static clib_error_t *
singbox_set_endpoint_group_command_fn (vlib_main_t *vm, unformat_input_t *input,
				       vlib_cli_command_t *cmd)
{
  sbx_lb_policy_t policy = SBX_LB_WEIGHTED_ROUND_ROBIN;
  singbox_group_member_config_t *members = 0, *mc = 0;
  clib_error_t *error = 0;
  u8 *name = 0, *ep = 0;
  u32 value;
  int rv;

  if (!unformat (input, "%s", &name))
    return clib_error_return (0, "group name required");
  while (unformat_check_input (input) != UNFORMAT_END_OF_INPUT)
    {
      if (unformat (input, "policy %U", unformat_singbox_lb_policy, &policy))
	;
      else if (unformat (input, "member %s", &ep))
	{
	  vec_add1 (ep, 0);
	  vec_add2 (members, mc, 1);
	  mc->endpoint_name = ep;
	  mc->weight = 1;
	}
      else if (mc && unformat (input, "weight %u", &value))
	mc->weight = value;
      else if (mc && unformat (input, "priority %u", &value))
	mc->priority = value;
      else
	{
	  error = clib_error_return (0, "unknown input '%U'", format_unformat_error, input);
	  goto done;
	}
    }
  vec_add1 (name, 0);
  rv = singbox_group_add (name, policy, members);
  error = singbox_group_cli_error (rv, "set endpoint-group");
done:
  vec_foreach (mc, members)
    vec_free (mc->endpoint_name);
  vec_free (members);
  vec_free (name);
  return error;
}

/*?
 * Add or replace an endpoint group of client mode: new connections of the
 * interfaces using it are spread over its member endpoints by the policy
 * (default weighted-round-robin), each member with a weight (default 1) and
 * a failover priority (default 0, lower first). Members that health checks
 * have down are skipped.
 * @cliexcmd{singbox set endpoint-group pool policy least-connections member sb1 member sb2 weight
2}
?*/
VLIB_CLI_COMMAND (singbox_set_endpoint_group_command, static) = {
  .path = "singbox set endpoint-group",
  .short_help = "singbox set endpoint-group <name> [policy source-address-hash|five-tuple-hash|"
		"weighted-round-robin|least-connections] member <endpoint> [weight <n>] "
		"[priority <n>] [member ...]",
  .function = singbox_set_endpoint_group_command_fn,
};

static clib_error_t *
singbox_delete_endpoint_group_command_fn (vlib_main_t *vm, unformat_input_t *input,
					  vlib_cli_command_t *cmd)
{
  clib_error_t *error;
  u8 *name = 0;

  if (!unformat (input, "%s", &name))
    return clib_error_return (0, "group name required");
  vec_add1 (name, 0);
  error = singbox_group_cli_error (singbox_group_del (name), "delete endpoint-group");
  vec_free (name);
  return error;
}

VLIB_CLI_COMMAND (singbox_delete_endpoint_group_command, static) = {
  .path = "singbox delete endpoint-group",
  .short_help = "singbox delete endpoint-group <name>",
  .function = singbox_delete_endpoint_group_command_fn,
};

static clib_error_t *
singbox_set_default_endpoint_group_command_fn (vlib_main_t *vm, unformat_input_t *input,
					       vlib_cli_command_t *cmd)
{
  clib_error_t *error;
  u8 *name = 0;

  if (unformat (input, "none"))
    return singbox_group_cli_error (singbox_group_set_default (0), "set default-endpoint-group");
  if (!unformat (input, "%s", &name))
    return clib_error_return (0, "group name or 'none' required");
  vec_add1 (name, 0);
  error = singbox_group_cli_error (singbox_group_set_default (name), "set default-endpoint-group");
  vec_free (name);
  return error;
}

/*?
 * The group interfaces enabled without an endpoint or group of their own
 * relay through; it takes precedence over the default endpoint.
?*/
VLIB_CLI_COMMAND (singbox_set_default_endpoint_group_command, static) = {
  .path = "singbox set default-endpoint-group",
  .short_help = "singbox set default-endpoint-group <name>|none",
  .function = singbox_set_default_endpoint_group_command_fn,
};

static clib_error_t *
show_singbox_endpoint_groups_command_fn (vlib_main_t *vm, unformat_input_t *input,
					 vlib_cli_command_t *cmd)
{
  singbox_group_main_t *gm = &singbox_group_main;
  singbox_group_t *g;

  if (!pool_elts (gm->groups))
    vlib_cli_output (vm, "no endpoint groups");
  pool_foreach (g, gm->groups)
    {
      clib_spinlock_lock (&g->lock);
      vlib_cli_output (vm, "%U", format_singbox_group, g);
      clib_spinlock_unlock (&g->lock);
    }
  return 0;
}

static clib_error_t *
clear_singbox_endpoint_group_counters_command_fn (vlib_main_t *vm, unformat_input_t *input,
						  vlib_cli_command_t *cmd)
{
  singbox_group_t *g;
  u8 *name = 0;

  if (!unformat (input, "%s", &name))
    return clib_error_return (0, "group name required");
  vec_add1 (name, 0);
  g = singbox_group_find (name);
  vec_free (name);
  if (!g)
    return clib_error_return (0, "no such endpoint group");
  singbox_group_clear_counters (g);
  return 0;
}

/*?
 * Zero the connections and failures counters of one group's members (the
 * active counts are live state, not counters).
?*/
VLIB_CLI_COMMAND (clear_singbox_endpoint_group_counters_command, static) = {
  .path = "clear singbox endpoint-group counters",
  .short_help = "clear singbox endpoint-group counters <name>",
  .function = clear_singbox_endpoint_group_counters_command_fn,
};

/*?
 * Every endpoint group with its members: weight, priority, whether the
 * member takes new connections now, and its counters.
?*/
VLIB_CLI_COMMAND (show_singbox_endpoint_groups_command, static) = {
  .path = "show singbox endpoint-groups",
  .short_help = "show singbox endpoint-groups",
  .function = show_singbox_endpoint_groups_command_fn,
};
