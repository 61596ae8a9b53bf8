"""The one home of raw libsysrepo calls: those the sysrepo-python 1.7.6 binding does not wrap — NACM (`sr_nacm_*`),
notification replay support (`sr_get/set_module_replay_support`), the repository path, operational poll
subscriptions (`sr_oper_poll_subscribe`, agent/oper_poll.py) and sysrepo's subscribed notifications (`srsn_*`,
subscriptions/srsn.py) — through one cffi ABI instance on the library the binding already loaded (`ffi`, `lib`);
and the binding's own cffi module (`_sysrepo`), used where the binding's pointers or its compiled callbacks are
needed: change iteration in a change event (`changes`), notification subscriptions with every event
(`notif_subscribe_tree`, whose Python side replaces the binding's once: see its docstring), reads with flags the
binding does not pass (`get_data`), operations' output (`rpc_send`), a session's originator (`set_originator`,
`originator_chunk`); and the installation of modules with their group and permissions in one call
(`install_modules`: sr_install_modules2) and changes of those (`set_module_access`: sr_set_module_ds_access), which
the binding does not wrap and `singbox_agent.repository` needs instead of sysrepoctl. Pointers cross between
the two cffi instances through `session_ptr` / `conn_ptr`. No cffi ABI callback anywhere (`ffi.callback` needs a
writable and executable page: the units run with MemoryDenyWriteExecute=yes).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import cffi
import sysrepo
import sysrepo.subscription
import structlog
from sysrepo.errors import check_call
from sysrepo.session import SysrepoSession
from sysrepo.subscription import Subscription

from _sysrepo import ffi as sr_ffi
from _sysrepo import lib as sr_lib

log = structlog.get_logger("mgmt.libsysrepo")

# sr_datastore_t, sr_error_t values and change operations, from the binding's own declarations of sysrepo.h
DATASTORES = {"startup": sr_lib.SR_DS_STARTUP, "running": sr_lib.SR_DS_RUNNING,
              "candidate": sr_lib.SR_DS_CANDIDATE, "operational": sr_lib.SR_DS_OPERATIONAL}
ERR_OK = sr_lib.SR_ERR_OK
ERR_TIME_OUT = sr_lib.SR_ERR_TIME_OUT
ERR_UNSUPPORTED = sr_lib.SR_ERR_UNSUPPORTED
OP_CREATED = sr_lib.SR_OP_CREATED
OP_MODIFIED = sr_lib.SR_OP_MODIFIED

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
    void sr_session_del_orig_data(sr_session_ctx_t *session);
    int sr_get_module_replay_support(sr_conn_ctx_t *conn, const char *module_name, struct timespec *earliest_notif,
                                     int *enabled);
    int sr_set_module_replay_support(sr_conn_ctx_t *conn, const char *module_name, int enable);
    const char *sr_get_repo_path(void);
    const char *sr_get_shm_prefix(void);
    const char *sr_get_shm_path(void);
    const char *sr_strerror(int err_code);
    typedef struct { int err_code; char *message; char *error_format; void *error_data; } sr_error_info_err_t;
    typedef struct { sr_error_info_err_t *err; uint32_t err_count; } sr_error_info_t;
    int sr_session_get_error(sr_session_ctx_t *session, const sr_error_info_t **error_info);
    int sr_err_get_netconf_error(const sr_error_info_err_t *err, const char **error_type, const char **error_tag,
            const char **error_app_tag, const char **error_path, const char **error_message,
            const char ***error_info_elements, const char ***error_info_values, uint32_t *error_info_count);
    void free(void *ptr);
    struct ly_ctx;
    typedef enum { SRSN_SUB_NOTIF, SRSN_YANG_PUSH_PERIODIC, SRSN_YANG_PUSH_ON_CHANGE } srsn_sub_type_t;
    typedef struct {
        uint32_t sub_id;
        char *xpath_filter;
        struct timespec stop_time;
        uint32_t sent_count;
        uint32_t excluded_count;
        int suspended;
        srsn_sub_type_t type;
        union {
            struct { char *stream; struct timespec start_time; } sub_notif;
            struct { int ds; uint32_t period; struct timespec anchor_time; } yp_periodic;
            struct { int ds; uint32_t dampening_period; int sync_on_start; int excluded_change[5]; } yp_on_change;
        };
    } srsn_state_sub_t;
    int srsn_subscribe(sr_session_ctx_t *session, const char *stream, const char *xpath_filter,
            const struct timespec *stop_time, const struct timespec *start_time, int sub_no_thread,
            sr_subscription_ctx_t **sub, struct timespec *replay_start_time, int *fd, uint32_t *sub_id);
    int srsn_yang_push_periodic(sr_session_ctx_t *session, int ds, const char *xpath_filter, uint32_t period_ms,
            const struct timespec *anchor_time, const struct timespec *stop_time, int *fd, uint32_t *sub_id);
    int srsn_yang_push_on_change(sr_session_ctx_t *session, int ds, const char *xpath_filter,
            uint32_t dampening_period_ms, int sync_on_start, int excluded_changes[5],
            const struct timespec *stop_time, int sub_no_thread, sr_subscription_ctx_t **sub, int *fd,
            uint32_t *sub_id);
    int srsn_yang_push_on_change_resync(uint32_t sub_id);
    int srsn_modify_xpath_filter(uint32_t sub_id, const char *xpath_filter);
    int srsn_modify_stop_time(uint32_t sub_id, const struct timespec *stop_time);
    int srsn_yang_push_modify_periodic(uint32_t sub_id, uint32_t period_ms, const struct timespec *anchor_time);
    int srsn_yang_push_modify_on_change(uint32_t sub_id, uint32_t dampening_period_ms);
    int srsn_suspend(uint32_t sub_id, const char *reason);
    int srsn_resume(uint32_t sub_id);
    int srsn_terminate(uint32_t sub_id, const char *reason);
    int srsn_oper_data_subscriptions(srsn_state_sub_t **subs, uint32_t *count);
    void srsn_oper_data_subscriptions_free(srsn_state_sub_t *subs, uint32_t count);
    int srsn_read_notif(int fd, const struct ly_ctx *ly_ctx, struct timespec *timestamp, struct lyd_node **notif);
    int srsn_poll(int fd, uint32_t timeout_ms);
    int srsn_notif_sent(uint32_t sub_id);
    typedef int (*sr_oper_get_items_cb)(sr_session_ctx_t *session, uint32_t sub_id, const char *module_name,
            const char *path, const char *request_xpath, uint32_t request_id, struct lyd_node **parent,
            void *private_data);
    int sr_oper_get_subscribe(sr_session_ctx_t *session, const char *module_name, const char *path,
            sr_oper_get_items_cb callback, void *private_data, uint32_t opts, sr_subscription_ctx_t **subscription);
    int srsn_oper_data_streams_cb(sr_session_ctx_t *session, uint32_t sub_id, const char *module_name,
            const char *path, const char *request_xpath, uint32_t request_id, struct lyd_node **parent,
            void *private_data);
    int sr_oper_poll_subscribe(sr_session_ctx_t *session, const char *module_name, const char *path, uint32_t valid_ms,
                               uint32_t opts, sr_subscription_ctx_t **subscription);
    const struct lyd_node *sr_get_change_diff(sr_session_ctx_t *session);
    typedef unsigned int mode_t;
    typedef struct { const char *plugin_name[6]; } sr_module_ds_t;
    typedef struct {
        union { const char *schema_path; const char *schema_yang; };
        const char **features;
        sr_module_ds_t module_ds;
        const char *owner;
        const char *group;
        mode_t perm;
    } sr_install_mod_t;
    const sr_module_ds_t *sr_get_module_ds_default(void);
    int sr_install_modules2(sr_conn_ctx_t *conn, const sr_install_mod_t *modules, uint32_t module_count,
            const char *search_dirs, const char *data, const char *data_path, int format);
    int sr_set_module_ds_access(sr_conn_ctx_t *conn, const char *module_name, int mod_ds, const char *owner,
            const char *group, mode_t perm);
    """
)
lib: Any = ffi.dlopen("libsysrepo.so.7")
SR_SUBSCR_OPER_POLL_DIFF = 0x80  # sr_subscr_flag_t: report what changed between two polls (agent/oper_poll.py)
# sysrepo_types.h: the datastores of sr_datastore_t (startup .. factory-default) and SR_MOD_DS_NOTIF, each with its own
# files and access rights (SR_MOD_DS_PLUGIN_COUNT)
MOD_DS_COUNT = 6


