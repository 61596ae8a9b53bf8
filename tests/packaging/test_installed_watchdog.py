"""systemd's watchdog on the installed appliance (test_installed_appliance.py's appliance, booted under systemd):
the units ask for it (WatchdogSec=3min), the four daemons feed it while healthy, and a daemon that stops answering
(SIGSTOP: its loop, and everything else, frozen) is killed and started again by systemd. The watchdog is made
short for the test with a drop-in in /run.

An appliance of its own (the fixtures are module-scoped), with this checkout's package only."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest

from tests.packaging.test_installed_appliance import (Appliance, appliance,  # noqa: F401
                                                      UNITS, current_only, install_current)

pytestmark = [pytest.mark.slow, pytest.mark.timeout(1200)]

SHORT_S = 6  # the drop-in's WatchdogSec=: heartbeats every 1.5 s


@pytest.fixture(scope="module")
def debs() -> dict[str, Path]:
    return current_only()


@pytest.fixture(scope="module")
def installed(appliance: Appliance, debs: dict[str, Path]) -> dict[str, Any]:
    return install_current(appliance, debs)


def show(appliance: Appliance, unit: str, properties: str) -> dict[str, str]:
    out = appliance.run("systemctl", "show", unit, "-p", properties).stdout
    return dict(line.split("=", 1) for line in out.splitlines() if "=" in line)


def test_a_stuck_daemon_is_restarted_by_the_watchdog(appliance: Appliance, installed: dict[str, Any]) -> None:
    for unit in UNITS:
        assert show(appliance, unit, "WatchdogUSec")["WatchdogUSec"] == "3min", unit
    try:
        for unit in UNITS:
            appliance.run("mkdir", "-p", f"/run/systemd/system/{unit}.service.d")
            appliance.run("sh", "-c", f"printf '[Service]\\nWatchdogSec={SHORT_S}s\\n' "
                          f">/run/systemd/system/{unit}.service.d/watchdog.conf")
        appliance.run("systemctl", "daemon-reload")
        appliance.run("systemctl", "restart", *UNITS)  # WATCHDOG_USEC is given at exec
        appliance.wait_units()
        started = {u: show(appliance, u, "MainPID,NRestarts,WatchdogUSec") for u in UNITS}
        assert all(p["WatchdogUSec"] == f"{SHORT_S}s" for p in started.values()), started
        # healthy: each feeds it for several watchdog periods (a daemon that does not would be killed by now)
        time.sleep(3 * SHORT_S)
        healthy = {u: show(appliance, u, "MainPID,NRestarts,ActiveState") for u in UNITS}
        for unit in UNITS:
            assert healthy[unit]["MainPID"] == started[unit]["MainPID"], (unit, healthy, started)
            assert healthy[unit]["ActiveState"] == "active", (unit, healthy)
        since = appliance.run("date", "+%Y-%m-%d %H:%M:%S").stdout.strip()
        # each daemon in turn stops answering: systemd kills it after WatchdogSec= and starts it again
        for unit in UNITS:
            pid = started[unit]["MainPID"]
            appliance.run("sh", "-c", f"kill -STOP {pid}")
            deadline = time.monotonic() + 10 * SHORT_S + 60
            while True:
                now = show(appliance, unit, "MainPID,ActiveState,NRestarts")
                if now["ActiveState"] == "active" and now["MainPID"] not in ("0", pid):
                    break
                assert time.monotonic() < deadline, (unit, now)
                time.sleep(0.5)
            assert int(now["NRestarts"]) == int(started[unit]["NRestarts"]) + 1, (unit, now)
            journal = appliance.run("journalctl", "-u", unit, "--since", since, "--no-pager", "-o", "cat").stdout
            assert "Watchdog timeout" in journal, (unit, journal[-2000:])
        appliance.wait_units()
    finally:
        for unit in UNITS:
            appliance.run("rm", "-rf", f"/run/systemd/system/{unit}.service.d", check=False)
        appliance.run("systemctl", "daemon-reload", check=False)
        appliance.run("systemctl", "restart", *UNITS, check=False)
    appliance.wait_units()
    assert show(appliance, "singbox-agent", "WatchdogUSec")["WatchdogUSec"] == "3min"
