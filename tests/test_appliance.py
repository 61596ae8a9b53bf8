"""`make run`'s supervisor: starts what exists, reports how to connect, stops cleanly on SIGTERM."""

from __future__ import annotations

import json
import os
import re
import select
import signal
import socket
import ssl
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def wait_for(path: Path, proc: subprocess.Popen[bytes], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if path.exists():
            return
        if proc.poll() is not None:
            out = proc.stdout.read().decode() if proc.stdout else ""
            pytest.fail(f"appliance exited with {proc.returncode} before writing {path.name}:\n{out}")
        time.sleep(0.1)
    pytest.fail(f"no {path.name} after {timeout} s")


def children_of(pid: int) -> list[int]:
    found = subprocess.run(["pgrep", "-P", str(pid)], capture_output=True, text=True).stdout.split()
    return [int(p) for p in found]


def sysrepo_env(state: Path, shm_prefix: str) -> dict[str, str]:
    """The environment that selects the instance `make run` made under `state`."""
    return {"SYSREPO_REPOSITORY_PATH": str((state / "sysrepo").resolve()), "SYSREPO_SHM_PREFIX": shm_prefix}


def start_appliance(state: Path, shm_prefix: str, netconf_port: int, restconf_port: int,
                    metrics_port: int | None = None, **env_overrides: str) -> subprocess.Popen[bytes]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SYSREPO_")}
    env.pop("VPP_API_SOCKET", None)
    env.pop("VPP_PREFIX", None)
    env.update(env_overrides)
    return subprocess.Popen(
        [sys.executable, "-m", "singbox_agent.appliance", "--state-dir", str(state), "--shm-prefix", shm_prefix,
         "--netconf-port", str(netconf_port), "--restconf-port", str(restconf_port),
         "--metrics-port", str(metrics_port or free_port())],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )


def test_run_reports_connection_and_stops_cleanly_on_sigterm(tmp_path: Path) -> None:
    state = tmp_path / "run"
    netconf_port, restconf_port, metrics_port = free_port(), free_port(), free_port()
    proc = start_appliance(state, "sbtapp", netconf_port, restconf_port, metrics_port)
    try:
        wait_for(state / "connection.json", proc, timeout=90)
        connection = json.loads((state / "connection.json").read_text())
        assert (state / "connection.json").stat().st_mode & 0o077 == 0, "credentials must not be world-readable"
        assert connection["vpp"]["api_socket"] is None
        assert "VPP not found" in connection["vpp"]["status"]
        if "netconf" in connection["services"]:
            assert connection["netconf"]["port"] == netconf_port
            with socket.create_connection(("127.0.0.1", netconf_port), timeout=5) as s:
                assert s.recv(4).startswith(b"SSH-")
        if "restconf" in connection["services"]:
            assert connection["restconf"]["port"] == restconf_port
        assert "exporter" in connection["services"]
        exporter = connection["exporter"]
        assert exporter["metrics_url"] == f"https://127.0.0.1:{metrics_port}/metrics"
        assert "curl" in connection["examples"]["exporter"]
        creds = connection["credentials"]
        with httpx.Client(verify=ssl.create_default_context(cafile=exporter["ca_certificate"]), timeout=30) as c:
            got = c.get(exporter["metrics_url"], auth=(creds["user"], creds["password"]))
        assert got.status_code == 200, got.text
        assert re.search(r"^singbox_dataplane_up 0", got.text, re.M), got.text[:2000]
        # subscribed notifications / YANG-Push: sysrepo's modules with their features, as on an appliance
        listing = subprocess.run(["sysrepoctl", "-l"], capture_output=True, text=True, check=True,
                                 env={**os.environ, **sysrepo_env(state, "sbtapp")}).stdout
        assert re.search(r"^ietf-yang-push\s.*\bon-change\b", listing, re.M), listing
        assert re.search(r"^ietf-subscribed-notifications\s.*\bencode-json\b", listing, re.M), listing
        services = children_of(proc.pid)
        assert len(services) == len(connection["services"])
    finally:
        proc.send_signal(signal.SIGTERM)
        rc = proc.wait(timeout=30)
    assert rc == 0
    for pid in services:
        assert not Path(f"/proc/{pid}").exists(), f"service {pid} outlived the supervisor"


def test_run_starts_a_private_vpp_when_one_is_installed(tmp_path: Path, vpp_prefix: Path) -> None:
    """With VPP_PREFIX and a built plugin, `make run` is the whole product: the agent reaches the plugin of a VPP
    that lives and dies with the run."""
    from singbox_agent.devvpp import VppUnavailable, find_install

    try:
        find_install(dict(os.environ, VPP_PREFIX=str(vpp_prefix)))
    except VppUnavailable as exc:
        pytest.skip(str(exc))
    state = tmp_path / "run"
    proc = start_appliance(state, "sbtappv", free_port(), free_port(), VPP_PREFIX=str(vpp_prefix))
    try:
        wait_for(state / "connection.json", proc, timeout=120)
        connection = json.loads((state / "connection.json").read_text())
        vpp = connection["vpp"]
        assert vpp["api_socket"] == str(state / "vpp" / "api.sock"), vpp
        assert connection["agent"]["dataplane_connected"] is True, connection["agent"]
        vppctl = vpp["vppctl"].split()
        shown = subprocess.run([*vppctl, "show plugins"], capture_output=True, text=True, timeout=30,
                               env=dict(os.environ, LD_LIBRARY_PATH=":".join(str(p) for p in vpp_prefix.glob("lib*"))))
        assert "singbox_plugin.so" in shown.stdout, shown.stdout + shown.stderr
        vpp_pids = [int(p) for p in subprocess.run(["pgrep", "-f", str(state / "vpp" / "startup.conf")],
                                                   capture_output=True, text=True).stdout.split()]
        assert vpp_pids, "no VPP process found for this run"
    finally:
        proc.send_signal(signal.SIGTERM)
        rc = proc.wait(timeout=60)
    assert rc == 0
    for pid in vpp_pids:
        assert not Path(f"/proc/{pid}").exists(), f"VPP {pid} outlived the supervisor"


def service_pids(supervisor: int) -> dict[str, int]:
    """The supervisor's children by service name (`python -m singbox_agent.<name>`)."""
    pids: dict[str, int] = {}
    for pid in children_of(supervisor):
        try:
            argv = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
        except FileNotFoundError:
            continue
        for arg in argv:
            if arg.startswith(b"singbox_agent."):
                pids[arg.decode().removeprefix("singbox_agent.")] = pid
    return pids


def test_the_password_stays_out_of_the_log(tmp_path: Path) -> None:
    """`make run` printed connection.json to its log, admin password included; it belongs in the 0600 file."""
    state = tmp_path / "run"
    proc = start_appliance(state, "sbtapw", free_port(), free_port())
    try:
        wait_for(state / "connection.json", proc, timeout=90)
        password = json.loads((state / "connection.json").read_text())["credentials"]["password"]
        assert password and (state / "connection.json").stat().st_mode & 0o077 == 0
        assert proc.stdout is not None
        out = b""
        deadline = time.monotonic() + 30
        while b"how to connect" not in out and time.monotonic() < deadline:
            if select.select([proc.stdout], [], [], 1)[0]:
                out += os.read(proc.stdout.fileno(), 1 << 20)
    finally:
        proc.send_signal(signal.SIGTERM)
        rest, _ = proc.communicate(timeout=60)
    log = (out + rest).decode()
    assert "how to connect" in log and str(state / "connection.json") in log
    assert password not in log


def test_a_crashed_service_is_restarted_and_the_others_keep_serving(tmp_path: Path) -> None:
    """SIGKILL and SIGSEGV a service under the supervisor: it comes back on the same port, the log says so, and the
    other services answer all along (the old supervisor stopped everything when one service died)."""
    import httpx

    state = tmp_path / "run"
    netconf_port, restconf_port = free_port(), free_port()
    proc = start_appliance(state, "sbtaps", netconf_port, restconf_port)
    try:
        wait_for(state / "connection.json", proc, timeout=90)
        connection = json.loads((state / "connection.json").read_text())
        assert {"netconf", "restconf"} <= set(connection["services"])
        creds = connection["credentials"]
        rc = connection["restconf"]

        def restconf_answers() -> bool:
            try:
                with httpx.Client(verify=rc["ca_certificate"], timeout=10) as client:
                    resp = client.get(f"{rc['base_url']}/restconf/yang-library-version",
                                      auth=(creds["user"], creds["password"]))
                return resp.status_code == 200
            except httpx.HTTPError:
                return False

        def netconf_answers() -> bool:
            try:
                with socket.create_connection(("127.0.0.1", netconf_port), timeout=5) as s:
                    return s.recv(4).startswith(b"SSH-")
            except OSError:
                return False

        def wait_until(check: object, what: str, timeout: float = 60) -> None:
            deadline = time.monotonic() + timeout
            while time.monotonic() < deadline:
                if check():  # type: ignore[operator]
                    return
                time.sleep(0.2)
            pytest.fail(f"{what} not within {timeout} s")

        before = service_pids(proc.pid)
        for name, sig, other in (("netconf", signal.SIGKILL, restconf_answers),
                                 ("restconf", signal.SIGSEGV, netconf_answers)):
            pid = before[name]
            written = (state / "connection.json").stat().st_mtime_ns
            os.kill(pid, sig)
            wait_until(lambda: service_pids(proc.pid).get(name, pid) != pid, f"{name} restarted")
            assert other(), f"the other service stopped answering when {name} died"
            assert proc.poll() is None, "the supervisor ended"
            wait_until(netconf_answers if name == "netconf" else restconf_answers, f"{name} serving again")
            # connection.json is rewritten once the restarted service is ready, just before the log says so
            wait_until(lambda: (state / "connection.json").stat().st_mtime_ns != written, "connection.json updated")
        assert "agent" not in before or service_pids(proc.pid).get("agent") == before["agent"]
    finally:
        proc.send_signal(signal.SIGTERM)
        out, _ = proc.communicate(timeout=60)
    log = out.decode()
    assert proc.returncode == 0, log[-3000:]
    assert log.count("service failed; restarting it") == 2, log[-3000:]
    assert "killed by SIGKILL" in log and "killed by SIGSEGV" in log
    assert log.count("service restarted") == 2


def test_a_killed_private_vpp_is_restarted_and_the_agent_reconnects(tmp_path: Path, vpp_prefix: Path) -> None:
    """SIGKILL the private VPP of `make run`: the supervisor starts it again and says so, the management services
    keep answering, and the agent is connected to the new VPP (the old supervisor ended the whole run)."""
    import httpx

    from singbox_agent.devvpp import VppUnavailable, find_install

    try:
        find_install(dict(os.environ, VPP_PREFIX=str(vpp_prefix)))
    except VppUnavailable as exc:
        pytest.skip(str(exc))
    state = tmp_path / "run"
    proc = start_appliance(state, "sbtapk", free_port(), free_port(), VPP_PREFIX=str(vpp_prefix))

    def vpp_pids() -> list[int]:
        found = subprocess.run(["pgrep", "-f", str(state / "vpp" / "startup.conf")], capture_output=True, text=True)
        return [int(p) for p in found.stdout.split()]

    try:
        wait_for(state / "connection.json", proc, timeout=120)
        connection = json.loads((state / "connection.json").read_text())
        assert connection["agent"]["dataplane_connected"] is True, connection["agent"]
        creds, rc = connection["credentials"], connection["restconf"]
        client = httpx.Client(base_url=rc["base_url"], verify=rc["ca_certificate"], timeout=10,
                              auth=(creds["user"], creds["password"]))

        def connected() -> bool | None:
            try:
                resp = client.get("/restconf/data/vpp-singbox:singbox/dataplane/connected")
            except httpx.HTTPError:
                return None
            if resp.status_code != 200:
                return None
            return bool(resp.json().get("vpp-singbox:connected"))

        old = vpp_pids()
        assert len(old) == 1
        os.kill(old[0], signal.SIGKILL)
        deadline = time.monotonic() + 120
        seen_disconnected = False
        while time.monotonic() < deadline:
            now = connected()
            assert now is not None, "RESTCONF stopped answering when VPP died"
            seen_disconnected |= now is False
            pids = vpp_pids()
            if pids and pids != old and now:
                break
            time.sleep(0.3)
        else:
            pytest.fail(f"no new VPP with the agent connected to it (VPP {vpp_pids()}, connected {connected()})")
        assert proc.poll() is None
        client.close()
    finally:
        proc.send_signal(signal.SIGTERM)
        out, _ = proc.communicate(timeout=90)
    log = out.decode()
    assert proc.returncode == 0, log[-3000:]
    assert "private VPP exited; restarting it" in log and "private VPP restarted" in log, log[-3000:]
    assert "killed by SIGKILL" in log
    assert not vpp_pids(), "VPP outlived the supervisor"
