"""On the installed appliance (test_installed_appliance.py's appliance, booted under systemd): the operator's
commands as singbox-admin(8) states them, `systemctl status` of the exporter as the settings change, and the units
as systemd runs them over time (a start that keeps failing).

An appliance of its own (the fixtures are module-scoped), with this checkout's package only."""

from __future__ import annotations

import json
import re
import shutil
import socket
import subprocess
import tempfile
import textwrap
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
from ncclient import manager

from tests.packaging.test_installed_appliance import (PASSWORD_FILE, Appliance, appliance,  # noqa: F401
                                                      TOP, UNITS, current_only, install_current, sr_export)

pytestmark = [pytest.mark.slow, pytest.mark.timeout(1200)]


@pytest.fixture(scope="module")
def debs() -> dict[str, Path]:
    return current_only()


@pytest.fixture(scope="module")
def installed(appliance: Appliance, debs: dict[str, Path]) -> dict[str, Any]:
    return install_current(appliance, debs)


def login(appliance: Appliance, user: str, password: str) -> None:
    with manager.connect(host=appliance.ip, port=830, username=user, password=password, hostkey_verify=False,
                         look_for_keys=False, allow_agent=False, timeout=60) as nc:
        assert nc.server_capabilities


def test_root_sets_a_password_from_a_file_only_root_reads(appliance: Appliance, installed: dict[str, Any]) -> None:
    """The wrapper runs the code as vpp-singbox; the --password-file of root's (0600 in /root) is read as root.
    Before, `singbox-admin set-password USER --password-file /root/FILE` failed: Permission denied."""
    appliance.run("sh", "-c", "umask 077 && printf 'Admin-File-Pass-1\\n' >/root/op1.pw")
    assert appliance.run("stat", "-c", "%a %U", "/root/op1.pw").stdout.split() == ["600", "root"]
    done = appliance.run("singbox-admin", "set-password", "op1", "--password-file", "/root/op1.pw", check=False)
    assert done.returncode == 0 and "user 'op1' created" in done.stdout, done
    login(appliance, "op1", "Admin-File-Pass-1")
    appliance.run("sh", "-c", "umask 077 && printf 'Admin-File-Pass-2\\n' >/root/op1.pw")
    done = appliance.run("singbox-admin", "set-password", "op1", "--password-file=/root/op1.pw", check=False)
    assert done.returncode == 0 and "user 'op1' updated" in done.stdout, done
    login(appliance, "op1", "Admin-File-Pass-2")
    hashed = appliance.run("singbox-admin", "hash-password", "--password-file", "/root/op1.pw", check=False)
    assert hashed.returncode == 0 and hashed.stdout.startswith("$6$"), hashed


def test_exit_status_and_messages_as_documented(appliance: Appliance, installed: dict[str, Any]) -> None:
    """singbox-admin(8) EXIT STATUS: 2 for a password file that cannot be read, 1 for a caller that cannot reach
    sysrepo — each with one line saying so, no traceback; `--help` lists every command of the man page."""
    missing = appliance.run("singbox-admin", "set-password", "op1", "--password-file", "/root/none.pw", check=False)
    assert missing.returncode == 2 and "cannot read the password file /root/none.pw" in missing.stderr, missing
    stranger = appliance.run("runuser", "-u", "nobody", "--", "singbox-admin", "set-password", "op1",
                             "--password-file", "-", input="x-Pass-1\n", check=False)
    assert stranger.returncode == 1 and "Traceback" not in stranger.stderr, stranger
    assert "run it as root" in stranger.stderr, stranger
    helped = appliance.run("singbox-admin", "--help", check=False)
    assert helped.returncode == 0, helped
    for command in ("set-password", "init-admin", "bootstrap-admin", "hash-password", "modules"):
        assert command in helped.stdout, (command, helped.stdout)
    assert appliance.run("singbox-admin", "bogus", check=False).returncode == 2


