"""sysrepo's subscription SHM keeps a change's data: made 0664 by sysrepo, `shm_guard` takes the "other" bits away
(against a real sysrepo instance, subscribers made through our code)."""

from __future__ import annotations

import os
import signal
import stat
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
import sysrepo

from singbox_agent.mgmt import change_notice, password_hashing, shm_guard
from singbox_agent.mgmt.users import hash_password
from singbox_agent.repository import SysrepoInstance

USER_PASSWORD = "/ietf-system:system/authentication/user[name='{}']/password"


def sub_files(instance: SysrepoInstance) -> dict[str, Path]:
    stem = instance.shm_prefix + "sub_"
    return {p.name: p for p in instance.shm_dir.iterdir() if p.name.startswith(stem)}


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def settle(instance: SysrepoInstance, name: str = "zz-settle") -> None:
    """Wait until the guard has handled every event queued so far: inotify keeps their order, so once a file made
    now has lost its "other" bits, every earlier one was handled. A bounded wait for that, not a speed test."""
    sentinel = instance.shm_dir / (instance.shm_prefix + "sub_" + name)
    fd = os.open(sentinel, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600)
    try:
        os.fchmod(fd, 0o666)
    finally:
        os.close(fd)
    deadline = time.monotonic() + 60
    while mode(sentinel) & 0o007 and time.monotonic() < deadline:
        time.sleep(0.01)
    assert mode(sentinel) == 0o660, "the guard never handled a new subscription file"
    sentinel.unlink()


def no_change(_event: str, _sess: Any) -> None:
    pass


def test_a_changes_data_in_subscription_shm_is_not_other_readable(sysrepo_instance: SysrepoInstance) -> None:
    """A password hash set in ietf-system lands in sysrepo's sub_data SHM of the module (every subscription file
    was 0664 before: fails without the guard); started as the daemons start it, every such file of ours is 0660
    — those of the first subscriptions, of one made later (another datastore: a new pair), and one whose mode is
    widened again."""
    guard = shm_guard.start()
    assert guard.prefix == sysrepo_instance.shm_prefix
    secret = hash_password("TOPSECRET-shm-guard")
    try:
        with sysrepo.SysrepoConnection() as conn:
            hashing = conn.start_session("running")
            password_hashing.subscribe(hashing)
            sess = conn.start_session("running")
            sess.set_item(USER_PASSWORD.format("alice"), secret)
            sess.apply_changes()

            later = conn.start_session("startup")
            change_notice.subscribe(later, "ietf-system", "/ietf-system:system", no_change, passive=False)
            startup = conn.start_session("startup")
            startup.set_item(USER_PASSWORD.format("bob"), secret)
            startup.apply_changes()

            settle(sysrepo_instance)
            files = sub_files(sysrepo_instance)
            holding = {name for name, path in files.items() if secret.encode() in path.read_bytes()}
            prefix = sysrepo_instance.shm_prefix
            assert {f"{prefix}sub_data_ietf-system.running", f"{prefix}sub_data_ietf-system.startup"} <= holding
            assert {name: oct(mode(path)) for name, path in files.items() if mode(path) & 0o007} == {}
            assert all(mode(path) == 0o660 for path in files.values())

            widened = files[f"{prefix}sub_data_ietf-system.running"]
            os.chmod(widened, 0o664)
            settle(sysrepo_instance, "zz-after-chmod")
            assert mode(widened) == 0o660

            sess.set_item(USER_PASSWORD.format("alice"), hash_password("second"))
            sess.apply_changes()  # sysrepo reopens (O_RDWR) and grows the file it finds: still works, still 0660
            assert mode(widened) == 0o660
    finally:
        guard.stop()


def test_a_new_file_is_tightened_when_its_mode_is_set_not_when_created(sysrepo_instance: SysrepoInstance) -> None:
    """sysrepo creates a subscription file (its mode the open's, umask applied), then fchmods it to 0664. Acting on
    the creation, the guard read the open's mode and wrote it back without "other" bits — after sysrepo's fchmod
    when the two raced, so the file ended 0640, its group without write (a daemon's file under load). It acts on the
    mode sysrepo sets."""
    guard = shm_guard.start()
    path = sysrepo_instance.shm_dir / (sysrepo_instance.shm_prefix + "sub_data_created.running")
    old_umask = os.umask(0o022)
    try:
        fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_RDWR, 0o666)  # as sysrepo's open: 0644
    finally:
        os.umask(old_umask)
    try:
        settle(sysrepo_instance)
        assert mode(path) == 0o644  # untouched at creation (the old guard wrote 0640 here)
        os.fchmod(fd, 0o664)  # sysrepo's fchmod
        settle(sysrepo_instance, "zz-after-fchmod")
        assert mode(path) == 0o660
    finally:
        os.close(fd)
        path.unlink()
        guard.stop()


