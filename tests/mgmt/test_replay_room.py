"""Writes make room for their netconf-config-change without waiting (mgmt.datastore.wait_for_replay_room, issue 17).

sysrepo refuses to store a notification in the second whose replay file was started in that same second and has no
room for it: after a large config-change, every edit of that second. The writes used to wait for the next second
(190-560 ms after a 10,000-entry load); now a write renames that file to start a second earlier
(`replay_files.retire`) or, when the file has room for a bound on its config-change
(`config_change_size.bound`), does nothing. Waiting is left for a renamed name that is taken.
"""

from __future__ import annotations

import json
import os
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import libyang
import pytest
import sysrepo

from singbox_agent.mgmt import config_change_size, datastore, notify, replay, replay_files

MODULE = datastore.CONFIG_CHANGE_MODULE
SBX = "urn:vpp-singbox:yang:vpp-singbox"
REAL_SLEEP = time.sleep


def _endpoints(prefix: str, n: int) -> str:
    return (f'<singbox xmlns="{SBX}"><client>' + "".join(
        f"<endpoint><name>{prefix}{i:05d}</name><address>198.18.{i // 250}.{i % 250 + 1}</address></endpoint>"
        for i in range(n)) + "</client></singbox>")


def _edit(sess: Any, xml: str, *, with_bound: bool) -> None:
    """An edit as the NETCONF server applies it (`datastore.apply_changes`, with the bound of its edit tree)."""
    with sess.get_ly_ctx() as ctx:
        tree = ctx.parse_data_mem(xml, "xml", parse_only=True, strict=True, no_state=True)
    try:
        sess.edit_batch_ly(tree, "merge")
        try:
            datastore.apply_changes(sess, (lambda: config_change_size.bound(tree, "merge")) if with_bound else None)
        finally:
            sess.discard_changes()
    finally:
        tree.free()


def _replayed_targets(conn: Any, start: float) -> list[list[str]]:
    """The targets of each netconf-config-change sysrepo replays from `start` until now."""
    got: list[list[str]] = []
    done = threading.Event()

    def deliver(kind: str, node: libyang.DNode | None, when: str) -> None:
        if node is None:
            if kind == replay.NOTIFICATION_COMPLETE:
                done.set()
            return
        data = json.loads(node.print_mem("json", with_siblings=True))
        change = data.get("ietf-netconf-notifications:netconf-config-change")
        if change is not None:
            got.append([edit["target"] for edit in change.get("edit", [])])

    sub = replay.ReplaySubscription(conn, deliver, start, time.time() + 0.5)
    sess = conn.start_session("running")
    try:
        sub.subscribe(sess, MODULE, None)
        sub.ready()
        assert done.wait(60), "replay did not complete"
    finally:
        sess.stop()
    return got


