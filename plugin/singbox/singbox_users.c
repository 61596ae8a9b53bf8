/* SPDX-License-Identifier: Apache-2.0
 * Copyright (c) 2026 vpp-singbox authors
 */

/* The SOCKS5 server's users: configured from main, checked from the
 * threads that run the handshakes.
 *
 * A check that needs crypt(3) (a hashed password, other than the last one
 * that matched) does not run there: a SHA-crypt costs milliseconds, a hash
 * with many rounds seconds, and on a VPP thread it held every other session
 * of that thread (and, under users_lock, of every worker) that long. It runs
 * on a thread of its own, singbox_crypt, one at a time; the session waits in
 * state auth and hears the outcome on its own thread by RPC
 * (singbox_server_auth_done). The clear text that last matched a hash is
 * cached, so crypt(3) runs once per distinct password, not per login. */

#define _GNU_SOURCE /* CPU_SET, pthread_attr_setaffinity_np, pthread_setname_np */
#include <crypt.h>
#include <pthread.h>
#include <sched.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <singbox/singbox.h>

/* One check for the crypt thread: everything it needs is copied in, so it
 * touches no VPP data. Allocated by the session's thread, freed there too. */
typedef struct singbox_crypt_job_
{
  struct singbox_crypt_job_ *next;
  u64 session_id;
  u32 user_index;
  u32 user_generation;
  u32 thread_index;
  u8 ok;
  u8 plen;
  char hash[SOCKS5_MAX_CRED_LEN + 1];
  char password[SOCKS5_MAX_CRED_LEN + 1];
} singbox_crypt_job_t;

typedef struct
{
  pthread_t thread;
  pthread_mutex_t lock;
  pthread_cond_t wake;
  singbox_crypt_job_t *head, *tail;
  u8 started;
  u64 n_checks; /* crypt(3) runs, all on the crypt thread */
  u64 n_waits;	/* answers that waited for a full event queue */
  u32 user_generation;
} singbox_crypt_t;

static singbox_crypt_t singbox_crypt = {
  .lock = PTHREAD_MUTEX_INITIALIZER,
  .wake = PTHREAD_COND_INITIALIZER,
};

static void singbox_crypt_start (void);
static void singbox_crypt_done_rpc (void *arg);

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
  u->generation = ++singbox_crypt.user_generation;
  if (is_hash)
    singbox_crypt_start ();
  return 0;
}

/* The crypt thread: checks in the order they came, each answered on the
 * session's own thread. */
static void *
singbox_crypt_thread_fn (void *arg)
{
  singbox_crypt_t *c = &singbox_crypt;
  static struct crypt_data cd; /* 32 KB: zeroed once, as crypt_r asks */
  singbox_crypt_job_t *j;
  char *res;

  /* behind the VPP threads, on any core they leave free */
  setpriority (PRIO_PROCESS, syscall (SYS_gettid), 10);
  while (1)
    {
      pthread_mutex_lock (&c->lock);
      while (!c->head)
	pthread_cond_wait (&c->wake, &c->lock);
      j = c->head;
      c->head = j->next;
      if (!c->head)
	c->tail = 0;
      pthread_mutex_unlock (&c->lock);

      res = crypt_r (j->password, j->hash, &cd);
      j->ok = res && res[0] != '*' && !strcmp (res, j->hash);
      clib_atomic_fetch_add (&c->n_checks, 1);
      /* never dropped: a lost answer would keep the session in auth */
      clib_atomic_fetch_add (&c->n_waits,
			     singbox_rpc_from_foreign (j->thread_index, singbox_crypt_done_rpc, j));
    }
  return 0;
}

/* Main thread, when the first hashed password is configured. */
static void
singbox_crypt_start (void)
{
  singbox_crypt_t *c = &singbox_crypt;
  pthread_attr_t attr;
  cpu_set_t cpus;
  int i;

  if (c->started)
    return;
  pthread_attr_init (&attr);
  pthread_attr_setdetachstate (&attr, PTHREAD_CREATE_DETACHED);
  /* not the core of the thread that creates it (VPP pins its threads) */
  CPU_ZERO (&cpus);
  for (i = 0; i < CPU_SETSIZE && i < sysconf (_SC_NPROCESSORS_ONLN); i++)
    CPU_SET (i, &cpus);
  pthread_attr_setaffinity_np (&attr, sizeof (cpus), &cpus);
  if (pthread_create (&c->thread, &attr, singbox_crypt_thread_fn, 0) == 0)
    {
      pthread_setname_np (c->thread, "singbox_crypt");
      c->started = 1;
    }
  else
    SINGBOX_LOG (SINGBOX_LOG_ERROR, "cannot start the password check thread");
  pthread_attr_destroy (&attr);
}

