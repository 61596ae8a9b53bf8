"""Retention of sysrepo's notification replay store: the pure policy, then the server enforcing it on real files.

The "old" files are written in sysrepo's own format (ntf_json.c: timespec, uint32 length, the notification as JSON),
from a record sysrepo itself stored; before retention sysrepo replays them, which shows they are real to it.
"""

from __future__ import annotations

import struct
import time
from pathlib import Path
from typing import Any

import sysrepo

from singbox_agent.mgmt.replay_files import StoredFile, parse_name
from singbox_agent.mgmt.replay_retention import Policy, expired
from tests.netconf.conftest import SBX_NS, ServerInfo
from tests.netconf.test_replay import iso, send_stored, take_all

RS_NS = "urn:vpp-singbox:yang:vpp-singbox-replay-store"
NC = "urn:ietf:params:xml:ns:netconf:base:1.0"
DAY = 86400
_RECORD = struct.Struct("=qqI")  # struct timespec (x86-64) + uint32 length, native order as sysrepo writes them


def f(name: str, first: int, last: int, size: int, module: str = "m") -> StoredFile:
    return StoredFile(f"{module}.notif.{first}-{last}", module, first, last, size)


# --- the policy on its own ------------------------------------------------------------------------------------------


def test_file_names() -> None:
    assert parse_name("vpp-singbox.notif.100-200", 5) == StoredFile("vpp-singbox.notif.100-200", "vpp-singbox", 100,
                                                                    200, 5)
    assert parse_name("a.b.notif.1-1") is not None and parse_name("a.b.notif.1-1").module == "a.b"  # type: ignore[union-attr]
    for bad in ("x.notif.200-100", "x.notif.1", "x.notif.a-2", "x.running", "notes.txt", "x.notif.1-2.tmp"):
        assert parse_name(bad) is None, bad


def test_age_removes_closed_files_only() -> None:
    now = 100 * DAY
    files = [f("a", 0, 10 * DAY, 10), f("b", 10 * DAY, 50 * DAY, 10), f("c", 50 * DAY, 90 * DAY, 10),
             f("n", 0, 20 * DAY, 10, module="quiet")]  # a module's only file is its current one, however old
    gone = expired(files, Policy(max_age=30 * DAY, max_size=10**9), now)
    assert [x.name for x in gone] == ["m.notif.0-864000", "m.notif.864000-4320000"]


def test_size_removes_oldest_closed_files_until_it_fits() -> None:
    now = 100 * DAY
    files = [f("c", 3, 4, 400), f("a", 1, 2, 400), f("d", 5, 6, 400, module="other"), f("cur", 7, 8, 300)]
    gone = expired(files, Policy(max_age=10**9, max_size=1000), now)
    assert [x.name for x in gone] == ["m.notif.1-2", "m.notif.3-4"]  # 1500 -> 1100, still above -> 700
    gone = expired(files, Policy(max_age=10**9, max_size=1100), now)
    assert [x.name for x in gone] == ["m.notif.1-2"]
    gone = expired(files, Policy(max_age=10**9, max_size=1099), now)
    assert [x.name for x in gone] == ["m.notif.1-2", "m.notif.3-4"]
    # never the current files, even when they alone exceed the limit
    gone = expired(files, Policy(max_age=10**9, max_size=1), now)
    assert {x.name for x in gone} == {"m.notif.1-2", "m.notif.3-4"}


def test_nothing_to_do() -> None:
    assert expired([], Policy(), time.time()) == []
    assert expired([f("x", 1, 2, 10**12)], Policy(max_age=60, max_size=1024), 10**9) == []


# --- the server enforcing it ------------------------------------------------------------------------------------------


def notif_dir(server: ServerInfo) -> Path:
    return Path(server.env["SYSREPO_REPOSITORY_PATH"]) / "data" / "notif"


def first_record(path: Path) -> bytes:
    raw = path.read_bytes()
    _sec, _nsec, length = _RECORD.unpack_from(raw)
    return raw[_RECORD.size:_RECORD.size + length]


def write_store_file(directory: Path, template: bytes, module: str, records: list[tuple[int, str]]) -> Path:
    """A closed store file holding one copy of `template` (a stored notification's JSON) per (time, name)."""
    body = b""
    for ts, name in records:
        doc = template.replace(b'"replay-template"', f'"{name}"'.encode())
        body += _RECORD.pack(ts, 0, len(doc)) + doc
    path = directory / f"{module}.notif.{records[0][0]}-{records[-1][0]}"
    path.write_bytes(body)
    return path


