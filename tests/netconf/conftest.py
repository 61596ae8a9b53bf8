"""A real NETCONF server subprocess on a private sysrepo instance, and ncclient connections to it."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from ncclient import manager

from singbox_agent.repository import SysrepoInstance

ADMIN = "admin"
ADMIN_PASSWORD = "admin-secret"
SBX_NS = "urn:vpp-singbox:yang:vpp-singbox"


@dataclass
class ServerInfo:
    host: str
    port: int
    fingerprint: str
    env: dict[str, str]
    state_dir: Path
    process: subprocess.Popen[bytes]
    extra: dict[str, Any] = field(default_factory=dict)

    def connect(self, user: str = ADMIN, password: str = ADMIN_PASSWORD, **kw: Any) -> Any:
        return manager.connect(host=self.host, port=self.port, username=user, password=password,
                               hostkey_verify=False, look_for_keys=False, allow_agent=False,
                               **{"timeout": 60, **kw})


def bootstrap(env: dict[str, str], tmp: Path, user: str = ADMIN, password: str = ADMIN_PASSWORD) -> None:
    pw = tmp / f"pw-{user}"
    pw.write_text(password)
    subprocess.run([sys.executable, "-m", "singbox_agent.mgmt", "bootstrap-admin", "--user", user,
                    "--password-file", str(pw)], env=env, check=True, capture_output=True)


def start_server(env: dict[str, str], state_dir: Path, extra_args: list[str] | None = None,
                 preexec: Callable[[], None] | None = None) -> ServerInfo:
    """The server over `env`'s sysrepo; `preexec` runs in the child before it starts (resource limits)."""
    ready = state_dir / "netconf-ready.json"
    ready.unlink(missing_ok=True)
    log = open(state_dir / "netconf.log", "ab")
    proc = subprocess.Popen(
        [sys.executable, "-m", "singbox_agent.netconf", "--listen", "127.0.0.1:0", "--state-dir", str(state_dir),
         "--ready-file", str(ready), *(extra_args or [])],
        env=env, stdout=log, stderr=subprocess.STDOUT, preexec_fn=preexec,
    )
    deadline = time.monotonic() + 30
    while not ready.exists():
        if proc.poll() is not None or time.monotonic() > deadline:
            proc.kill()
            raise RuntimeError("netconf server did not start:\n" + (state_dir / "netconf.log").read_text())
        time.sleep(0.05)
    info = json.loads(ready.read_text())
    return ServerInfo(info["host"], info["port"], info["host_key_fingerprint"], env, state_dir, proc)


def stop_server(info: ServerInfo) -> int:
    if info.process.poll() is None:
        info.process.send_signal(signal.SIGTERM)
        try:
            return info.process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            info.process.kill()
            info.process.wait()
            return -9
    return int(info.process.returncode)


@contextmanager
def running_server(sysrepo_instance: SysrepoInstance, tmp_path: Path) -> Iterator[ServerInfo]:
    """A server bootstrapped over `sysrepo_instance` (with whatever modules the caller installed), stopped after;
    it must exit cleanly."""
    env = {**os.environ, **sysrepo_instance.env}
    bootstrap(env, tmp_path)
    info = start_server(env, tmp_path)
    try:
        yield info
    finally:
        code = stop_server(info)
        assert code == 0, (tmp_path / "netconf.log").read_text()[-4000:]


@pytest.fixture
def netconf_server(sysrepo_instance: SysrepoInstance, tmp_path: Path) -> Iterator[ServerInfo]:
    with running_server(sysrepo_instance, tmp_path) as info:
        yield info