def test_init_admin_writes_a_file_of_roots(appliance: Appliance, installed: dict[str, Any]) -> None:
    """singbox-admin(8): init-admin, when sysrepo holds no user, writes the new password to FILE, 0600 and root's
    (it was written by vpp-singbox, or not at all where vpp-singbox cannot write: /root)."""
    with appliance.restconf() as rc:  # every user goes: the state init-admin is for
        gone = rc.delete("/restconf/data/ietf-system:system/authentication", auth=("admin", installed["password"]))
        assert gone.status_code == 204, gone.text
    done = appliance.run("singbox-admin", "init-admin", "--password-file", "/root/first.pw", check=False)
    assert done.returncode == 0 and "/root/first.pw" in done.stderr, done
    assert appliance.run("stat", "-c", "%a %U", "/root/first.pw").stdout.split() == ["600", "root"]
    installed["password"] = appliance.run("cat", "/root/first.pw").stdout.strip()
    login(appliance, "admin", installed["password"])
    again = appliance.run("singbox-admin", "init-admin", "--password-file", "/root/second.pw", check=False)
    assert again.returncode == 0, again
    assert appliance.run("test", "-e", "/root/second.pw", check=False).returncode != 0  # users exist: no file


def test_reinstall_keeps_keys_and_first_login_and_adds_nothing(appliance: Appliance, debs: dict[str, Path],
                                                                installed: dict[str, Any]) -> None:
    """`apt install --reinstall`: the generated keys (RESTCONF CA and certificate, SSH host key, the one in the
    keystore), the first login's file and the record of what purge uninstalls stay byte for byte — the record
    gained an empty line with every configure that installed nothing new (every upgrade and reinstall)."""
    kept = ("/var/lib/vpp-singbox/restconf/ca.pem /var/lib/vpp-singbox/restconf/server.pem "
            "/var/lib/vpp-singbox/netconf/ssh_host_ed25519_key.pub /var/lib/vpp-singbox/sysrepo-modules "
            f"{PASSWORD_FILE}")
    before = appliance.run("sh", "-c", f"sha256sum {kept}").stdout
    keystore = sr_export(appliance, "startup", "/ietf-keystore:keystore")
    assert "ietf-keystore" in keystore
    appliance.run("sh", "-c", f"cd /root && apt install -y --reinstall -t trixie-backports ./{debs['current'].name}")
    appliance.wait_units()
    assert appliance.run("sh", "-c", f"sha256sum {kept}").stdout == before
    assert sr_export(appliance, "startup", "/ietf-keystore:keystore") == keystore
    record = appliance.run("cat", "/var/lib/vpp-singbox/sysrepo-modules").stdout
    assert "vpp-singbox" in record.split() and "\n\n" not in record and not record.startswith("\n"), record
    login(appliance, "admin", installed["password"])


def exporter_status(appliance: Appliance) -> str:
    return appliance.run("systemctl", "show", "singbox-exporterd", "-p", "StatusText", "--value").stdout.strip()


def test_exporter_status_follows_its_settings(appliance: Appliance, installed: dict[str, Any]) -> None:
    """`systemctl status singbox-exporterd` says where it listens (the configured 0.0.0.0, not a loopback URL), and
    that it is disabled once `enabled` is false — it kept the status of its start."""
    assert exporter_status(appliance) == "serving https://0.0.0.0:9745/metrics"
    url = "/restconf/data/vpp-singbox-metrics:metrics-exporter/enabled"
    auth = ("admin", installed["password"])
    with appliance.restconf() as rc:
        put = rc.put(url, auth=auth, headers={"Content-Type": "application/yang-data+json"},
                     content=json.dumps({"vpp-singbox-metrics:enabled": False}))
        assert put.status_code in (201, 204), put.text
        deadline = time.monotonic() + 30
        while "disabled" not in exporter_status(appliance) and time.monotonic() < deadline:
            time.sleep(0.5)
        assert exporter_status(appliance).startswith("not listening: disabled"), exporter_status(appliance)
        put = rc.put(url, auth=auth, headers={"Content-Type": "application/yang-data+json"},
                     content=json.dumps({"vpp-singbox-metrics:enabled": True}))
        assert put.status_code in (201, 204), put.text
    deadline = time.monotonic() + 30
    while not exporter_status(appliance).startswith("serving") and time.monotonic() < deadline:
        time.sleep(0.5)
    assert exporter_status(appliance) == "serving https://0.0.0.0:9745/metrics"


def show(appliance: Appliance, unit: str, properties: str) -> dict[str, str]:
    out = appliance.run("systemctl", "show", unit, "-p", properties).stdout
    return dict(line.split("=", 1) for line in out.splitlines() if "=" in line)


