"""The appliance as an operator installs it: the Debian packages built from the checkout, installed into a pristine
trixie with apt as README.md's "Install on an appliance" says, booted under real systemd (systemd-nspawn --boot),
and checked through the real units and real clients over a private veth.

The steps run in order on one appliance (each needs the state the previous ones left): an install of the previous
package version, first login, NETCONF and RESTCONF, the upgrade to this version, a reboot, remove and reinstall,
purge and reinstall. sysrepo is read and written on the appliance with tests/packaging/srtool.py (the appliance's
python3 and libsysrepo7): trixie-backports has no sysrepo 3.7 tools any more, and the product needs none. The host's
systemd-nspawn runs through `chroot /run/host` (scripts/in-env with
SINGBOX_ENV_HOST_ROOT=1, which scripts/run-tests sets), inside this environment's pid namespace, so it ends with it.
"""

from __future__ import annotations

import functools
import json
import os
import re
import secrets
import shutil
import ssl
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
from ncclient import manager
from ncclient.transport.errors import AuthenticationError

TOP = Path(__file__).resolve().parents[2]
HOST = Path("/run/host")
NS = "urn:vpp-singbox:yang:vpp-singbox"
PASSWORD_FILE = "/var/lib/vpp-singbox/initial-admin-password"
UNITS = ("singbox-agent", "singbox-netconfd", "singbox-restconfd", "singbox-exporterd")
OUR_MODULES = ("vpp-singbox", "vpp-singbox-replay-store", "vpp-singbox-restconf-server", "vpp-singbox-metrics",
               "ietf-system", "ietf-keystore", "ietf-netconf-server", "iana-crypt-hash")
# sysrepo's own modules the package installs (or enables features of) for subscriptions; they stay at purge
SRSN_FEATURES = {"ietf-subscribed-notifications": {"replay", "subtree", "xpath", "encode-xml", "encode-json"},
                 "ietf-yang-push": {"on-change"}}
EXPORTER_PORT = 9745  # vpp-singbox-metrics' default
BOOT_TIMEOUT_S = 90
# `systemd-analyze security` as README.md states it
DOCUMENTED_EXPOSURE = {"singbox-agent": 1.3, "singbox-netconfd": 1.8, "singbox-restconfd": 1.9,
                       "singbox-exporterd": 1.8}
pytestmark = [pytest.mark.slow, pytest.mark.timeout(1200)]


def _skip_reason() -> str | None:
    if not (HOST / "usr/bin/systemd-nspawn").exists():
        return ("the host's root is not at /run/host with systemd-nspawn in it: run through make test / "
                "scripts/run-tests (SINGBOX_ENV_HOST_ROOT=1) on a host with systemd-container")
    if subprocess.run(["git", "-C", str(TOP), "rev-parse", "HEAD"], capture_output=True).returncode != 0:
        return "not a git checkout: the packages are built from the committed tree"
    return None


def host(*cmd: str, check: bool = True, **kw: Any) -> subprocess.CompletedProcess[str]:
    """A command of the host (its binaries and file system), in this environment's pid and network namespace."""
    done = subprocess.run(["chroot", str(HOST), *cmd], capture_output=True, text=True, **kw)
    if check and done.returncode != 0:
        raise AssertionError(f"{' '.join(cmd)} failed ({done.returncode}):\n{done.stdout[-2000:]}\n{done.stderr[-3000:]}")
    return done


def build(out: str, version: str | None, ref: str | None = None) -> list[Path]:
    env = {**os.environ, "DEB_BUILD_PROFILES": "pkg.vpp-singbox.noplugin", "SINGBOX_DEB_OUT": out}
    if version:
        env["SINGBOX_DEB_VERSION"] = version
    if ref:
        env["SINGBOX_DEB_REF"] = ref
    done = subprocess.run([str(TOP / "packaging/build-deb")], env=env, capture_output=True, text=True)
    assert done.returncode == 0, f"build-deb failed:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
    debs = sorted((TOP / out).glob("vpp-singbox-agent_*_amd64.deb"))
    assert len(debs) == 1, debs
    return debs


@functools.cache
def current_package() -> Path:
    """This checkout's package, built once per test run and shared by every file here (a build is minutes)."""
    return build("build/deb-appliance/current", None)[0]


def current_only() -> dict[str, Path]:
    """For a file that needs no upgrade: this checkout's package, also as "previous" (the appliance fixture takes
    both)."""
    if reason := _skip_reason():
        pytest.skip(reason)
    current = current_package()
    return {"previous": current, "current": current}


def install_current(appliance: "Appliance", debs: dict[str, Path]) -> dict[str, Any]:
    """This checkout's package installed on `appliance`, its units up; what a test logs in with."""
    appliance.apt_install(debs["current"])
    appliance.wait_units()
    return {"password": appliance.run("cat", PASSWORD_FILE).stdout.strip()}


