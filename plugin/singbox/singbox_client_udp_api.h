/* SPDX-License-Identifier: Apache-2.0
 * Copyright (c) 2026 vpp-singbox authors
 */

/* The client-mode UDP handlers (singbox_client_udp.c), for the message
 * table that singbox_api.c builds from the generated singbox.api.c. Include
 * after singbox.api_types.h. */

#ifndef __included_singbox_client_udp_api_h__
#define __included_singbox_client_udp_api_h__

void vl_api_singbox_interface_udp_enable_disable_t_handler (
  vl_api_singbox_interface_udp_enable_disable_t *mp);
void vl_api_singbox_interface_udp_dump_t_handler (vl_api_singbox_interface_udp_dump_t *mp);
void vl_api_singbox_udp_flow_dump_t_handler (vl_api_singbox_udp_flow_dump_t *mp);

#endif /* __included_singbox_client_udp_api_h__ */
