"""singbox-netconfd as systemd sees it: `systemctl status` follows the listen endpoints when they move (it kept
"listening on" the first address for good), and WATCHDOG=1 comes while systemd asks for it (WATCHDOG_USEC)."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import sysrepo

from singbox_agent.repository import SysrepoInstance
from tests.daemon_process import stop
from tests.netconf.conftest import bootstrap
from tests.notify_socket import Notifications

ENDPOINT = "/ietf-netconf-server:netconf-server/listen/endpoints/endpoint[name='default']/ssh/tcp-server-parameters"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_status_follows_the_endpoint_and_the_watchdog_is_fed(sysrepo_instance: SysrepoInstance,
                                                            tmp_path: Path) -> None:
    env = {**os.environ, **sysrepo_instance.env}
    bootstrap(env, tmp_path)
    notes = Notifications()
    first, second = free_port(), free_port()
    ready = tmp_path / "ready.json"
    with open(tmp_path / "netconf.log", "ab") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "singbox_agent.netconf", "--listen", f"127.0.0.1:{first}", "--state-dir",
             str(tmp_path), "--ready-file", str(ready)],
            env={**env, "NOTIFY_SOCKET": notes.name, "WATCHDOG_USEC": "400000"}, stdout=log, stderr=subprocess.STDOUT)
    try:
        notes.wait("READY=1", timeout=60)
        assert f"STATUS=listening on 127.0.0.1:{first}" in notes.lines, notes.lines
        assert json.loads(ready.read_text())["port"] == first
        with sysrepo.SysrepoConnection() as conn, conn.start_session("running") as sess:
            sess.delete_item(f"{ENDPOINT}/local-bind[local-address='127.0.0.1']")
            sess.set_item(f"{ENDPOINT}/local-bind[local-address='127.0.0.1']/local-port", second)
            sess.apply_changes()
        notes.wait(f"STATUS=listening on 127.0.0.1:{second}")
        notes.lines.clear()
        notes.wait("WATCHDOG=1")  # still fed after the move
    finally:
        code = stop(proc)
        notes.close()
    text = (tmp_path / "netconf.log").read_text()
    assert code == 0 and "Traceback" not in text, text[-3000:]