def session_ptr(session: Any) -> Any:
    """The `sr_session_ctx_t *` of a binding session, as a pointer of this module's cffi instance."""
    return ffi.cast("sr_session_ctx_t *", int(sr_ffi.cast("uintptr_t", session.cdata)))


def conn_ptr(conn: sysrepo.SysrepoConnection | Any) -> Any:
    """A connection, or the binding's C pointer of one, as this module's `sr_conn_ctx_t *`."""
    cdata = conn.cdata if isinstance(conn, sysrepo.SysrepoConnection) else conn
    return ffi.cast("sr_conn_ctx_t *", int(sr_ffi.cast("uintptr_t", cdata)))


def repo_path() -> str:
    return str(ffi.string(lib.sr_get_repo_path()).decode())


def instance_paths() -> tuple[str, str, str]:
    """The repository path, SHM prefix and SHM directory libsysrepo uses in this process: fixed at their first use
    (each function caches what the environment said then), set from the environment now when not used yet."""
    return (repo_path(), str(ffi.string(lib.sr_get_shm_prefix()).decode()),
            str(ffi.string(lib.sr_get_shm_path()).decode()))


def strerror(rc: int) -> str:
    return str(ffi.string(lib.sr_strerror(rc)).decode(errors="replace"))


def session_error(session: Any) -> str:
    """The messages of the last error on a binding session ("" when none)."""
    info = ffi.new("const sr_error_info_t **")
    if session is None or lib.sr_session_get_error(session_ptr(session), info) != 0 or info[0] == ffi.NULL:
        return ""
    return "; ".join(ffi.string(info[0].err[i].message).decode(errors="replace")
                     for i in range(info[0].err_count) if info[0].err[i].message != ffi.NULL)


