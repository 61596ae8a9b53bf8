/* SPDX-License-Identifier: Apache-2.0
 * Copyright (c) 2026 vpp-singbox authors
 */

/*
 * Drives the HTTP CONNECT core as the plugin does (bytes arriving in chunks, a fifo keeping what
 * was not consumed, the server's caller answering REQUEST) and records what happened, checking
 * the API contract on every call. Shared by the unit tests and the fuzzers.
 */

#ifndef included_http_connect_driver_h
#define included_http_connect_driver_h

#include "http_connect_proto.h"

typedef struct
{
  http_connect_event_type_t type; /* the last event other than NEED_DATA */
  http_connect_error_t error;
  uint16_t status;
  uint32_t consumed; /* input bytes taken */
  int contract_broken;
  /* server: the request seen */
  int have_request;
  char host[HTTP_CONNECT_MAX_HOST_LEN + 1];
  uint8_t host_len;
  uint8_t host_is_ip6;
  uint16_t port;
  uint8_t auth;
  uint8_t user[HTTP_CONNECT_MAX_CRED_LEN];
  uint8_t pass[HTTP_CONNECT_MAX_CRED_LEN];
  uint8_t user_len;
  uint8_t pass_len;
  /* server: everything sent back */
  uint8_t out[2 * HTTP_CONNECT_RESPONSE_MAX];
  uint32_t out_len;
} hc_result_t;

/*
 * Feed data in chunks of sizes[k % n_sizes] (0 counts as 1; n_sizes 0: all at once). The server
 * answers a REQUEST with reply_status (0: leave it waiting).
 */
void hc_drive_client (const uint8_t *data, uint32_t len, const uint8_t *sizes, uint32_t n_sizes,
		      hc_result_t *r);
void hc_drive_server (const uint8_t *data, uint32_t len, const uint8_t *sizes, uint32_t n_sizes,
		      uint16_t reply_status, hc_result_t *r);
/* Same outcome, consumption, request and output: 1 if so. */
int hc_result_equal (const hc_result_t *a, const hc_result_t *b);

#endif /* included_http_connect_driver_h */
