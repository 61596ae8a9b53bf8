"""The daemon as `make run` starts it: ready file, one JSON log line per commit, no secret in any log line,
clean exit on SIGTERM, and commits accepted (pending) while there is no VPP."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import sysrepo

from singbox_agent.repository import SysrepoInstance

TOP = "/vpp-singbox:singbox"
SECRETS = ("hunter2-upstream-secret", "clear-text-user-secret")


def wait_for(path: Path, proc: subprocess.Popen[str], timeout: float = 20) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert proc.poll() is None, proc.stderr.read() if proc.stderr else ""
        if path.exists():
            data: dict[str, Any] = json.loads(path.read_text())
            return data
        time.sleep(0.05)
    raise AssertionError("agent not ready")


def test_service_lifecycle_logs_and_secrets(sysrepo_instance: SysrepoInstance, tmp_path: Path) -> None:
    # startup config, as an appliance boots with it
    with sysrepo.SysrepoConnection() as conn, conn.start_session("running") as s:
        s.set_item(f"{TOP}/client/endpoint[name='boot']/address", "192.0.2.1")
        s.apply_changes()
    ready = tmp_path / "ready.json"
    proc = subprocess.Popen(
        [sys.executable, "-m", "singbox_agent.agent", "--state-dir", str(tmp_path), "--ready-file", str(ready),
         "--vpp-api-socket", "none"],
        env={**os.environ, **sysrepo_instance.env}, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        info = wait_for(ready, proc)
        assert info["service"] == "agent" and info["dataplane_connected"] is False
        with sysrepo.SysrepoConnection() as conn, conn.start_session("running") as s:
            s.set_item(f"{TOP}/client/endpoint[name='e']/address", "192.0.2.2")
            s.set_item(f"{TOP}/client/endpoint[name='e']/username", "u")
            s.set_item(f"{TOP}/client/endpoint[name='e']/password", SECRETS[0])
            s.set_item(f"{TOP}/server/authentication/user[username='v']/password", "$0$" + SECRETS[1])
            s.apply_changes()  # accepted without VPP
            s.switch_datastore("operational")
            dp = s.get_data(f"{TOP}/dataplane")["singbox"]["dataplane"]
            assert dp["connected"] is False and dp["config-pending"] is True
            assert "boot" in s.get_data(f"{TOP}/client")["singbox"]["client"]["endpoint"]
    finally:
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=15)
    assert proc.returncode == 0, err
    lines = [json.loads(line) for line in err.splitlines() if line.startswith("{")]
    assert lines, err
    commits = [r for r in lines if r["event"] == "commit"]
    assert len(commits) == 1 and commits[0]["result"] == "pending" and "txn" in commits[0]
    assert "duration_ms" in commits[0]
    assert any(r["event"] == "agent stopped" for r in lines)
    for secret in SECRETS:
        assert secret not in err and secret not in out
