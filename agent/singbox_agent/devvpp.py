"""A private VPP for `make run` on a development machine.

On an appliance VPP is its own systemd unit and the agent is given its API socket. On a development machine with an
installed VPP (`VPP_PREFIX`) and a built plugin (`SINGBOX_PLUGIN_DIR`), `make run` starts one of its own, with every
socket and its log under the run's state directory, so the whole product — NETCONF/RESTCONF → agent → plugin — runs
from one command without touching a system VPP. It has no network interfaces: add them with vppctl (the command is in
connection.json), for example `create host-interface name <veth>`.
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import structlog

log = structlog.get_logger("devvpp")

START_TIMEOUT_S = 30.0
STOP_TIMEOUT_S = 10.0
PLUGINS = ("af_packet", "tap", "ping", "dns", "hsi", "singbox")


class VppUnavailable(Exception):
    """Why no private VPP can be started (the message is shown to the operator as is)."""


@dataclass(frozen=True)
class VppInstall:
    prefix: Path
    builtin_plugins: Path
    singbox_plugins: Path

    @property
    def library_path(self) -> str:
        dirs = [p for p in sorted(self.prefix.glob("lib*")) if p.is_dir()]
        dirs += [d / "x86_64-linux-gnu" for d in dirs if (d / "x86_64-linux-gnu").is_dir()]
        return ":".join(str(d) for d in dirs)


def find_install(environ: Mapping[str, str] = os.environ) -> VppInstall:
    prefix_env = environ.get("VPP_PREFIX")
    if not prefix_env:
        raise VppUnavailable("VPP_PREFIX not set")
    prefix = Path(prefix_env)
    if not (prefix / "bin" / "vpp").is_file():
        raise VppUnavailable(f"{prefix}/bin/vpp missing (VPP_PREFIX)")
    builtin = next((p for p in prefix.glob("lib*/**/vpp_plugins") if (p / "dns_plugin.so").exists()), None)
    if builtin is None:
        raise VppUnavailable(f"no vpp_plugins with dns_plugin.so under {prefix}")
    candidates = [Path(d) for d in (environ.get("SINGBOX_PLUGIN_DIR"),) if d] + [builtin]
    plugin_dir = next((d for d in candidates if (d / "singbox_plugin.so").is_file()), None)
    if plugin_dir is None:
        raise VppUnavailable("singbox_plugin.so not found (build plugin/ and set SINGBOX_PLUGIN_DIR)")
    return VppInstall(prefix, builtin, plugin_dir)


def startup_conf(install: VppInstall, run_dir: Path) -> str:
    # The API prefix and runtime-dir keep this instance's shared-memory names and app-namespace sockets apart from a
    # system VPP's.
    plugins = " ".join(f"plugin {name}_plugin.so {{ enable }}" for name in PLUGINS)
    return f"""unix {{ nodaemon cli-listen {run_dir / 'cli.sock'} log {run_dir / 'vpp.log'} runtime-dir {run_dir} }}
api-segment {{ prefix sbxrun-vpp }}
socksvr {{ socket-name {run_dir / 'api.sock'} }}
statseg {{ socket-name {run_dir / 'stats.sock'} }}
plugins {{ path {install.builtin_plugins} add-path {install.singbox_plugins} plugin default {{ disable }} {plugins} }}
session {{ enable }}
tcp {{ closewait-time 30 tso }}
memory {{ main-heap-size 512M }}
buffers {{ buffers-per-numa 16384 }}
"""


class DevVpp:
    """One VPP process whose sockets live in `run_dir`; stopped with the supervisor."""

    def __init__(self, install: VppInstall, run_dir: Path) -> None:
        self.install = install
        self.run_dir = run_dir
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def api_socket(self) -> Path:
        return self.run_dir / "api.sock"

    @property
    def stats_socket(self) -> Path:
        return self.run_dir / "stats.sock"

    @property
    def vppctl(self) -> str:
        return f"{self.install.prefix / 'bin' / 'vppctl'} -s {self.run_dir / 'cli.sock'}"

    def start(self) -> None:
        self.run_dir.mkdir(parents=True, exist_ok=True)
        for stale in ("api.sock", "stats.sock", "cli.sock"):
            (self.run_dir / stale).unlink(missing_ok=True)
        conf = self.run_dir / "startup.conf"
        conf.write_text(startup_conf(self.install, self.run_dir))
        env = dict(os.environ, LD_LIBRARY_PATH=self.install.library_path)
        with open(self.run_dir / "stdout.log", "wb") as out:
            self.process = subprocess.Popen(
                [str(self.install.prefix / "bin" / "vpp"), "-c", str(conf)],
                stdout=out, stderr=subprocess.STDOUT, env=env, start_new_session=True,
            )
        deadline = time.monotonic() + START_TIMEOUT_S
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                tail = (self.run_dir / "stdout.log").read_text(errors="replace")[-1500:]
                raise VppUnavailable(f"VPP exited with status {self.process.returncode}: {tail}")
            if self.api_socket.is_socket() and self.stats_socket.is_socket():
                log.info("private VPP started", pid=self.process.pid, api_socket=str(self.api_socket))
                return
            time.sleep(0.1)
        self.stop()
        raise VppUnavailable(f"VPP did not open {self.api_socket} within {START_TIMEOUT_S:.0f} s")

    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def stop(self) -> None:
        if not self.alive():
            return
        assert self.process is not None
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(STOP_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            log.warning("VPP did not stop in time, killing", pid=self.process.pid)
            self.process.kill()
            self.process.wait()
        log.info("private VPP stopped", status=self.process.returncode)