@dataclass
class Appliance:
    """One booted copy of the pristine rootfs, reached through nsenter and a veth with 198.18.x.y addresses."""

    root: Path  # as the host sees it
    name: str
    host_ip: str
    ip: str
    netconf_port: int = 830
    nspawn: subprocess.Popen[bytes] | None = None
    leader: int = 0
    log: list[str] = field(default_factory=list)

    @property
    def path(self) -> Path:  # the rootfs as this process sees it
        return HOST / str(self.root).lstrip("/")

    def boot(self) -> None:
        self.nspawn = subprocess.Popen(
            ["chroot", str(HOST), "systemd-nspawn", "--boot", "--register=no", "--keep-unit", "--quiet",
             f"--directory={self.root}", f"--machine={self.name}", "--network-veth", "--console=passive"],
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        deadline = time.monotonic() + BOOT_TIMEOUT_S
        while time.monotonic() < deadline and not self.leader:
            # chroot execs nspawn; nspawn's child becomes the container's init (once it has exec'd systemd)
            children = subprocess.run(["pgrep", "-x", "-P", str(self.nspawn.pid), "systemd"], capture_output=True,
                                      text=True)
            pids = children.stdout.split()
            if pids and self.nspawn.poll() is None:
                self.leader = int(pids[0])
                self._host_side()  # carrier for the container's host0 while it boots (network-online)
            elif self.nspawn.poll() is not None:
                out = self.nspawn.stdout.read().decode() if self.nspawn.stdout else ""
                raise AssertionError(f"systemd-nspawn exited: {out[-2000:]}")
            else:
                time.sleep(0.2)
        state = ""
        deadline = time.monotonic() + BOOT_TIMEOUT_S
        while time.monotonic() < deadline:
            # "offline" (or nothing) until systemd, just exec'd, has set itself up; --wait then waits for the boot
            state = self.run("systemctl", "is-system-running", "--wait", check=False, timeout=BOOT_TIMEOUT_S).stdout
            if state.strip() in ("running", "degraded", "maintenance", "stopping"):
                break
            time.sleep(0.5)
        assert state.strip() in ("running", "degraded"), f"boot state {state!r}; {self.log[-3:]}"
        self._network()

    def _host_side(self) -> None:
        veth = f"ve-{self.name}"[:15]
        subprocess.run(["ip", "addr", "replace", f"{self.host_ip}/30", "dev", veth], check=True)
        subprocess.run(["ip", "link", "set", veth, "up"], check=True)

    def _network(self) -> None:
        """The container's side too, should its networkd not have done it (idempotent)."""
        self._host_side()
        inside = ["nsenter", "-t", str(self.leader), "-n"]
        subprocess.run([*inside, "ip", "addr", "replace", f"{self.ip}/30", "dev", "host0"], check=True)
        subprocess.run([*inside, "ip", "link", "set", "host0", "up"], check=True)
        subprocess.run([*inside, "ip", "link", "set", "lo", "up"], check=True)

    def run(self, *cmd: str, check: bool = True, timeout: float = 300,
            input: str | None = None) -> subprocess.CompletedProcess[str]:
        done = subprocess.run(
            # -r -w: the container's root is a chroot inside its mount namespace (nspawn under chroot)
            ["nsenter", "-t", str(self.leader), "-a", "-r", "-w", "env", "-i", "PATH=/usr/sbin:/usr/bin:/sbin:/bin",
             "DEBIAN_FRONTEND=noninteractive", "LANG=C.UTF-8", *cmd],
            capture_output=True, text=True, timeout=timeout, input=input)
        self.log.append(f"$ {' '.join(cmd)} -> {done.returncode}\n{done.stdout[-1500:]}{done.stderr[-1500:]}")
        if check and done.returncode != 0:
            raise AssertionError(f"{' '.join(cmd)} failed ({done.returncode}):\n{done.stdout[-3000:]}\n"
                                 f"{done.stderr[-3000:]}")
        return done

    def shutdown(self, how: str = "poweroff") -> None:
        if self.nspawn is None or self.nspawn.poll() is not None:
            return
        self.run("systemctl", how, "--no-block", check=False)
        try:
            self.nspawn.wait(timeout=60)
        except subprocess.TimeoutExpired:
            self.nspawn.kill()
            self.nspawn.wait()
        self.leader = 0

    def reboot(self) -> None:
        """`systemctl reboot` ends systemd-nspawn (no host systemd restarts it): boot the same rootfs again."""
        self.shutdown("reboot")
        self.boot()

    def apt_install(self, deb: Path, *inside: Path) -> subprocess.CompletedProcess[str]:
        """`inside`: further packages already in the appliance (absolute paths there)."""
        shutil.copy(deb, self.path / "root")
        # README.md, "Install on an appliance": the same command, without `apt update` (no network in here; the
        # cached rootfs has the lists and the packages).
        return self.run("sh", "-c", f"cd /root && apt install -y -t trixie-backports ./{deb.name} "
                        + " ".join(map(str, inside)))

    def wait_units(self) -> None:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            states = self.run("systemctl", "is-active", *UNITS, check=False).stdout.split()
            if states == ["active"] * len(UNITS):
                return
            if "failed" in states:
                break
            time.sleep(0.5)
        status = self.run("systemctl", "status", "--no-pager", "-l", *UNITS, check=False).stdout
        journal = self.run("journalctl", "-b", "--no-pager", "-n", "80", "-u", "singbox-*", check=False).stdout
        raise AssertionError(f"units not active: {states}\n{status[-4000:]}\n{journal[-4000:]}")

    def netconf(self, password: str) -> Any:
        return manager.connect(host=self.ip, port=self.netconf_port, username="admin", password=password, hostkey_verify=False,
                               look_for_keys=False, allow_agent=False, timeout=60)

    def restconf(self) -> httpx.Client:
        ca = self.path / "var/lib/vpp-singbox/restconf/ca.pem"
        return httpx.Client(base_url=f"https://{self.ip}", verify=ssl.create_default_context(cafile=str(ca)),
                            timeout=30)


def sr_modules(appliance: Appliance) -> dict[str, dict[str, Any]]:
    """sysrepo's installed modules on the appliance: name -> revision, features (list), replay (bool)."""
    return dict(json.loads(appliance.run("python3", "/root/srtool.py", "modules").stdout))


def sr_export(appliance: Appliance, datastore: str, xpath: str, fmt: str = "xml") -> str:
    """A datastore's data under `xpath` on the appliance, as root reads it."""
    return appliance.run("python3", "/root/srtool.py", "export", datastore, xpath, fmt).stdout


def needs_sysrepo_tools(deb: Path) -> bool:
    """Releases before 2026-12 depended on the package sysrepo (its tools), which trixie-backports now has as
    sysrepo 5 only: installable only with sysrepo 3.7.11's tools from the pool (scripts/appliance-rootfs)."""
    depends = subprocess.run(["dpkg-deb", "-f", str(deb), "Depends"], check=True, capture_output=True,
                             text=True).stdout
    return any(re.fullmatch(r"sysrepo( \(.*\))?", d.strip()) for d in depends.split(","))


def assert_sysrepo_3_7_only(appliance: Appliance) -> None:
    """What `apt install -t trixie-backports` chose is sysrepo 3.7's library on libyang3: nothing of sysrepo 5
    (libsysrepo8, libyang5, which Breaks libyang3, or its tools), and the product runs without sysrepo's tools."""
    listed = appliance.run("dpkg-query", "-W", "-f", "${db:Status-Status} ${Package} ${Version}\n").stdout
    installed = {package: version for status, package, version in (line.split(" ", 2) for line in listed.splitlines())
                 if status == "installed"}
    assert installed.get("libsysrepo7", "").startswith("3.7."), installed.get("libsysrepo7")
    assert installed.get("libyang3", "").startswith("3.13."), installed.get("libyang3")
    for package in ("libsysrepo8", "libyang5", "sysrepo", "sysrepo-plugind"):
        assert package not in installed, (package, installed[package])
    assert appliance.run("sh", "-c", "command -v sysrepoctl sysrepocfg", check=False).stdout == ""


def previous_release(version: str) -> str | None:
    """The last commit whose tree was packaged as the previous version: the parent of the commit that put `version`
    on top of the changelog (None before that commit exists)."""
    commits = subprocess.run(["git", "-C", str(TOP), "log", "--format=%H", "-S", f"vpp-singbox ({version})", "--",
                              "packaging/debian/changelog"], capture_output=True, text=True).stdout.split()
    return f"{commits[-1]}^" if commits else None


@pytest.fixture(scope="module")
def debs() -> dict[str, Path]:
    if reason := _skip_reason():
        pytest.skip(reason)
    version = subprocess.run(["dpkg-parsechangelog", "-l", str(TOP / "packaging/debian/changelog"), "-S",
                              "Version"], check=True, capture_output=True, text=True).stdout.strip()
    # The previous package version, as it was released: the tree of the commit before this version's changelog
    # entry (upgrades must keep configuration, across YANG revisions too); the same tree with a lower version when
    # this version is not committed yet.
    # SINGBOX_PREVIOUS_REF=COMMIT: upgrade from that commit's package instead (an older release)
    ref = os.environ.get("SINGBOX_PREVIOUS_REF") or previous_release(version)
    previous = build("build/deb-appliance/previous", None if ref else f"{version}~previous", ref)[0]
    return {"previous": previous, "current": current_package()}


@pytest.fixture(scope="module")
def appliance(debs: dict[str, Path]) -> Iterator[Appliance]:
    host_top = os.environ.get("SINGBOX_HOST_TOP", str(TOP))
    args = [f"{host_top}/{debs['current'].relative_to(TOP)}"]
    if debs["previous"] != debs["current"]:
        args += ["--previous", f"{host_top}/{debs['previous'].relative_to(TOP)}"]
    # builds the rootfs with `apt-get install --download-only -t trixie-backports` of the current package alone,
    # against today's archive: that failing (as it did for 0.1.0-3 and the first 0.1.0-4 from 2026-12) fails here
    cached = host(f"{host_top}/scripts/appliance-rootfs", *args, timeout=900,
                  env={**os.environ, "PATH": "/usr/sbin:/usr/bin:/sbin:/bin"}).stdout.strip()
    work = Path(f"/var/tmp/vpp-singbox-appliance-{secrets.token_hex(4)}")
    host("cp", "-a", "--reflink=auto", cached, str(work))
    host("cp", f"{host_top}/tests/packaging/srtool.py", f"{work}/root/srtool.py")
    n = secrets.randbelow(16384)  # a /30 of 198.18.0.0/15 per run: concurrent runs do not collide
    base = f"198.{18 + (n >> 13)}.{(n >> 5) & 0xFF}.{(n & 0x1F) * 4}"
    prefix, last = base.rsplit(".", 1)
    box = Appliance(work, f"sbx{secrets.token_hex(3)}", f"{prefix}.{int(last) + 1}", f"{prefix}.{int(last) + 2}")
    # As on a real appliance, its address is configured at boot (systemd-networkd, network-online.target through
    # systemd-networkd-wait-online), not set from outside once it runs: the servers bind it when they start.
    host("mkdir", "-p", f"{work}/etc/systemd/network")
    host("sh", "-c", f"printf '[Match]\\nName=host0\\n\\n[Network]\\nAddress={box.ip}/30\\nLinkLocalAddressing=no\\n"
         f"IPv6AcceptRA=no\\n' > {work}/etc/systemd/network/10-host0.network")
    host("systemctl", f"--root={work}", "enable", "systemd-networkd.service", "systemd-networkd-wait-online.service")
    try:
        box.boot()
        yield box
    finally:
        box.shutdown()
        host("rm", "-rf", str(work), check=False)


@pytest.fixture(scope="module")
def state() -> dict[str, Any]:
    return {}


def get_config(nc: Any) -> str:
    return str(nc.get_config(source="running", filter=("subtree", f'<singbox xmlns="{NS}"/>')).data_xml)


def edit_endpoint(nc: Any, name: str, address: str) -> None:
    nc.edit_config(target="running", config=f"""
      <config xmlns="urn:ietf:params:xml:ns:netconf:base:1.0">
        <singbox xmlns="{NS}"><client><endpoint><name>{name}</name><address>{address}</address></endpoint>
        </client></singbox>
      </config>""")


def test_install_previous_version_as_documented(appliance: Appliance, debs: dict[str, Path],
                                                state: dict[str, Any]) -> None:
    if needs_sysrepo_tools(debs["previous"]):
        # as on an appliance installed before 2026-12: sysrepo 3.7.11's tools came with it, as a dependency
        pool = appliance.run("sh", "-c", "ls /root/pool/*.deb 2>/dev/null || true").stdout.split()
        if not pool:  # gone from Debian's pool: the upgrade cannot be tried (test_upgrade_keeps_configuration)
            state["no_previous"] = "the previous release needs sysrepo 3.7.11's tools, gone from Debian's pool"
            out = appliance.apt_install(debs["current"])
        else:
            out = appliance.apt_install(debs["previous"], *map(Path, pool))
            appliance.run("apt-mark", "auto", "sysrepo")
    else:
        out = appliance.apt_install(debs["previous"])
    assert PASSWORD_FILE in out.stdout + out.stderr, "postinst must say where the first password is"
    mode = appliance.run("stat", "-c", "%a %U", PASSWORD_FILE).stdout.split()
    assert mode == ["600", "root"]
    state["password"] = appliance.run("cat", PASSWORD_FILE).stdout.strip()
    assert len(state["password"]) >= 20
    appliance.wait_units()


def assert_journal_clean(appliance: Appliance, secrets_: list[str]) -> None:
    """Our units logged no Python traceback and no secret (a password, a private key) since the last boot."""
    journal = appliance.run("journalctl", "-b", "--no-pager", "-o", "cat", "-u", "singbox-*").stdout
    assert journal.strip(), "no journal of our units"
    at = journal.find("Traceback (most recent call last)")
    assert at < 0, journal[max(0, at - 1500):at + 4000]
    assert "PRIVATE KEY" not in journal
    for secret in secrets_:
        assert secret not in journal, "a password in the journal"


def test_units_are_ready_unprivileged_and_hardened(appliance: Appliance) -> None:
    exposures = {}
    for unit in UNITS:
        # started at boot: enabled by the package (deb-systemd-helper), not only started by postinst
        assert appliance.run("systemctl", "is-enabled", unit, check=False).stdout.strip() == "enabled", unit
        show = appliance.run("systemctl", "show", unit, "-p", "Type,User,ActiveState,SubState,StatusText,"
                             "NRestarts").stdout
        props = dict(line.split("=", 1) for line in show.splitlines() if "=" in line)
        assert props["Type"] == "notify" and props["ActiveState"] == "active", props
        assert props["User"] == "vpp-singbox" and props["NRestarts"] == "0", props
        pid = appliance.run("systemctl", "show", unit, "-p", "MainPID", "--value").stdout.strip()
        status = appliance.run("cat", f"/proc/{pid}/status").stdout
        caps = re.search(r"^CapEff:\s*(\w+)", status, re.M)
        # CAP_NET_BIND_SERVICE (10) and CAP_FOWNER (3) at most
        assert caps and int(caps.group(1), 16) & ~((1 << 10) | (1 << 3)) == 0, f"{unit}: {caps}"
        exposures[unit] = exposure(appliance, unit)
    print("systemd-analyze security (previous version):", exposures)
    assert all(level < 5.0 and rating == "OK" for level, rating in exposures.values()), exposures


def exposure(appliance: Appliance, unit: str) -> tuple[float, str]:
    security = appliance.run("systemd-analyze", "security", "--no-pager", unit).stdout
    found = re.search(r"Overall exposure level for \S+: (\d+\.\d+) (\w+)", security)
    assert found, security[-500:]
    return float(found.group(1)), found.group(2)


def test_agent_runs_without_vpp_and_keeps_config_pending(appliance: Appliance, state: dict[str, Any]) -> None:
    with appliance.netconf(state["password"]) as nc:
        edit_endpoint(nc, "nc-ep", "192.0.2.10")
        # NETCONF's :startup: a client makes running survive a reboot with copy-config (RFC 6241 8.7)
        nc.copy_config(source="running", target="startup")
        assert "nc-ep" in get_config(nc)
        oper = str(nc.get(filter=("subtree", f'<singbox xmlns="{NS}"><dataplane/></singbox>')).data_xml)
    assert re.search(r"<connected>false</connected>", oper), oper
    assert re.search(r"<config-pending>true</config-pending>", oper), oper
    assert "vpp absent" in appliance.run("systemctl", "show", "singbox-agent", "-p", "StatusText").stdout.lower()


def test_restconf_get_401_and_edit(appliance: Appliance, state: dict[str, Any]) -> None:
    auth = ("admin", state["password"])
    with appliance.restconf() as rc:  # verifies the generated certificate names the address we connect to
        got = rc.get("/restconf/data/vpp-singbox:singbox/client", auth=auth,
                     headers={"Accept": "application/yang-data+json"})
        assert got.status_code == 200, got.text
        assert "nc-ep" in got.text
        denied = rc.get("/restconf/data/vpp-singbox:singbox", auth=("admin", "wrong"),
                        headers={"Accept": "application/yang-data+json"})
        assert denied.status_code == 401
        assert "ietf-restconf:errors" in denied.json(), denied.text
        put = rc.put("/restconf/data/vpp-singbox:singbox/client/endpoint=rc-ep", auth=auth,
                     headers={"Content-Type": "application/yang-data+json"},
                     content=json.dumps({"vpp-singbox:endpoint": [{"name": "rc-ep", "address": "192.0.2.20"}]}))
        assert put.status_code in (201, 204), put.text


def test_readme_first_login_commands_as_written(appliance: Appliance, state: dict[str, Any]) -> None:
    """README.md's "First login" and "Metrics" commands, the clients it names, with HOST and PASSWORD filled in."""
    password, ca = state["password"], str(appliance.path / "var/lib/vpp-singbox/restconf/ca.pem")
    hello = subprocess.run(["netconf-console2", "--host", appliance.ip, "--port", str(appliance.netconf_port), "-u",
                            "admin", "-p", password, "--hello"], capture_output=True, text=True, timeout=120)
    assert hello.returncode == 0 and "urn:ietf:params:netconf:base:1.1" in hello.stdout, hello.stdout + hello.stderr
    # `ssh -s -p 830 admin@HOST netconf`: OpenSSH's client, the password through SSH_ASKPASS; a hello, then
    # <close-session/> in RFC 6242's chunked framing (both sides offer base:1.1)
    with tempfile.TemporaryDirectory() as tmp:
        askpass = Path(tmp) / "askpass"
        askpass.write_text(f"#!/bin/sh\nprintf '%s\\n' '{password}'\n")
        askpass.chmod(0o700)
        close = '<rpc message-id="1" xmlns="urn:ietf:params:xml:ns:netconf:base:1.0"><close-session/></rpc>'
        session = ('<hello xmlns="urn:ietf:params:xml:ns:netconf:base:1.0"><capabilities><capability>'
                   "urn:ietf:params:netconf:base:1.1</capability></capabilities></hello>]]>]]>"
                   f"\n#{len(close)}\n{close}\n##\n")
        (Path(tmp) / "session").write_text(session)
        # as a person types it: the input stays open until the server has answered and closed the session
        ssh = subprocess.run(["sh", "-c", f"(cat {tmp}/session; sleep 10) | ssh -s -p {appliance.netconf_port} "
                              "-o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null -o PubkeyAuthentication=no "
                              f"-o BatchMode=no admin@{appliance.ip} netconf"], capture_output=True, text=True,
                             timeout=120, env={**os.environ, "SSH_ASKPASS": str(askpass),
                                               "SSH_ASKPASS_REQUIRE": "force", "DISPLAY": ":0"})
    assert "urn:ietf:params:netconf:base:1.1" in ssh.stdout and "<ok/>" in ssh.stdout, ssh.stdout + ssh.stderr
    data = subprocess.run(["curl", "-sS", "--fail-with-body", "--cacert", ca, "-u", f"admin:{password}",
                           f"https://{appliance.ip}/restconf/data/vpp-singbox:singbox"],
                          capture_output=True, text=True, timeout=60)
    assert data.returncode == 0 and "nc-ep" in data.stdout, data.stdout + data.stderr
    metrics = subprocess.run(["curl", "-sS", "--fail-with-body", "--cacert", ca, "-u", f"admin:{password}",
                              f"https://{appliance.ip}:{EXPORTER_PORT}/metrics"],
                             capture_output=True, text=True, timeout=60)
    assert metrics.returncode == 0 and "singbox_agent_build_info" in metrics.stdout, metrics.stdout + metrics.stderr


def test_subscription_modules_installed_with_their_features(appliance: Appliance) -> None:
    installed = sr_modules(appliance)
    for module, features in SRSN_FEATURES.items():
        assert module in installed and features <= set(installed[module]["features"]), (module, installed.get(module))


def test_exporter_scraped_over_the_veth_with_the_first_admin(appliance: Appliance, state: dict[str, Any]) -> None:
    """README.md's scrape: HTTPS on the appliance's address, the RESTCONF CA, a user of the shared store."""
    with appliance.restconf() as rc:
        url = f"https://{appliance.ip}:{EXPORTER_PORT}/metrics"
        got = rc.get(url, auth=("admin", state["password"]))
        assert got.status_code == 200, got.text
        assert got.headers["content-type"].startswith("text/plain"), got.headers
        assert re.search(r"^singbox_dataplane_up 0(\.0)?$", got.text, re.M), got.text[:2000]  # no VPP in here
        assert re.search(r"^singbox_agent_build_info\{", got.text, re.M), got.text[:2000]
        assert rc.get(url, auth=("admin", "wrong")).status_code == 401


def test_root_writing_sysrepo_does_not_lock_the_daemons_out(appliance: Appliance, state: dict[str, Any]) -> None:
    """sysrepo writes running in /dev/shm (sticky) by rename: after a root process wrote a module (sysrepo's
    tools, another NETCONF server, here srtool.py), the servers (another user) must still write it."""
    appliance.run("python3", "/root/srtool.py", "set", "running",
                  "/vpp-singbox:singbox/client/endpoint[name='root-ep']/address", "192.0.2.30")
    owner = appliance.run("stat", "-c", "%U", "/dev/shm/sr_vpp-singbox.running").stdout.strip()
    assert owner == "root"
    with appliance.netconf(state["password"]) as nc:
        edit_endpoint(nc, "after-root", "192.0.2.31")
        nc.edit_config(target="running", config=f"""
          <config xmlns="urn:ietf:params:xml:ns:netconf:base:1.0"
                  xmlns:nc="urn:ietf:params:xml:ns:netconf:base:1.0">
            <singbox xmlns="{NS}"><client>
              <endpoint nc:operation="delete"><name>after-root</name></endpoint>
              <endpoint nc:operation="delete"><name>root-ep</name></endpoint>
            </client></singbox>
          </config>""")
        assert "root-ep" not in get_config(nc)


def test_upgrade_keeps_configuration(appliance: Appliance, debs: dict[str, Path], state: dict[str, Any]) -> None:
    if "no_previous" in state:
        pytest.skip(state["no_previous"])
    # what clients trust (the RESTCONF CA, NETCONF's SSH host key in the keystore) is the appliance's for good
    generated = "sha256sum /var/lib/vpp-singbox/restconf/ca.pem /var/lib/vpp-singbox/restconf/server.pem"
    keys = appliance.run("sh", "-c", generated).stdout, sr_export(appliance, "startup", "/ietf-keystore:keystore")
    assert "asymmetric-key" in keys[1], keys[1]
    out = appliance.apt_install(debs["current"])
    assert "Unpacking vpp-singbox-agent" in out.stdout and "over (" in out.stdout, out.stdout[-2000:]
    # README.md: the sysrepo tools the previous release pulled in are needed no more; autoremove takes them
    appliance.run("apt", "autoremove", "-y")
    assert_sysrepo_3_7_only(appliance)
    appliance.wait_units()
    with appliance.netconf(state["password"]) as nc:
        config = get_config(nc)
    assert "nc-ep" in config and "rc-ep" in config, config
    startup = sr_export(appliance, "startup", "/vpp-singbox:*")
    assert "nc-ep" in startup, startup  # what a reboot starts from
    assert (appliance.run("sh", "-c", generated).stdout,
            sr_export(appliance, "startup", "/ietf-keystore:keystore")) == keys
    # the upgrade installed this version's schema: sysrepo updates a module only to another revision, so a module
    # changed under the revision of the previous release would stay old on every upgraded appliance (yang/README.md)
    shipped = {f.stem.partition("@")[0]: f.stem.partition("@")[2] for f in (TOP / "yang").glob("*@*.yang")}
    listed = sr_modules(appliance)
    installed = {name: m["revision"] for name, m in listed.items() if name in shipped}
    assert installed == shipped, listed


def test_units_as_hardened_as_documented(appliance: Appliance) -> None:
    """This version's units: `systemd-analyze security` no worse than README.md and packaging/README.md say."""
    exposures = {unit: exposure(appliance, unit) for unit in UNITS}
    print("systemd-analyze security:", exposures)
    assert all(exposures[unit][0] <= level for unit, level in DOCUMENTED_EXPOSURE.items()), exposures
    assert all(rating == "OK" for _, rating in exposures.values()), exposures


def test_generated_secrets_are_private(appliance: Appliance) -> None:
    """Keys are made on the appliance at first start, not shipped, and only the daemons' user reads them (checked
    once this version runs: its daemons narrow sysrepo's subscription SHM): the state
    directory is theirs alone, sysrepo's datastores holding the SSH host key and the password hashes (startup
    file, running SHM) are no one else's, nor its subscription SHM that keep their last change (sysrepo makes those
    0664; the daemons take the other bits off, mgmt/shm_guard.py)."""
    state = appliance.run("stat", "-c", "%a %U", "/var/lib/vpp-singbox").stdout.split()
    assert state == ["700", "vpp-singbox"], state
    assert appliance.run("test", "-s", "/var/lib/vpp-singbox/restconf/ca.pem", check=False).returncode == 0
    loose = appliance.run("sh", "-c", "find /var/lib/vpp-singbox /etc/sysrepo/data /dev/shm -perm /o=rw ! -type l "
                          "\\( -path '/var/lib/vpp-singbox/*' -o -name '*ietf-keystore*' -o -name '*ietf-system*' \\) "
                          "-printf '%m %u %p\\n'").stdout
    assert not loose.strip(), f"readable or writable by others:\n{loose}"
    shipped = appliance.run("sh", "-c", "dpkg -L vpp-singbox-agent | grep -Ei '(\\.key|_rsa|_ed25519)$' || true").stdout
    assert not shipped.strip(), shipped
    with appliance.netconf(appliance.run("cat", PASSWORD_FILE).stdout.strip()) as nc:
        assert nc.server_capabilities  # the SSH host key exists and serves


def test_each_unit_restarts_and_serves_again(appliance: Appliance, state: dict[str, Any]) -> None:
    """`systemctl restart` of each unit, as an operator does after editing /etc/default/vpp-singbox: it comes back
    ready, the others keep serving, and nothing is lost."""
    auth = ("admin", state["password"])
    for unit in UNITS:
        appliance.run("systemctl", "restart", unit)
        appliance.wait_units()
        with appliance.netconf(state["password"]) as nc:
            assert "nc-ep" in get_config(nc), unit
        with appliance.restconf() as rc:
            got = rc.get("/restconf/data/vpp-singbox:singbox/client", auth=auth,
                         headers={"Accept": "application/yang-data+json"})
            assert got.status_code == 200 and "rc-ep" in got.text, (unit, got.status_code, got.text[:500])
            deadline = time.monotonic() + 30
            while True:  # the exporter is ready once it listens; after a RESTCONF restart it reloads the certificate
                try:
                    metrics = rc.get(f"https://{appliance.ip}:{EXPORTER_PORT}/metrics", auth=auth)
                    break
                except httpx.TransportError:
                    if time.monotonic() > deadline:
                        raise
                    time.sleep(0.5)
            assert metrics.status_code == 200, (unit, metrics.text[:500])
    assert_journal_clean(appliance, [state["password"]])


def test_replay_subscriptions_under_memory_deny_write_execute(appliance: Appliance, state: dict[str, Any]) -> None:
    """NETCONF create-subscription and a RESTCONF event stream, both replaying from a start time, in the units as
    hardened (their sysrepo callbacks must need no writable+executable page)."""
    for unit in ("singbox-netconfd", "singbox-restconfd"):
        prop = appliance.run("systemctl", "show", unit, "-p", "MemoryDenyWriteExecute", "--value").stdout.strip()
        assert prop == "yes", (unit, prop)
    start = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() - 3600))
    with appliance.netconf(state["password"]) as nc:
        nc.create_subscription(start_time=start)
        for _ in range(200):
            got = nc.take_notification(timeout=30)
            assert got is not None, "no replayComplete"
            if "replayComplete" in got.notification_xml:
                break
        else:
            raise AssertionError("no replayComplete in 200 notifications")
    with appliance.restconf() as rc, rc.stream(
            "GET", "/restconf/streams/NETCONF/xml", params={"start-time": start},
            auth=("admin", state["password"]), timeout=30) as resp:
        assert resp.status_code == 200, resp.read()
        for line in resp.iter_lines():
            if "replayComplete" in line:
                break
        else:
            raise AssertionError("the stream ended without replayComplete")
    assert appliance.run("systemctl", "show", "singbox-netconfd", "singbox-restconfd", "-p", "NRestarts",
                         "--value").stdout.split() == ["0", "0"]


