/* SPDX-License-Identifier: Apache-2.0
 * Copyright (c) 2026 vpp-singbox authors
 */

/*
 * Member selection of an endpoint group (singbox_lb.h). The hash policies use weighted rendezvous
 * hashing: each eligible member scores the flow and the highest score wins, so when a member goes
 * down or comes back only the flows that land on it move; every other source keeps its member.
 * Weighted round-robin is nginx's smooth variant (ngx_http_upstream_round_robin.c): weights 5,1,1
 * give a a b a c a a, not a a a a a b c. Least-connections compares active/weight by
 * cross-multiplying, so no division and no rounding.
 */

#include <math.h>
#include <string.h>

#include "singbox_lb.h"

const char *
sbx_lb_policy_name (sbx_lb_policy_t policy)
{
  static const char *names[] = {
#define _(sym, str) str,
    foreach_sbx_lb_policy
#undef _
  };
  return policy < SBX_LB_N_POLICIES ? names[policy] : "unknown";
}

/* splitmix64's finaliser: every input bit reaches every output bit. */
static uint64_t
mix64 (uint64_t x)
{
  x ^= x >> 30;
  x *= 0xbf58476d1ce4e5b9ULL;
  x ^= x >> 27;
  x *= 0x94d049bb133111ebULL;
  x ^= x >> 31;
  return x;
}

static uint64_t
fnv1a (uint64_t h, const uint8_t *p, uint32_t len)
{
  uint32_t i;

  for (i = 0; i < len; i++)
    {
      h ^= p[i];
      h *= 0x100000001b3ULL;
    }
  return h;
}

uint64_t
sbx_lb_flow_hash (const sbx_lb_flow_t *flow, int five_tuple)
{
  uint32_t alen = flow->is_ip6 ? 16 : 4;
  uint64_t h = 0xcbf29ce484222325ULL;
  uint8_t ports[5];

  h = fnv1a (h, &flow->is_ip6, 1);
  h = fnv1a (h, flow->src, alen);
  if (five_tuple)
    {
      h = fnv1a (h, flow->dst, alen);
      ports[0] = flow->src_port >> 8;
      ports[1] = flow->src_port & 0xff;
      ports[2] = flow->dst_port >> 8;
      ports[3] = flow->dst_port & 0xff;
      ports[4] = flow->proto;
      h = fnv1a (h, ports, sizeof (ports));
    }
  return mix64 (h);
}

static uint32_t
weight_of (const sbx_lb_member_t *m)
{
  return m->weight ? m->weight : 1;
}

/* The priority the flow goes to: the lowest of the members that are up (or unknown), else the
 * lowest of all (every member down). *any_up says which. */
static uint32_t
usable_priority (const sbx_lb_member_t *members, uint32_t n, int *any_up)
{
  uint32_t i, best_up = UINT32_MAX, best_all = UINT32_MAX;

  *any_up = 0;
  for (i = 0; i < n; i++)
    {
      if (members[i].priority < best_all)
	best_all = members[i].priority;
      if (!members[i].down && (!*any_up || members[i].priority < best_up))
	{
	  best_up = members[i].priority;
	  *any_up = 1;
	}
    }
  return *any_up ? best_up : best_all;
}

static int
eligible (const sbx_lb_member_t *m, uint32_t prio, int any_up)
{
  return m->priority == prio && (!any_up || !m->down);
}

int
sbx_lb_eligible (const sbx_lb_member_t *members, uint32_t n, uint32_t i)
{
  int any_up;
  uint32_t prio;

  if (i >= n)
    return 0;
  prio = usable_priority (members, n, &any_up);
  return eligible (&members[i], prio, any_up);
}

/* Weighted rendezvous: score = weight / -ln (u), u in (0, 1) from the flow and the member; the
 * largest wins. Member i wins a flow with probability weight_i / sum of weights. */
static int
pick_hash (sbx_lb_member_t *members, uint32_t n, uint32_t prio, int any_up, uint64_t fh)
{
  double best_score = -1, u, score;
  uint64_t h;
  uint32_t i;
  int best = -1;

  for (i = 0; i < n; i++)
    {
      if (!eligible (&members[i], prio, any_up))
	continue;
      h = mix64 (fh ^ mix64 (members[i].key + 0x9e3779b97f4a7c15ULL));
      /* 53 bits, offset by half a step: never 0, never 1 */
      u = ((double) (h >> 11) + 0.5) / 9007199254740992.0;
      score = (double) weight_of (&members[i]) / -log (u);
      if (score > best_score)
	{
	  best_score = score;
	  best = (int) i;
	}
    }
  return best;
}

static int
pick_wrr (sbx_lb_member_t *members, uint32_t n, uint32_t prio, int any_up)
{
  int64_t total = 0;
  uint32_t i;
  int best = -1;

  for (i = 0; i < n; i++)
    {
      if (!eligible (&members[i], prio, any_up))
	{
	  /* a member that comes back starts level, not with what it saved up */
	  members[i].current = 0;
	  continue;
	}
      members[i].current += weight_of (&members[i]);
      total += weight_of (&members[i]);
      if (best < 0 || members[i].current > members[best].current)
	best = (int) i;
    }
  if (best >= 0)
    members[best].current -= total;
  return best;
}

static int
pick_least (sbx_lb_member_t *members, uint32_t n, uint32_t prio, int any_up)
{
  uint64_t lhs, rhs;
  uint32_t i;
  int best = -1;

  for (i = 0; i < n; i++)
    {
      if (!eligible (&members[i], prio, any_up))
	continue;
      if (best < 0)
	{
	  best = (int) i;
	  continue;
	}
      /* active_i / w_i < active_b / w_b */
      lhs = (uint64_t) members[i].active * weight_of (&members[best]);
      rhs = (uint64_t) members[best].active * weight_of (&members[i]);
      if (lhs < rhs || (lhs == rhs && weight_of (&members[i]) > weight_of (&members[best])))
	best = (int) i;
    }
  return best;
}

int
sbx_lb_pick (sbx_lb_policy_t policy, sbx_lb_member_t *members, uint32_t n,
	     const sbx_lb_flow_t *flow)
{
  uint32_t prio;
  int any_up, i;

  if (!n || policy >= SBX_LB_N_POLICIES)
    return -1;
  prio = usable_priority (members, n, &any_up);
  switch (policy)
    {
    case SBX_LB_SOURCE_HASH:
    case SBX_LB_FIVE_TUPLE_HASH:
      i = pick_hash (members, n, prio, any_up,
		     sbx_lb_flow_hash (flow, policy == SBX_LB_FIVE_TUPLE_HASH));
      break;
    case SBX_LB_WEIGHTED_ROUND_ROBIN:
      i = pick_wrr (members, n, prio, any_up);
      break;
    default:
      i = pick_least (members, n, prio, any_up);
      break;
    }
  if (i >= 0)
    {
      members[i].active++;
      members[i].picked++;
    }
  return i;
}

void
sbx_lb_release (sbx_lb_member_t *m)
{
  if (m->active)
    m->active--;
}

void
sbx_lb_reset (sbx_lb_member_t *members, uint32_t n)
{
  uint32_t i;

  for (i = 0; i < n; i++)
    members[i].current = 0;
}