def test_the_start_sweep_tightens_what_was_there_and_leaves_other_users_files(
        sysrepo_instance: SysrepoInstance) -> None:
    """Subscription files made before the guard started are tightened by its sweep; a file of another user (root's
    sysrepo-plugind, netopeer2) and a name that is not a subscription file of this instance keep their mode."""
    if os.geteuid() != 0:
        pytest.skip("needs root to give a file to another user")
    with sysrepo.SysrepoConnection() as conn:
        hashing = conn.start_session("running")
        password_hashing.subscribe(hashing)
        files = sub_files(sysrepo_instance)
        assert files and all(mode(path) & 0o004 for path in files.values())  # sysrepo's 0664

        shm = sysrepo_instance.shm_dir
        others = shm / (sysrepo_instance.shm_prefix + "sub_data_someone-elses.running")
        unrelated = shm / (sysrepo_instance.shm_prefix + "_not-a-subscription")
        for path in (others, unrelated):
            path.write_bytes(b"")
            os.chmod(path, 0o664)
        os.chown(others, 65534, 65534)
        guard = shm_guard.from_environment()
        try:
            guard.start()
            settle(sysrepo_instance)
            assert all(mode(path) == 0o660 for path in files.values())
            assert mode(others) == 0o664 and mode(unrelated) == 0o664
        finally:
            guard.stop()
            others.unlink()
            unrelated.unlink()


def test_events_are_read_from_one_buffer() -> None:
    """The inotify record layout: names are NUL-padded to the record's length."""
    import struct

    def record(mask: int, name: bytes, pad: int) -> bytes:
        padded = name + b"\0" * pad
        return struct.pack("iIII", 1, mask, 0, len(padded)) + padded

    buf = record(0x100, b"srsub_a.running", 1) + record(0x4, b"srsub_data_a.running", 12) + record(0x8000, b"", 0)
    assert shm_guard._events(buf) == [(0x100, "srsub_a.running"), (0x4, "srsub_data_a.running"), (0x8000, "")]


DAEMONS = {
    "agent": ["singbox_agent.agent", "--vpp-api-socket", "none"],
    "netconf": ["singbox_agent.netconf", "--listen", "127.0.0.1:0"],
    "restconf": ["singbox_agent.restconf", "--listen", "127.0.0.1:0"],
    "metrics": ["singbox_agent.metrics", "--vpp-stats-socket", "/nonexistent/stats.sock"],
}
TOP = "/vpp-singbox:singbox"


@pytest.mark.parametrize("daemon", sorted(DAEMONS))
def test_each_daemon_guards_its_subscription_shm(daemon: str, sysrepo_instance: SysrepoInstance,
                                                 tmp_path: Path) -> None:
    """Each daemon, as its unit starts it, leaves no subscription SHM of its own other-readable — the agent's of
    vpp-singbox holding an endpoint's password included (without the guard's start in its `__main__`: 0664)."""
    if daemon == "metrics":  # its listen address is in sysrepo (port 9745 by default): a free one
        with sysrepo.SysrepoConnection() as conn, conn.start_session("running") as sess:
            sess.replace_config({"metrics-exporter": {"listen": {"address": "127.0.0.1", "port": 0}}},
                                "vpp-singbox-metrics")
    ready = tmp_path / "ready.json"
    log = tmp_path / "daemon.log"
    with open(log, "wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", *DAEMONS[daemon], "--state-dir", str(tmp_path), "--ready-file", str(ready)],
            env={**os.environ, **sysrepo_instance.env}, stdout=out, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 60
        while not ready.exists():
            assert proc.poll() is None and time.monotonic() < deadline, log.read_text()
            time.sleep(0.05)
        secret = "hunter2-shm-guard-endpoint"
        if daemon == "agent":
            with sysrepo.SysrepoConnection() as conn, conn.start_session("running") as sess:
                sess.set_item(f"{TOP}/client/endpoint[name='e']/address", "192.0.2.2")
                sess.set_item(f"{TOP}/client/endpoint[name='e']/username", "u")
                sess.set_item(f"{TOP}/client/endpoint[name='e']/password", secret)
                sess.apply_changes()
        settle(sysrepo_instance)
        files = sub_files(sysrepo_instance)
        assert files, "the daemon subscribed to nothing?"
        if daemon == "agent":
            holding = {name for name, path in files.items() if secret.encode() in path.read_bytes()}
            assert f"{sysrepo_instance.shm_prefix}sub_data_vpp-singbox.running" in holding
        assert {name: oct(mode(path)) for name, path in files.items() if mode(path) != 0o660} == {}
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