def seconds(span: str) -> float:
    """A time span as systemctl prints it ("2s", "15.392272s", "1min 30s", "500ms")."""
    scale = {"h": 3600.0, "min": 60.0, "s": 1.0, "ms": 1e-3, "us": 1e-6}
    parts = re.findall(r"(\d+(?:\.\d+)?)(h|min|ms|us|s)", span)
    assert parts, span
    return sum(float(n) * scale[u] for n, u in parts)


def test_units_verify_clean(appliance: Appliance, installed: dict[str, Any]) -> None:
    """`systemd-analyze verify` of the four units as installed: no warning (man pages aside: minbase has no man)."""
    done = appliance.run("systemd-analyze", "verify", "--man=no", *(f"{u}.service" for u in UNITS), check=False)
    assert done.returncode == 0 and not done.stderr.strip() and not done.stdout.strip(), done


def test_a_start_that_keeps_failing_backs_off_and_is_never_given_up(appliance: Appliance,
                                                                    installed: dict[str, Any]) -> None:
    """A bad option in /etc/default/vpp-singbox: the agent fails at once, on every start. systemd starts it again
    less and less often (the next delay grows past RestartSec=2s) and never leaves it failed; it spun every ~3 s
    before. The right options, one `systemctl restart`, and it serves again."""
    appliance.run("cp", "/etc/default/vpp-singbox", "/root/vpp-singbox.default")
    try:
        appliance.run("sed", "-i", 's|^AGENT_OPTS=.*|AGENT_OPTS="--no-such-option"|', "/etc/default/vpp-singbox")
        appliance.run("systemctl", "restart", "singbox-agent", check=False)  # the start job fails, and says so
        deadline = time.monotonic() + 180
        while True:
            props = show(appliance, "singbox-agent", "NRestarts,RestartUSecNext,ActiveState,Result")
            if int(props["NRestarts"]) >= 3:
                break
            assert props["ActiveState"] != "failed" and time.monotonic() < deadline, props
            time.sleep(0.5)
        assert props["ActiveState"] != "failed", props
        assert seconds(props["RestartUSecNext"]) > 2.0, props
    finally:
        appliance.run("cp", "/root/vpp-singbox.default", "/etc/default/vpp-singbox")
        appliance.run("systemctl", "restart", "singbox-agent")
    appliance.wait_units()
    assert show(appliance, "singbox-agent", "NRestarts")["NRestarts"] == "0"  # the count starts over


def sysrepo_files(appliance: Appliance) -> tuple[int, int, int]:
    """sysrepo's per-connection files: connection locks, event pipes, shared memory (what a dead process leaves)."""
    out = appliance.run("sh", "-c", "ls /etc/sysrepo/conn | wc -l; ls /etc/sysrepo | grep -c evpipe; "
                        "ls /dev/shm | wc -l").stdout.split()
    return int(out[0]), int(out[1]), int(out[2])


def test_each_daemon_killed_comes_back_by_itself(appliance: Appliance, installed: dict[str, Any]) -> None:
    """kill -9 of every daemon at once, twice (an OOM kill, a crash): systemd starts each again, sysrepo takes the
    dead connections back, and they serve — nothing of the dead processes piles up in /etc/sysrepo or /dev/shm."""
    appliance.run("systemctl", "restart", *UNITS)  # the restart counts start over (RestartSteps)
    appliance.wait_units()
    rounds = []
    for _ in range(2):
        pids = {u: show(appliance, u, "MainPID")["MainPID"] for u in UNITS}
        appliance.run("sh", "-c", "kill -9 " + " ".join(pids.values()))
        deadline = time.monotonic() + 120
        while True:
            now = {u: show(appliance, u, "MainPID,ActiveState") for u in UNITS}
            if all(p["ActiveState"] == "active" and p["MainPID"] not in ("0", pids[u]) for u, p in now.items()):
                break
            assert time.monotonic() < deadline, now
            time.sleep(0.5)
        login(appliance, "admin", installed["password"])
        with appliance.restconf() as rc:
            got = rc.get("/restconf/data/vpp-singbox:singbox", auth=("admin", installed["password"]))
            assert got.status_code == 200, got.text
            deadline = time.monotonic() + 30
            while True:  # the exporter is active once it listens
                try:
                    metrics = rc.get(f"https://{appliance.ip}:9745/metrics", auth=("admin", installed["password"]))
                    break
                except httpx.TransportError:
                    assert time.monotonic() < deadline
                    time.sleep(0.5)
            assert metrics.status_code == 200
        rounds.append(sysrepo_files(appliance))
    # the same connections again (locks, event pipes); /dev/shm within a few files (operational data of sessions)
    assert rounds[0][:2] == rounds[1][:2] and rounds[1][2] <= rounds[0][2] + 3, rounds
    for unit in UNITS:
        assert show(appliance, unit, "NRestarts")["NRestarts"] == "2", unit


