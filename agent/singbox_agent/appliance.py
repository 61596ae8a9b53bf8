"""`make run`: every service of the product on loopback, over an isolated sysrepo instance under the checkout.

A small supervisor: prepares the sysrepo instance (modules installed or updated, an admin user bootstrapped),
starts each service that exists as a child process, waits until each reports ready through its ready file, merges
those reports into `connection.json`, and stops everything on SIGINT/SIGTERM. Services are separate processes, as
they are separate systemd units on an appliance, so a fault in one cannot take the others' sysrepo state with it.

Service contract (each `python -m singbox_agent.<name>`): accepts `--state-dir DIR` and `--ready-file FILE`, plus
its own listen options; writes a JSON object (how to connect; never a secret it did not get) to FILE once it serves;
exits cleanly on SIGTERM.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib.util
import json
import os
import secrets
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import structlog

from singbox_agent.devvpp import DevVpp, VppUnavailable, find_install
from singbox_agent.logs import configure_logging
from singbox_agent.repository import SysrepoInstance, project_yang_dirs, project_yang_files

log = structlog.get_logger("appliance")

READY_TIMEOUT_S = 60.0
STOP_TIMEOUT_S = 10.0


@dataclass
class Service:
    """One child service and the arguments that place it on loopback."""

    name: str
    module: str
    args: list[str] = field(default_factory=list)
    process: asyncio.subprocess.Process | None = None

    def exists(self) -> bool:
        return module_exists(f"{self.module}.__main__")


def module_exists(name: str) -> bool:
    try:
        return importlib.util.find_spec(name) is not None
    except ModuleNotFoundError:  # a parent package is missing
        return False


def find_vpp_api_socket() -> tuple[str | None, str]:
    """The API socket of a running VPP named by VPP_API_SOCKET, or why none is used."""
    explicit = os.environ.get("VPP_API_SOCKET")
    if explicit:
        if Path(explicit).is_socket():
            return explicit, f"VPP API socket {explicit}"
        return None, f"VPP_API_SOCKET={explicit} is not a socket"
    return None, ("VPP not found (set VPP_API_SOCKET to a running VPP's API socket, or VPP_PREFIX and "
                  "SINGBOX_PLUGIN_DIR to start one); dataplane reported absent")


def start_dataplane(state_dir: Path) -> tuple[str | None, str, DevVpp | None]:
    """A running VPP's API socket if there is one; else a private VPP when VPP_PREFIX names an installed one."""
    socket, status = find_vpp_api_socket()
    if socket or os.environ.get("VPP_API_SOCKET") or not os.environ.get("VPP_PREFIX"):
        return socket, status, None
    try:
        vpp = DevVpp(find_install(), state_dir / "vpp")
        vpp.start()
    except VppUnavailable as exc:
        return None, f"private VPP not started: {exc}; dataplane reported absent", None
    return str(vpp.api_socket), f"private VPP under {vpp.run_dir}, API socket {vpp.api_socket}", vpp


def prepare_sysrepo(state_dir: Path, top: Path, shm_prefix: str) -> SysrepoInstance:
    instance = SysrepoInstance(repository=(state_dir / "sysrepo").resolve(), shm_prefix=shm_prefix)
    instance.activate()
    changed = instance.sync_modules(project_yang_files(top), project_yang_dirs(top))
    log.info("sysrepo ready", repository=str(instance.repository), installed_or_updated=changed)
    return instance


def bootstrap_admin(state_dir: Path) -> dict[str, str] | None:
    """Creates the admin user once (password kept in the 0600 state dir for this development run)."""
    if not module_exists("singbox_agent.mgmt.__main__"):
        return None
    password_file = state_dir / "admin.password"
    if not password_file.exists():
        password_file.write_text(secrets.token_urlsafe(18) + "\n")
        password_file.chmod(0o600)
    subprocess.run(
        [sys.executable, "-m", "singbox_agent.mgmt", "bootstrap-admin", "--user", "admin",
         "--password-file", str(password_file)],
        check=True,
    )
    return {"user": "admin", "password": password_file.read_text().strip()}


async def wait_ready(service: Service, ready_file: Path) -> dict[str, Any]:
    assert service.process is not None
    deadline = time.monotonic() + READY_TIMEOUT_S
    while time.monotonic() < deadline:
        if service.process.returncode is not None:
            raise RuntimeError(f"{service.name} exited with status {service.process.returncode} before it was ready")
        if ready_file.exists():
            try:
                info: dict[str, Any] = json.loads(ready_file.read_text())
                return info
            except json.JSONDecodeError:
                pass  # still being written
        await asyncio.sleep(0.1)
    raise RuntimeError(f"{service.name} not ready after {READY_TIMEOUT_S:.0f} s")


def as_host_paths(value: Any) -> Any:
    """Paths inside the environment (/src/...) as the host sees them, for clients run outside it."""
    host_top = os.environ.get("SINGBOX_HOST_TOP")
    if isinstance(value, dict):
        return {k: as_host_paths(v) for k, v in value.items()}
    if isinstance(value, list):
        return [as_host_paths(v) for v in value]
    if host_top and isinstance(value, str) and value.startswith("/src/"):
        return host_top + value.removeprefix("/src")
    return value


