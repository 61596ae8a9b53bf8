# SPDX-License-Identifier: Apache-2.0
# Copyright (c) 2026 vpp-singbox authors
"""What the VPP suite (tests/vpp) and the end-to-end suite (tests/e2e) share: why they skip, how their tests are
marked, the origin servers in the origin namespace, and the check that VPP survived the tests.

Both conftests import this module (tests/e2e puts this directory on sys.path, as it does for vpptopo), so the rules
live once: a change to how VPP is found or how a death is reported reaches both suites.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))
import vpptopo  # noqa: E402

HERE = Path(__file__).resolve().parent
# The origin namespace's servers (origin.py): HTTP, TCP echo, UDP echo.
HTTP_PORT = 8080
ECHO_PORT = 7007
UDP_PORT = 7008
CLOSED_PORT = 7999  # nothing listens there


def skip_reason(what: str = "VPP tests") -> str | None:
    """Why tests that need VPP cannot run here, or None: VPP (VPP_PREFIX or `vpp` on PATH) or the built plugin
    (SINGBOX_PLUGIN_DIR) missing, or not root (network namespaces, af_packet)."""
    try:
        vpptopo.find_vpp()
    except vpptopo.VppNotFound as exc:
        return str(exc)
    if os.geteuid() != 0:
        return f"{what} need root (network namespaces, af_packet)"
    return None


def mark_vpp_tests(items: list[pytest.Item], directory: Path, reason: str | None) -> None:
    """Mark every test under `directory` `vpp`, and skip it with `reason` when there is one."""
    for item in items:
        if directory in Path(str(item.fspath)).resolve().parents:
            item.add_marker(pytest.mark.vpp)
            if reason:
                item.add_marker(pytest.mark.skip(reason=reason))


def start_origin(topo: vpptopo.Topology, *extra: str, timeout: float = 10) -> None:
    """The origin servers in the origin namespace (`extra`: origin.py's optional arguments, e.g. a DNS port),
    answering before this returns."""
    topo.spawn(topo.ns_origin, sys.executable, str(HERE / "origin.py"), vpptopo.ORIGIN_IP4, vpptopo.ORIGIN_IP6,
               str(HTTP_PORT), str(ECHO_PORT), str(UDP_PORT), *extra)
    vpptopo.wait_port(topo.ns_origin, vpptopo.ORIGIN_IP4, HTTP_PORT, timeout=timeout)
    vpptopo.wait_port(topo.ns_origin, vpptopo.ORIGIN_IP4, ECHO_PORT, timeout=timeout)


def vpp_output(vpp: vpptopo.Vpp, limit: int = 6000) -> str:
    """The end of VPP's log and of its stdout (where a crash leaves its backtrace); read before `vpp.close()`."""
    log = vpp.log.read_text(errors="replace") if vpp.log.exists() else ""
    out = vpp.dir / "stdout"
    log += "\n--- stdout ---\n" + (out.read_text(errors="replace") if out.exists() else "")
    if "worker thread deadlock" in log or "refork deadlock" in log:
        # VPP's barrier timeout: not necessarily a deadlock (tests/vpp/README.md, "workers")
        log += ("\n--- a worker did not reach (or leave) the barrier within VPP's 1 s BARRIER_SYNC_TIMEOUT: "
                "stuck (a lock held across a barrier) or kept off its CPU by the machine's load; the stacks of "
                "all threads at the abort tell which (gdb -p <vpp pid>, 'handle SIGABRT stop', "
                "'thread apply all bt')")
    return log[-limit:]
