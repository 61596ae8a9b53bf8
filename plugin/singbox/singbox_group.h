/* SPDX-License-Identifier: Apache-2.0
 * Copyright (c) 2026 vpp-singbox authors
 */

/* Client mode's endpoint groups (YANG endpoint-group): a named set of
 * endpoints new connections are spread over by a policy (singbox_lb.h).
 * An interface relays through its group, or through the default group
 * when it names neither an endpoint nor a group. */

#ifndef __included_singbox_group_h__
#define __included_singbox_group_h__

#include <vnet/vnet.h>
#include <vnet/session/transport_types.h>
#include <vppinfra/lock.h>

#include <singbox/singbox_lb.h>

/* What configures one member (singbox_group_add). */
typedef struct
{
  u8 *endpoint_name; /* vec, NUL-terminated */
  u32 weight;	     /* >= 1 */
  u32 priority;
} singbox_group_member_config_t;

typedef struct
{
  u32 endpoint_index;
  /* counters of this member's connections through this group */
  u64 connections;
  u64 failures;
  /* stats segment gauges: /singbox/client/group/<group>/<endpoint>/... */
  u32 stat_connections;
  u32 stat_active;
  u32 stat_failures;
} singbox_group_member_t;

typedef struct
{
  u8 *name; /* vec, NUL-terminated */
  sbx_lb_policy_t policy;
  singbox_group_member_t *members; /* vec */
  sbx_lb_member_t *lb;		   /* vec, parallel to members: the policy's state */
  /* pick and release run on every worker */
  clib_spinlock_t lock;
  u32 n_users; /* interfaces relaying through it */
  /* what a flow remembers its group by: unique over the groups' lifetimes,
   * unlike the pool index a later group reuses, so a flow that outlives its
   * group releases nothing of the group created in its slot */
  u32 id;
  /* Flows still open through endpoints a replace took out of the group:
   * endpoint index -> how many. A flow knows its member by its endpoint, so
   * a member that leaves and comes back while such flows are open starts
   * with their count instead of 0 (their releases would otherwise take the
   * count of the flows picked since below what is open); a release for an
   * endpoint that is not a member counts down here. */
  uword *departed_active;
} singbox_group_t;

typedef struct
{
  singbox_group_t *groups; /* pool */
  uword *group_by_name;	   /* name (C string) -> pool index */
  uword *group_by_id;	   /* singbox_group_t.id -> pool index */
  u32 last_id;
  u32 default_group; /* ~0: none */
  u32 *itf_group;    /* by sw_if_index: the interface's own group, ~0: none */
} singbox_group_main_t;

extern singbox_group_main_t singbox_group_main;

singbox_group_t *singbox_group_find (u8 *name);
/* Adds or replaces a group; members keep their counters across a replace. */
int singbox_group_add (u8 *name, sbx_lb_policy_t policy, singbox_group_member_config_t *members);
int singbox_group_del (u8 *name);
/* An empty name clears the default group. */
int singbox_group_set_default (u8 *name);
/* The interface relays through this group (~0: not through a group). */
void singbox_group_interface_set (u32 sw_if_index, u32 group_index);
/* The name of the interface's own group, 0 for none. */
u8 *singbox_group_name_of_interface (u32 sw_if_index);
/* The id (singbox_group_t.id, not the pool index) of the group an
 * interface relays through: its own, else the default when the interface
 * names no endpoint of its own; ~0 for none. A flow keeps this id for
 * singbox_group_release and singbox_group_count_failure: both do nothing
 * once the group is deleted. */
u32 singbox_group_of_interface (u32 sw_if_index, u32 own_endpoint_index);
/* The name of the group with this id, 0 for none. */
u8 *singbox_group_name (u32 group_id);
/* The endpoint index for a new flow through a group (~0: none); counts it
 * as active on its member until singbox_group_release. */
u32 singbox_group_pick (u32 group_id, transport_endpoint_t *rmt, transport_endpoint_t *lcl);
/* A flow picked earlier ended. */
void singbox_group_release (u32 group_id, u32 endpoint_index);
/* A flow picked earlier could not be relayed: its upstream connection or
 * handshake failed. */
void singbox_group_count_failure (u32 group_id, u32 endpoint_index);
/* The members' connections and failures counters: of every group (g 0) or
 * of one. */
void singbox_group_clear_counters (singbox_group_t *g);
/* singbox-process: the members' gauges in the stats segment. */
void singbox_group_stats_update (void);

format_function_t format_singbox_group;

#endif /* __included_singbox_group_h__ */