def usage_examples(connection: dict[str, Any]) -> dict[str, str]:
    """Ready-to-paste client commands for what is running."""
    user = connection.get("credentials", {}).get("user", "admin")
    examples: dict[str, str] = {}
    if netconf := connection.get("netconf"):
        examples["netconf"] = (
            f"netconf-console2 --host {netconf['host']} --port {netconf['port']} -u {user} -p <password> --hello"
        )
    if restconf := connection.get("restconf"):
        ca = as_host_paths(restconf.get("ca_certificate", ""))
        examples["restconf"] = (
            f"curl --cacert {ca} -u {user}:<password> "
            f"https://{restconf['host']}:{restconf['port']}/restconf/data/vpp-singbox:singbox"
        )
    return examples


async def stop_all(services: list[Service]) -> None:
    running = [s for s in services if s.process and s.process.returncode is None]
    for s in running:
        assert s.process is not None
        s.process.terminate()
    for s in running:
        assert s.process is not None
        try:
            await asyncio.wait_for(s.process.wait(), STOP_TIMEOUT_S)
        except TimeoutError:
            log.warning("service did not stop in time, killing", service=s.name)
            s.process.kill()
            await s.process.wait()
        log.info("service stopped", service=s.name, status=s.process.returncode)


async def watch_vpp(vpp: DevVpp) -> None:
    while vpp.alive():
        await asyncio.sleep(0.5)


async def supervise(state_dir: Path, services: list[Service], connection: dict[str, Any],
                    vpp: DevVpp | None = None) -> int:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)

    ready_dir = state_dir / "ready"
    shutil.rmtree(ready_dir, ignore_errors=True)
    ready_dir.mkdir(parents=True)
    rc = 0
    try:
        for s in services:
            ready_file = ready_dir / f"{s.name}.json"
            s.process = await asyncio.create_subprocess_exec(
                sys.executable, "-m", s.module, "--state-dir", str(state_dir), "--ready-file", str(ready_file), *s.args
            )
            log.info("service starting", service=s.name, pid=s.process.pid)
        for s in services:
            connection[s.name] = await wait_ready(s, ready_dir / f"{s.name}.json")
        connection["examples"] = usage_examples(connection)
        out = state_dir / "connection.json"
        out.write_text(json.dumps(as_host_paths(connection), indent=2) + "\n")
        out.chmod(0o600)
        print(f"how to connect ({out}):\n{out.read_text()}", flush=True)

        waiters: dict[asyncio.Future[Any], Service] = {
            asyncio.ensure_future(s.process.wait()): s for s in services if s.process
        }
        stop_waiter: asyncio.Future[Any] = asyncio.ensure_future(stop.wait())
        vpp_waiter: asyncio.Future[Any] = asyncio.ensure_future(watch_vpp(vpp) if vpp else asyncio.Event().wait())
        done, _ = await asyncio.wait([stop_waiter, vpp_waiter, *waiters], return_when=asyncio.FIRST_COMPLETED)
        for fut in done:
            if fut in waiters:
                log.error("service exited unexpectedly", service=waiters[fut].name, status=fut.result())
                rc = 1
            elif fut is vpp_waiter:
                log.error("private VPP exited unexpectedly", log=str(state_dir / "vpp" / "vpp.log"))
                rc = 1
        stop_waiter.cancel()
        vpp_waiter.cancel()
        for fut in waiters:
            fut.cancel()
    except RuntimeError as exc:
        log.error("start failed", error=str(exc))
        rc = 1
    finally:
        await stop_all(services)
        if vpp:
            vpp.stop()
    return rc


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--state-dir", type=Path, default=Path(".run"))
    parser.add_argument("--netconf-port", type=int, default=8830)
    parser.add_argument("--restconf-port", type=int, default=8443)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--shm-prefix", default="sbxrun", help="sysrepo SHM prefix of this instance")
    opts = parser.parse_args(argv)
    configure_logging()

    state_dir: Path = opts.state_dir.resolve()
    state_dir.mkdir(parents=True, exist_ok=True)
    state_dir.chmod(0o700)
    top = Path(__file__).resolve().parents[2]
    prepare_sysrepo(state_dir, top, opts.shm_prefix)
    admin = bootstrap_admin(state_dir)

    vpp_socket, vpp_status, vpp = start_dataplane(state_dir)
    log.info("dataplane", status=vpp_status)
    connection: dict[str, Any] = {"vpp": {"api_socket": vpp_socket, "status": vpp_status}}
    if vpp:
        connection["vpp"]["vppctl"] = vpp.vppctl
    if admin:
        connection["credentials"] = admin

    candidates = [
        Service("agent", "singbox_agent.agent", ["--vpp-api-socket", vpp_socket or "none"]),
        Service("netconf", "singbox_agent.netconf", ["--listen", f"{opts.host}:{opts.netconf_port}"]),
        Service("restconf", "singbox_agent.restconf", ["--listen", f"{opts.host}:{opts.restconf_port}"]),
    ]
    services = [s for s in candidates if s.exists()]
    absent = [s.name for s in candidates if not s.exists()]
    if absent:
        log.info("services not built yet", services=absent)
    connection["services"] = [s.name for s in services]
    return asyncio.run(supervise(state_dir, services, connection, vpp))


if __name__ == "__main__":
    sys.exit(main())
