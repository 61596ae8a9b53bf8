/* SPDX-License-Identifier: Apache-2.0
 * Copyright (c) 2026 vpp-singbox authors
 */

/* Client mode, UDP: binary API handlers (the generated table in
 * singbox_api.c names them, singbox_client_udp_api.h declares them). Thin:
 * the actions are in singbox_client_udp.c. VPP runs them on main under the
 * barrier (they are not mp-safe), so the dumps walk every thread's pool
 * without locks. */

#include <singbox/singbox_client_udp.h>
#include <vnet/ip/ip_types_api.h>
#include <vnet/format_fns.h>
#include <vlibapi/api.h>
#include <vlibmemory/api.h>

#include <singbox/singbox.api_enum.h>
#include <singbox/singbox.api_types.h>
#include <singbox/singbox_client_udp_api.h>

#define REPLY_MSG_ID_BASE singbox_main.msg_id_base
#include <vlibapi/api_helper_macros.h>

void
vl_api_singbox_interface_udp_enable_disable_t_handler (
  vl_api_singbox_interface_udp_enable_disable_t *mp)
{
  vl_api_singbox_interface_udp_enable_disable_reply_t *rmp;
  int rv;

  rv = singbox_client_udp_enable_disable (ntohl (mp->sw_if_index), mp->enable,
					  ntohl (mp->idle_timeout), ntohl (mp->max_flows));
  REPLY_MACRO (VL_API_SINGBOX_INTERFACE_UDP_ENABLE_DISABLE_REPLY);
}

static void
singbox_cudp_send_itf_details (vl_api_registration_t *rp, u32 context, singbox_cudp_itf_t *citf)
{
  vl_api_singbox_interface_udp_details_t *rmp = vl_msg_api_alloc_zero (sizeof (*rmp));
  vlib_counter_t to, from;

  /* each thread counts in its own slot: the sums */
  singbox_cudp_itf_traffic (citf, &to, &from);

  rmp->_vl_msg_id = htons (VL_API_SINGBOX_INTERFACE_UDP_DETAILS + REPLY_MSG_ID_BASE);
  rmp->context = context;
  rmp->sw_if_index = htonl (citf->sw_if_index);
  rmp->idle_timeout = htonl (citf->idle_timeout);
  rmp->max_flows = htonl (citf->max_flows);
  rmp->active_flows = htonl (citf->active);
  rmp->flows = clib_host_to_net_u64 (singbox_cudp_itf_counter (citf, SINGBOX_CUDP_CTR_FLOWS));
  rmp->failures = clib_host_to_net_u64 (singbox_cudp_itf_counter (citf, SINGBOX_CUDP_CTR_FAILURES));
  rmp->dropped = clib_host_to_net_u64 (singbox_cudp_itf_counter (citf, SINGBOX_CUDP_CTR_DROPPED));
  rmp->packets_to_proxy = clib_host_to_net_u64 (to.packets);
  rmp->bytes_to_proxy = clib_host_to_net_u64 (to.bytes);
  rmp->packets_from_proxy = clib_host_to_net_u64 (from.packets);
  rmp->bytes_from_proxy = clib_host_to_net_u64 (from.bytes);
  vl_api_send_msg (rp, (u8 *) rmp);
}

void
vl_api_singbox_interface_udp_dump_t_handler (vl_api_singbox_interface_udp_dump_t *mp)
{
  singbox_cudp_main_t *cm = &singbox_cudp_main;
  u32 sw_if_index = ntohl (mp->sw_if_index);
  singbox_cudp_itf_t *citf;
  vl_api_registration_t *rp = vl_api_client_index_to_registration (mp->client_index);

  if (!rp)
    return;
  vec_foreach (citf, cm->itfs)
    if (citf->enabled && (sw_if_index == ~0 || citf->sw_if_index == sw_if_index))
      singbox_cudp_send_itf_details (rp, mp->context, citf);
}

void
vl_api_singbox_udp_flow_dump_t_handler (vl_api_singbox_udp_flow_dump_t *mp)
{
  singbox_cudp_main_t *cm = &singbox_cudp_main;
  vl_api_singbox_udp_flow_details_t *rmp;
  vl_api_registration_t *rp = vl_api_client_index_to_registration (mp->client_index);
  u32 sw_if_index = ntohl (mp->sw_if_index);
  f64 now = vlib_time_now (vlib_get_main ()), last_active;
  singbox_cudp_flow_t *f;
  clib_thread_index_t t;
  u64 packets, bytes;
  u8 *name;

  SINGBOX_ASSERT_BARRIER ();
  if (!rp)
    return;
  for (t = 0; t < vec_len (cm->workers); t++)
    singbox_cudp_foreach_flow_of_thread (f, t)
    {
      if (sw_if_index != ~0 && f->sw_if_index != sw_if_index)
	continue;
      rmp = vl_msg_api_alloc_zero (sizeof (*rmp));
      rmp->_vl_msg_id = htons (VL_API_SINGBOX_UDP_FLOW_DETAILS + REPLY_MSG_ID_BASE);
      rmp->context = mp->context;
      /* generation << 32 | handle: the handle names the owner thread */
      rmp->flow_id = clib_host_to_net_u64 (singbox_cudp_flow_id (f));
      rmp->sw_if_index = htonl (f->sw_if_index);
      rmp->state = f->state;
      ip_address_encode (&f->client_ip, f->is_ip4 ? IP46_TYPE_IP4 : IP46_TYPE_IP6,
			 &rmp->client_addr);
      rmp->client_port = htons (f->client_port);
      ip_address_encode (&f->dst_ip, f->is_ip4 ? IP46_TYPE_IP4 : IP46_TYPE_IP6, &rmp->dst_addr);
      rmp->dst_port = htons (f->dst_port);
      ip_address_encode (&f->relay_ip, f->relay_is_ip4 ? IP46_TYPE_IP4 : IP46_TYPE_IP6,
			 &rmp->relay_addr);
      rmp->relay_port = htons (f->relay_port);
      if ((name = singbox_endpoint_name (f->endpoint_index)))
	strncpy ((char *) rmp->endpoint_name, (char *) name, sizeof (rmp->endpoint_name) - 1);
      rmp->packets_to_proxy = clib_host_to_net_u64 (f->packets_to_proxy);
      rmp->bytes_to_proxy = clib_host_to_net_u64 (f->bytes_to_proxy);
      /* the replies are counted on the relay leg's thread */
      singbox_cudp_flow_from_proxy (f, &packets, &bytes, &last_active);
      rmp->packets_from_proxy = clib_host_to_net_u64 (packets);
      rmp->bytes_from_proxy = clib_host_to_net_u64 (bytes);
      rmp->age = clib_host_to_net_u32 ((u32) (now - f->created));
      rmp->idle = clib_host_to_net_u32 ((u32) clib_max (now - last_active, 0));
      vl_api_send_msg (rp, (u8 *) rmp);
    }
}
