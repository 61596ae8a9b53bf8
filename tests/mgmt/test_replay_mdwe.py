"""Replay subscriptions in a process that may not map writable+executable memory (systemd's
MemoryDenyWriteExecute=yes, here the kernel's own PR_SET_MDWE): what the NETCONF and RESTCONF units run under."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from singbox_agent.repository import SysrepoInstance

TOP = Path(__file__).resolve().parents[2]

# In the child: refuse W+X mappings for good, then replay a stored notification and a live one, with both RFC 5277
# markers (replayComplete from sysrepo's replay-complete event, notificationComplete from its stop-time event).
CHILD = textwrap.dedent(
    """
    import ctypes, sys, threading, time
    PR_SET_MDWE, PR_MDWE_REFUSE_EXEC_GAIN = 65, 1
    if ctypes.CDLL(None, use_errno=True).prctl(PR_SET_MDWE, PR_MDWE_REFUSE_EXEC_GAIN, 0, 0, 0) != 0:
        print("NO-MDWE", ctypes.get_errno()); sys.exit(3)
    import sysrepo
    from singbox_agent.mgmt import replay
    SESSION_START = "/ietf-netconf-notifications:netconf-session-start"
    with sysrepo.SysrepoConnection() as conn:
        replay.enable_replay(conn)
        sess = conn.start_session("running")
        sess.notification_send(SESSION_START, {"username": "stored", "session-id": 1})
        start = time.time() - 5
        got, done = [], threading.Event()
        def deliver(kind, node, when):
            got.append(kind if node is None else node.print_mem("json", with_siblings=True))
            if kind == replay.NOTIFICATION_COMPLETE:
                done.set()
        sub = replay.ReplaySubscription(conn, deliver, start, time.time() + 2)
        sub_sess = conn.start_session("running")
        sub.subscribe(sub_sess, "ietf-netconf-notifications", None)
        sub.ready()
        time.sleep(0.5)
        sess.notification_send(SESSION_START, {"username": "live", "session-id": 2})
        ok = done.wait(15)
        sub_sess.stop()
        sess.stop()
        print("GOT", ok, got)
    """
)


def test_replay_subscription_needs_no_writable_executable_memory(sysrepo_instance: SysrepoInstance) -> None:
    proc = subprocess.run([sys.executable, "-c", CHILD], env={**sysrepo_instance.env, "PYTHONPATH": str(TOP / "agent")},
                          capture_output=True, text=True, timeout=60, check=False)
    if proc.returncode == 3:
        pytest.skip(f"this kernel has no PR_SET_MDWE: {proc.stdout.strip()}")
    assert proc.returncode == 0, proc.stderr[-3000:]
    line = proc.stdout.strip().splitlines()[-1]
    assert line.startswith("GOT True"), proc.stdout + proc.stderr[-3000:]
    assert line.index("stored") < line.index("replayComplete") < line.index("live") < line.index(
        "notificationComplete"), line