@dataclass(frozen=True)
class NetconfError:
    """One error sysrepo recorded in NETCONF form (`error_format` "NETCONF": its NACM refusals, a subscriber's
    `sr_session_set_netconf_error`), as `sr_err_get_netconf_error` reads it."""

    error_type: str
    error_tag: str
    error_app_tag: str | None
    error_path: str | None
    error_message: str
    info: tuple[tuple[str, str], ...]


def _text(pointer: Any) -> str | None:
    return None if pointer == ffi.NULL else str(ffi.string(pointer).decode(errors="replace"))


def netconf_errors(session: Any) -> list[NetconfError]:
    """The NETCONF-form errors of the last error on a binding session (none when it has none): read before any
    other call on the session, which replaces it. A NACM refusal of a write is error-type protocol, error-tag
    access-denied, error-path the refused node (sysrepo's `sr_errinfo_new_nacm`), which the binding's exception
    does not carry."""
    info = ffi.new("const sr_error_info_t **")
    if session is None or lib.sr_session_get_error(session_ptr(session), info) != 0 or info[0] == ffi.NULL:
        return []
    out: list[NetconfError] = []
    fields = [ffi.new("const char **") for _ in range(5)]
    elements, values, count = ffi.new("const char ***"), ffi.new("const char ***"), ffi.new("uint32_t *")
    for i in range(info[0].err_count):
        err = info[0].err + i
        if err.error_format == ffi.NULL or ffi.string(err.error_format) != b"NETCONF":
            continue
        if lib.sr_err_get_netconf_error(err, *fields, elements, values, count) != 0:
            continue
        try:
            pairs = tuple((_text(elements[0][j]) or "", _text(values[0][j]) or "") for j in range(count[0]))
        finally:
            lib.free(ffi.cast("void *", elements[0]))
            lib.free(ffi.cast("void *", values[0]))
        etype, tag, app_tag, path, message = (_text(f[0]) for f in fields)
        out.append(NetconfError(etype or "application", tag or "operation-failed", app_tag, path, message or "",
                                pairs))
    return out


