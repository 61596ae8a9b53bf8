/* SPDX-License-Identifier: Apache-2.0
 * Copyright (c) 2026 vpp-singbox authors
 */

/* The SOCKS5 server's users: configured from main, checked from the
 * workers that run the handshakes. */

#include <crypt.h>
#include <singbox/singbox.h>

int
singbox_user_add_del (int is_add, u8 *username, u8 *password, u8 is_hash)
{
  singbox_main_t *sm = &singbox_main;
  u32 ulen = strnlen ((char *) username, 256);
  u32 plen = password ? strnlen ((char *) password, 256) : 0;
  singbox_user_t *u = 0;
  uword *p;
  u8 *key;

  if (ulen == 0 || ulen > SOCKS5_MAX_CRED_LEN)
    return VNET_API_ERROR_INVALID_VALUE;
  key = format (0, "%s", username);
  p = hash_get_mem (sm->user_by_name, key);
  if (p)
    u = pool_elt_at_index (sm->users, p[0]);

  if (!is_add)
    {
      vec_free (key);
      if (!u)
	return VNET_API_ERROR_NO_SUCH_ENTRY;
      hash_unset_mem (sm->user_by_name, u->username);
      vec_free (u->username);
      vec_free (u->password);
      vec_free (u->verified);
      pool_put (sm->users, u);
      return 0;
    }

  if (plen == 0 || plen > SOCKS5_MAX_CRED_LEN || (is_hash && password[0] != '$'))
    {
      vec_free (key);
      return VNET_API_ERROR_INVALID_VALUE;
    }

  if (!u)
    {
      pool_get_zero (sm->users, u);
      u->username = key;
      hash_set_mem (sm->user_by_name, u->username, u - sm->users);
    }
  else
    vec_free (key);
  vec_free (u->password);
  vec_free (u->verified);
  vec_add (u->password, password, plen);
  u->is_hash = is_hash;
  return 0;
}

static int
singbox_password_matches (singbox_user_t *u, u8 *password, u32 plen)
{
  struct crypt_data *cd;
  char *clear, *res;
  int ok;

  if (!u->is_hash)
    return vec_len (u->password) == plen && !clib_memcmp (u->password, password, plen);

  if (u->verified && vec_len (u->verified) == plen && !clib_memcmp (u->verified, password, plen))
    return 1;

  /* crypt_r needs C strings; the hash is stored without the NUL */
  cd = clib_mem_alloc (sizeof (*cd));
  clib_memset (cd, 0, sizeof (*cd));
  clear = (char *) format (0, "%.*s%c", plen, password, 0);
  u8 *setting = format (0, "%v%c", u->password, 0);
  res = crypt_r (clear, (char *) setting, cd);
  ok = res && res[0] != '*' && strlen (res) == vec_len (u->password) &&
       !clib_memcmp (res, u->password, vec_len (u->password));
  if (ok)
    {
      vec_free (u->verified);
      vec_add (u->verified, password, plen);
    }
  clib_memset (clear, 0, plen);
  vec_free (clear);
  vec_free (setting);
  clib_mem_free (cd);
  return ok;
}

/* Called from workers; users change only under the barrier. */
int
singbox_user_check (u8 *username, u32 ulen, u8 *password, u32 plen, u32 *user_index)
{
  singbox_main_t *sm = &singbox_main;
  singbox_user_t *u;
  u8 *key = 0;
  uword *p;
  int ok = 0;

  vec_add (key, username, ulen);
  p = hash_get_mem (sm->user_by_name, key);
  vec_free (key);
  if (!p)
    return 0;
  u = pool_elt_at_index (sm->users, p[0]);
  clib_spinlock_lock_if_init (&sm->users_lock);
  ok = singbox_password_matches (u, password, plen);
  if (ok)
    u->sessions++;
  else
    u->auth_failures++;
  clib_spinlock_unlock_if_init (&sm->users_lock);
  *user_index = p[0];
  return ok;
}

void
singbox_users_clear_counters (void)
{
  singbox_main_t *sm = &singbox_main;
  u32 i;

  pool_foreach_index (i, sm->users)
    {
      sm->users[i].auth_failures = 0;
      sm->users[i].sessions = 0;
    }
}

void
singbox_users_init (void)
{
  singbox_main.user_by_name = hash_create_vec (0, sizeof (u8), sizeof (uword));
}
