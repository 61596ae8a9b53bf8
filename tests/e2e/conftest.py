# SPDX-License-Identifier: Apache-2.0
# Copyright (c) 2026 vpp-singbox authors
"""The whole product chain with real components.

    ncclient --NETCONF/SSH--> singbox_agent.netconf --\\
                                                       sysrepo (one isolated instance) --> singbox_agent.agent
    httpx   --RESTCONF/TLS--> singbox_agent.restconf --/                                    | vpp-papi
                                                                                            v
    [client ns] --veth/af_packet--> VPP + singbox_plugin.so --veth/af_packet--> [origin ns: HTTP/echo]

Every service runs as its own subprocess, exactly as `make run` starts it; VPP and the namespaces come from
tests/vpp/vpptopo.py (the plugin's harness, imported, not copied). Skipped, saying what is missing, without VPP
(VPP_PREFIX or `vpp` on PATH), without the built plugin (SINGBOX_PLUGIN_DIR) or without root.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from singbox_agent.repository import SysrepoInstance

HERE = Path(__file__).resolve().parent
VPP_HARNESS = HERE.parent / "vpp"
sys.path.insert(0, str(VPP_HARNESS))
import vpptopo  # noqa: E402
from vppfixtures import ECHO_PORT, HTTP_PORT, UDP_PORT, mark_vpp_tests, start_origin, vpp_output  # noqa: E402
from vppfixtures import skip_reason as vpp_skip_reason  # noqa: E402


ADMIN = ("admin", "e2e-admin-secret")
SBX_NS = "urn:vpp-singbox:yang:vpp-singbox"
START_TIMEOUT_S = 60.0  # 2 cores shared with other engineers' test runs: readiness waits are generous


def skip_reason() -> str | None:
    return vpp_skip_reason("end-to-end tests")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    mark_vpp_tests(items, HERE, skip_reason())


def hold_socks_session(stack: Stack, port: int, user: str, password: str, dst: str,
                       dst_port: int) -> subprocess.Popen[bytes]:
    """A SOCKS5 session from the client namespace held open until end_hold() closes its stdin."""
    hold = subprocess.Popen(
        ["ip", "netns", "exec", stack.t.ns_client, sys.executable, str(HERE / "socks_hold.py"),
         vpptopo.VPP_CLIENT_IP4, str(port), user, password, dst, str(dst_port)],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True)
    assert hold.stdout is not None
    line = hold.stdout.readline()
    if line != b"established\n":
        hold.kill()
        raise AssertionError(f"no SOCKS5 session: {line!r} {hold.communicate(timeout=10)[1]!r}")
    return hold


def end_hold(hold: subprocess.Popen[bytes]) -> int:
    if hold.poll() is None:
        assert hold.stdin is not None
        hold.stdin.close()
        try:
            hold.wait(timeout=20)
        except subprocess.TimeoutExpired:
            hold.kill()
            hold.wait(timeout=10)
    return hold.returncode


def wait_for(cond: Callable[[], Any], what: str, timeout: float = 30.0, interval: float = 0.2) -> Any:
    """Poll cond until it returns something truthy; bounded in time. Returns that value."""
    deadline = time.monotonic() + timeout
    last_exc: BaseException | None = None
    while time.monotonic() < deadline:
        try:
            value = cond()
            if value:
                return value
        except Exception as exc:  # noqa: BLE001 - a transient failure while polling is retried until the deadline
            last_exc = exc
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout:.0f} s waiting for: {what}"
                         + (f" (last error: {last_exc!r})" if last_exc else ""))


class Service:
    """One `python -m singbox_agent.<name>` subprocess with its ready file and log."""

    def __init__(self, name: str, env: dict[str, str], state_dir: Path, *args: str) -> None:
        self.name = name
        self.state_dir = state_dir / name
        self.state_dir.mkdir(parents=True, exist_ok=True)
        self.ready_file = self.state_dir / "ready.json"
        self.log_path = self.state_dir / f"{name}.log"
        with open(self.log_path, "ab") as log:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", f"singbox_agent.{name}", "--state-dir", str(self.state_dir),
                 "--ready-file", str(self.ready_file), *args],
                env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
            )
        deadline = time.monotonic() + START_TIMEOUT_S
        while not self.ready_file.exists():
            if self.proc.poll() is not None:
                raise RuntimeError(f"{name} exited with {self.proc.returncode}:\n{self.log()[-4000:]}")
            if time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"{name} not ready after {START_TIMEOUT_S:.0f} s:\n{self.log()[-4000:]}")
            time.sleep(0.05)
        self.info: dict[str, Any] = json.loads(self.ready_file.read_text())

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def stop(self) -> int:
        """SIGTERM and wait (the contract: services exit cleanly on SIGTERM); SIGKILL only after 20 s."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(timeout=10)
                return -9
        return int(self.proc.returncode)


