"""The agent's own reader of sysrepo's change tree (changes.py) gives the running configuration the binding's change
list gives: every kind of node created, modified, set back to its default and deleted, through real sysrepo."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from singbox_agent.agent.changes import read_changes
from singbox_agent.agent.mapping import Change, RunningConfig
from singbox_agent.repository import SysrepoInstance
from tests.agent.conftest import TOP

C = f"{TOP}/client"
S = f"{TOP}/server"
E = f"{C}/endpoint[name='e1']"
HASH = "$6$saltsalt$1q7hOQNmD4hGCzJVaqKZ1J8b6T2a7LpyiS7wXqfjBmm5nU5aAhZ/pB2Xm5wcjFZ3Ue5XpGvRiMS2tf7h1XcQ4."

COMMITS: list[tuple[dict[str, Any], list[str]]] = [
    ({f"{E}/address": "192.0.2.1", f"{E}/username": "alice", f"{E}/password": "pw1", f"{E}/health-check/interval": 60,
      f"{C}/endpoint[name='e2']/address": "example.com", f"{C}/endpoint[name='e2']/port": 1081,
      f"{C}/interface[name='tap0']/endpoint": "e1", f"{C}/interface[name='tap0']/bypass-prefix": "10.0.0.0/8",
      f"{C}/endpoint-group[name='g']/member[endpoint='e1']/weight": 3,
      f"{C}/endpoint-group[name='g']/member[endpoint='e2']/priority": 2,
      f"{C}/default-endpoint": "e2", f"{C}/session-timeout": 90,
      f"{S}/listen[name='l1']/address": "127.0.0.1", f"{S}/authentication/user[username='bob']/password": HASH,
      f"{S}/allowed-command": "connect", f"{S}/allowed-client-prefix": "10.0.0.0/8", f"{S}/enabled": True}, []),
    ({f"{E}/port": 1090, f"{C}/interface[name='tap0']/bypass-prefix": "2001:db8::/32",
      f"{C}/interface[name='tap0']/enabled": False},
     [f"{E}/health-check/interval", f"{C}/interface[name='tap0']/bypass-prefix[.='10.0.0.0/8']",
      f"{S}/allowed-command[.='connect']"]),
    ({f"{S}/enabled": False}, [f"{E}/port", f"{C}/endpoint-group[name='g']/member[endpoint='e2']", f"{C}/default-endpoint",
          f"{S}/listen[name='l1']", f"{S}/authentication/user[username='bob']"]),
    ({}, [f"{C}/interface[name='tap0']", f"{C}/endpoint-group[name='g']", f"{C}/endpoint[name='e2']", E]),
    ({f"{E}/address": "192.0.2.9", f"{E}/health-check/interval": 60, f"{C}/interface[name='tap1']/endpoint": "e1",
      f"{S}/authentication/user[username='carol']/password": HASH}, []),
    # whole containers: every unit under them goes (the reader skips what is under a deleted unit entry)
    ({}, [C, f"{S}/authentication"]),
]


def binding_changes(sess: Any) -> list[Change]:
    """The binding's change list as the agent used to take it."""
    import sysrepo

    out: list[Change] = []
    for c in sess.get_changes(f"{TOP}//."):
        if isinstance(c, sysrepo.ChangeCreated):
            out.append(Change("created", c.xpath, c.value))
        elif isinstance(c, sysrepo.ChangeModified):
            out.append(Change("modified", c.xpath, c.value))
        elif isinstance(c, sysrepo.ChangeDeleted):
            out.append(Change("deleted", c.xpath))
    return out


@pytest.fixture
def sess(sysrepo_instance: SysrepoInstance) -> Iterator[Any]:
    import sysrepo

    conn = sysrepo.SysrepoConnection()
    s = conn.start_session("running")
    try:
        yield s
    finally:
        s.stop()
        conn.disconnect()


def test_the_change_reader_gives_what_the_binding_gives(sess: Any) -> None:
    ours, theirs = RunningConfig(), RunningConfig()
    seen: list[tuple[int, int]] = []

    def on_change(ev_sess: Any, event: str, _req_id: int, _priv: Any) -> None:
        if event == "change":
            read, listed = read_changes(ev_sess, TOP), binding_changes(ev_sess)
            ours.updated(ours.changed_units(read))
            theirs.updated(theirs.changed_units(listed))
            seen.append((len(read), len(listed)))

    sess.subscribe_module_change_unsafe("vpp-singbox", TOP, on_change)
    for edits, deletes in COMMITS:
        for path in deletes:
            sess.delete_item(path)
        for path, value in edits.items():
            sess.set_item(path, value)
        sess.apply_changes()
        assert ours.desired() == theirs.desired()
        assert ours.units.keys() == theirs.units.keys()
    assert len(seen) == len(COMMITS)
    assert seen[0][0] < seen[0][1]  # the default nodes of the new entries are not read
