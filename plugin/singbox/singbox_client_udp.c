/* SPDX-License-Identifier: Apache-2.0
 * Copyright (c) 2026 vpp-singbox authors
 */

/* Client mode, UDP (RFC 1928 section 7, client side): the flow table,
 * per-interface settings and counters, timeouts, teardown.
 *
 * The concern's files:
 *   singbox_client_udp_node.c   interception: singbox-cudp4/6-in, -hold
 *   singbox_client_udp_assoc.c  the association and the legs' callbacks
 *   singbox_client_udp.c        flows (per-thread pools), interfaces, expiry
 *   singbox_client_udp_api.c, singbox_client_udp_cli.c  API and CLI handlers
 *
 * Threads: a flow has three legs, a connected UDP session from the client
 * (the client leg), a TCP control connection and a connected UDP session to
 * the proxy's BND (the relay leg). Its record lives in the pool of the
 * thread of its client leg, the owner: udp-input makes that session on the
 * thread whose rx queue took the flow's first datagram and never moves it
 * (READY), and the flow's later datagrams from the client come to it there
 * (one that lands on another thread, which udp-input would drop, is handed
 * to the owner by singbox-cudp*-in, see singbox_client_udp_node.c). The
 * other two legs are where VPP puts them: the control connection on the
 * worker whose rx queue takes the endpoint's SYN-ACK, the relay leg on the
 * connects thread and, from its first reply on, on the worker that receives
 * the replies; which thread that is is not known when the flow starts, so no
 * other choice of owner keeps every leg at home. The handle, owner << 24 |
 * index as for TCP sessions, is the opaque of all three legs (and, with a
 * few generation bits, the connects' context). The record is touched on
 * the owner only (main too, under the barrier): no lock. The other legs'
 * callbacks tell the owner by message, and the relay leg relays the proxy's
 * replies from a side context on its own thread
 * (singbox_client_udp_assoc.c). Ending a flow closes each leg by an RPC to
 * that leg's thread; expiry runs on each thread for its own flows (an RPC
 * from singbox-cudp-process); dumps, the CLI and turning an interface off
 * walk every thread's pool under the barrier. Interface counters are VPP's
 * per-thread counters; `active` is atomic. */

#include <singbox/singbox_client_udp.h>
#include <singbox/singbox_group.h>
#include <vnet/ip/reass/ip4_full_reass.h>
#include <vnet/ip/reass/ip6_full_reass.h>
#include <vnet/feature/feature.h>

/* A connect's api_context (32 bits) names the flow: owner thread (7 bits),
 * 5 generation bits, and the index (20 bits: a thread holds at most 2^20
 * flows at once, far more than the fifos of so many would leave memory
 * for). */
#define SINGBOX_CUDP_CTX_INDEX_BITS   20
#define SINGBOX_CUDP_CTX_GEN_BITS     5
#define SINGBOX_CUDP_CTX_INDEX_MASK   ((1 << SINGBOX_CUDP_CTX_INDEX_BITS) - 1)
#define SINGBOX_CUDP_CTX_GEN_MASK     ((1 << SINGBOX_CUDP_CTX_GEN_BITS) - 1)
#define SINGBOX_CUDP_CTX_THREAD_SHIFT (SINGBOX_CUDP_CTX_INDEX_BITS + SINGBOX_CUDP_CTX_GEN_BITS)

singbox_cudp_main_t singbox_cudp_main;

singbox_cudp_itf_t *
singbox_client_udp_itf_get (u32 sw_if_index)
{
  singbox_cudp_main_t *cm = &singbox_cudp_main;

  if (sw_if_index >= vec_len (cm->itfs) || !cm->itfs[sw_if_index].enabled)
    return 0;
  return vec_elt_at_index (cm->itfs, sw_if_index);
}

/*
 * The flow table: one pool per thread
 */

