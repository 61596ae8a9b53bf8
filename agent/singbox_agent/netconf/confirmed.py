"""Confirmed commit (RFC 6241 8.4, :confirmed-commit:1.1): the running config before the first confirmed commit is
kept, and restored when the timeout expires, on <cancel-commit>, or when the issuing session ends without persist.

The restore runs on a sysrepo session of its own (the timer thread is nobody's session) without a NACM user: it
undoes what an authorised session did and must not be blocked by a rule changed in between.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import structlog
import sysrepo

from singbox_agent.mgmt import datastore

if TYPE_CHECKING:
    from singbox_agent.netconf.server import NetconfServer

log = structlog.get_logger("netconf.confirmed")


@dataclass
class ConfirmedCommit:
    backup_xml: str
    session_id: int | None  # None once persist made it independent of the session
    persist: str | None
    timer: threading.Timer | None = None
    done: bool = field(default=False)


def snapshot_running(sr: Any) -> str:
    sr.switch_datastore("running")
    try:
        with sr.get_data_ly("/*") as tree:
            return datastore.print_xml(tree, "explicit")
    except sysrepo.SysrepoNotFoundError:
        return ""


def arm(server: NetconfServer, cc: ConfirmedCommit, timeout_s: float) -> None:
    if cc.timer is not None:
        cc.timer.cancel()
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
            tree = ctx.parse_data_mem(cc.backup_xml, "xml", strict=True, no_state=True, parse_only=True) \
                if cc.backup_xml else None
            _as_lock_holder(server, "running", lambda sr: _restore(sr, tree))
        _as_lock_holder(server, "candidate", _reset_candidate)
        with server.state.lock:
            server.state.candidate_modified = False
        log.info("confirmed commit rolled back", reason=reason)
    except Exception as exc:  # noqa: BLE001 - a timer thread has nobody to raise to
        log.error("confirmed commit rollback failed", reason=reason, error=str(exc))


def _restore(sr: Any, tree: Any) -> None:
    sr.switch_datastore("running")
    sr.replace_config_ly(tree, None)  # spends the tree


def _reset_candidate(sr: Any) -> None:
    sr.switch_datastore("candidate")
    sr.copy_config("running")


def _as_lock_holder(server: NetconfServer, ds: str, fn: Callable[[Any], None]) -> None:
    """Run `fn(sysrepo_session)` as the session that holds `ds` locked (sysrepo refuses every other one), or on a
    session of our own when nobody does. RFC 6241 8.4: the rollback happens whoever holds the lock."""
    holder_id = server.state.holder(ds)
    with server.state.lock:
        holder = server.state.sessions.get(holder_id) if holder_id is not None else None
    if holder is not None and holder.sr is not None:
        if threading.current_thread().name.startswith(f"netconf-{holder.id}_"):
            fn(holder.sr)
            return
        try:
            holder.run_on_worker(lambda: fn(holder.sr)).result(timeout=60)
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
