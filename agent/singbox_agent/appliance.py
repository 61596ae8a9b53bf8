"""`make run`: every service of the product on loopback, over an isolated sysrepo instance under the checkout.

A small supervisor: prepares the sysrepo instance (modules installed or updated, an admin user bootstrapped),
starts each service that exists as a child process, waits until each reports ready through its ready file, merges
those reports into `connection.json` (0600: it holds the admin password, which the log never shows), and stops
everything on SIGINT/SIGTERM. Services are separate processes, as they are separate systemd units on an appliance,
so a fault in one cannot take the others' sysrepo state with it; and as systemd's Restart=on-failure would, the
supervisor starts a service that failed (non-zero exit, killed by a signal) again after a delay that doubles with
each failure, says so in its log, and leaves the others serving. The private VPP, when there is one, likewise.

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
import sysrepo

from singbox_agent.devvpp import DevVpp, VppUnavailable, find_install
from singbox_agent.logs import configure_logging
from singbox_agent.metrics import settings as exporter_settings
from singbox_agent.repository import SysrepoInstance

log = structlog.get_logger("appliance")

READY_TIMEOUT_S = 60.0
STOP_TIMEOUT_S = 10.0
RESTART_DELAY_S = 0.5  # the first restart of a failed service
RESTART_DELAY_MAX_S = 30.0
STABLE_AFTER_S = 30.0  # a service that ran this long starts over from RESTART_DELAY_S when it fails


@dataclass
class Service:
    """One child service and the arguments that place it on loopback."""

    name: str
    module: str
    args: list[str] = field(default_factory=list)
    after: str | None = None  # another service's name: started once that one is ready (systemd's After=)
    process: asyncio.subprocess.Process | None = None
    started_at: float = 0.0
    restarts: int = 0

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
    """The instance with what the product needs: the project's modules installed or updated, and sysrepo's own
    for subscribed notifications / YANG-Push with their features (as the package's postinst does)."""
    instance = SysrepoInstance(repository=(state_dir / "sysrepo").resolve(), shm_prefix=shm_prefix)
    instance.activate()
    changed = instance.sync_product(top)
    log.info("sysrepo ready", repository=str(instance.repository), installed_or_updated=changed)
    return instance


def place_exporter(host: str, port: int) -> None:
    """The exporter listens where its settings in sysrepo say (`vpp-singbox-metrics`, no command-line option):
    `make run` puts it on --host/--metrics-port at each start, in running and startup, as --listen does for
    RESTCONF."""
    conn = sysrepo.SysrepoConnection()
    try:
        for datastore in ("running", "startup"):
            sess = conn.start_session(datastore)
            try:
                sess.set_item(f"{exporter_settings.XPATH}/listen/address", host)
                sess.set_item(f"{exporter_settings.XPATH}/listen/port", port)
                sess.apply_changes()
            finally:
                sess.stop()
    finally:
        conn.disconnect()


def find_stats_socket(vpp_socket: str | None, vpp: DevVpp | None) -> str:
    """VPP's stats socket for the exporter: VPP_STATS_SOCKET, the private VPP's, or the one beside the API socket
    (VPP's default layout); without a VPP, where a system VPP would have it (the exporter reports it down)."""
    if explicit := os.environ.get("VPP_STATS_SOCKET"):
        return explicit
    if vpp is not None:
        return str(vpp.stats_socket)
    if vpp_socket:
        return str(Path(vpp_socket).with_name("stats.sock"))
    return "/run/vpp/stats.sock"


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
    if (exporter := connection.get("exporter")) and exporter.get("metrics_url"):
        ca = as_host_paths(exporter.get("ca_certificate") or "")
        examples["exporter"] = f"curl --cacert {ca} -u {user}:<password> {exporter['metrics_url']}"
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
        log.info("service stopped", service=s.name, status=describe_status(s.process.returncode))


def describe_status(status: int | None) -> str:
    """A child's exit as a person reads it: "exit status 1", "killed by SIGSEGV"."""
    if status is None:
        return "running"
    if status < 0:
        try:
            return f"killed by {signal.Signals(-status).name}"
        except ValueError:
            return f"killed by signal {-status}"
    return f"exit status {status}"


def printable(connection: dict[str, Any], out: Path) -> dict[str, Any]:
    """`connection` as printed to the log: the password stays in the 0600 file only."""
    shown = dict(connection)
    if isinstance(shown.get("credentials"), dict) and "password" in shown["credentials"]:
        shown["credentials"] = {**shown["credentials"], "password": f"<in {out}>"}
    return shown


@dataclass
class RestartPolicy:
    """What systemd's Restart=on-failure with a growing RestartSec does: a service that fails (non-zero exit,
    killed by a signal) is started again after `delay`, which doubles with each failure up to `maximum` and starts
    over once the service has run `stable` seconds; a service that exits 0 on its own is left stopped."""

    initial: float = RESTART_DELAY_S
    maximum: float = RESTART_DELAY_MAX_S
    stable: float = STABLE_AFTER_S


class Supervisor:
    """Starts the services, restarts the ones that fail while the others keep serving, stops them all on
    SIGINT/SIGTERM."""

    def __init__(self, state_dir: Path, services: list[Service], connection: dict[str, Any],
                 vpp: DevVpp | None = None, policy: RestartPolicy | None = None) -> None:
        self.state_dir = state_dir
        self.services = services
        self.connection = connection
        self.vpp = vpp
        self.policy = policy or RestartPolicy()
        self.ready_dir = state_dir / "ready"
        self.stopping = asyncio.Event()

    async def start(self, s: Service) -> dict[str, Any]:
        ready_file = self.ready_dir / f"{s.name}.json"
        ready_file.unlink(missing_ok=True)
        s.process = await asyncio.create_subprocess_exec(
            sys.executable, "-m", s.module, "--state-dir", str(self.state_dir), "--ready-file", str(ready_file),
            *s.args,
        )
        s.started_at = time.monotonic()
        log.info("service starting", service=s.name, pid=s.process.pid)
        return await wait_ready(s, ready_file)

    async def start_after(self, s: Service, first: asyncio.Future[dict[str, Any]] | None) -> dict[str, Any]:
        """`s` once `first` (the service it comes after) is ready; its failure fails `s` too."""
        if first is not None:
            await asyncio.shield(first)
        return await self.start(s)

    def write_connection(self) -> Path:
        self.connection["examples"] = usage_examples(self.connection)
        out = self.state_dir / "connection.json"
        tmp = out.with_suffix(".tmp")
        tmp.write_text(json.dumps(as_host_paths(self.connection), indent=2) + "\n")
        tmp.chmod(0o600)
        tmp.replace(out)
        return out

    async def watch(self, s: Service) -> None:
        """Restarts `s` whenever it fails, until the supervisor stops."""
        delay = self.policy.initial
        while True:
            assert s.process is not None
            status = await s.process.wait()
            if self.stopping.is_set():
                return
            if status == 0:
                log.warning("service exited on its own; not restarted (it did not fail)", service=s.name)
                return
            if time.monotonic() - s.started_at >= self.policy.stable:
                delay = self.policy.initial
            s.restarts += 1
            log.error("service failed; restarting it, the others keep serving", service=s.name,
                      status=describe_status(status), restart_in_s=delay, restarts=s.restarts)
            try:
                await asyncio.wait_for(self.stopping.wait(), delay)
                return
            except TimeoutError:
                pass
            delay = min(delay * 2, self.policy.maximum)
            try:
                self.connection[s.name] = await self.start(s)
            except RuntimeError as exc:
                log.error("service restart failed", service=s.name, error=str(exc))
                if s.process is not None and s.process.returncode is None:
                    s.process.kill()  # not ready in time: the next round starts it again
                continue
            self.write_connection()
            log.info("service restarted", service=s.name, pid=s.process.pid, restarts=s.restarts)

    async def watch_vpp(self, vpp: DevVpp) -> None:
        """Restarts the private VPP when it dies (the agent reconnects on its own)."""
        delay = self.policy.initial
        while not self.stopping.is_set():
            started = time.monotonic()
            while vpp.alive() and not self.stopping.is_set():
                await asyncio.sleep(0.5)
            if self.stopping.is_set():
                return
            if time.monotonic() - started >= self.policy.stable:
                delay = self.policy.initial
            status = vpp.process.returncode if vpp.process is not None else None
            log.error("private VPP exited; restarting it", status=describe_status(status), restart_in_s=delay,
                      log=str(self.state_dir / "vpp" / "stdout.log"))
            try:
                await asyncio.wait_for(self.stopping.wait(), delay)
                return
            except TimeoutError:
                pass
            delay = min(delay * 2, self.policy.maximum)
            try:
                await asyncio.to_thread(vpp.start)
                log.info("private VPP restarted", pid=vpp.process.pid if vpp.process else None)
            except VppUnavailable as exc:
                log.error("private VPP restart failed", error=str(exc))

    async def run(self) -> int:
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, self.stopping.set)
        shutil.rmtree(self.ready_dir, ignore_errors=True)
        self.ready_dir.mkdir(parents=True)
        watchers: list[asyncio.Task[None]] = []
        try:
            starting: list[asyncio.Future[dict[str, Any]]] = []
            by_name: dict[str, asyncio.Future[dict[str, Any]]] = {}
            for s in self.services:
                first = by_name.get(s.after) if s.after else None
                by_name[s.name] = asyncio.ensure_future(self.start_after(s, first))
                starting.append(by_name[s.name])
            try:
                for s, started in zip(self.services, starting):
                    self.connection[s.name] = await started
            except RuntimeError as exc:
                for started in starting:
                    started.cancel()
                log.error("start failed", error=str(exc))
                return 1
            out = self.write_connection()
            print(f"how to connect ({out}):\n{json.dumps(as_host_paths(printable(self.connection, out)), indent=2)}",
                  flush=True)
            watchers = [asyncio.create_task(self.watch(s)) for s in self.services]
            if self.vpp is not None:
                watchers.append(asyncio.create_task(self.watch_vpp(self.vpp)))
            await self.stopping.wait()
        finally:
            self.stopping.set()
            for task in watchers:
                task.cancel()
            await asyncio.gather(*watchers, return_exceptions=True)
            await stop_all(self.services)
            if self.vpp:
                self.vpp.stop()
        return 0


async def supervise(state_dir: Path, services: list[Service], connection: dict[str, Any],
                    vpp: DevVpp | None = None) -> int:
    return await Supervisor(state_dir, services, connection, vpp).run()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--state-dir", type=Path, default=Path(".run"))
    parser.add_argument("--netconf-port", type=int, default=8830)
    parser.add_argument("--restconf-port", type=int, default=8443)
    parser.add_argument("--metrics-port", type=int, default=9745, help="the metrics exporter's HTTPS port")
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
        # after RESTCONF, whose certificate it serves with (made by RESTCONF on its first start)
        Service("exporter", "singbox_agent.metrics", ["--vpp-stats-socket", find_stats_socket(vpp_socket, vpp)],
                after="restconf"),
    ]
    services = [s for s in candidates if s.exists()]
    if any(s.name == "exporter" for s in services):
        place_exporter(opts.host, opts.metrics_port)
    absent = [s.name for s in candidates if not s.exists()]
    if absent:
        log.info("services not built yet", services=absent)
    connection["services"] = [s.name for s in services]
    return asyncio.run(supervise(state_dir, services, connection, vpp))


if __name__ == "__main__":
    sys.exit(main())