def test_netconf_listen_address_changed_as_documented(appliance: Appliance, state: dict[str, Any]) -> None:
    """README.md's example: the endpoints live in sysrepo; a RESTCONF PUT moves NETCONF at once."""
    with appliance.restconf() as rc:
        put = rc.put("/restconf/data/ietf-netconf-server:netconf-server/listen/endpoints/endpoint=default/ssh/"
                     "tcp-server-parameters", auth=("admin", state["password"]),
                     headers={"Content-Type": "application/yang-data+json"},
                     content=json.dumps({"ietf-netconf-server:tcp-server-parameters": {"local-bind": [
                         {"local-address": appliance.ip, "local-port": 8830}]}}))
        assert put.status_code in (201, 204), put.text
    appliance.netconf_port = 8830
    deadline = time.monotonic() + 30
    while True:  # the server rebinds when it sees the change
        try:
            with appliance.netconf(state["password"]) as nc:
                assert "nc-ep" in get_config(nc)
            break
        except Exception:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.5)


def test_netconf_and_restconf_edits_survive_a_reboot(appliance: Appliance, state: dict[str, Any]) -> None:
    appliance.reboot()
    appliance.wait_units()
    with appliance.netconf(state["password"]) as nc:  # on the endpoint RESTCONF configured: it was in startup too
        config = get_config(nc)
    assert "nc-ep" in config, config
    journal = appliance.run("journalctl", "-b", "--no-pager", "-u", "singbox-netconfd").stdout
    assert "--listen ignored" in journal, journal[-2000:]  # /etc/default's --listen no longer applies, and says so
    assert "rc-ep" in config, config  # RFC 8040 1.4: a RESTCONF edit of running updates startup


