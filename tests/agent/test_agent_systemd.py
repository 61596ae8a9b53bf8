"""singbox-agent as systemd sees it (the daemon's main() on a real sysrepo, $NOTIFY_SOCKET a real socket, the
in-memory dataplane in place of VPP): `systemctl status` follows VPP coming (it kept "VPP absent" for good), and the
watchdog heartbeat comes from the worker's loop — it stops while that loop is stuck, and resumes after."""

from __future__ import annotations

import os
import signal
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from singbox_agent.agent import __main__ as agent_main
from singbox_agent.dataplane.memory import MemoryDataplane
from singbox_agent.repository import SysrepoInstance
from tests.notify_socket import Notifications

WATCHDOG_USEC = 200_000  # a heartbeat every 50 ms


def test_status_follows_vpp_and_heartbeat_stops_with_a_stuck_worker(
        sysrepo_instance: SysrepoInstance, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    notes = Notifications()
    monkeypatch.setenv("NOTIFY_SOCKET", notes.name)
    monkeypatch.setenv("WATCHDOG_USEC", str(WATCHDOG_USEC))
    monkeypatch.delenv("WATCHDOG_PID", raising=False)
    dp = MemoryDataplane(connected=False)
    monkeypatch.setattr(agent_main, "make_dataplane", lambda *a, **k: dp)
    entered, release = threading.Event(), threading.Event()
    read_config = dp.read_config

    def stuck_read_config() -> Any:
        entered.set()
        release.wait(60)
        return read_config()

    failures: list[BaseException] = []

    def drive() -> None:
        try:
            notes.wait("READY=1")
            ready = [line for line in notes.lines if line.startswith("STATUS=")]
            assert ready and "VPP absent (/run/vpp/api.sock)" in ready[0], notes.lines
            notes.wait("WATCHDOG=1")  # the worker beats while idle
            dp.connect()
            notes.wait("STATUS=VPP at /run/vpp/api.sock")
            assert not [line for line in notes.drain() if line.startswith("STATUS=VPP absent")]
            # the worker's loop stuck (in a resync's read of VPP): no heartbeat while it is
            dp.read_config = stuck_read_config  # type: ignore[method-assign]
            dp.disconnect()
            dp.connect(restarted=True)
            assert entered.wait(30)
            notes.drain()
            time.sleep(20 * WATCHDOG_USEC / 4e6)  # 20 heartbeat periods
            assert "WATCHDOG=1" not in notes.drain()
            notes.lines.clear()
            release.set()
            notes.wait("WATCHDOG=1")  # beating again
        except BaseException as exc:  # noqa: BLE001 - reported by the test's thread
            failures.append(exc)
        finally:
            release.set()
            os.kill(os.getpid(), signal.SIGTERM)

    driver = threading.Thread(target=drive)
    driver.start()
    try:
        code = agent_main.main(["--state-dir", str(tmp_path), "--vpp-api-socket", "/run/vpp/api.sock"])
    finally:
        driver.join(60)
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        signal.signal(signal.SIGINT, signal.default_int_handler)
        notes.close()
    if failures:
        raise failures[0]
    assert code == 0