class Stack:
    """VPP with the plugin between two namespaces, an origin server, and the agent, NETCONF and RESTCONF servers
    over one sysrepo instance."""

    def __init__(self, instance: SysrepoInstance, state_dir: Path) -> None:
        self.instance = instance
        self.state_dir = state_dir
        self.services: list[Service] = []
        self.vpp = vpptopo.Vpp()
        self.vpp_restarts = 0
        self.vpp_killed = False  # by the test, on purpose: not running at teardown is then no failure
        self.topo: vpptopo.Topology | None = None
        try:
            self.topo = vpptopo.Topology(self.vpp, tag=f"e{os.getpid() % 100000}")
            start_origin(self.topo, timeout=30)
            self.env = {**os.environ, **instance.env}
            pw = state_dir / "admin.pw"
            pw.write_text(ADMIN[1] + "\n")
            subprocess.run([sys.executable, "-m", "singbox_agent.mgmt", "bootstrap-admin", "--user", ADMIN[0],
                            "--password-file", str(pw)], env=self.env, check=True, capture_output=True, timeout=120)
            pw.unlink()
            self.agent = self._start("agent", "--vpp-api-socket", str(self.vpp.api_sock))
            self.netconf = self._start("netconf", "--listen", "127.0.0.1:0")
            self.restconf = self._start("restconf", "--listen", "127.0.0.1:0")
        except BaseException:
            self.close()
            raise

    def _start(self, name: str, *args: str) -> Service:
        service = Service(name, self.env, self.state_dir, *args)
        self.services.append(service)
        return service

    @property
    def t(self) -> vpptopo.Topology:
        assert self.topo is not None
        return self.topo

    # NETCONF ------------------------------------------------------------------------------------------------

    def netconf_session(self) -> Any:
        from ncclient import manager

        return manager.connect(host=self.netconf.info["host"], port=self.netconf.info["port"], username=ADMIN[0],
                               password=ADMIN[1], hostkey_verify=False, look_for_keys=False, allow_agent=False,
                               timeout=60)

    # RESTCONF -----------------------------------------------------------------------------------------------

    def restconf_client(self) -> Any:
        import httpx

        return httpx.Client(base_url=self.restconf.info["base_url"],
                            verify=self.restconf.info.get("ca_certificate") or False, auth=ADMIN, timeout=30.0,
                            headers={"Accept": "application/yang-data+json"})

    def restconf_get(self, path: str) -> Any:
        """GET /restconf/data/<path>: the decoded JSON, or None on 404 (no such data)."""
        with self.restconf_client() as c:
            r = c.get(f"/restconf/data/{path}")
        if r.status_code == 404:
            return None
        assert r.status_code == 200, f"GET {path}: {r.status_code} {r.text}"
        return r.json()

    # the client namespace -----------------------------------------------------------------------------------

    def curl_socks(self, proxy: str, path: str = "/whoami", host: str = vpptopo.ORIGIN_IP4,
                   max_time: int = 10) -> subprocess.CompletedProcess[bytes]:
        """curl from the client namespace through a SOCKS proxy URL to the origin's HTTP server."""
        return self.t.run_in(self.t.ns_client, "curl", "-sS", "-m", str(max_time), "-x", proxy,
                             f"http://{host}:{HTTP_PORT}{path}", timeout=max_time + 20)

    # VPP ----------------------------------------------------------------------------------------------------

    def kill_vpp(self) -> None:
        self.vpp_killed = True
        os.killpg(self.vpp.proc.pid, signal.SIGKILL)
        self.vpp.proc.wait(timeout=10)

    def restart_vpp(self) -> None:
        """A new VPP with the first one's startup.conf (same API, CLI and stats sockets) and none of its state;
        the interfaces towards the namespaces are created again as the harness did (the veths outlive VPP)."""
        assert not self.vpp.alive()
        self.vpp_killed = False
        self.vpp_restarts += 1
        vpp = self.vpp
        vpp.proc = subprocess.Popen(
            [str(vpp.prefix / "bin" / "vpp"), "-c", str(vpp.dir / "startup.conf")],
            stdout=open(vpp.dir / f"stdout.{self.vpp_restarts}", "w"), stderr=subprocess.STDOUT, env=vpp.env,
            start_new_session=True,
        )

        def up() -> bool:
            if vpp.proc.poll() is not None:
                raise AssertionError("restarted VPP exited: "
                                     + (vpp.dir / f"stdout.{self.vpp_restarts}").read_text()[-2000:])
            return vpp.cli_sock.exists() and "singbox" in vpp.cli("show plugins", check=False)

        wait_for(up, "restarted VPP answers its CLI", timeout=START_TIMEOUT_S)
        gateways = {f"{self.t.ns_client[:-1]}c1": (vpptopo.VPP_CLIENT_IP4, vpptopo.VPP_CLIENT_IP6),
                    f"{self.t.ns_origin[:-1]}o1": (vpptopo.VPP_ORIGIN_IP4, vpptopo.VPP_ORIGIN_IP6)}
        for outer in self.t.links:
            gw4, gw6 = gateways[outer]
            vpp.cli(f"create host-interface name {outer}")
            vpp.cli(f"set interface state host-{outer} up")
            vpp.cli(f"set interface ip address host-{outer} {gw4}/24")
            vpp.cli(f"set interface ip address host-{outer} {gw6}/64")
        # the new interfaces have new MAC addresses: the namespaces must not keep using the old ones
        for ns in (self.t.ns_client, self.t.ns_origin):
            vpptopo.run(vpptopo.ns_cmd(ns, "ip", "neigh", "flush", "all"), check=False)
            vpptopo.run(vpptopo.ns_cmd(ns, "ip", "-6", "neigh", "flush", "all"), check=False)
        self.t._wait_reachable()  # noqa: SLF001 - the harness's own readiness check, reused as is

    def close(self) -> None:
        problems: list[str] = []
        for service in reversed(self.services):
            code = service.stop()
            if code != 0:
                problems.append(f"{service.name} exited with {code} on SIGTERM:\n{service.log()[-3000:]}")
        if self.topo is not None:
            self.topo.close()
        self.vpp.close()
        if problems:
            raise AssertionError("\n".join(problems))

    def logs(self) -> str:
        return "\n".join(f"--- {s.name} ---\n{s.log()[-3000:]}" for s in self.services)


@pytest.fixture
def stack(sysrepo_instance: SysrepoInstance, tmp_path: Path) -> Iterator[Stack]:
    reason = skip_reason()
    if reason:
        pytest.skip(reason)
    s = Stack(sysrepo_instance, tmp_path)
    try:
        yield s
    finally:
        alive = s.vpp.alive() or s.vpp_killed
        log = vpp_output(s.vpp)
        s.close()
        assert alive, "VPP died during the test:\n" + log
