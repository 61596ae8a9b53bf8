"""The RESTCONF server started before its listen address is usable (not up yet at boot, a port still held): no
traceback and no exit — one error line naming the address and the reason, then it retries and serves (ready file,
READY=1) as soon as the address can be bound, without a restart."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx

from singbox_agent.repository import SysrepoInstance
from tests.daemon_process import stop, wait_for_log
from tests.restconf.rcserver import ADMIN, bootstrap_users

NOT_HERE = "192.0.2.1"  # RFC 5737 TEST-NET-1: never an address of this host; only a bind attempt, no traffic


def _start(instance: SysrepoInstance, state_dir: Path, listen: str) -> subprocess.Popen[bytes]:
    log = open(state_dir / "restconf.log", "ab")
    return subprocess.Popen(
        [sys.executable, "-m", "singbox_agent.restconf", "--listen", listen, "--state-dir", str(state_dir),
         "--ready-file", str(state_dir / "ready.json"), "--plain-http"],
        env={**os.environ, **instance.env}, stdout=log, stderr=subprocess.STDOUT,
    )


def test_address_not_on_this_host(sysrepo_instance: SysrepoInstance, tmp_path: Path) -> None:
    bootstrap_users(sysrepo_instance, tmp_path)
    proc = _start(sysrepo_instance, tmp_path, f"{NOT_HERE}:8443")
    try:
        wait_for_log(proc, tmp_path / "restconf.log", "cannot listen")
    finally:
        code = stop(proc)
    text = (tmp_path / "restconf.log").read_text()
    assert "Traceback" not in text, text[-4000:]
    errors = [line for line in text.splitlines() if "cannot listen" in line]
    assert len(errors) == 1 and NOT_HERE in errors[0] and "8443" in errors[0], text[-4000:]
    assert "cannot assign requested address" in errors[0].lower(), errors[0]
    assert not (tmp_path / "ready.json").exists()
    assert code == 0, text[-4000:]


def test_serves_once_the_address_can_be_bound(sysrepo_instance: SysrepoInstance, tmp_path: Path) -> None:
    bootstrap_users(sysrepo_instance, tmp_path)
    holder = socket.socket()  # the port is taken until the test lets it go, as an address that is not up yet
    holder.bind(("127.0.0.1", 0))
    holder.listen()
    port = holder.getsockname()[1]
    proc = _start(sysrepo_instance, tmp_path, f"127.0.0.1:{port}")
    ready = tmp_path / "ready.json"
    try:
        try:
            wait_for_log(proc, tmp_path / "restconf.log", "cannot listen")
            assert not ready.exists()
        finally:
            holder.close()
        deadline = time.monotonic() + 60
        while not ready.exists():
            assert proc.poll() is None and time.monotonic() < deadline, (tmp_path / "restconf.log").read_text()[-4000:]
            time.sleep(0.1)
        info = json.loads(ready.read_text())
        assert info["port"] == port
        r = httpx.get(f"{info['base_url']}/restconf/yang-library-version", auth=ADMIN, timeout=30)
        assert r.status_code == 200, r.text
    finally:
        code = stop(proc)
    text = (tmp_path / "restconf.log").read_text()
    assert "Traceback" not in text, text[-4000:]
    assert code == 0, text[-4000:]