/* A new record in this thread's pool, or 0 when the pool is full. */
singbox_cudp_flow_t *
singbox_cudp_flow_alloc (void)
{
  clib_thread_index_t thread = vlib_get_thread_index ();
  singbox_cudp_worker_t *wrk = singbox_cudp_worker_get (thread);
  singbox_cudp_flow_t *f;
  u32 index;

  pool_get_zero (wrk->flows, f);
  index = f - wrk->flows;
  if (index > SINGBOX_CUDP_CTX_INDEX_MASK)
    {
      pool_put (wrk->flows, f);
      return 0;
    }
  f->handle = singbox_session_handle_make (thread, index);
  f->generation = ++wrk->generation;
  return f;
}

/* The record of a handle that may be stale, or 0; on its owner thread (or
 * under the barrier). */
singbox_cudp_flow_t *
singbox_cudp_flow_get_if_valid (u32 handle)
{
  clib_thread_index_t t = singbox_cudp_handle_thread (handle);
  singbox_cudp_worker_t *wrk;
  u32 index = handle & SINGBOX_SESSION_INDEX_MASK;

  if (t >= vec_len (singbox_cudp_main.workers) || (handle & SINGBOX_LEG_HANDLE_FLAG))
    return 0;
  SINGBOX_ASSERT_OWNER (handle);
  wrk = singbox_cudp_worker_get (t);
  if (pool_is_free_index (wrk->flows, index))
    return 0;
  return pool_elt_at_index (wrk->flows, index);
}

u32
singbox_cudp_ctx (singbox_cudp_flow_t *f)
{
  return (singbox_cudp_handle_thread (f->handle) << SINGBOX_CUDP_CTX_THREAD_SHIFT) |
	 ((f->generation & SINGBOX_CUDP_CTX_GEN_MASK) << SINGBOX_CUDP_CTX_INDEX_BITS) |
	 (f->handle & SINGBOX_CUDP_CTX_INDEX_MASK);
}

/* The handle a context names (its thread is the owner). */
u32
singbox_cudp_ctx_handle (u32 ctx)
{
  return singbox_session_handle_make (ctx >> SINGBOX_CUDP_CTX_THREAD_SHIFT,
				      ctx & SINGBOX_CUDP_CTX_INDEX_MASK);
}

/* On the owner: the flow a context names, if it still exists. */
singbox_cudp_flow_t *
singbox_cudp_flow_from_ctx (u32 ctx)
{
  singbox_cudp_flow_t *f = singbox_cudp_flow_get_if_valid (singbox_cudp_ctx_handle (ctx));

  if (!f || (f->generation & SINGBOX_CUDP_CTX_GEN_MASK) !=
	      ((ctx >> SINGBOX_CUDP_CTX_INDEX_BITS) & SINGBOX_CUDP_CTX_GEN_MASK))
    return 0;
  return f;
}

/* Flows in thread's pool (`show singbox udp`): under the barrier. */
u32
singbox_cudp_n_flows (clib_thread_index_t thread)
{
  return pool_elts (singbox_cudp_worker_get (thread)->flows);
}

/*
 * Teardown
 */

/* On the session's thread. The handle is checked to still be one of ours:
 * the session may have gone meanwhile. */
static void
singbox_cudp_disconnect_rpc (void *arg)
{
  singbox_cudp_main_t *cm = &singbox_cudp_main;
  session_handle_t h = pointer_to_uword (arg);
  session_t *s = session_get_from_handle_if_valid (h);
  vnet_disconnect_args_t a = { .handle = h };
  app_worker_t *wrk;

  SINGBOX_ASSERT_THREAD (session_thread_from_handle (h));
  if (!s || s->session_state >= SESSION_STATE_APP_CLOSED ||
      !(wrk = app_worker_get_if_valid (s->app_wrk_index)) ||
      (wrk->app_index != cm->intercept_app_index && wrk->app_index != cm->ctl_app_index &&
       wrk->app_index != cm->relay_app_index))
    return;
  a.app_index = wrk->app_index;
  vnet_disconnect_session (&a);
}