def changes(event_session: Any, xpath: str) -> Iterator[tuple[int, int, bool]]:
    """In a change event (the implicit session's C pointer, the binding's): (operation, the address of the node's
    `struct lyd_node`, whether the previous value was a default) of each changed node under `xpath`, without the
    binding's per-node Python objects. Nothing when sysrepo cannot iterate."""
    it = sr_ffi.new("sr_change_iter_t **")
    if sr_lib.sr_get_changes_iter(event_session, xpath.encode(), it) != sr_lib.SR_ERR_OK:
        return
    op = sr_ffi.new("sr_change_oper_t *")
    node = sr_ffi.new("struct lyd_node **")
    prev_value = sr_ffi.new("char **")
    prev_list = sr_ffi.new("char **")
    prev_dflt = sr_ffi.new("int *")
    try:
        while sr_lib.sr_get_change_tree_next(event_session, it[0], op, node, prev_value, prev_list,
                                             prev_dflt) == sr_lib.SR_ERR_OK:
            yield int(op[0]), int(sr_ffi.cast("uintptr_t", node[0])), bool(prev_dflt[0])
    finally:
        sr_lib.sr_free_change_iter(it[0])


def change_diff(event_session: Any) -> int:
    """In a change callback (the implicit session, the binding's): the address of the first node of sysrepo's diff
    of the change (`const struct lyd_node *`, valid during the callback, not to be modified); 0 when there is
    none."""
    return int(ffi.cast("uintptr_t", lib.sr_get_change_diff(session_ptr(event_session))))


# (sr_ev_notif_type_t, the notification tree (C pointer, NULL for the events without one), its struct timespec *):
# sysrepo's thread, the tree valid during the call only; must not raise.
NotifEvent = Callable[[int, Any, Any], None]


class _NotifSub(Subscription):
    """A subscription made by `notif_subscribe_tree`: what `_dispatch` recognises as ours."""

    def __init__(self, on_event: NotifEvent) -> None:
        super().__init__(lambda *_: None)
        self.on_event = on_event


_binding_notif_callback = sysrepo.subscription.event_notif_tree_callback


def _dispatch(session: Any, sub_id: int, notif_type: int, notif: Any, timestamp: Any, priv: Any) -> None:
    """The Python side of the binding's compiled notification callback (sysrepo's thread): never raises."""
    try:
        sub = sr_ffi.from_handle(priv)
        if isinstance(sub, _NotifSub):
            sub.on_event(notif_type, notif, timestamp)
            return
    except BaseException:  # noqa: BLE001 - a C callback must not raise
        log.exception("notification callback failed")
        return
    _binding_notif_callback(session, sub_id, notif_type, notif, timestamp, priv)  # catches what it raises itself


# The binding's notification callback drops the events without a notification (replay complete, stop time), which
# RFC 5277 needs; a cffi ABI callback of ours would need a writable+executable page. So its compiled stub
# (`srpy_event_notif_tree_cb`, a cffi `extern "Python"` inside the binding's shared object) gets `_dispatch` as its
# Python side: our subscriptions get every event, the binding's own subscriptions go to its function unchanged.
sr_ffi.def_extern(name="srpy_event_notif_tree_cb")(_dispatch)


