"""Client mode's endpoint health probes (plugin/singbox/singbox_probe.c) whose connect
outlives their deadline.

A probe's record is the context of its connect and the opaque of its session. A target
that drops SYNs keeps the connect pending for about a minute (VPP retries the SYN), far
beyond the probe's deadline. The plugin freed the record at the deadline: the next probe
took the slot, and when the late connect completed its callback sent that probe's greeting
on the late session and overwrote the probe's handle: the probe then reported what another
endpoint's proxy answered (a dead endpoint came up), and when its own connect completed too,
one of the two sessions was never closed (the proxy kept it open, waiting for a request that
never came)."""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path

from .conftest import Env
from vpptopo import SILENT_IP4

# in the origin's subnet, configured on the origin only once probes to it are pending:
# until then VPP finds no neighbour and its SYNs go nowhere
LATE_IP4 = "198.18.2.77"
GREETER_PORT = 7031

# A SOCKS5 proxy that answers the greeting and then holds the connection until the other
# side closes it (as a proxy waiting for the request would); it keeps the number of
# connections it holds in a file.
GREETER = """
import socket, sys, threading
port, count_file = int(sys.argv[1]), sys.argv[2]
lock = threading.Lock()
held = 0
def publish():
    with open(count_file + ".tmp", "w") as f:
        f.write(str(held))
    import os
    os.replace(count_file + ".tmp", count_file)
def serve(c):
    global held
    with lock:
        held += 1
        publish()
    try:
        b = c.recv(64)
        if b[:1] == b"\\x05":
            c.sendall(b"\\x05\\x00")
        while c.recv(65536):
            pass
    except OSError:
        pass
    finally:
        c.close()
        with lock:
            held -= 1
            publish()
l = socket.socket()
l.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
l.bind(("0.0.0.0", port))
l.listen(1024)
with lock:
    publish()
while True:
    c, _ = l.accept()
    threading.Thread(target=serve, args=(c,), daemon=True).start()
"""


def _add(env: Env, names: list[str]) -> None:
    for name in names:
        r = env.api.singbox_endpoint_add_del(
            is_add=True, name=name, proxy_port=GREETER_PORT,
            proxy_addr=LATE_IP4 if name.startswith("late-") else SILENT_IP4,
            protocol_type=0, username="", password="", priority=0, connect_timeout=5,
            health_check_enabled=True, health_check_interval=2, health_check_timeout=1,
            failure_threshold=1, recovery_threshold=1, table_id=0)
        assert r.retval == 0, (name, r)


def _delete(env: Env) -> None:
    env.api.singbox_set_default_endpoint(name="")
    for ep in env.api.singbox_endpoint_dump():
        env.api.singbox_endpoint_add_del(is_add=False, name=ep.name)


def _states(env: Env) -> dict[str, int]:
    return {e.name: int(e.state) for e in env.api.singbox_endpoint_dump()}


def _wait_states(env: Env, state: int, timeout: float, prefix: str = "") -> None:
    deadline = time.monotonic() + timeout
    while True:
        states = [s for n, s in _states(env).items() if n.startswith(prefix)]
        if states and all(s == state for s in states):
            return
        assert time.monotonic() < deadline, (state, states)
        time.sleep(0.5)


def test_probe_connects_completing_after_their_deadline(env: Env) -> None:
    """40 endpoints behind an address nobody has yet and 40 behind one nobody ever has, probed
    every 2 s (1 s timeout): every probe times out with its connect pending; meanwhile the
    endpoints are deleted and added again twice. Then the first address appears, and every
    pending connect to it completes at once, each long after its probe's deadline, while the
    next probes of both kinds are running. The dead endpoints must never come up (a late
    session answered for them), and when the endpoints are gone the proxy must hold no
    probe's connection: each late session is refused, each probe closes its own."""
    late = [f"late-{i}" for i in range(40)]
    dead = [f"dead-{i}" for i in range(40)]
    names = [n for pair in zip(late, dead) for n in pair]
    t = env.t
    inner = t.ns_origin + "0"  # vpptopo.Topology: the origin namespace's end of its veth
    count_file = Path(tempfile.mkdtemp(prefix="sbxprobe-")) / "held"
    greeter = t.spawn(t.ns_origin, sys.executable, "-c", GREETER, str(GREETER_PORT),
                      str(count_file))
    added_address = False
    try:
        deadline = time.monotonic() + 20
        while not count_file.exists():
            assert greeter.poll() is None and time.monotonic() < deadline, "no greeter"
            time.sleep(0.1)
        _add(env, names)
        _wait_states(env, 2, 30)  # every probe timed out: down
        for _ in range(2):  # their pending connects outlive the records' endpoints too
            _delete(env)
            _add(env, names)
        _wait_states(env, 2, 30)
        time.sleep(2)  # one more round of probes pending
        r = t.run_in(t.ns_origin, "ip", "addr", "add", f"{LATE_IP4}/24", "dev", inner)
        assert r.returncode == 0, r.stderr.decode()
        added_address = True
        # the SYNs sent meanwhile reach it now (VPP resends them), the new probes of the late
        # endpoints succeed; a dead endpoint that comes up meanwhile took a late session's answer
        came_up: set[str] = set()
        deadline = time.monotonic() + 30
        settle = None
        while settle is None or time.monotonic() < settle:
            states = _states(env)
            came_up |= {n for n in dead if states.get(n) == 1}
            if settle is None and all(states.get(n) == 1 for n in late):
                settle = time.monotonic() + 4  # a few more rounds of probes
            assert settle is not None or time.monotonic() < deadline, states
            time.sleep(0.2)
        assert not came_up, f"dead endpoints reported up: {sorted(came_up)}"
        _delete(env)
        # every probe ends within its 1 s deadline; a connection the plugin forgot stays
        deadline = time.monotonic() + 20
        while (held := int(count_file.read_text() or 0)):
            assert time.monotonic() < deadline, (
                f"{held} probe connections still held by the proxy after their endpoints "
                "are gone\n" + env.cli("show session verbose 2"))
            time.sleep(0.5)
        assert greeter.poll() is None
    finally:
        _delete(env)
        greeter.kill()
        greeter.wait()
        if added_address:
            t.run_in(t.ns_origin, "ip", "addr", "del", f"{LATE_IP4}/24", "dev", inner)