/* A leg is closed on its own thread. */
void
singbox_cudp_disconnect (session_handle_t h)
{
  if (h == SESSION_INVALID_HANDLE)
    return;
  singbox_rpc (session_thread_from_handle (h), singbox_cudp_disconnect_rpc,
	       uword_to_pointer (h, void *));
}

/* On the owner (or under the barrier): end the flow, close its legs, free
 * its record. A relay leg with a side context is closed by its own thread,
 * which writes the client leg's tx fifo until then: that thread closes the
 * client leg too, once it no longer does (singbox_cudp_relay_end). */
void
singbox_cudp_close (singbox_cudp_flow_t *f, int failed)
{
  singbox_cudp_main_t *cm = &singbox_cudp_main;
  singbox_cudp_worker_t *wrk = singbox_cudp_worker_get (singbox_cudp_handle_thread (f->handle));
  u8 **d;

  SINGBOX_ASSERT_OWNER (f->handle);
  if (failed)
    singbox_cudp_count (SINGBOX_CUDP_CTR_FAILURES, f->sw_if_index, 1);
  singbox_group_release (f->group_index, f->endpoint_index);
  if (f->sw_if_index < vec_len (cm->itfs) && cm->itfs[f->sw_if_index].active)
    clib_atomic_fetch_sub (&cm->itfs[f->sw_if_index].active, 1);
  singbox_cudp_disconnect (f->ctl_handle);
  if (f->relay_set_up)
    singbox_cudp_relay_end (f);
  else
    {
      singbox_cudp_disconnect (f->relay_handle);
      singbox_cudp_disconnect (f->c_handle);
    }
  vec_foreach (d, f->pending)
    vec_free (*d);
  vec_free (f->pending);
  vec_free (f->to_relay);
  if (f->cproto)
    {
      clib_memset (f->cproto, 0, sizeof (*f->cproto)); /* it holds the password */
      clib_mem_free (f->cproto);
    }
  pool_put (wrk->flows, f);
}

/*
 * Expiry: each thread its own flows
 */

/* Idle flows and associations not up in time, of this thread's pool. */
static void
singbox_cudp_expire_rpc (void *arg)
{
  clib_thread_index_t thread = vlib_get_thread_index ();
  singbox_cudp_main_t *cm = &singbox_cudp_main;
  singbox_main_t *sm = &singbox_main;
  f64 now = vlib_time_now (vlib_get_main ());
  singbox_cudp_flow_t *f;
  singbox_cudp_itf_t *citf;
  u32 *expired = 0, *i, timeout;

  /* what this thread's relay legs relayed since, to their owners, first:
   * a flow idle on its client's side may be busy on the proxy's */
  singbox_cudp_relays_tell ();
  singbox_cudp_foreach_flow_of_thread (f, thread)
  {
    citf = f->sw_if_index < vec_len (cm->itfs) ? &cm->itfs[f->sw_if_index] : 0;
    timeout = citf && citf->idle_timeout ? citf->idle_timeout : SINGBOX_CUDP_DEFAULT_IDLE_TIMEOUT;
    if (f->state != SINGBOX_CUDP_STATE_ASSOCIATED)
      timeout = pool_is_free_index (sm->endpoints, f->endpoint_index) ?
		  SINGBOX_DEFAULT_CONNECT_TIMEOUT :
		  pool_elt_at_index (sm->endpoints, f->endpoint_index)->connect_timeout;
    if (now - (f->state == SINGBOX_CUDP_STATE_ASSOCIATED ? f->last_active : f->created) > timeout)
      vec_add1 (expired, f->handle);
  }
  vec_foreach (i, expired)
    {
      f = singbox_cudp_flow_get_if_valid (*i);
      singbox_cudp_close (f, f->state != SINGBOX_CUDP_STATE_ASSOCIATED);
    }
  vec_free (expired);
}

/* singbox-cudp-process (main, no barrier): every thread expires its own
 * flows; the gauges. */
