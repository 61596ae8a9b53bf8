"""Helpers to run the real RESTCONF server (a subprocess) over an isolated sysrepo instance."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import httpx

from singbox_agent.repository import SysrepoInstance
from tests import daemon_process

ADMIN = ("admin", "admin-secret-1")
BOB = ("bob", "bob-secret-2")  # a user without the admin group: NACM defaults apply
START_TIMEOUT_S = 30.0


@dataclass
class RestconfServer:
    instance: SysrepoInstance
    base_url: str
    ca: str | None
    state_dir: Path
    process: subprocess.Popen[bytes]
    log_path: Path

    def client(self, *, http2: bool = False, auth: tuple[str, str] | None = ADMIN, **kw: object) -> httpx.Client:
        return httpx.Client(
            base_url=self.base_url, verify=self.ca or False, http2=http2, http1=True, auth=auth, timeout=30.0, **kw  # type: ignore[arg-type]
        )

    def curl(self, *args: str, user: tuple[str, str] | None = ADMIN) -> subprocess.CompletedProcess[str]:
        cmd = ["curl", "-sS", "--max-time", "30"]
        if self.ca:
            cmd += ["--cacert", self.ca]
        if user:
            cmd += ["-u", f"{user[0]}:{user[1]}"]
        return subprocess.run(cmd + list(args), capture_output=True, text=True, timeout=60)

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")


def bootstrap_users(instance: SysrepoInstance, state_dir: Path) -> None:
    env = {**os.environ, **instance.env}
    pw = state_dir / "admin.pw"
    pw.write_text(ADMIN[1] + "\n")
    subprocess.run(
        [sys.executable, "-m", "singbox_agent.mgmt", "bootstrap-admin", "--user", ADMIN[0], "--password-file", str(pw)],
        env=env, check=True, capture_output=True, timeout=60,
    )
    pw.write_text(BOB[1] + "\n")
    hashed = subprocess.run(
        [sys.executable, "-m", "singbox_agent.mgmt", "hash-password", "--password-file", str(pw)],
        env=env, check=True, capture_output=True, text=True, timeout=60,
    ).stdout.strip()
    script = (
        "import sysrepo,sys\n"
        "with sysrepo.SysrepoConnection() as c:\n"
        "  s=c.start_session('running')\n"
        "  s.edit_batch({'system':{'authentication':{'user':[{'name':sys.argv[1],'password':sys.argv[2]}]}}},'ietf-system')\n"
        "  s.apply_changes()\n"
    )
    subprocess.run([sys.executable, "-c", script, BOB[0], hashed], env=env, check=True, capture_output=True, timeout=60)


def start_service(instance: SysrepoInstance, module: str, state_dir: Path, ready: Path, log_path: Path,
                  *extra: str, preexec: Callable[[], None] | None = None
                  ) -> tuple[subprocess.Popen[bytes], dict[str, object]]:
    """`python -m <module> --listen 127.0.0.1:0 --state-dir D --ready-file R ...` on the instance; waits for its
    ready file (the NETCONF and RESTCONF servers both write one) and returns the process and the file's content.
    `preexec` runs in the child before it starts (resource limits)."""
    env = {**os.environ, **instance.env}
    ready.unlink(missing_ok=True)
    with open(log_path, "wb") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", module, "--listen", "127.0.0.1:0", "--state-dir", str(state_dir),
             "--ready-file", str(ready), *extra],
            env=env, stdout=log, stderr=subprocess.STDOUT, preexec_fn=preexec,
        )
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{module} exited with {proc.returncode}:\n{log_path.read_text()}")
        if ready.exists():
            return proc, json.loads(ready.read_text())
        time.sleep(0.05)
    proc.kill()
    proc.wait()
    raise RuntimeError(f"{module} not ready:\n{log_path.read_text()}")


def stop_process(proc: subprocess.Popen[bytes]) -> int:
    """SIGTERM, then SIGKILL after 15 s (-9): a server must stop within its grace time."""
    return daemon_process.stop(proc, grace=15)


def start_server(instance: SysrepoInstance, state_dir: Path, *extra: str,
                 preexec: Callable[[], None] | None = None) -> RestconfServer:
    log_path = state_dir / "restconf.log"
    proc, info = start_service(instance, "singbox_agent.restconf", state_dir, state_dir / "ready.json", log_path,
                               *extra, preexec=preexec)
    ca = info.get("ca_certificate")
    return RestconfServer(instance, str(info["base_url"]), str(ca) if ca else None, state_dir, proc, log_path)


def stop_server(server: RestconfServer) -> int:
    return stop_process(server.process)