def _timespec(when: float | None) -> Any:
    """NULL when unset: sysrepo compares any stop time it is given with the start time, zero included."""
    if when is None:
        return sr_ffi.NULL
    ts = sr_ffi.new("struct timespec *")
    ts.tv_sec, ts.tv_nsec = int(when), int((when % 1) * 1e9)
    return ts


def notif_subscribe_tree(session: Any, module: str, xpath: str | None, start: float | None, stop: float | None,
                         on_event: NotifEvent) -> None:
    """sr_notif_subscribe_tree on a binding session with every event (replay-complete and stop-time included)
    passed to `on_event`; stopping the session ends it."""
    sub = _NotifSub(on_event)
    sub_p = sr_ffi.new("sr_subscription_ctx_t **")
    ret = sr_lib.sr_notif_subscribe_tree(session.cdata, module.encode(), xpath.encode() if xpath else sr_ffi.NULL,
                                         _timespec(start), _timespec(stop), sr_lib.srpy_event_notif_tree_cb,
                                         sub.handle, 0, sub_p)
    if ret != 0:
        raise sysrepo.SysrepoError.new(f"notification subscription to {module} failed", ret)
    sub.init(sub_p[0])
    session.subscriptions.append(sub)


def session_connection(session: Any) -> Any:
    """The `sr_conn_ctx_t *` (the binding's) of a binding session."""
    return sr_lib.sr_session_get_connection(session.cdata)


# sr_get_oper_flag_t (sysrepo_types.h); the binding's cdef leaves SR_OPER_WITH_ORIGIN out.
OPER_NO_STATE = sr_lib.SR_OPER_NO_STATE
OPER_NO_CONFIG = sr_lib.SR_OPER_NO_CONFIG
OPER_WITH_ORIGIN = 0x10


@contextmanager
def get_data(session: Any, xpath: str, max_depth: int = 0, flags: int = 0) -> Iterator[Any]:
    """sr_get_data on a binding session: yields the `struct lyd_node *` (the binding's cffi) of the selected data,
    or None when there is none; sysrepo's data is released after the block. :raises sysrepo.SysrepoError:"""
    data = sr_ffi.new("sr_data_t **")
    try:
        check_call(sr_lib.sr_get_data, session.cdata, xpath.encode(), max_depth, 0, flags, data)
    except sysrepo.SysrepoNotFoundError:
        yield None
        return
    try:
        yield None if data[0] == sr_ffi.NULL or data[0].tree == sr_ffi.NULL else data[0].tree
    finally:
        if data[0] != sr_ffi.NULL:
            sr_lib.sr_release_data(data[0])


def exists_without_nacm(session: Any, path: str) -> bool:
    """Whether `path` names a node of the binding session's datastore, read by a new session of its connection,
    which has no NACM user (not `session` itself: NACM prunes its reads; nor a shared one: another thread may use
    it). True when it cannot tell."""
    out = sr_ffi.new("sr_session_ctx_t **")
    ds = DATASTORES.get(session.get_datastore())
    if ds is None or sr_lib.sr_session_start(session_connection(session), ds, out) != sr_lib.SR_ERR_OK:
        return True
    reader = SysrepoSession(out[0])
    try:
        with get_data(reader, path, 1) as data:
            return data is not None
    except sysrepo.SysrepoError:
        return True
    finally:
        reader.stop()


@contextmanager
def rpc_send(session: Any, op: Any, timeout_ms: int = 0) -> Iterator[Any]:
    """sr_rpc_send_tree of an operation (`libyang.DNode`): yields the output's `struct lyd_node *`, or None for an
    operation without output (the binding's `rpc_send_ly` raises for that success). `timeout_ms`: for its
    subscribers, 0: sysrepo's default. :raises sysrepo.SysrepoError:"""
    out = sr_ffi.new("sr_data_t **")
    check_call(sr_lib.sr_rpc_send_tree, session.cdata, sr_ffi.cast("struct lyd_node *", op.cdata), timeout_ms, out)
    try:
        yield None if out[0] == sr_ffi.NULL or out[0].tree == sr_ffi.NULL else out[0].tree
    finally:
        if out[0] != sr_ffi.NULL:
            sr_lib.sr_release_data(out[0])


