"""Confirmed commit (RFC 6241 8.4, :confirmed-commit:1.1): the running config before the first confirmed commit is
kept, and restored when the timeout expires, on <cancel-commit>, or when the issuing session ends without persist.
It is also kept on disk (confirmed_store.py) while pending: on start, `recover` rolls back a commit whose deadline
passed or whose session (no persist) died with the previous server, and re-arms the timer of a persistent one.

The restore runs on a sysrepo session of its own (the timer thread is nobody's session) without a NACM user: it
undoes what an authorised session did and must not be blocked by a rule changed in between.
"""

from __future__ import annotations

import threading
import time
import uuid
from dataclasses import dataclass, field
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import structlog
import sysrepo

from singbox_agent.mgmt import datastore, libsysrepo
from singbox_agent.netconf.confirmed_store import Record

if TYPE_CHECKING:
    from singbox_agent.netconf.server import NetconfServer

log = structlog.get_logger("netconf.confirmed")

# the originator of a rollback run on the lock holder's session: not the name sysrepo reads changed-by from
ROLLBACK_ORIGINATOR = "netconf-confirmed-commit"


@dataclass
class ConfirmedCommit:
    backup_xml: str
    session_id: int | None  # None once persist made it independent of the session
    persist: str | None
    timer: threading.Timer | None = None
    done: bool = field(default=False)
    deadline: float = 0.0  # time.time() at which the rollback is due
    token: str = field(default_factory=lambda: uuid.uuid4().hex)


def save(server: NetconfServer, cc: ConfirmedCommit) -> None:
    """Write the record (before running changes, and whenever persist or the deadline change)."""
    if server.confirmed_store is not None:
        server.confirmed_store.save(Record(cc.backup_xml, cc.persist, cc.session_id, cc.deadline, cc.token))


def forget(server: NetconfServer, cc: ConfirmedCommit) -> None:
    if server.confirmed_store is not None:
        server.confirmed_store.clear(cc.token)


def snapshot_running(sr: Any) -> str:
    sr.switch_datastore("running")
    try:
        with sr.get_data_ly("/*") as tree:
            return datastore.print_xml(tree, "explicit")
    except sysrepo.SysrepoNotFoundError:
        return ""


def arm(server: NetconfServer, cc: ConfirmedCommit, timeout_s: float, *, store: bool = True) -> None:
    if cc.timer is not None:
        cc.timer.cancel()
    cc.deadline = time.time() + timeout_s
    if store:
        save(server, cc)
    cc.timer = threading.Timer(timeout_s, _expire, args=(server, cc))
    cc.timer.daemon = True
    cc.timer.start()


def _expire(server: NetconfServer, cc: ConfirmedCommit) -> None:
    with server.state.lock:
        pending = server.state.confirmed is cc and not cc.done
    if pending:
        rollback(server, cc, "timeout")
        server.events.confirmed_commit("timeout", None)


def rollback(server: NetconfServer, cc: ConfirmedCommit, reason: str) -> None:
    """Restore the backup into running and reset the candidate."""
    with server.state.lock:
        if cc.done or server.state.confirmed is not cc:
            return
        cc.done = True
        server.state.confirmed = None
    if cc.timer is not None:
        cc.timer.cancel()
    ctx: Any
    try:
        with server.conn.get_ly_ctx() as ctx:
            def backup() -> Any:  # sysrepo spends the tree of each attempt (datastore.replace_config)
                return ctx.parse_data_mem(cc.backup_xml, "xml", strict=True, no_state=True, parse_only=True) \
                    if cc.backup_xml else None

            backup_tree = backup()  # a backup that does not parse fails the rollback before anything is written
            if backup_tree is not None:
                backup_tree.free()
            _as_lock_holder(server, "running", lambda sr: _restore(sr, backup))
        _as_lock_holder(server, "candidate", _reset_candidate)
        with server.state.lock:
            server.state.candidate_modified = False
        forget(server, cc)  # only now: a rollback that failed is tried again on the next start
        log.info("confirmed commit rolled back", reason=reason)
    except Exception as exc:  # noqa: BLE001 - a timer thread has nobody to raise to
        log.error("confirmed commit rollback failed", reason=reason, error=str(exc))


def _restore(sr: Any, backup: Callable[[], Any]) -> None:
    sr.switch_datastore("running")
    datastore.replace_config(sr, backup)  # room for its config-change, retried while busy, subscribers' timeout


def _reset_candidate(sr: Any) -> None:
    sr.switch_datastore("candidate")
    datastore.copy_config(sr, "running")


def _as_lock_holder(server: NetconfServer, ds: str, fn: Callable[[Any], None]) -> None:
    """Run `fn(sysrepo_session)` as the session that holds `ds` locked (sysrepo refuses every other one), or on a
    session of our own when nobody does. RFC 6241 8.4: the rollback happens whoever holds the lock."""
    holder_id = server.state.holder(ds)
    with server.state.lock:
        holder = server.state.sessions.get(holder_id) if holder_id is not None else None
    if holder is not None and holder.sr is not None:
        def as_server(sr: Any) -> None:
            # RFC 6470 changed-by: the rollback is the server's doing, not the lock holder's (its session is marked
            # with its user and session-id, `datastore.mark_changed_by`). sysrepo can write no <server/>: unmarked,
            # it names the process's user and session-id 0, as the rollback on a session of our own does.
            libsysrepo.set_originator(sr, ROLLBACK_ORIGINATOR, [])
            try:
                fn(sr)
            finally:
                datastore.mark_changed_by(sr, holder.user, holder.id)

        if threading.current_thread().name.startswith(f"netconf-{holder.id}_"):
            as_server(holder.sr)
            return
        try:
            holder.run_on_worker(lambda: as_server(holder.sr)).result(timeout=60)
            return
        except RuntimeError:  # the holder is shutting down: its lock goes with it
            pass
    sess = server.conn.start_session("running")
    try:
        fn(sess)
    finally:
        sess.stop()


def finish(server: NetconfServer, cc: ConfirmedCommit) -> None:
    with server.state.lock:
        cc.done = True
        if server.state.confirmed is cc:
            server.state.confirmed = None
    if cc.timer is not None:
        cc.timer.cancel()
    forget(server, cc)


def recover(server: NetconfServer) -> None:
    """On start: finish what a previous server left pending (RFC 6241 8.4)."""
    if server.confirmed_store is None:
        return
    record = server.confirmed_store.load()
    if record is None:
        return
    cc = ConfirmedCommit(record.backup_xml, record.session_id, record.persist, deadline=record.deadline,
                         token=record.token)
    with server.state.lock:
        server.state.confirmed = cc
    remaining = record.deadline - time.time()
    if record.persist is None:
        # its session ended with the previous server: that cancels a confirmed commit without persist
        # (no netconf-confirmed-commit event: RFC 6470 wants the cancelling session's parameters, there is none)
        rollback(server, cc, "server restarted, issuing session gone")
    elif remaining <= 0:
        rollback(server, cc, "timeout (while the server was down)")
        server.events.confirmed_commit("timeout", None)
    else:
        log.info("pending confirmed commit restored", seconds_left=round(remaining, 1))
        arm(server, cc, remaining, store=False)
