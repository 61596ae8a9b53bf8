/* SPDX-License-Identifier: Apache-2.0
 * Copyright (c) 2026 vpp-singbox authors
 */

/* Client mode, UDP: CLI. Thin: the actions are in singbox_client_udp.c. */

#include <singbox/singbox_client_udp.h>

static clib_error_t *
singbox_cudp_set_command_fn (vlib_main_t *vm, unformat_input_t *input, vlib_cli_command_t *cmd)
{
  unformat_input_t _line_input, *line_input = &_line_input;
  u32 sw_if_index = ~0, idle_timeout = 0, max_flows = 0;
  clib_error_t *error = 0;
  int enable = -1, rv;

  if (!unformat_user (input, unformat_line_input, line_input))
    return clib_error_return (0, "expected enable or disable and an interface");
  while (unformat_check_input (line_input) != UNFORMAT_END_OF_INPUT)
    {
      if (unformat (line_input, "%U", unformat_vnet_sw_interface, vnet_get_main (), &sw_if_index))
	;
      else if (enable < 0 && unformat (line_input, "enable"))
	enable = 1;
      else if (enable < 0 && unformat (line_input, "disable"))
	enable = 0;
      else if (unformat (line_input, "idle-timeout %u", &idle_timeout))
	;
      else if (unformat (line_input, "max-flows %u", &max_flows))
	;
      else
	{
	  error = clib_error_return (0, "unknown input '%U'", format_unformat_error, line_input);
	  goto done;
	}
    }
  if (sw_if_index == ~0 || enable < 0)
    {
      error = clib_error_return (0, "expected enable or disable and an interface");
      goto done;
    }
  rv = singbox_client_udp_enable_disable (sw_if_index, enable, idle_timeout, max_flows);
  if (rv == VNET_API_ERROR_FEATURE_DISABLED)
    error = clib_error_return (0, "client mode is not enabled on the interface");
  else if (rv)
    error = clib_error_return (0, "failed: %U", format_vnet_api_errno, rv);
done:
  unformat_free (line_input);
  return error;
}

/*?
 * Relay UDP arriving on a client-mode interface through its endpoint with
 * SOCKS5 UDP ASSOCIATE, one association per flow.
 * @cliexcmd{singbox udp enable host-eth0 idle-timeout 60 max-flows 4096}
 * @cliexcmd{singbox udp disable host-eth0}
 ?*/
VLIB_CLI_COMMAND (singbox_cudp_set_command, static) = {
  .path = "singbox udp",
  .short_help = "singbox udp {enable|disable} <interface> [idle-timeout <s>] [max-flows <n>]",
  .function = singbox_cudp_set_command_fn,
};
static clib_error_t *
singbox_cudp_show_command_fn (vlib_main_t *vm, unformat_input_t *input, vlib_cli_command_t *cmd)
{
  singbox_cudp_main_t *cm = &singbox_cudp_main;
  singbox_cudp_itf_t *citf;
  singbox_cudp_flow_t *f;
  clib_thread_index_t t;
  u8 flows = unformat (input, "flows");

  /* CLI commands run under the barrier: every thread's pool, no lock */
  SINGBOX_ASSERT_BARRIER ();
  vec_foreach (citf, cm->itfs)
    if (citf->enabled)
      vlib_cli_output (vm, "%U", format_singbox_cudp_itf, citf);
  /* with workers, where the flows live (each thread owns its client legs') */
  if (vlib_num_workers () && cm->n_enabled)
    for (t = 0; t < vec_len (cm->workers); t++)
      vlib_cli_output (vm, "  thread %u: %u flows", t, singbox_cudp_n_flows (t));
  if (!flows)
    return 0;
  for (t = 0; t < vec_len (cm->workers); t++)
    singbox_cudp_foreach_flow_of_thread (f, t)
      vlib_cli_output (vm, "%U", format_singbox_cudp_flow, f);
  return 0;
}

/*?
 * UDP relaying per interface (with workers, the flows each thread owns), and
 * with 'flows' every flow.
 * @cliexcmd{show singbox udp flows}
 ?*/
VLIB_CLI_COMMAND (singbox_cudp_show_command, static) = {
  .path = "show singbox udp",
  .short_help = "show singbox udp [flows]",
  .function = singbox_cudp_show_command_fn,
};
