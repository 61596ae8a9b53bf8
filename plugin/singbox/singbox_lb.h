/* SPDX-License-Identifier: Apache-2.0
 * Copyright (c) 2026 vpp-singbox authors
 */

/*
 * Load balancing over an endpoint group (YANG endpoint-group), without VPP: the caller keeps one
 * sbx_lb_member_t per member (its weight, priority, whether health checks have it down, and the
 * policy's running state) and asks sbx_lb_pick for the member of each new flow. Nothing here
 * locks: the plugin holds the group's lock around pick and release, as the group is shared by
 * every worker.
 *
 * Which members are eligible: those not down, and among them only those with the lowest
 * priority (failover order). When every member is down, the members of the lowest priority are
 * used all the same, as a single endpoint that is down is: the connection fails and is counted
 * rather than refused without trying.
 */

#ifndef included_singbox_lb_h
#define included_singbox_lb_h

#include <stdint.h>

/* The YANG identities, in the plugin API's singbox_lb_policy order. */
#define foreach_sbx_lb_policy                                                                      \
  _ (SOURCE_HASH, "source-address-hash")                                                           \
  _ (FIVE_TUPLE_HASH, "five-tuple-hash")                                                           \
  _ (WEIGHTED_ROUND_ROBIN, "weighted-round-robin")                                                 \
  _ (LEAST_CONNECTIONS, "least-connections")

typedef enum
{
#define _(sym, str) SBX_LB_##sym,
  foreach_sbx_lb_policy
#undef _
    SBX_LB_N_POLICIES,
} sbx_lb_policy_t;

typedef struct
{
  /* configuration, set by the caller */
  uint32_t key;	     /* stable identity of the member (hash policies): e.g. a hash of its name */
  uint32_t weight;   /* >= 1; 0 is taken as 1 */
  uint32_t priority; /* failover order, lower first */
  uint8_t down;	     /* health checks have the endpoint down */

  /* the policy's state, kept by this file */
  int64_t current; /* smooth weighted round-robin: the running weight */
  uint32_t active; /* flows picked and not yet released (least-connections) */
  uint64_t picked; /* flows picked since the member was created */
} sbx_lb_member_t;

/* What the hash policies hash. Addresses in network order, IPv4 in the first 4 bytes. */
typedef struct
{
  uint8_t is_ip6;
  uint8_t proto;
  uint16_t src_port;
  uint16_t dst_port;
  uint8_t src[16];
  uint8_t dst[16];
} sbx_lb_flow_t;

/* The member for a new flow, or -1 if there is none (n == 0 or policy unknown). Counts the flow
 * in the member's active and picked and advances the policy's state. */
int sbx_lb_pick (sbx_lb_policy_t policy, sbx_lb_member_t *members, uint32_t n,
		 const sbx_lb_flow_t *flow);

/* A flow picked earlier ended. */
void sbx_lb_release (sbx_lb_member_t *m);

/* Whether a member would be considered now (not down, of the lowest usable priority). */
int sbx_lb_eligible (const sbx_lb_member_t *members, uint32_t n, uint32_t i);

/* The policy's running state starts again (after a member is added, removed or re-weighted). */
void sbx_lb_reset (sbx_lb_member_t *members, uint32_t n);

/* The flow's hash: of the source address only, or of the 5-tuple. */
uint64_t sbx_lb_flow_hash (const sbx_lb_flow_t *flow, int five_tuple);

const char *sbx_lb_policy_name (sbx_lb_policy_t policy);

#endif /* included_singbox_lb_h */
