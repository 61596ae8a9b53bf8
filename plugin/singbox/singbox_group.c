/* SPDX-License-Identifier: Apache-2.0
 * Copyright (c) 2026 vpp-singbox authors
 */

/*
 * Endpoint groups: the table (add, replace, delete, find), which interface
 * uses which group, and the pick of a new flow's member. Which member is
 * the VPP-free singbox_lb.c's decision; this file feeds it the members'
 * health (their endpoints' state) and keeps the per-member counters.
 *
 * Configuration changes run on the main thread under the worker barrier;
 * picks and releases run on the workers, each under the group's lock.
 */

#include <singbox/singbox.h>
#include <singbox/singbox_group.h>

singbox_group_main_t singbox_group_main;

static clib_error_t *
singbox_group_init (vlib_main_t *vm)
{
  singbox_group_main_t *gm = &singbox_group_main;

  gm->group_by_name = hash_create_string (0, sizeof (uword));
  gm->group_by_id = hash_create (0, sizeof (uword));
  gm->default_group = ~0;
  return 0;
}

VLIB_INIT_FUNCTION (singbox_group_init);

singbox_group_t *
singbox_group_find (u8 *name)
{
  singbox_group_main_t *gm = &singbox_group_main;
  uword *p;

  if (!name || !name[0] || !(p = hash_get_mem (gm->group_by_name, name)))
    return 0;
  return pool_elt_at_index (gm->groups, p[0]);
}

static void
singbox_group_release_members (singbox_group_t *g)
{
  singbox_main_t *sm = &singbox_main;
  singbox_group_member_t *m;

  vec_foreach (m, g->members)
    {
      /* a member counts as a user of its endpoint: deleting it is refused */
      if (!pool_is_free_index (sm->endpoints, m->endpoint_index))
	pool_elt_at_index (sm->endpoints, m->endpoint_index)->n_users--;
      vlib_stats_remove_entry (m->stat_connections);
      vlib_stats_remove_entry (m->stat_active);
      vlib_stats_remove_entry (m->stat_failures);
    }
}

/* Whether a configuration names the endpoint with this index (its
 * endpoints are known to exist). */
static int
singbox_group_config_has (singbox_group_member_config_t *members, u32 endpoint_index)
{
  singbox_group_member_config_t *mc;

  vec_foreach (mc, members)
    if (singbox_endpoint_find (mc->endpoint_name) - singbox_main.endpoints == endpoint_index)
      return 1;
  return 0;
}

/* Main thread, barrier held: n flows through a member that leaves. */
static void
singbox_group_departed_add (singbox_group_t *g, u32 endpoint_index, u32 n)
{
  uword *p = hash_get (g->departed_active, endpoint_index);

  hash_set (g->departed_active, endpoint_index, (p ? p[0] : 0) + n);
}

/* Main thread, barrier held: the open flows of a member that comes back,
 * which are its own again. */
static u32
singbox_group_departed_take (singbox_group_t *g, u32 endpoint_index)
{
  uword *p = hash_get (g->departed_active, endpoint_index);
  u32 n;

  if (!p)
    return 0;
  n = p[0];
  hash_unset (g->departed_active, endpoint_index);
  return n;
}