@pytest.fixture
def sleeps(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    """Every time.sleep of this process from now on (still sleeping)."""
    out: list[float] = []

    def sleep(seconds: float) -> None:
        out.append(seconds)
        REAL_SLEEP(seconds)

    monkeypatch.setattr(time, "sleep", sleep)
    return out


def test_small_edits_right_after_a_large_one_are_replayed_without_waiting(
        sysrepo_instance: object, sleeps: list[float], monkeypatch: pytest.MonkeyPatch) -> None:
    """A large edit (1,000 endpoints: a ~1.3 MB config-change) starts and fills its second's replay file; two small
    edits right after it, in that second: neither sleeps (the old code slept until the next second), both their
    config-changes are replayed after the large one, nothing is lost. The first renames the full file; the second
    finds the file the first one's config-change started, with room for its bound."""
    lost = notify.lost_count()
    directory = replay_files.notification_dir()
    seen: list[int | None] = []  # what each write found of a file started in its second
    started_file_size = replay_files.started_file_size

    def watched(*args: Any) -> int | None:
        seen.append(started_file_size(*args))
        return seen[-1]

    monkeypatch.setattr(replay_files, "started_file_size", watched)
    with sysrepo.SysrepoConnection() as conn:
        replay.enable_replay(conn)
        sess = conn.start_session("running")
        start = time.time() - 1
        for attempt in range(5):  # the small edits must meet the large one's file: its second must not end first
            REAL_SLEEP(1.02 - time.time() % 1)
            _edit(sess, _endpoints(f"big{attempt}-", 1000), with_bound=False)
            before, slept = datastore.room_counts(), len(sleeps)
            del seen[:]
            _edit(sess, _endpoints(f"small{attempt}-a", 1), with_bound=True)
            _edit(sess, _endpoints(f"small{attempt}-b", 1), with_bound=True)
            if seen and seen[0] is not None and seen[0] > replay_files.FILE_MAX_SIZE:
                break  # the first small edit met the large edit's full file
        else:
            pytest.fail("no small edit met the large edit's second in 5 attempts")
        assert sleeps[slept:] == []
        after = datastore.room_counts()
        assert after == {"waited": before["waited"], "retired": before["retired"] + 1}, (before, after)
        changes = _replayed_targets(conn, start)
        sess.stop()
    firsts = [targets[0] for targets in changes if targets]
    big = firsts.index(f"/vpp-singbox:singbox/client/endpoint[name='big{attempt}-00000']")
    assert [len(t) for t in changes[big:big + 3]][0] > 10000
    assert firsts[big + 1:big + 3] == [f"/vpp-singbox:singbox/client/endpoint[name='small{attempt}-a00000']",
                                       f"/vpp-singbox:singbox/client/endpoint[name='small{attempt}-b00000']"], firsts
    assert notify.lost_count() == lost


# --- the decision on files alone: a directory of this process's sysrepo files stands in ---------------------------


@pytest.fixture
def store(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Callable[[str, int], Path]]:
    """`make(name, size)`: a file of that size in a notification directory that wait_for_replay_room looks in;
    the test starts early in a second (renames happen only then)."""
    monkeypatch.setattr(datastore, "_notification_dir", lambda: tmp_path)
    REAL_SLEEP(1.02 - time.time() % 1)

    def make(name: str, size: int) -> Path:
        path = tmp_path / f"{MODULE}.notif.{name}"
        with open(path, "wb") as f:
            f.truncate(size)
        return path

    yield make


def _names(directory: Path) -> set[str]:
    return {p.name.removeprefix(f"{MODULE}.notif.") for p in directory.iterdir()}


def test_a_full_file_of_this_second_is_renamed_to_start_a_second_earlier(store: Callable[[str, int], Path],
                                                                        sleeps: list[float]) -> None:
    sec = int(time.time())
    full = store(f"{sec}-{sec}", 3_000_000)
    store(f"{sec - 5}-{sec - 1}", 1000)
    datastore.wait_for_replay_room(lambda: 5000)
    assert _names(full.parent) == {f"{sec - 5}-{sec - 1}", f"{sec - 1}-{sec}"}
    assert os.path.getsize(full.parent / f"{MODULE}.notif.{sec - 1}-{sec}") == 3_000_000
    assert sleeps == []


def test_a_file_of_this_second_with_room_for_the_bound_is_left_alone(store: Callable[[str, int], Path],
                                                                    sleeps: list[float]) -> None:
    sec = int(time.time())
    small = store(f"{sec}-{sec}", 2000)
    datastore.wait_for_replay_room(lambda: 5000)
    assert _names(small.parent) == {f"{sec}-{sec}"}
    datastore.wait_for_replay_room(lambda: replay_files.FILE_MAX_SIZE)  # no room for this one
    assert _names(small.parent) == {f"{sec - 1}-{sec}"}
    assert sleeps == []


def test_without_a_bound_the_file_of_this_second_is_renamed(store: Callable[[str, int], Path],
                                                           sleeps: list[float]) -> None:
    sec = int(time.time())
    small = store(f"{sec}-{sec}", 2000)
    datastore.wait_for_replay_room()
    assert _names(small.parent) == {f"{sec - 1}-{sec}"}
    assert sleeps == []


def test_a_taken_name_makes_the_write_wait_for_the_next_second(store: Callable[[str, int], Path],
                                                              sleeps: list[float]) -> None:
    """A file of the second before that got notifications in this one holds the name: nothing is renamed (it would
    replace that file), the write waits for the next second as before."""
    sec = int(time.time())
    store(f"{sec}-{sec}", 3_000_000)
    taken = store(f"{sec - 1}-{sec}", 1000)
    waited = datastore.room_counts()["waited"]
    datastore.wait_for_replay_room(lambda: 5000)
    assert _names(taken.parent) == {f"{sec}-{sec}", f"{sec - 1}-{sec}"}
    assert os.path.getsize(taken) == 1000
    assert len(sleeps) == 1 and int(time.time()) > sec
    assert datastore.room_counts()["waited"] == waited + 1


def test_no_file_of_this_second_costs_no_bound(store: Callable[[str, int], Path], sleeps: list[float]) -> None:
    sec = int(time.time())
    store(f"{sec - 3}-{sec - 1}", 3_000_000)

    def bound() -> int:
        raise AssertionError("the bound is computed only when this second started a file")

    datastore.wait_for_replay_room(bound)
    assert sleeps == []


def test_retire_reports_what_it_found(tmp_path: Path) -> None:
    assert replay_files.retire(tmp_path, MODULE, 100) is None
    (tmp_path / f"{MODULE}.notif.100-100").write_bytes(b"a")
    (tmp_path / f"{MODULE}.notif.99-100").write_bytes(b"b")
    assert replay_files.retire(tmp_path, MODULE, 100) is False
    os.unlink(tmp_path / f"{MODULE}.notif.99-100")
    assert replay_files.retire(tmp_path, MODULE, 100) is True
    assert (tmp_path / f"{MODULE}.notif.99-100").read_bytes() == b"a"
    assert not (tmp_path / f"{MODULE}.notif.100-100").exists()


# --- the bound against what sysrepo stores ----------------------------------------------------------------------


NACM = "urn:ietf:params:xml:ns:yang:ietf-netconf-acm"
NC = "urn:ietf:params:xml:ns:netconf:base:1.0"


@pytest.mark.parametrize("xml, known", [
    (_endpoints("e", 3), True),  # list entries with defaults below them
    (f'<nacm xmlns="{NACM}"><groups><group><name>g</name><user-name>a</user-name></group></groups></nacm>', True),
    ('<system xmlns="urn:ietf:params:xml:ns:yang:ietf-system"><hostname>h</hostname></system>', True),
    (f'<nacm xmlns="{NACM}" xmlns:nc="{NC}"><groups nc:operation="replace"/></nacm>', False),  # removes a subtree
    (f'<nacm xmlns="{NACM}"><rule-list><name>r</name><rule><name>x</name><rpc-name>get</rpc-name>'
     "<action>permit</action></rule></rule-list></nacm>", False),  # rpc-name is in a choice: other cases' data go
    ('<netconf-server xmlns="urn:ietf:params:xml:ns:yang:ietf-netconf-server"/>', False),  # config when
])
def test_the_bound_covers_what_sysrepo_stores(sysrepo_instance: object, xml: str, known: bool) -> None:
    directory = replay_files.notification_dir()
    with sysrepo.SysrepoConnection() as conn:
        replay.enable_replay(conn)
        sess = conn.start_session("running")
        with sess.get_ly_ctx() as ctx:
            tree = ctx.parse_data_mem(xml, "xml", parse_only=True, strict=True, no_state=True)
        try:
            bound = config_change_size.bound(tree, "merge")
            assert (bound is not None) == known
            if bound is None:
                return
            before = sum(f.size for f in replay_files.scan(directory) if f.module == MODULE)
            sess.edit_batch_ly(tree, "merge")
            datastore.apply_changes(sess)
        finally:
            tree.free()
            sess.stop()
    stored = sum(f.size for f in replay_files.scan(directory) if f.module == MODULE) - before
    assert 0 < stored <= bound
