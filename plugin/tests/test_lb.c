/* SPDX-License-Identifier: Apache-2.0
 * Copyright (c) 2026 vpp-singbox authors
 */

/*
 * Unit tests of endpoint-group member selection (singbox_lb.c): every policy's split against the
 * weights, failover by priority, members that are down skipped and taken back, and the hash
 * policies' stickiness (a flow keeps its member while that member stays usable).
 */

#include "harness.h"
#include "singbox_lb.h"

#define N_OF(a) (sizeof (a) / sizeof ((a)[0]))

static void
members_init (sbx_lb_member_t *m, uint32_t n, const uint32_t *weights, const uint32_t *prios)
{
  uint32_t i;

  memset (m, 0, n * sizeof (*m));
  for (i = 0; i < n; i++)
    {
      m[i].key = 1000 + i * 7;
      m[i].weight = weights ? weights[i] : 1;
      m[i].priority = prios ? prios[i] : 0;
    }
}

/* A flow from 10.x.y.z:port to 198.18.0.1:80, numbered. */
static sbx_lb_flow_t
flow_n (uint32_t n, uint16_t port)
{
  sbx_lb_flow_t f;

  memset (&f, 0, sizeof (f));
  f.proto = 6;
  f.src[0] = 10;
  f.src[1] = (uint8_t) (n >> 16);
  f.src[2] = (uint8_t) (n >> 8);
  f.src[3] = (uint8_t) n;
  f.dst[0] = 198;
  f.dst[1] = 18;
  f.dst[3] = 1;
  f.src_port = port;
  f.dst_port = 80;
  return f;
}

static void
count_picks (sbx_lb_policy_t policy, sbx_lb_member_t *m, uint32_t n, uint32_t flows,
	     uint32_t *counts)
{
  sbx_lb_flow_t f;
  uint32_t i;
  int k;

  memset (counts, 0, n * sizeof (*counts));
  for (i = 0; i < flows; i++)
    {
      f = flow_n (i, (uint16_t) (1024 + i % 50000));
      k = sbx_lb_pick (policy, m, n, &f);
      CHECK (k >= 0 && (uint32_t) k < n);
      if (k >= 0)
	counts[k]++;
    }
}

static void
test_policy_names (void)
{
  CHECK (!strcmp (sbx_lb_policy_name (SBX_LB_SOURCE_HASH), "source-address-hash"));
  CHECK (!strcmp (sbx_lb_policy_name (SBX_LB_FIVE_TUPLE_HASH), "five-tuple-hash"));
  CHECK (!strcmp (sbx_lb_policy_name (SBX_LB_WEIGHTED_ROUND_ROBIN), "weighted-round-robin"));
  CHECK (!strcmp (sbx_lb_policy_name (SBX_LB_LEAST_CONNECTIONS), "least-connections"));
  CHECK (!strcmp (sbx_lb_policy_name (SBX_LB_N_POLICIES), "unknown"));
}

static void
test_no_member (void)
{
  sbx_lb_member_t m[1];
  sbx_lb_flow_t f = flow_n (1, 1);

  members_init (m, 1, 0, 0);
  CHECK_EQ (sbx_lb_pick (SBX_LB_WEIGHTED_ROUND_ROBIN, m, 0, &f), -1);
  CHECK_EQ (sbx_lb_pick (SBX_LB_N_POLICIES, m, 1, &f), -1);
  CHECK_EQ (m[0].picked, 0);
}

/* nginx's smooth sequence for 5,1,1: a a b a c a a. */
static void
test_wrr_smooth_sequence (void)
{
  static const uint32_t w[] = { 5, 1, 1 };
  static const int want[] = { 0, 0, 1, 0, 2, 0, 0, 0, 0, 1, 0, 2, 0, 0 };
  sbx_lb_member_t m[3];
  sbx_lb_flow_t f = flow_n (1, 1);
  uint32_t i;

  members_init (m, 3, w, 0);
  for (i = 0; i < N_OF (want); i++)
    CHECK_EQ (sbx_lb_pick (SBX_LB_WEIGHTED_ROUND_ROBIN, m, 3, &f), want[i]);
}

/* 3,000 flows over weights 1:2:3 are exactly 500/1000/1500. */
static void
test_wrr_split_exact (void)
{
  static const uint32_t w[] = { 1, 2, 3 };
  sbx_lb_member_t m[3];
  uint32_t c[3];

  members_init (m, 3, w, 0);
  count_picks (SBX_LB_WEIGHTED_ROUND_ROBIN, m, 3, 3000, c);
  CHECK_EQ (c[0], 500);
  CHECK_EQ (c[1], 1000);
  CHECK_EQ (c[2], 1500);
  CHECK_EQ (m[2].picked, 1500);
  CHECK_EQ (m[2].active, 1500);
}