int
singbox_group_add (u8 *name, sbx_lb_policy_t policy, singbox_group_member_config_t *members)
{
  singbox_group_main_t *gm = &singbox_group_main;
  singbox_main_t *sm = &singbox_main;
  singbox_group_member_config_t *mc;
  singbox_group_member_t *nm = 0, *old;
  sbx_lb_member_t *nlb = 0, *olb;
  singbox_endpoint_t *ep;
  singbox_group_t *g;
  u32 i, j;

  if (!name || !name[0] || strlen ((char *) name) > 63 || policy >= SBX_LB_N_POLICIES ||
      !vec_len (members))
    return VNET_API_ERROR_INVALID_VALUE;
  vec_foreach (mc, members)
    {
      if (!mc->weight)
	return VNET_API_ERROR_INVALID_VALUE;
      if (!(ep = singbox_endpoint_find (mc->endpoint_name)))
	return VNET_API_ERROR_NO_SUCH_ENTRY;
      for (i = 0; i < mc - members; i++)
	if (!strcmp ((char *) members[i].endpoint_name, (char *) mc->endpoint_name))
	  return VNET_API_ERROR_VALUE_EXIST;
    }

  g = singbox_group_find (name);
  /* a member that leaves: its open flows still end with a release */
  for (j = 0; g && j < vec_len (g->members); j++)
    if (g->lb[j].active && !singbox_group_config_has (members, g->members[j].endpoint_index))
      singbox_group_departed_add (g, g->members[j].endpoint_index, g->lb[j].active);
  vec_foreach (mc, members)
    {
      ep = singbox_endpoint_find (mc->endpoint_name);
      vec_add2 (nm, old, 1);
      vec_add2 (nlb, olb, 1);
      old->endpoint_index = ep - sm->endpoints;
      olb->key = old->endpoint_index * 2654435761u;
      olb->weight = mc->weight;
      olb->priority = mc->priority;
      /* a member that stays keeps its counters and open connections */
      for (j = 0; g && j < vec_len (g->members); j++)
	if (g->members[j].endpoint_index == old->endpoint_index)
	  {
	    old->connections = g->members[j].connections;
	    old->failures = g->members[j].failures;
	    olb->active = g->lb[j].active;
	    olb->picked = g->lb[j].picked;
	  }
      /* one that comes back: the flows it had when it left, still open */
      if (g)
	olb->active += singbox_group_departed_take (g, old->endpoint_index);
      ep->n_users++;
    }
  sbx_lb_reset (nlb, vec_len (nlb));
  /* the old members' gauges go first (in release_members): a member that
   * stays gets its entries again under the same names */
  if (g)
    singbox_group_release_members (g);
  vec_foreach (old, nm)
    {
      u8 *ep_name = singbox_endpoint_name (old->endpoint_index);
      old->stat_connections =
	vlib_stats_add_gauge ("/singbox/client/group/%s/%s/connections", name, ep_name);
      old->stat_active = vlib_stats_add_gauge ("/singbox/client/group/%s/%s/active", name, ep_name);
      old->stat_failures =
	vlib_stats_add_gauge ("/singbox/client/group/%s/%s/failures", name, ep_name);
    }

  if (!g)
    {
      pool_get_zero (gm->groups, g);
      g->name = format (0, "%s%c", name, 0);
      clib_spinlock_init (&g->lock);
      hash_set_mem (gm->group_by_name, g->name, g - gm->groups);
      /* ~0 means no group; after 2^32 - 1 groups an id comes back, by then
       * no flow of its first holder is left */
      if (++gm->last_id == ~0)
	gm->last_id = 0;
      g->id = gm->last_id;
      hash_set (gm->group_by_id, g->id, g - gm->groups);
    }
  clib_spinlock_lock (&g->lock);
  vec_free (g->members);
  vec_free (g->lb);
  g->members = nm;
  g->lb = nlb;
  g->policy = policy;
  clib_spinlock_unlock (&g->lock);
  return 0;
}

int
singbox_group_del (u8 *name)
{
  singbox_group_main_t *gm = &singbox_group_main;
  singbox_group_t *g = singbox_group_find (name);

  if (!g)
    return VNET_API_ERROR_NO_SUCH_ENTRY;
  if (g->n_users)
    return VNET_API_ERROR_INSTANCE_IN_USE;
  if (gm->default_group == g - gm->groups)
    gm->default_group = ~0;
  singbox_group_release_members (g);
  hash_unset_mem (gm->group_by_name, g->name);
  hash_unset (gm->group_by_id, g->id);
  hash_free (g->departed_active);
  vec_free (g->name);
  vec_free (g->members);
  vec_free (g->lb);
  clib_spinlock_free (&g->lock);
  pool_put (gm->groups, g);
  return 0;
}

