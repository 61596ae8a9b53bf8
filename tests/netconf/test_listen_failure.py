"""The NETCONF server started before its listen address is usable (an address not up yet at boot, DHCP, a port still
held): no traceback and no exit — one error line per endpoint naming it and the reason, then it keeps retrying and
listens (ready file, READY=1) as soon as the address can be bound, without a restart."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

from singbox_agent.repository import SysrepoInstance
from tests.daemon_process import stop, wait_for_log
from tests.netconf.conftest import ServerInfo, bootstrap, stop_server

# RFC 5737 TEST-NET-1: never an address of this host, so binding it fails (EADDRNOTAVAIL); nothing is sent to it.
NOT_HERE = "192.0.2.1"


def _start(env: dict[str, str], state_dir: Path, listen: str) -> subprocess.Popen[bytes]:
    log = open(state_dir / "netconf.log", "ab")
    return subprocess.Popen(
        [sys.executable, "-m", "singbox_agent.netconf", "--listen", listen, "--state-dir", str(state_dir),
         "--ready-file", str(state_dir / "netconf-ready.json")],
        env=env, stdout=log, stderr=subprocess.STDOUT,
    )


def test_address_not_on_this_host(sysrepo_instance: SysrepoInstance, tmp_path: Path) -> None:
    env = {**os.environ, **sysrepo_instance.env}
    bootstrap(env, tmp_path)
    proc = _start(env, tmp_path, f"{NOT_HERE}:8830")
    try:
        text = wait_for_log(proc, tmp_path / "netconf.log", "no listen endpoint could be opened")
    finally:
        code = stop(proc)
    text = (tmp_path / "netconf.log").read_text()
    assert "Traceback" not in text, text[-4000:]
    errors = [line for line in text.splitlines() if "cannot listen" in line]
    assert errors and f"{NOT_HERE}" in errors[0] and "8830" in errors[0], text[-4000:]
    assert "assign" in errors[0].lower(), errors[0]  # the reason: EADDRNOTAVAIL's text
    assert not (tmp_path / "netconf-ready.json").exists()  # ready means listening
    assert code == 0, text[-4000:]


def test_listens_once_the_address_can_be_bound(sysrepo_instance: SysrepoInstance, tmp_path: Path) -> None:
    env = {**os.environ, **sysrepo_instance.env}
    bootstrap(env, tmp_path)
    holder = socket.socket()  # the port is taken until the test lets it go, as an address that is not up yet
    holder.bind(("127.0.0.1", 0))
    holder.listen()
    port = holder.getsockname()[1]
    proc = _start(env, tmp_path, f"127.0.0.1:{port}")
    ready = tmp_path / "netconf-ready.json"
    try:
        try:
            wait_for_log(proc, tmp_path / "netconf.log", "no listen endpoint could be opened")
            assert not ready.exists()
        finally:
            holder.close()
        deadline = time.monotonic() + 60
        while not ready.exists():
            assert proc.poll() is None and time.monotonic() < deadline, (tmp_path / "netconf.log").read_text()[-4000:]
            time.sleep(0.1)
        info = json.loads(ready.read_text())
        assert info["port"] == port
        server = ServerInfo(info["host"], info["port"], info["host_key_fingerprint"], env, tmp_path, proc)
        with server.connect() as m:
            assert m.session_id
        assert stop_server(server) == 0
    finally:
        if proc.poll() is None:
            stop(proc)
    text = (tmp_path / "netconf.log").read_text()
    assert "Traceback" not in text, text[-4000:]


def test_one_endpoint_late_the_other_serves_meanwhile(sysrepo_instance: SysrepoInstance, tmp_path: Path) -> None:
    env = {**os.environ, **sysrepo_instance.env}
    bootstrap(env, tmp_path)
    holder = socket.socket()
    holder.bind(("127.0.0.1", 0))
    holder.listen()
    port = holder.getsockname()[1]
    log = open(tmp_path / "netconf.log", "ab")
    ready = tmp_path / "netconf-ready.json"
    proc = subprocess.Popen(
        [sys.executable, "-m", "singbox_agent.netconf", "--listen", "127.0.0.1:0", "--listen", f"127.0.0.1:{port}",
         "--state-dir", str(tmp_path), "--ready-file", str(ready)],
        env=env, stdout=log, stderr=subprocess.STDOUT,
    )
    try:
        try:
            deadline = time.monotonic() + 60
            while not ready.exists():  # the other endpoint listens: ready, with it alone
                assert proc.poll() is None and time.monotonic() < deadline, (tmp_path / "netconf.log").read_text()
                time.sleep(0.1)
        finally:
            holder.close()
        info = json.loads(ready.read_text())
        assert [e["port"] for e in info["endpoints"]] != [port] and len(info["endpoints"]) == 1
        wait_for_log(proc, tmp_path / "netconf.log", f'"endpoints": ["127.0.0.1:{port}"], "event": "netconf listening"')
        late = ServerInfo("127.0.0.1", port, info["host_key_fingerprint"], env, tmp_path, proc)
        with late.connect() as m:
            assert m.session_id
        assert stop_server(late) == 0
    finally:
        if proc.poll() is None:
            stop(proc)
    assert "Traceback" not in (tmp_path / "netconf.log").read_text()