static void
singbox_cudp_poll (void)
{
  singbox_cudp_main_t *cm = &singbox_cudp_main;
  singbox_cudp_itf_t *citf;
  clib_thread_index_t t;

  SINGBOX_ASSERT_THREAD (0);
  singbox_cudp_expire_rpc (0);
  for (t = 1; t < vec_len (cm->workers); t++)
    singbox_rpc (t, singbox_cudp_expire_rpc, 0);
  vec_foreach (citf, cm->itfs)
    if (citf->enabled && citf->stat_active != ~0)
      vlib_stats_set_gauge (citf->stat_active, citf->active);
}

static uword
singbox_cudp_process (vlib_main_t *vm, vlib_node_runtime_t *rt, vlib_frame_t *f)
{
  while (1)
    {
      vlib_process_wait_for_event_or_clock (vm, 1.0);
      vlib_process_get_events (vm, 0);
      /* flows exist only on an enabled interface (turning it off ends
       * them), and then the session layer is up for the RPCs */
      if (singbox_cudp_main.n_enabled)
	singbox_cudp_poll ();
    }
  return 0;
}

VLIB_REGISTER_NODE (singbox_cudp_process_node) = {
  .function = singbox_cudp_process,
  .type = VLIB_NODE_TYPE_PROCESS,
  .name = "singbox-cudp-process",
};

/*
 * Configuration
 */

/* Under the barrier: the interface's flows on every thread end. */
static void
singbox_cudp_close_interface (u32 sw_if_index)
{
  singbox_cudp_main_t *cm = &singbox_cudp_main;
  singbox_cudp_flow_t *f;
  u32 *ids = 0, *i;
  clib_thread_index_t t;

  SINGBOX_ASSERT_BARRIER ();
  for (t = 0; t < vec_len (cm->workers); t++)
    singbox_cudp_foreach_flow_of_thread (f, t) if (f->sw_if_index == sw_if_index)
      vec_add1 (ids, f->handle);
  vec_foreach (i, ids)
    singbox_cudp_close (singbox_cudp_flow_get_if_valid (*i), 0);
  vec_free (ids);
}

/* Main thread, under the barrier (API and CLI handlers, client mode's
 * interface disable). */
int
singbox_client_udp_enable_disable (u32 sw_if_index, int enable, u32 idle_timeout, u32 max_flows)
{
  singbox_cudp_main_t *cm = &singbox_cudp_main;
  singbox_cudp_itf_t *citf;
  int rv;

  SINGBOX_ASSERT_BARRIER ();
  if (!vnet_sw_interface_is_valid (vnet_get_main (), sw_if_index))
    return VNET_API_ERROR_INVALID_SW_IF_INDEX;
  if (!enable)
    {
      if (!(citf = singbox_client_udp_itf_get (sw_if_index)))
	return VNET_API_ERROR_NO_SUCH_ENTRY;
      singbox_cudp_close_interface (sw_if_index);
      vnet_feature_enable_disable ("ip4-unicast", "singbox-cudp4-in", sw_if_index, 0, 0, 0);
      vnet_feature_enable_disable ("ip6-unicast", "singbox-cudp6-in", sw_if_index, 0, 0, 0);
      ip4_full_reass_enable_disable_with_refcnt (sw_if_index, 0);
      ip6_full_reass_enable_disable_with_refcnt (sw_if_index, 0);
      if (citf->stat_active != ~0)
	vlib_stats_remove_entry (citf->stat_active);
      citf->stat_active = ~0;
      citf->enabled = 0;
      cm->n_enabled--;
      return 0;
    }
  /* UDP is relayed through the interface's client-mode endpoint */
  if (!singbox_interface_get (sw_if_index))
    return VNET_API_ERROR_FEATURE_DISABLED;
  if (idle_timeout > 86400 || max_flows > 1000000)
    return VNET_API_ERROR_INVALID_VALUE;
  if ((rv = singbox_cudp_start ()))
    return rv;
  vec_validate (cm->itfs, sw_if_index);
  citf = vec_elt_at_index (cm->itfs, sw_if_index);
  if (!citf->enabled)
    {
      u32 c;
      for (c = 0; c < SINGBOX_CUDP_N_CTR; c++)
	{
	  vlib_validate_simple_counter (&cm->counters[c], sw_if_index);
	  vlib_zero_simple_counter (&cm->counters[c], sw_if_index);
	}
      vlib_validate_combined_counter (&cm->to_proxy, sw_if_index);
      vlib_validate_combined_counter (&cm->from_proxy, sw_if_index);
      vlib_zero_combined_counter (&cm->to_proxy, sw_if_index);
      vlib_zero_combined_counter (&cm->from_proxy, sw_if_index);
      clib_memset (citf, 0, sizeof (*citf));
      citf->sw_if_index = sw_if_index;
      citf->stat_active =
	vlib_stats_add_gauge ("/singbox/client/interface/%u/udp-active", sw_if_index);
      /* a datagram in fragments is reassembled before singbox-cudp*-in
       * sees it (its feature runs after the reassembly's): passed on, the
       * fragments would reach the destination around the proxy */
      ip4_full_reass_enable_disable_with_refcnt (sw_if_index, 1);
      ip6_full_reass_enable_disable_with_refcnt (sw_if_index, 1);
      vnet_feature_enable_disable ("ip4-unicast", "singbox-cudp4-in", sw_if_index, 1, 0, 0);
      vnet_feature_enable_disable ("ip6-unicast", "singbox-cudp6-in", sw_if_index, 1, 0, 0);
      citf->enabled = 1;
      cm->n_enabled++;
    }
  citf->idle_timeout = idle_timeout ? idle_timeout : SINGBOX_CUDP_DEFAULT_IDLE_TIMEOUT;
  citf->max_flows = max_flows ? max_flows : SINGBOX_CUDP_DEFAULT_MAX_FLOWS;
  return 0;
}