def readme_scrape_config() -> str:
    """README.md's `prometheus.yml` snippet, as an operator copies it."""
    text = (TOP / "README.md").read_text()
    found = re.search(r"```yaml\n( *scrape_configs:.*?\n) *```", text, re.S)  # indented in its list item
    assert found, "README.md has no prometheus.yml snippet"
    return textwrap.dedent(found.group(1))


def test_debians_prometheus_scrapes_the_appliance_as_the_readme_says(appliance: Appliance,
                                                                     installed: dict[str, Any]) -> None:
    """README.md "Metrics": a user of its own for Prometheus (`singbox-admin set-password prometheus`), the
    appliance's ca.pem copied, and the README's scrape config with HOST filled in: Debian's prometheus scrapes the
    installed exporter, and every family it stored has HELP and a type."""
    binary = shutil.which("prometheus")
    if binary is None:
        pytest.skip("Debian's prometheus is not installed in this environment")
    appliance.run("sh", "-c", "umask 077 && printf 'Prometheus-Scrape-1\\n' >/root/prometheus.pw")
    appliance.run("singbox-admin", "set-password", "prometheus", "--password-file", "/root/prometheus.pw")
    with tempfile.TemporaryDirectory() as tmp:
        directory = Path(tmp)
        (directory / "vpp-singbox.password").write_text("Prometheus-Scrape-1\n")
        shutil.copy(appliance.path / "var/lib/vpp-singbox/restconf/ca.pem", directory / "vpp-singbox-ca.pem")
        config = (readme_scrape_config().replace("HOST", appliance.ip)
                  .replace("/etc/prometheus/", f"{directory}/"))
        (directory / "prometheus.yml").write_text("global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\n" + config)
        port = free_port()
        with open(directory / "log", "wb") as log:
            proc = subprocess.Popen([binary, f"--config.file={directory / 'prometheus.yml'}",
                                     f"--storage.tsdb.path={directory / 'data'}",
                                     f"--web.listen-address=127.0.0.1:{port}"], stdout=log, stderr=subprocess.STDOUT)
            try:
                api = f"http://127.0.0.1:{port}/api/v1"
                deadline = time.monotonic() + 90
                while True:
                    try:
                        targets = httpx.get(f"{api}/targets", timeout=5).json()["data"]["activeTargets"]
                        up = [t for t in targets if t["labels"]["job"] == "vpp-singbox" and t["health"] == "up"]
                        dataplane = httpx.get(f"{api}/query", params={"query": "singbox_dataplane_up"},
                                              timeout=5).json()["data"]["result"]
                        if up and dataplane:
                            break
                    except (httpx.TransportError, ValueError, KeyError):
                        targets = []
                    assert time.monotonic() < deadline, (targets, (directory / "log").read_text()[-3000:])
                    time.sleep(0.5)
                assert dataplane[0]["value"][1] == "0", dataplane  # no VPP in here
                metadata = httpx.get(f"{api}/metadata", timeout=5).json()["data"]
                ours = {name: entries[0] for name, entries in metadata.items() if name.startswith("singbox_")}
                assert "singbox_agent_build" in ours or "singbox_agent_build_info" in ours, sorted(ours)
                for name, entry in ours.items():
                    assert entry["help"] and entry["type"] in ("counter", "gauge", "info"), (name, entry)
            finally:
                proc.terminate()
                proc.wait(timeout=30)


def free_port() -> int:
    """A free TCP port on loopback (for Prometheus' own web listener)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])