static void
test_down_member_skipped_and_back (sbx_lb_policy_t policy)
{
  sbx_lb_member_t m[3];
  uint32_t c[3], i;

  members_init (m, 3, 0, 0);
  m[1].down = 1;
  count_picks (policy, m, 3, 3000, c);
  CHECK_EQ (c[1], 0);
  CHECK (c[0] > 1000 && c[2] > 1000);
  CHECK (!sbx_lb_eligible (m, 3, 1));
  CHECK (sbx_lb_eligible (m, 3, 0));
  m[1].down = 0;
  CHECK (sbx_lb_eligible (m, 3, 1));
  /* the first round's flows end (else least-connections rightly gives member 1 everything) */
  for (i = 0; i < 3; i++)
    while (m[i].active)
      sbx_lb_release (&m[i]);
  count_picks (policy, m, 3, 3000, c);
  CHECK (c[0] > 800 && c[1] > 800 && c[2] > 800);
}

static void
test_down_skipped_wrr (void)
{
  test_down_member_skipped_and_back (SBX_LB_WEIGHTED_ROUND_ROBIN);
}

static void
test_down_skipped_least (void)
{
  test_down_member_skipped_and_back (SBX_LB_LEAST_CONNECTIONS);
}

static void
test_down_skipped_hash (void)
{
  test_down_member_skipped_and_back (SBX_LB_FIVE_TUPLE_HASH);
  test_down_member_skipped_and_back (SBX_LB_SOURCE_HASH);
}

/* Members of priority 0 take everything while one of them is up; then priority 5; with every
 * member down, priority 0 again. */
static void
test_priority_failover (void)
{
  static const uint32_t prio[] = { 5, 0, 0, 9 };
  sbx_lb_policy_t p;
  sbx_lb_member_t m[4];
  uint32_t c[4];

  for (p = 0; p < SBX_LB_N_POLICIES; p++)
    {
      members_init (m, 4, 0, prio);
      count_picks (p, m, 4, 600, c);
      CHECK (c[1] > 0 && c[2] > 0);
      CHECK_EQ (c[0] + c[3], 0);

      m[1].down = 1;
      count_picks (p, m, 4, 600, c);
      CHECK_EQ (c[2], 600);

      m[2].down = 1;
      count_picks (p, m, 4, 600, c);
      CHECK_EQ (c[0], 600);

      m[0].down = 1;
      count_picks (p, m, 4, 600, c);
      CHECK_EQ (c[3], 600);

      m[3].down = 1;
      count_picks (p, m, 4, 600, c);
      CHECK_EQ (c[1] + c[2], 600);
      CHECK (sbx_lb_eligible (m, 4, 1) && sbx_lb_eligible (m, 4, 2));
      CHECK (!sbx_lb_eligible (m, 4, 0) && !sbx_lb_eligible (m, 4, 3));

      m[2].down = 0;
      count_picks (p, m, 4, 600, c);
      CHECK_EQ (c[2], 600);
    }
}

/* Least-connections fills the member with the fewest active per weight; releases count. */
static void
test_least_connections (void)
{
  static const uint32_t w[] = { 1, 3 };
  sbx_lb_member_t m[2];
  sbx_lb_flow_t f = flow_n (1, 1);
  uint32_t i;

  members_init (m, 2, w, 0);
  /* ties go to the heavier member */
  CHECK_EQ (sbx_lb_pick (SBX_LB_LEAST_CONNECTIONS, m, 2, &f), 1);
  for (i = 0; i < 399; i++)
    sbx_lb_pick (SBX_LB_LEAST_CONNECTIONS, m, 2, &f);
  CHECK_EQ (m[0].active, 100);
  CHECK_EQ (m[1].active, 300);
  /* member 1's flows end: the next 200 all go to it */
  for (i = 0; i < 200; i++)
    sbx_lb_release (&m[1]);
  for (i = 0; i < 200; i++)
    CHECK_EQ (sbx_lb_pick (SBX_LB_LEAST_CONNECTIONS, m, 2, &f), 1);
  CHECK_EQ (m[1].active, 300);
  CHECK_EQ (m[1].picked, 500);
  /* never below 0 */
  m[0].active = 0;
  sbx_lb_release (&m[0]);
  CHECK_EQ (m[0].active, 0);
}

