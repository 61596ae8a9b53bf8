/* SPDX-License-Identifier: Apache-2.0
 * Copyright (c) 2026 vpp-singbox authors
 */

/*
 * Drives the sans-IO core the way a transport adapter does (bytes arriving in chunks, a fifo that
 * keeps what the core did not consume, the caller answering AUTH_REQUEST and REQUEST), records
 * everything that happened in a transcript and checks the API contract on every call. Shared by
 * the unit tests and the fuzzers, so both exercise the same calling pattern the plugin uses.
 */

#ifndef included_socks5_driver_h
#define included_socks5_driver_h

#include "socks5_proto.h"

#define DRIVER_MAX_EVENTS 8
#define DRIVER_OUT_MAX	  4096

/* How the caller of the server answers. */
typedef struct
{
  /* Credentials the "user database" accepts; accept_any ignores them. */
  const uint8_t *user;
  const uint8_t *pass;
  uint8_t user_len;
  uint8_t pass_len;
  uint8_t accept_any;
  /* Reply to a REQUEST: rep, and bnd (NULL: 0.0.0.0:0). */
  uint8_t rep;
  const socks5_addr_t *bnd;
} driver_server_policy_t;

/*
 * Chunk sizes in which bytes arrive, used cyclically; a chunk of 0 counts as 1. NULL or n == 0:
 * everything at once.
 */
typedef struct
{
  const uint8_t *sizes;
  uint32_t n;
} driver_splits_t;

typedef struct
{
  uint8_t out[DRIVER_OUT_MAX]; /* everything the core asked to send, in order */
  uint32_t out_len;
  uint32_t consumed; /* input bytes taken by the core */
  int n_events;	     /* events other than NEED_DATA and PAUSED */
  socks5_event_type_t events[DRIVER_MAX_EVENTS];
  int have_auth;
  uint8_t user[SOCKS5_MAX_CRED_LEN];
  uint8_t pass[SOCKS5_MAX_CRED_LEN];
  uint8_t user_len;
  uint8_t pass_len;
  uint8_t method;
  int have_request;
  uint8_t cmd;
  socks5_addr_t addr; /* server: DST of the request; client: BND of the reply */
  int have_error;
  socks5_error_t error;
  uint8_t rep;
  uint8_t remote;
  int final_state;
  /* First broken API promise seen, or NULL. */
  const char *violation;
} driver_transcript_t;

void driver_server_run (const socks5_server_cfg_t *cfg, const driver_server_policy_t *policy,
			const uint8_t *in, uint32_t len, const driver_splits_t *splits,
			driver_transcript_t *t);
void driver_client_run (const socks5_client_cfg_t *cfg, const uint8_t *in, uint32_t len,
			const driver_splits_t *splits, driver_transcript_t *t);
/* Same events, same bytes out, same consumption, same final state. */
int driver_transcript_equal (const driver_transcript_t *a, const driver_transcript_t *b);

/*
 * Runs a client against a server in process. After a successful reply the server side writes
 * relay_data, which must stay unconsumed by the client. Returns 0 or a description of what went
 * wrong; client and server transcripts are filled in either case.
 */
typedef struct
{
  driver_transcript_t client;
  driver_transcript_t server;
  /* Bytes that followed the reply and were left for the relay, as the client side sees them. */
  uint8_t left[DRIVER_OUT_MAX];
  uint32_t left_len;
} driver_pair_t;

const char *driver_pair_run (const socks5_client_cfg_t *ccfg, const socks5_server_cfg_t *scfg,
			     const driver_server_policy_t *policy, const driver_splits_t *c2s,
			     const driver_splits_t *s2c, const uint8_t *relay_data,
			     uint32_t relay_len, driver_pair_t *p);

#endif /* included_socks5_driver_h */
