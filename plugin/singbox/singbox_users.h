/* SPDX-License-Identifier: Apache-2.0
 * Copyright (c) 2026 vpp-singbox authors
 */

/* The SOCKS5 server's users and their password check (singbox_users.c). */

#ifndef __included_singbox_users_h__
#define __included_singbox_users_h__

#include <vppinfra/types.h>

typedef struct
{
  u8 *username; /* vec, not terminated */
  u8 *password; /* vec: clear text, or a crypt(3) hash when is_hash */
  u8 is_hash;
  /* Clear text that last matched the hash, so crypt_r runs once per
   * distinct password instead of once per login. */
  u8 *verified;
  u64 auth_failures;
  u64 sessions;
  /* changes with the password: a check started before answers nothing */
  u32 generation;
} singbox_user_t;

/* singbox_user_check's answers */
#define SINGBOX_AUTH_FAILED  0
#define SINGBOX_AUTH_OK	     1
#define SINGBOX_AUTH_PENDING 2 /* crypt(3) runs off the VPP threads */

/* singbox_users.c */
void singbox_users_init (void);
int singbox_user_add_del (int is_add, u8 *username, u8 *password, u8 is_hash);
int singbox_user_check (u8 *username, u32 ulen, u8 *password, u32 plen, u64 session_id,
			u32 thread_index, u32 *user_index);
void singbox_users_clear_counters (void);
u64 singbox_users_crypt_checks (void);
u64 singbox_users_crypt_waits (void);

#endif /* __included_singbox_users_h__ */
