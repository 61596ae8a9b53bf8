"""The one home of the libsysrepo calls the sysrepo-python 1.7.6 binding does not wrap: NACM (`sr_nacm_*`),
notification replay support (`sr_get/set_module_replay_support`), the repository path and operational poll
subscriptions (`sr_oper_poll_subscribe`, agent/oper_poll.py), through one cffi ABI
instance on the library the binding already loaded.

The binding's own cffi module (`_sysrepo`) is used directly where it is the binding's API (session and connection
pointers, `sr_notif_subscribe_tree` and `sr_module_change_subscribe` with our callbacks: `replay.py`,
`change_notice.py`); pointers cross between the two cffi instances through `session_ptr` / `conn_ptr`.
"""

from __future__ import annotations

from typing import Any

import cffi
import sysrepo

from _sysrepo import ffi as sr_ffi

ffi = cffi.FFI()
ffi.cdef(
    """
    typedef struct sr_conn_ctx_s sr_conn_ctx_t;
    typedef struct sr_session_ctx_s sr_session_ctx_t;
    typedef struct sr_subscription_ctx_s sr_subscription_ctx_t;
    struct lyd_node;
    struct timespec { long tv_sec; long tv_nsec; };
    int sr_nacm_init(sr_session_ctx_t *session, uint32_t opts, sr_subscription_ctx_t **sub);
    void sr_nacm_destroy(void);
    int sr_nacm_set_user(sr_session_ctx_t *session, const char *user);
    const char *sr_nacm_get_user(sr_session_ctx_t *session);
    const char *sr_nacm_get_recovery_user(void);
    int sr_nacm_check_operation(sr_session_ctx_t *session, const struct lyd_node *op);
    sr_conn_ctx_t *sr_session_get_connection(sr_session_ctx_t *session);
    int sr_session_start(sr_conn_ctx_t *conn, int datastore, sr_session_ctx_t **session);
    int sr_session_stop(sr_session_ctx_t *session);
    int sr_unsubscribe(sr_subscription_ctx_t *subscription);
    int sr_get_module_replay_support(sr_conn_ctx_t *conn, const char *module_name, struct timespec *earliest_notif,
                                     int *enabled);
    int sr_set_module_replay_support(sr_conn_ctx_t *conn, const char *module_name, int enable);
    const char *sr_get_repo_path(void);
    int sr_oper_poll_subscribe(sr_session_ctx_t *session, const char *module_name, const char *path, uint32_t valid_ms,
                               uint32_t opts, sr_subscription_ctx_t **subscription);
    """
)
lib: Any = ffi.dlopen("libsysrepo.so.7")
SR_SUBSCR_OPER_POLL_DIFF = 0x80  # sr_subscr_flag_t: report what changed between two polls (agent/oper_poll.py)


def session_ptr(session: Any) -> Any:
    """The `sr_session_ctx_t *` of a binding session, as a pointer of this module's cffi instance."""
    return ffi.cast("sr_session_ctx_t *", int(sr_ffi.cast("uintptr_t", session.cdata)))


def conn_ptr(conn: sysrepo.SysrepoConnection | Any) -> Any:
    """A connection, or the binding's C pointer of one, as this module's `sr_conn_ctx_t *`."""
    cdata = conn.cdata if isinstance(conn, sysrepo.SysrepoConnection) else conn
    return ffi.cast("sr_conn_ctx_t *", int(sr_ffi.cast("uintptr_t", cdata)))


def repo_path() -> str:
    return str(ffi.string(lib.sr_get_repo_path()).decode())