void
singbox_client_udp_interface_disable (u32 sw_if_index)
{
  if (singbox_client_udp_itf_get (sw_if_index))
    singbox_client_udp_enable_disable (sw_if_index, 0, 0, 0);
}

/*
 * Counters: VPP's per-thread counters, summed for the readers
 */

u64
singbox_cudp_itf_counter (singbox_cudp_itf_t *citf, singbox_cudp_counter_t c)
{
  return vlib_get_simple_counter (&singbox_cudp_main.counters[c], citf->sw_if_index);
}

void
singbox_cudp_itf_traffic (singbox_cudp_itf_t *citf, vlib_counter_t *to_proxy,
			  vlib_counter_t *from_proxy)
{
  vlib_get_combined_counter (&singbox_cudp_main.to_proxy, citf->sw_if_index, to_proxy);
  vlib_get_combined_counter (&singbox_cudp_main.from_proxy, citf->sw_if_index, from_proxy);
}

void
singbox_client_udp_clear_counters (u32 sw_if_index)
{
  singbox_cudp_main_t *cm = &singbox_cudp_main;
  singbox_cudp_itf_t *citf;
  u32 c;

  vec_foreach (citf, cm->itfs)
    if (citf->enabled && (sw_if_index == ~0 || citf->sw_if_index == sw_if_index))
      {
	for (c = 0; c < SINGBOX_CUDP_N_CTR; c++)
	  vlib_zero_simple_counter (&cm->counters[c], citf->sw_if_index);
	vlib_zero_combined_counter (&cm->to_proxy, citf->sw_if_index);
	vlib_zero_combined_counter (&cm->from_proxy, citf->sw_if_index);
      }
}

static const char *singbox_cudp_state_names[] = {
#define _(sym, str) str,
  foreach_singbox_cudp_state
#undef _
};