/* On the session's thread: the crypt thread's answer. The user may have
 * changed or gone meanwhile: then the check says no. */
static void
singbox_crypt_done_rpc (void *arg)
{
  singbox_main_t *sm = &singbox_main;
  singbox_crypt_job_t *j = arg;
  singbox_user_t *u;
  int ok = 0;

  ASSERT (vlib_get_thread_index () == j->thread_index);
  clib_spinlock_lock_if_init (&sm->users_lock);
  if (!pool_is_free_index (sm->users, j->user_index) &&
      (u = pool_elt_at_index (sm->users, j->user_index))->generation == j->user_generation)
    {
      ok = j->ok;
      if (ok)
	{
	  vec_free (u->verified);
	  vec_add (u->verified, j->password, j->plen);
	  u->sessions++;
	}
      else
	u->auth_failures++;
    }
  clib_spinlock_unlock_if_init (&sm->users_lock);
  singbox_server_auth_done (j->session_id, j->user_index, ok);
  clib_memset (j, 0, sizeof (*j));
  clib_mem_free (j);
}

/* On the session's thread (a worker, or main without workers; users change
 * only under the barrier). Clear-text passwords and the cached clear text
 * of a hash are compared here; anything else goes to the crypt thread and
 * the answer is SINGBOX_AUTH_PENDING. */
int
singbox_user_check (u8 *username, u32 ulen, u8 *password, u32 plen, u64 session_id,
		    u32 thread_index, u32 *user_index)
{
  singbox_main_t *sm = &singbox_main;
  singbox_crypt_t *c = &singbox_crypt;
  singbox_crypt_job_t *j;
  singbox_user_t *u;
  u8 *key = 0;
  uword *p;
  int ok;

  vec_add (key, username, ulen);
  p = hash_get_mem (sm->user_by_name, key);
  vec_free (key);
  if (!p)
    return SINGBOX_AUTH_FAILED;
  *user_index = p[0];
  u = pool_elt_at_index (sm->users, p[0]);
  clib_spinlock_lock_if_init (&sm->users_lock);
  if (!u->is_hash)
    ok = vec_len (u->password) == plen && !clib_memcmp (u->password, password, plen);
  else if (u->verified && vec_len (u->verified) == plen &&
	   !clib_memcmp (u->verified, password, plen))
    ok = 1;
  else
    ok = -1;
  if (ok == 1)
    u->sessions++;
  else if (ok == 0)
    u->auth_failures++;
  clib_spinlock_unlock_if_init (&sm->users_lock);
  if (ok >= 0)
    return ok ? SINGBOX_AUTH_OK : SINGBOX_AUTH_FAILED;

  if (!c->started || plen > SOCKS5_MAX_CRED_LEN || vec_len (u->password) > SOCKS5_MAX_CRED_LEN)
    return SINGBOX_AUTH_FAILED;
  j = clib_mem_alloc (sizeof (*j));
  clib_memset (j, 0, sizeof (*j));
  j->session_id = session_id;
  j->user_index = p[0];
  j->user_generation = u->generation;
  j->thread_index = thread_index;
  j->plen = plen;
  clib_memcpy (j->hash, u->password, vec_len (u->password));
  clib_memcpy (j->password, password, plen);
  pthread_mutex_lock (&c->lock);
  if (c->tail)
    c->tail->next = j;
  else
    c->head = j;
  c->tail = j;
  pthread_cond_signal (&c->wake);
  pthread_mutex_unlock (&c->lock);
  return SINGBOX_AUTH_PENDING;
}

u64
singbox_users_crypt_checks (void)
{
  return clib_atomic_load_relax_n (&singbox_crypt.n_checks);
}

/* How many answers found the session's thread's event queue full and
 * waited (singbox_rpc_from_foreign). */
u64
singbox_users_crypt_waits (void)
{
  return clib_atomic_load_relax_n (&singbox_crypt.n_waits);
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