int
singbox_group_set_default (u8 *name)
{
  singbox_group_main_t *gm = &singbox_group_main;
  singbox_group_t *g;

  if (!name || !name[0])
    {
      gm->default_group = ~0;
      return 0;
    }
  if (!(g = singbox_group_find (name)))
    return VNET_API_ERROR_NO_SUCH_ENTRY;
  gm->default_group = g - gm->groups;
  return 0;
}

void
singbox_group_interface_set (u32 sw_if_index, u32 group_index)
{
  singbox_group_main_t *gm = &singbox_group_main;
  u32 old;

  vec_validate_init_empty (gm->itf_group, sw_if_index, ~0);
  old = gm->itf_group[sw_if_index];
  if (old == group_index)
    return;
  if (old != ~0 && !pool_is_free_index (gm->groups, old))
    pool_elt_at_index (gm->groups, old)->n_users--;
  if (group_index != ~0)
    pool_elt_at_index (gm->groups, group_index)->n_users++;
  gm->itf_group[sw_if_index] = group_index;
}

u8 *
singbox_group_name_of_interface (u32 sw_if_index)
{
  singbox_group_main_t *gm = &singbox_group_main;

  if (sw_if_index >= vec_len (gm->itf_group) || gm->itf_group[sw_if_index] == ~0)
    return 0;
  return pool_elt_at_index (gm->groups, gm->itf_group[sw_if_index])->name;
}

u32
singbox_group_of_interface (u32 sw_if_index, u32 own_endpoint_index)
{
  singbox_group_main_t *gm = &singbox_group_main;

  u32 gi = ~0;

  if (sw_if_index < vec_len (gm->itf_group) && gm->itf_group[sw_if_index] != ~0)
    gi = gm->itf_group[sw_if_index];
  /* the default group serves interfaces that name nothing of their own; it
   * takes precedence over a default endpoint (YANG allows only one) */
  else if (own_endpoint_index == ~0)
    gi = gm->default_group;
  return gi == ~0 ? ~0 : pool_elt_at_index (gm->groups, gi)->id;
}

static void
singbox_group_flow (transport_endpoint_t *rmt, transport_endpoint_t *lcl, sbx_lb_flow_t *f)
{
  clib_memset (f, 0, sizeof (*f));
  f->is_ip6 = !rmt->is_ip4;
  f->proto = 6;
  f->src_port = clib_net_to_host_u16 (rmt->port);
  f->dst_port = clib_net_to_host_u16 (lcl->port);
  if (rmt->is_ip4)
    {
      clib_memcpy (f->src, rmt->ip.ip4.as_u8, 4);
      clib_memcpy (f->dst, lcl->ip.ip4.as_u8, 4);
    }
  else
    {
      clib_memcpy (f->src, rmt->ip.ip6.as_u8, 16);
      clib_memcpy (f->dst, lcl->ip.ip6.as_u8, 16);
    }
}

/* The member of a flow picked earlier, by endpoint: the group may have been
 * replaced since the pick. With the group's lock held. */
static int
singbox_group_member_of (singbox_group_t *g, u32 endpoint_index)
{
  u32 i;

  for (i = 0; i < vec_len (g->members); i++)
    if (g->members[i].endpoint_index == endpoint_index)
      return i;
  return -1;
}

static singbox_group_t *
singbox_group_get (u32 group_id)
{
  singbox_group_main_t *gm = &singbox_group_main;
  uword *p;

  if (group_id == ~0 || !(p = hash_get (gm->group_by_id, group_id)))
    return 0;
  return pool_elt_at_index (gm->groups, p[0]);
}

u8 *
singbox_group_name (u32 group_id)
{
  singbox_group_t *g = singbox_group_get (group_id);

  return g ? g->name : 0;
}