u8 *
format_singbox_cudp_itf (u8 *s, va_list *args)
{
  singbox_cudp_itf_t *citf = va_arg (*args, singbox_cudp_itf_t *);
  vlib_counter_t to, from;

  singbox_cudp_itf_traffic (citf, &to, &from);
  s = format (s, "Interface %U UDP:\n", format_vnet_sw_if_index_name, vnet_get_main (),
	      citf->sw_if_index);
  s = format (s, "  Idle timeout: %us, max flows: %u\n", citf->idle_timeout, citf->max_flows);
  s = format (s, "  Active flows: %u\n", citf->active);
  s = format (s, "  Flows: %lu, failures: %lu, dropped: %lu\n",
	      singbox_cudp_itf_counter (citf, SINGBOX_CUDP_CTR_FLOWS),
	      singbox_cudp_itf_counter (citf, SINGBOX_CUDP_CTR_FAILURES),
	      singbox_cudp_itf_counter (citf, SINGBOX_CUDP_CTR_DROPPED));
  s = format (s, "  To proxy: %lu packets, %lu bytes\n", to.packets, to.bytes);
  s = format (s, "  From proxy: %lu packets, %lu bytes\n", from.packets, from.bytes);
  return s;
}

u8 *
format_singbox_cudp_flow (u8 *s, va_list *args)
{
  singbox_cudp_flow_t *f = va_arg (*args, singbox_cudp_flow_t *);
  f64 now = vlib_time_now (vlib_get_main ()), last_active;
  u64 packets, bytes;

  singbox_cudp_flow_from_proxy (f, &packets, &bytes, &last_active);
  s = format (s, "[%u] %U:%u -> %U:%u %s", f->handle, format_ip46_address, &f->client_ip,
	      IP46_TYPE_ANY, f->client_port, format_ip46_address, &f->dst_ip, IP46_TYPE_ANY,
	      f->dst_port, singbox_cudp_state_names[f->state % SINGBOX_CUDP_N_STATE]);
  if (f->state == SINGBOX_CUDP_STATE_ASSOCIATED)
    s = format (s, " relay :%u -> %U:%u", f->relay_lcl_port, format_ip46_address, &f->relay_ip,
		IP46_TYPE_ANY, f->relay_port);
  s = format (s, " to-proxy %lu/%lu from-proxy %lu/%lu idle %.1fs", f->packets_to_proxy,
	      f->bytes_to_proxy, packets, bytes, now - last_active);
  if (vlib_num_workers ())
    s = format (s, " thread %u", singbox_cudp_handle_thread (f->handle));
  return s;
}

/*
 * Init
 */

static clib_error_t *
singbox_cudp_init (vlib_main_t *vm)
{
  singbox_cudp_main_t *cm = &singbox_cudp_main;
  static char *names[] = {
#define _(sym, str) "/singbox/client/interface/" str,
    foreach_singbox_cudp_counter
#undef _
  };
  singbox_cudp_worker_t *wrk;
  u32 c, n_threads;

  /* the configured threads (the workers are not started yet); singbox.c
   * refuses more than the handles can name */
  n_threads = vlib_get_thread_main ()->n_vlib_mains;
  vec_validate_aligned (cm->workers, n_threads - 1, CLIB_CACHE_LINE_BYTES);
  vec_foreach (wrk, cm->workers)
    wrk->relay_by_flow = hash_create (0, sizeof (uword));
  cm->intercept_app_index = cm->ctl_app_index = cm->relay_app_index = APP_INVALID_INDEX;
  cm->intercept_listen[0] = cm->intercept_listen[1] = SESSION_INVALID_HANDLE;
  cm->fq_index[0] = cm->fq_index[1] = ~0;
  for (c = 0; c < SINGBOX_CUDP_N_CTR; c++)
    {
      cm->counters[c].name = names[c] + strlen ("/singbox/client/interface/");
      cm->counters[c].stat_segment_name = names[c];
      vlib_validate_simple_counter (&cm->counters[c], 0);
    }
  cm->to_proxy.name = "udp-to-proxy";
  cm->to_proxy.stat_segment_name = "/singbox/client/interface/udp-to-proxy";
  cm->from_proxy.name = "udp-from-proxy";
  cm->from_proxy.stat_segment_name = "/singbox/client/interface/udp-from-proxy";
  vlib_validate_combined_counter (&cm->to_proxy, 0);
  vlib_validate_combined_counter (&cm->from_proxy, 0);
  return 0;
}

VLIB_INIT_FUNCTION (singbox_cudp_init);