def test_remove_keeps_configuration_and_reinstall_restores_it(appliance: Appliance, debs: dict[str, Path],
                                                              state: dict[str, Any]) -> None:
    appliance.run("apt", "remove", "-y", "vpp-singbox-agent")
    assert "vpp-singbox" in sr_modules(appliance)
    stored = sr_export(appliance, "startup", "/vpp-singbox:*")
    assert "nc-ep" in stored, stored
    assert appliance.run("test", "-d", "/var/lib/vpp-singbox/restconf").returncode == 0
    appliance.apt_install(debs["current"])
    appliance.wait_units()
    with appliance.netconf(state["password"]) as nc:
        assert "nc-ep" in get_config(nc)


def test_purge_leaves_nothing_and_the_old_password_is_gone(appliance: Appliance, debs: dict[str, Path],
                                                           state: dict[str, Any]) -> None:
    appliance.run("apt", "purge", "-y", "vpp-singbox-agent")
    for path in ("/var/lib/vpp-singbox", "/etc/default/vpp-singbox", "/opt/venvs/vpp-singbox-agent",
                 "/usr/share/vpp-singbox", "/usr/sbin/singbox-admin"):
        assert appliance.run("test", "-e", path, check=False).returncode != 0, f"{path} left after purge"
    listing = sr_modules(appliance)
    left = [m for m in OUR_MODULES if m in listing]
    assert not left, listing
    # sysrepo's: kept, features and all (packaging/README.md says why)
    assert all(features <= set(listing.get(m, {}).get("features", ())) for m, features in SRSN_FEATURES.items()), \
        listing
    assert not [m for m, info in listing.items() if info["replay"]], listing  # the replay the agent turned on
    for datastore in ("startup", "running"):
        nacm = sr_export(appliance, datastore, "/ietf-netconf-acm:*")
        assert "admin" not in nacm, nacm
    leftovers = appliance.run("sh", "-c", "grep -rl -e vpp-singbox -e '\\$6\\$' /etc/sysrepo || true").stdout
    assert not leftovers.strip(), leftovers
    # nothing running, enabled or kept in shared memory for the purged package
    procs = appliance.run("find", "/proc", "-maxdepth", "1", "-regex", "/proc/[0-9]+", "-user", "vpp-singbox").stdout
    assert not procs.strip(), procs
    wants = appliance.run("sh", "-c", "ls /etc/systemd/system/*.wants/ | grep singbox- || true").stdout
    assert not wants.strip(), wants
    units = appliance.run("systemctl", "list-unit-files", "--no-legend", "singbox-*", check=False).stdout
    assert not units.strip(), units  # (and exit status 1: nothing matches)
    shm = appliance.run("sh", "-c", "ls /dev/shm | grep -e vpp-singbox -e singbox || true").stdout
    assert not shm.strip(), shm

    appliance.apt_install(debs["current"])
    appliance.wait_units()
    appliance.netconf_port = 830  # the endpoints went with the purge: seeded again from /etc/default
    new_password = appliance.run("cat", PASSWORD_FILE).stdout.strip()
    assert new_password != state["password"]
    with pytest.raises(AuthenticationError):
        appliance.netconf(state["password"]).close_session()
    with appliance.restconf() as rc:
        assert rc.get("/restconf/data/vpp-singbox:singbox", auth=("admin", state["password"])).status_code == 401
    with appliance.netconf(new_password) as nc:
        assert "nc-ep" not in get_config(nc)
    assert_journal_clean(appliance, [state["password"], new_password])


def test_no_unit_failed_or_restarted(appliance: Appliance) -> None:
    failed = appliance.run("systemctl", "--failed", "--no-legend").stdout
    assert not failed.strip(), failed
    for unit in UNITS:
        assert appliance.run("systemctl", "show", unit, "-p", "NRestarts", "--value").stdout.strip() == "0"

