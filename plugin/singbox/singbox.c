/* SPDX-License-Identifier: Apache-2.0
 * Copyright (c) 2026 vpp-singbox authors
 */

/* Plugin registration, init, startup configuration and the process that
 * drives timeouts, probes and the pool. The file map is in singbox.h. */

#include <vnet/plugin/plugin.h>
#include <vpp/app/version.h>
#include <vlib/log.h>
#include <vlib/unix/unix.h>
#include <sys/time.h>
#include <singbox/singbox.h>

singbox_main_t singbox_main;

int
singbox_set_log_level (u8 level)
{
  if (level > SINGBOX_LOG_DEBUG)
    return VNET_API_ERROR_INVALID_VALUE;
  singbox_main.log_level = level;
  return 0;
}

/*
 * Timeouts: one process on main (running without the worker barrier) asks
 * every thread each 0.5 s to expire its own sessions (deadlines, idle) and
 * to add their traffic to the counters.
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
      singbox_pool_poll (now);
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

/* Everything SINGBOX_LOG lets through goes to both: SINGBOX_LOG's gate
 * (singbox set verbose) decides, not the class's levels. */
VLIB_REGISTER_LOG_CLASS (singbox_log_class, static) = {
  .class_name = "singbox",
  .default_level = VLIB_LOG_LEVEL_DEBUG,
  .default_syslog_level = VLIB_LOG_LEVEL_DEBUG,
};

void
singbox_log (singbox_log_level_t level, char *fmt, ...)
{
  static const vlib_log_level_t levels[] = {
    [SINGBOX_LOG_ERROR] = VLIB_LOG_LEVEL_ERR,
    [SINGBOX_LOG_WARNING] = VLIB_LOG_LEVEL_WARNING,
    [SINGBOX_LOG_INFO] = VLIB_LOG_LEVEL_INFO,
    [SINGBOX_LOG_DEBUG] = VLIB_LOG_LEVEL_DEBUG,
  };
  unix_main_t *um = &unix_main;
  struct timeval tv;
  struct tm tm;
  va_list va;
  u8 *s, *l;

  va_start (va, fmt);
  s = va_format (0, fmt, &va);
  va_end (va);
  vlib_log (levels[level], singbox_log_class.class, "%v", s);
  /* VPP itself writes only the CLI's commands to its unix { log } file
   * (vlib/unix/cli.c), never vlib_log's lines; the manual's
   * "tail -f /var/log/vpp/vpp.log | grep singbox" reads that file. Same
   * line shape as VPP's, one write (O_APPEND) per line; localtime_r, not
   * format_timeval's static buffers, since workers log too. */
  if (um->log_fd > 0)
    {
      gettimeofday (&tv, 0);
      localtime_r (&tv.tv_sec, &tm);
      l = format (0, "%04d/%02d/%02d %02d:%02d:%02d:%03d[%u]: singbox: %v\n", tm.tm_year + 1900,
		  tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
		  (int) (tv.tv_usec / 1000), vlib_get_thread_index (), s);
      int rv __attribute__ ((unused)) = write (um->log_fd, l, vec_len (l));
      vec_free (l);
    }
  vec_free (s);
}

static clib_error_t *
singbox_init (vlib_main_t *vm)
{
  singbox_main_t *sm = &singbox_main;
  u32 n_threads;

  sm->vlib_main = vm;
  /* the configured threads: the workers are not started yet, so
   * vlib_get_n_threads () would say 1 */
  n_threads = vlib_get_thread_main ()->n_vlib_mains;
  if (n_threads > SINGBOX_SESSION_MAX_THREADS)
    return clib_error_return (0, "singbox: at most %u threads", SINGBOX_SESSION_MAX_THREADS);
  vec_validate_aligned (sm->workers, n_threads - 1, CLIB_CACHE_LINE_BYTES);
  /* the session pools have no lock: each thread its own (singbox.h) */
  if (vlib_num_workers ())
    {
      clib_spinlock_init (&sm->pool_lock);
      clib_spinlock_init (&sm->udp_lock);
    }
  singbox_probe_init ();
  sm->upstream_app_index = APP_INVALID_INDEX;
  sm->udp_app_index = APP_INVALID_INDEX;
  sm->udp_assoc_by_port = hash_create (0, sizeof (uword));
  sm->fifo_size = 64 << 10;
  sm->max_fifo_size = 4 << 20;
  sm->segment_size = 256 << 20;
  sm->log_level = SINGBOX_LOG_INFO;
  sm->client_timeout = SINGBOX_DEFAULT_CLIENT_TIMEOUT;
  sm->max_pool_size = SINGBOX_DEFAULT_MAX_POOL_SIZE;
  singbox_users_init ();
  singbox_server_init ();
  singbox_udp_counters_init ();
  singbox_dns_init ();
  singbox_endpoint_init (vm);
  return singbox_client_init (vm);
}

VLIB_INIT_FUNCTION (singbox_init);

VLIB_PLUGIN_REGISTER () = {
  .version = SINGBOX_PLUGIN_VERSION,
  .description = "SOCKS5 server and sing-box client (singbox)",
};