void
singbox_group_release (u32 group_id, u32 endpoint_index)
{
  singbox_group_t *g = singbox_group_get (group_id);
  uword *p;
  int i;

  if (!g)
    return;
  clib_spinlock_lock (&g->lock);
  if ((i = singbox_group_member_of (g, endpoint_index)) >= 0)
    sbx_lb_release (&g->lb[i]);
  /* its member left the group: one flow less to hand back if it returns */
  else if ((p = hash_get (g->departed_active, endpoint_index)))
    {
      if (p[0] > 1)
	p[0]--;
      else
	hash_unset (g->departed_active, endpoint_index);
    }
  clib_spinlock_unlock (&g->lock);
}

void
singbox_group_count_failure (u32 group_id, u32 endpoint_index)
{
  singbox_group_t *g = singbox_group_get (group_id);
  int i;

  if (!g)
    return;
  clib_spinlock_lock (&g->lock);
  if ((i = singbox_group_member_of (g, endpoint_index)) >= 0)
    g->members[i].failures++;
  clib_spinlock_unlock (&g->lock);
}

u32
singbox_group_pick (u32 group_id, transport_endpoint_t *rmt, transport_endpoint_t *lcl)
{
  singbox_main_t *sm = &singbox_main;
  singbox_group_t *g = singbox_group_get (group_id);
  sbx_lb_flow_t flow;
  u32 i, endpoint_index = ~0;
  int k;

  if (!g)
    return ~0;
  singbox_group_flow (rmt, lcl, &flow);
  clib_spinlock_lock (&g->lock);
  /* health as the probes see it now */
  for (i = 0; i < vec_len (g->members); i++)
    g->lb[i].down = pool_is_free_index (sm->endpoints, g->members[i].endpoint_index) ||
		    pool_elt_at_index (sm->endpoints, g->members[i].endpoint_index)->state ==
		      SINGBOX_EP_STATE_DOWN;
  k = sbx_lb_pick (g->policy, g->lb, vec_len (g->lb), &flow);
  if (k >= 0)
    {
      g->members[k].connections++;
      endpoint_index = g->members[k].endpoint_index;
    }
  clib_spinlock_unlock (&g->lock);
  return endpoint_index;
}

void
singbox_group_stats_update (void)
{
  singbox_group_main_t *gm = &singbox_group_main;
  singbox_group_t *g;
  u32 i;

  pool_foreach (g, gm->groups)
    for (i = 0; i < vec_len (g->members); i++)
      {
	vlib_stats_set_gauge (g->members[i].stat_connections, g->members[i].connections);
	vlib_stats_set_gauge (g->members[i].stat_active, g->lb[i].active);
	vlib_stats_set_gauge (g->members[i].stat_failures, g->members[i].failures);
      }
}

static void
singbox_group_clear_one (singbox_group_t *g)
{
  u32 i;

  clib_spinlock_lock (&g->lock);
  for (i = 0; i < vec_len (g->members); i++)
    g->members[i].connections = g->members[i].failures = 0;
  clib_spinlock_unlock (&g->lock);
}

void
singbox_group_clear_counters (singbox_group_t *g)
{
  singbox_group_main_t *gm = &singbox_group_main;

  if (g)
    {
      singbox_group_clear_one (g);
      return;
    }
  pool_foreach (g, gm->groups)
    singbox_group_clear_one (g);
}

u8 *
format_singbox_group (u8 *s, va_list *args)
{
  singbox_group_t *g = va_arg (*args, singbox_group_t *);
  singbox_group_main_t *gm = &singbox_group_main;
  u32 i, n = vec_len (g->members);
  u8 *ep;

  s = format (s, "group %s policy %s%s\n", g->name, sbx_lb_policy_name (g->policy),
	      gm->default_group == g - gm->groups ? " (default)" : "");
  for (i = 0; i < n; i++)
    s =
      format (s, "  member %s weight %u priority %u%s connections %llu active %u failures %llu\n",
	      (ep = singbox_endpoint_name (g->members[i].endpoint_index)) ? (char *) ep : "?",
	      g->lb[i].weight, g->lb[i].priority, sbx_lb_eligible (g->lb, n, i) ? " (in use)" : "",
	      g->members[i].connections, g->lb[i].active, g->members[i].failures);
  return s;
}
