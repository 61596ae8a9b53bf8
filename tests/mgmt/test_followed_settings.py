"""FollowedSettings (mgmt/followed_settings.py) on a real sysrepo: after a commit returns, every refresh sees the
change, also one asked for while another thread's refresh is still reading (in CI the RESTCONF body-timeout just set
to 1 s was still 60 s for the second of three requests that came together: no 408 within 30 s), and a commit during
the very first read is not missed.

A read is held in progress by the `parse` callable, which the settings call after sysrepo's read: armed, it stops
until the test releases it."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from typing import Any

import pytest
import sysrepo

from singbox_agent.mgmt.followed_settings import FollowedSettings
from singbox_agent.repository import SysrepoInstance

MODULE = "vpp-singbox-netconf-server"
XPATH = "/vpp-singbox-netconf-server:netconf-server/login-backoff"
WAIT_S = 30.0  # a bound for waits that end at once unless something hangs


class HeldParse:
    """`parse` for the settings: free-failures (-1 for the empty container, the placeholder before the first read);
    once `armed`, its next call with what sysrepo read stops until `release` (a read in progress, held there)."""

    def __init__(self) -> None:
        self.armed = False
        self.entered = threading.Event()
        self.release = threading.Event()

    def __call__(self, node: dict[str, Any]) -> int:
        if self.armed and node:
            self.armed = False
            self.entered.set()
            assert self.release.wait(WAIT_S), "never released"
        return int(node.get("free-failures", -1))


@pytest.fixture
def conn(sysrepo_instance: SysrepoInstance) -> Iterator[sysrepo.SysrepoConnection]:
    with sysrepo.SysrepoConnection() as c:
        yield c


def commit(conn: sysrepo.SysrepoConnection, free_failures: int) -> None:
    """Commits free-failures; returns when sysrepo's change and done events were handled (as an edit does)."""
    sess = conn.start_session("running")
    try:
        sess.set_item(f"{XPATH}/free-failures", str(free_failures))
        sess.apply_changes()
    finally:
        sess.stop()


def started(target: Any) -> threading.Thread:
    t = threading.Thread(target=target, daemon=True)
    t.start()
    return t


def test_a_refresh_while_another_is_reading_waits_for_the_new_settings(conn: sysrepo.SysrepoConnection) -> None:
    parse = HeldParse()
    applied: list[int] = []
    settings = FollowedSettings(conn, MODULE, XPATH, what="test", parse=parse, apply=applied.append)
    try:
        assert settings.current == 5 and not settings.stale()  # the default, read at start
        commit(conn, 7)
        assert settings.stale()
        parse.armed = True
        first = started(settings.refresh)
        assert parse.entered.wait(WAIT_S)
        # the first request's read is in progress: a second request must still find them stale (the old code had
        # cleared the mark when the read began, so the second went on with the old settings)
        assert settings.stale()
        seen: list[int] = []

        def second_request() -> None:
            settings.refresh()
            seen.append(settings.current)

        second = started(second_request)
        # a pause, not a measure: on the old code the second refresh returns at once, before the first read is
        # let go; on the new one it waits for that read whatever the pause
        second.join(0.5)
        parse.release.set()
        first.join(WAIT_S)
        second.join(WAIT_S)
        assert not first.is_alive() and not second.is_alive()
        assert seen == [7], "the second refresh returned with the settings from before the commit"
        assert settings.current == 7 and not settings.stale()
        assert applied == [5, 7]  # read once for the commit: the second refresh waited for the first one's read
    finally:
        parse.release.set()
        settings.close()


def test_a_commit_during_the_first_read_is_followed(conn: sysrepo.SysrepoConnection) -> None:
    parse = HeldParse()
    parse.armed = True
    made: list[FollowedSettings[int]] = []
    construct = started(lambda: made.append(
        FollowedSettings(conn, MODULE, XPATH, what="test", parse=parse, apply=lambda _: None)))
    try:
        assert parse.entered.wait(WAIT_S)  # the first read has its data (before the commit) and is held
        commit(conn, 9)
        parse.release.set()
        construct.join(WAIT_S)
        assert made, "the settings were not made"
        settings = made[0]
        assert settings.current == 5  # what the held read had
        # the old code subscribed only after that read: the commit went unnoticed and the settings stayed at 5
        assert settings.stale()
        settings.refresh()
        assert settings.current == 9 and not settings.stale()
    finally:
        parse.release.set()
        construct.join(WAIT_S)
        for s in made:
            s.close()


def test_settings_read_once_per_change(conn: sysrepo.SysrepoConnection) -> None:
    """Refreshes without a change read nothing; each commit is read once, however many refresh."""
    reads: list[int] = []

    def parse(node: dict[str, Any]) -> int:
        reads.append(int(node.get("free-failures", -1)))
        return reads[-1]

    settings = FollowedSettings(conn, MODULE, XPATH, what="test", parse=parse, apply=lambda _: None)
    try:
        reads.clear()
        settings.refresh()
        assert reads == []
        commit(conn, 3)
        threads = [started(settings.refresh) for _ in range(4)]
        for t in threads:
            t.join(WAIT_S)
        assert settings.current == 3 and not settings.stale()
        assert reads == [3]
    finally:
        settings.close()