def set_originator(session: Any, name: str, chunks: Sequence[bytes]) -> None:
    """The session's originator (what change and notification events tell their subscribers): `name` and its data
    chunks, replacing any earlier."""
    lib.sr_session_del_orig_data(session_ptr(session))
    check_call(sr_lib.sr_session_set_orig_name, session.cdata, name.encode())
    for chunk in chunks:
        check_call(sr_lib.sr_session_push_orig_data, session.cdata, len(chunk), chunk)


def originator_chunk(event_session: Any, name: str, index: int) -> bytes | None:
    """In an event: data chunk `index` of its originator when that is `name`, else None."""
    orig = sr_lib.sr_session_get_orig_name(event_session.cdata)
    if orig == sr_ffi.NULL or sr_ffi.string(orig).decode() != name:
        return None
    size = sr_ffi.new("uint32_t *")
    data = sr_ffi.new("void **")
    if sr_lib.sr_session_get_orig_data(event_session.cdata, index, size, data) != sr_lib.SR_ERR_OK:
        return None
    return bytes(sr_ffi.buffer(sr_ffi.cast("char *", data[0]), size[0]))


@dataclass(frozen=True)
class ModuleInstall:
    """One module for `install_modules`: its schema file, the features to enable ('*': all), and the group and
    permissions of its data (None, 0: the process's group, sysrepo's default permissions)."""

    schema_path: str
    features: Sequence[str] = ()
    group: str | None = None
    perm: int = 0


def install_modules(conn: sysrepo.SysrepoConnection, modules: Sequence[ModuleInstall], search_dirs: str) -> None:
    """sr_install_modules2: every module with its features, group and permissions in one call — one rebuild of
    sysrepo's context (what `sysrepoctl -i F -e X -g G -p P -i ...` does; the binding's `install_modules` takes
    neither group nor permissions). Each module gets sysrepo's default datastore plugins, as sysrepoctl gives it:
    in sr_install_mod_t a NULL running plugin would mean "running mirrors startup".
    :raises sysrepo.SysrepoError:"""
    if not modules:
        return
    keep: list[Any] = []  # the C strings and arrays, alive until the call returns

    def c_str(value: str | None) -> Any:
        if value is None:
            return ffi.NULL
        keep.append(ffi.new("char[]", value.encode()))
        return keep[-1]

    defaults = lib.sr_get_module_ds_default()
    items = ffi.new("sr_install_mod_t[]", len(modules))
    for item, module in zip(items, modules):
        item.schema_path = c_str(module.schema_path)
        if module.features:
            keep.append(ffi.new("const char *[]", [c_str(f) for f in module.features] + [ffi.NULL]))
            item.features = keep[-1]
        for ds in range(MOD_DS_COUNT):
            item.module_ds.plugin_name[ds] = defaults.plugin_name[ds]
        item.group = c_str(module.group)
        item.perm = module.perm
    rc = lib.sr_install_modules2(conn_ptr(conn), items, len(modules), c_str(search_dirs or None), ffi.NULL, ffi.NULL,
                                 0)
    if rc != ERR_OK:
        raise sysrepo.SysrepoError.new("installing " + ", ".join(m.schema_path for m in modules) + " failed", rc)


def set_module_access(conn: sysrepo.SysrepoConnection, module: str, group: str, perm: int) -> None:
    """sr_set_module_ds_access on every datastore of `module` and its notifications (`sysrepoctl -c M -g G -p P`):
    the group and permissions of its data; the owner stays. :raises sysrepo.SysrepoError:"""
    for ds in range(MOD_DS_COUNT):
        rc = lib.sr_set_module_ds_access(conn_ptr(conn), module.encode(), ds, ffi.NULL, group.encode(), perm)
        if rc != ERR_OK:
            raise sysrepo.SysrepoError.new(f"changing the access rights of {module} failed", rc)