def replayed_names(server: ServerInfo, since: float) -> str:
    with server.connect() as m:
        m.create_subscription(filter=("subtree", f'<endpoint-down xmlns="{SBX_NS}"/>'), start_time=iso(since))
        return "".join(take_all(m, "replayComplete", limit=500))


def set_policy(server: ServerInfo, **leaves: int) -> None:
    body = "".join(f"<{k.replace('_', '-')}>{v}</{k.replace('_', '-')}>" for k, v in leaves.items())
    with server.connect() as m:
        m.edit_config(target="running", config=f'<config xmlns="{NC}"><replay-store xmlns="{RS_NS}">{body}'
                                               "</replay-store></config>")


def wait_until(server: ServerInfo, predicate: Any, what: str, limit_s: float = 30.0) -> None:
    deadline = time.monotonic() + limit_s
    while not predicate():
        assert time.monotonic() < deadline, f"still waiting for: {what}\n" + (
            server.state_dir / "netconf.log").read_text()[-3000:]
        time.sleep(0.1)


def state(server: ServerInfo) -> dict[str, Any]:
    with sysrepo.SysrepoConnection() as conn:
        sess = conn.start_session("operational")
        try:
            return dict(sess.get_data("/vpp-singbox-replay-store:replay-store/state"))["replay-store"]["state"]
        finally:
            sess.stop()


def store_size(directory: Path) -> int:
    """The bytes of every notification file, read again when a file goes between the listing and its stat: sysrepo
    renames the file it appends to (its name ends with its last event's time), as this test's own sessions' events
    arrive (CI: FileNotFoundError on ietf-netconf-notifications.notif.*)."""
    for _ in range(50):
        try:
            return sum(p.stat().st_size for p in directory.iterdir() if parse_name(p.name))
        except FileNotFoundError:
            continue
    raise AssertionError(f"{directory} never held still")


def test_server_removes_old_files_and_new_notifications_still_replay(netconf_server: ServerInfo) -> None:
    directory = notif_dir(netconf_server)
    send_stored("replay-template")
    (current,) = [p for p in directory.iterdir() if p.name.startswith("vpp-singbox.notif.")]
    template = first_record(current)
    now = int(time.time())
    ancient = write_store_file(directory, template, "vpp-singbox", [(now - 40 * DAY, "ancient-1"),
                                                                    (now - 39 * DAY, "ancient-2")])
    recent = write_store_file(directory, template, "vpp-singbox", [(now - 2 * 3600 + i, f"recent-{i}")
                                                                   for i in range(60)])
    lately = write_store_file(directory, template, "vpp-singbox", [(now - 3600 + i, "lately") for i in range(80)])

    # sysrepo replays the written files: they are real to it (the server's start-up pass ran before they existed)
    got = replayed_names(netconf_server, now - 41 * DAY)
    assert "ancient-1" in got and "recent-0" in got and "lately" in got and "replay-template" in got

    set_policy(netconf_server, max_age=DAY, check_interval=1)
    wait_until(netconf_server, lambda: not ancient.exists(), "the 40-day-old file to go")
    assert recent.exists() and lately.exists() and current.exists()
    got = replayed_names(netconf_server, now - 41 * DAY)
    assert "ancient" not in got and "recent-59" in got and "lately" in got and "replay-template" in got

    # size: the oldest closed file goes until the store fits; current files stay whatever their size. The slack
    # absorbs the session-start/-end events this test's own sessions add to the store meanwhile (< 1,500 bytes),
    # and is smaller than the removed file (so the store does not fit before) and the next one (which must stay).
    total = store_size(directory)
    assert recent.stat().st_size > 1500 and lately.stat().st_size > 1500
    set_policy(netconf_server, max_size=total - recent.stat().st_size + 1500)
    wait_until(netconf_server, lambda: not recent.exists(), "the oldest closed file to go for size")
    assert lately.exists() and current.exists()
    send_stored("after-retention")
    got = replayed_names(netconf_server, now - 41 * DAY)
    assert "recent-" not in got and "lately" in got and "after-retention" in got

    st = state(netconf_server)
    assert int(st["removed-files"]) == 2
    assert int(st["stored-files"]) == len([p for p in directory.iterdir() if parse_name(p.name)])
    assert "last-check" in st
