/* SPDX-License-Identifier: Apache-2.0
 * Copyright (c) 2026 vpp-singbox authors
 */

/* Binary API handlers of endpoint groups: convert byte order, call the
 * action (singbox_group.c), reply. singbox_api.c registers them with the
 * rest of singbox.api (singbox_group_api.h). */

#include <singbox/singbox.h>
#include <singbox/singbox_group.h>
#include <vnet/format_fns.h>
#include <vlibapi/api.h>
#include <vlibmemory/api.h>

#include <singbox/singbox.api_enum.h>
#include <singbox/singbox.api_types.h>
#include <singbox/singbox_group_api.h>

#define REPLY_MSG_ID_BASE sm->msg_id_base
#include <vlibapi/api_helper_macros.h>

/* fixed-size API strings: make sure they end */
#define SINGBOX_TERMINATE(field) ((field)[sizeof (field) - 1] = 0)

void
vl_api_singbox_endpoint_group_add_del_t_handler (vl_api_singbox_endpoint_group_add_del_t *mp)
{
  singbox_main_t *sm = &singbox_main;
  vl_api_singbox_endpoint_group_add_del_reply_t *rmp;
  singbox_group_member_config_t *members = 0, *mc;
  vl_api_singbox_group_member_t *m;
  int rv;
  u32 i;

  SINGBOX_TERMINATE (mp->name);
  if (!mp->is_add)
    rv = singbox_group_del (mp->name);
  else
    {
      for (i = 0; i < mp->n_members; i++)
	{
	  m = &mp->members[i];
	  SINGBOX_TERMINATE (m->endpoint_name);
	  vec_add2 (members, mc, 1);
	  mc->endpoint_name = m->endpoint_name;
	  mc->weight = ntohs (m->weight);
	  mc->priority = ntohl (m->priority);
	}
      rv = singbox_group_add (mp->name, mp->policy, members);
      vec_free (members);
    }
  REPLY_MACRO (VL_API_SINGBOX_ENDPOINT_GROUP_ADD_DEL_REPLY);
}

void
vl_api_singbox_set_default_endpoint_group_t_handler (
  vl_api_singbox_set_default_endpoint_group_t *mp)
{
  singbox_main_t *sm = &singbox_main;
  vl_api_singbox_set_default_endpoint_group_reply_t *rmp;
  int rv;

  SINGBOX_TERMINATE (mp->name);
  rv = singbox_group_set_default (mp->name);
  REPLY_MACRO (VL_API_SINGBOX_SET_DEFAULT_ENDPOINT_GROUP_REPLY);
}

void
vl_api_singbox_interface_endpoint_group_enable_t_handler (
  vl_api_singbox_interface_endpoint_group_enable_t *mp)
{
  singbox_main_t *sm = &singbox_main;
  vl_api_singbox_interface_endpoint_group_enable_reply_t *rmp;
  singbox_interface_config_t cfg = {
    .group_name = mp->group_name,
    .max_connections = ntohl (mp->max_connections),
  };
  int rv;

  VALIDATE_SW_IF_INDEX (mp);
  SINGBOX_TERMINATE (mp->group_name);
  rv = mp->group_name[0] ? singbox_interface_enable (ntohl (mp->sw_if_index), &cfg) :
			   VNET_API_ERROR_INVALID_VALUE;
  BAD_SW_IF_INDEX_LABEL;
  REPLY_MACRO (VL_API_SINGBOX_INTERFACE_ENDPOINT_GROUP_ENABLE_REPLY);
}

void
vl_api_singbox_endpoint_group_dump_t_handler (vl_api_singbox_endpoint_group_dump_t *mp)
{
  singbox_group_main_t *gm = &singbox_group_main;
  singbox_main_t *sm = &singbox_main;
  vl_api_singbox_endpoint_group_details_t *rmp;
  vl_api_singbox_group_member_details_t *d;
  vl_api_registration_t *reg;
  singbox_group_t *g;
  u32 i, n;
  u8 *ep;

  if (!(reg = vl_api_client_index_to_registration (mp->client_index)))
    return;
  pool_foreach (g, gm->groups)
    {
      n = clib_min (vec_len (g->members), 255);
      /* zeroed: a name copied without its NUL must not carry heap garbage */
      rmp = vl_msg_api_alloc_zero (sizeof (*rmp) + n * sizeof (rmp->members[0]));
      rmp->_vl_msg_id = htons (VL_API_SINGBOX_ENDPOINT_GROUP_DETAILS + sm->msg_id_base);
      rmp->context = mp->context;
      rmp->group_index = htonl (g - gm->groups);
      strncpy ((char *) rmp->name, (char *) g->name, sizeof (rmp->name) - 1);
      rmp->policy = g->policy;
      rmp->is_default = gm->default_group == g - gm->groups;
      rmp->n_users = htonl (g->n_users);
      rmp->n_members = n;
      clib_spinlock_lock (&g->lock);
      for (i = 0; i < n; i++)
	{
	  d = &rmp->members[i];
	  if ((ep = singbox_endpoint_name (g->members[i].endpoint_index)))
	    strncpy ((char *) d->endpoint_name, (char *) ep, sizeof (d->endpoint_name) - 1);
	  d->weight = htons (g->lb[i].weight);
	  d->priority = htonl (g->lb[i].priority);
	  d->eligible = sbx_lb_eligible (g->lb, vec_len (g->lb), i);
	  d->connections = clib_host_to_net_u64 (g->members[i].connections);
	  d->active_connections = htonl (g->lb[i].active);
	  d->failures = clib_host_to_net_u64 (g->members[i].failures);
	}
      clib_spinlock_unlock (&g->lock);
      vl_api_send_msg (reg, (u8 *) rmp);
    }
}