/* 60,000 flows over weights 1:2:3: each share within 1.5 % of its weight's. */
static void
test_hash_split_follows_weights (void)
{
  static const uint32_t w[] = { 1, 2, 3 };
  sbx_lb_policy_t policies[] = { SBX_LB_SOURCE_HASH, SBX_LB_FIVE_TUPLE_HASH };
  sbx_lb_member_t m[3];
  uint32_t c[3], i, k;

  for (k = 0; k < 2; k++)
    {
      members_init (m, 3, w, 0);
      count_picks (policies[k], m, 3, 60000, c);
      for (i = 0; i < 3; i++)
	if (c[i] < 10000 * w[i] * 985 / 1000 || c[i] > 10000 * w[i] * 1015 / 1000)
	  test_report (__FILE__, __LINE__, "%s member %u: %u of 60000 (weight %u/6)",
		       sbx_lb_policy_name (policies[k]), i, c[i], w[i]);
    }
}

/* A flow keeps its member; when another member goes down, no flow of the remaining ones moves;
 * when it comes back, only flows that move to it move. */
static void
test_hash_sticky (void)
{
  enum
  {
    N = 5000
  };
  static int before[N], after[N];
  sbx_lb_member_t m[3];
  sbx_lb_flow_t f;
  uint32_t i;

  members_init (m, 3, 0, 0);
  for (i = 0; i < N; i++)
    {
      f = flow_n (i, 4000);
      before[i] = sbx_lb_pick (SBX_LB_SOURCE_HASH, m, 3, &f);
      /* the same source from another port: same member (source hash) */
      f.src_port = 4001;
      CHECK_EQ (sbx_lb_pick (SBX_LB_SOURCE_HASH, m, 3, &f), before[i]);
    }
  m[2].down = 1;
  for (i = 0; i < N; i++)
    {
      f = flow_n (i, 4000);
      after[i] = sbx_lb_pick (SBX_LB_SOURCE_HASH, m, 3, &f);
      CHECK (after[i] != 2);
      if (before[i] != 2)
	CHECK_EQ (after[i], before[i]);
    }
  m[2].down = 0;
  for (i = 0; i < N; i++)
    {
      f = flow_n (i, 4000);
      CHECK_EQ (sbx_lb_pick (SBX_LB_SOURCE_HASH, m, 3, &f), before[i]);
    }
}

/* The 5-tuple hash tells ports, destinations and address families apart; the source hash only
 * sources. */
static void
test_flow_hash_inputs (void)
{
  sbx_lb_flow_t a = flow_n (7, 1000), b;

  b = a;
  b.src_port = 1001;
  CHECK (sbx_lb_flow_hash (&a, 1) != sbx_lb_flow_hash (&b, 1));
  CHECK (sbx_lb_flow_hash (&a, 0) == sbx_lb_flow_hash (&b, 0));
  b = a;
  b.dst[3] = 2;
  CHECK (sbx_lb_flow_hash (&a, 1) != sbx_lb_flow_hash (&b, 1));
  CHECK (sbx_lb_flow_hash (&a, 0) == sbx_lb_flow_hash (&b, 0));
  b = a;
  b.src[3] ^= 1;
  CHECK (sbx_lb_flow_hash (&a, 0) != sbx_lb_flow_hash (&b, 0));
  b = a;
  b.is_ip6 = 1;
  CHECK (sbx_lb_flow_hash (&a, 0) != sbx_lb_flow_hash (&b, 0));
  /* bytes past an IPv4 address do not count */
  b = a;
  b.src[10] = 99;
  CHECK (sbx_lb_flow_hash (&a, 1) == sbx_lb_flow_hash (&b, 1));
}

/* A weight of 0 (never configured: YANG's range starts at 1) counts as 1, and reset levels the
 * round-robin state. */
static void
test_weight_zero_and_reset (void)
{
  static const uint32_t w[] = { 0, 1 };
  sbx_lb_member_t m[2];
  uint32_t c[2];

  members_init (m, 2, w, 0);
  count_picks (SBX_LB_WEIGHTED_ROUND_ROBIN, m, 2, 100, c);
  CHECK_EQ (c[0], 50);
  CHECK_EQ (c[1], 50);
  m[0].current = 77;
  sbx_lb_reset (m, 2);
  CHECK_EQ (m[0].current, 0);
  CHECK_EQ (m[1].current, 0);
}

const test_case_t test_cases[] = {
  { "policy_names", test_policy_names },
  { "no_member", test_no_member },
  { "wrr_smooth_sequence", test_wrr_smooth_sequence },
  { "wrr_split_exact", test_wrr_split_exact },
  { "down_skipped_wrr", test_down_skipped_wrr },
  { "down_skipped_least", test_down_skipped_least },
  { "down_skipped_hash", test_down_skipped_hash },
  { "priority_failover", test_priority_failover },
  { "least_connections", test_least_connections },
  { "hash_split_follows_weights", test_hash_split_follows_weights },
  { "hash_sticky", test_hash_sticky },
  { "flow_hash_inputs", test_flow_hash_inputs },
  { "weight_zero_and_reset", test_weight_zero_and_reset },
};
const int n_test_cases = N_OF (test_cases);
