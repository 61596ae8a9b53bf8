/* SPDX-License-Identifier: Apache-2.0
 * Copyright (c) 2026 vpp-singbox authors
 */

/* The endpoint-group message handlers (singbox_group_api.c), declared for
 * the message table singbox.api.c builds in singbox_api.c. Include after
 * singbox.api_types.h. */

#ifndef __included_singbox_group_api_h__
#define __included_singbox_group_api_h__

void vl_api_singbox_endpoint_group_add_del_t_handler (vl_api_singbox_endpoint_group_add_del_t *mp);
void vl_api_singbox_set_default_endpoint_group_t_handler (
  vl_api_singbox_set_default_endpoint_group_t *mp);
void vl_api_singbox_interface_endpoint_group_enable_t_handler (
  vl_api_singbox_interface_endpoint_group_enable_t *mp);
void vl_api_singbox_endpoint_group_dump_t_handler (vl_api_singbox_endpoint_group_dump_t *mp);

#endif /* __included_singbox_group_api_h__ */
