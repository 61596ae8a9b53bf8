"""Lock bookkeeping shared by <lock>, <unlock>, <discard-changes> and the end of a session.

A lock is held twice: in the server table (to name the holder's NETCONF session-id in lock-denied and to enforce
the candidate rules) and in sysrepo through the session's own sysrepo session (so that other sysrepo clients, such
as the RESTCONF server or the agent's own tools, are excluded too).
"""

from __future__ import annotations

from singbox_agent.netconf.dispatch import on_session_end
from singbox_agent.netconf.session import NetconfSession

LOCKABLE = ("running", "candidate", "startup")


def forget(session: NetconfSession, ds: str) -> None:
    state = session.server.state
    with state.lock:
        if state.locks.get(ds) == session.id:
            del state.locks[ds]
            state.lock_times.pop(ds, None)


def release_lock(session: NetconfSession, ds: str) -> None:
    """Release `ds`; for the candidate, outstanding changes are discarded (RFC 6241 8.3.5.2)."""
    sr = session.sr
    if sr is None:
        forget(session, ds)
        return
    try:
        if ds == "candidate":
            reset_candidate(session)
        sr.switch_datastore(ds)
        sr.unlock()
    finally:
        forget(session, ds)


def reset_candidate(session: NetconfSession) -> None:
    sr = session.sr
    assert sr is not None
    sr.switch_datastore("candidate")
    sr.copy_config("running")  # sysrepo: the candidate mirrors running again
    with session.server.state.lock:
        session.server.state.candidate_modified = False


@on_session_end
def release_all_locks(session: NetconfSession) -> None:
    state = session.server.state
    with state.lock:
        held = [ds for ds, sid in state.locks.items() if sid == session.id]
    for ds in held:
        try:
            release_lock(session, ds)
        except Exception as exc:  # noqa: BLE001 - release the rest
            session.log.warning("releasing lock failed", datastore=ds, error=str(exc))
