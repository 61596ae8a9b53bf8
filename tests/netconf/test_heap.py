"""netconf/heap.py: memory a request freed goes back to the system (issue 17: RSS). Each check runs in a fresh
interpreter, since malloc's settings are per process."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import textwrap
from typing import Any

import pytest

PRELUDE = textwrap.dedent("""
    import ctypes
    from singbox_agent.netconf import heap

    heap.configure()
    libc = ctypes.CDLL("libc.so.6")
    libc.malloc.restype = ctypes.c_void_p
    libc.malloc.argtypes = [ctypes.c_size_t]
    libc.free.argtypes = [ctypes.c_void_p]
    MB = 1 << 20

    def rss():
        for line in open("/proc/self/smaps_rollup"):
            if line.startswith("Rss:"):
                return int(line.split()[1]) * 1024

    def used(size):
        block = libc.malloc(size)
        ctypes.memset(block, 1, size)
        return block
""")


def run(body: str) -> None:
    proc = subprocess.run([sys.executable, "-c", PRELUDE + textwrap.dedent(body)], capture_output=True, text=True,
                          timeout=120)
    assert proc.returncode == 0, proc.stderr[-3000:]


def test_a_large_block_goes_back_when_freed() -> None:
    """A request's text or reply of several MB is unmapped when freed, the second one too (glibc's default
    threshold rises to the largest block freed, and the next such block stayed in the heap after its free)."""
    run("""
        base = rss()
        for _ in range(3):
            libc.free(used(8 * MB))
            assert rss() < base + 4 * MB, (rss() - base) // MB
    """)


def test_every_big_request_trims_the_heap() -> None:
    """Many small blocks freed (a large edit copies a module's data in nodes of ~100 bytes) stay in the heap until
    a trim gives their pages back: after each big request (256 KiB moved, or 10 ms), however close they follow one
    another."""
    run("""
        for request in range(3):
            blocks = [bytes(600) for _ in range(100_000)]  # each its own malloc block (not Python's small objects)
            keep = blocks[::512]  # a few survivors: the heap's top cannot shrink past them
            del blocks
            held = rss()
            assert heap.big(100 if request == 2 else heap.BIG_BYTES, 0.001 if request < 2 else heap.BIG_S)
            heap.trim()
            assert rss() < held - 40 * MB, (request, (held - rss()) // MB)
            del keep
    """)


def test_a_trim_frees_what_garbage_cycles_hold() -> None:
    """Memory that only reference cycles keep (libyang's and sysrepo's Python objects make some on every request)
    goes with the trim, not at the collector's next turn."""
    run("""
        import gc
        gc.disable()  # the collector's own turns would hide whether the trim collects
        holder = [bytes(600) for _ in range(100_000)]
        holder.append(holder)  # a cycle: no reference count ever reaches zero
        keep = holder[:-1:512]
        del holder
        held = rss()
        heap.trim()
        assert rss() < held - 40 * MB, (held - rss()) // MB
    """)


def test_start_up_objects_are_frozen() -> None:
    """What start-up made lives as long as the process: a full collection after it walks none of it."""
    run("""
        import gc
        import singbox_agent.netconf.server  # noqa: F401 - a server's modules
        before = len(gc.get_objects())
        heap.freeze_startup()
        assert gc.get_freeze_count() > before // 2 and len(gc.get_objects()) < 100, (before, gc.get_freeze_count())
    """)


def test_a_big_request_is_trimmed_once_its_reply_went_out(monkeypatch: pytest.MonkeyPatch) -> None:
    """The session's worker trims after a big request when the event loop has passed the reply to SSH, so the
    copies made on the way out (the framed reply, its encrypted packets) are given back too."""
    from types import SimpleNamespace

    from singbox_agent.netconf import heap, messages
    from singbox_agent.netconf.framing import Framer
    from singbox_agent.netconf.session import NetconfSession
    from singbox_agent.netconf.state import ServerState

    events: list[str] = []
    monkeypatch.setattr(heap, "trim", lambda: events.append("trim"))

    def no_sysrepo(datastore: str) -> None:
        raise RuntimeError("no sysrepo here")

    big_reply = b"<rpc-reply/>" + b" " * heap.BIG_BYTES
    server = SimpleNamespace(
        state=ServerState(), limits=SimpleNamespace(max_message_size=1 << 24), hello_timeout=60.0,
        capabilities=lambda: [messages.BASE_1_0], dispatch=lambda session, message: (big_reply, False),
        conn=SimpleNamespace(start_session=no_sysrepo), session_end_hooks=(),
        events=SimpleNamespace(session_start=lambda s: None, session_end=lambda s: None),
        confirmed_on_session_end=lambda s: None)

    async def run() -> None:
        sent = lambda data: events.append("sent" if len(data) > heap.BIG_BYTES else "")  # noqa: E731
        session = NetconfSession(server, "u", sent, lambda: None)  # type: ignore[arg-type]
        session.hello_done = True
        session.data_received(Framer().frame(f'<rpc xmlns="{messages.BASE_NS}" message-id="1"><edit-config/></rpc>'
                                             .encode()))
        for _ in range(500):
            if "trim" in events:
                break
            await asyncio.sleep(0.01)
        session.close()

    asyncio.run(run())
    assert [e for e in events if e] == ["sent", "trim"]


@pytest.mark.parametrize("work", ["wait", "compute"])
def test_the_trim_follows_cpu_not_waiting(monkeypatch: pytest.MonkeyPatch, work: str) -> None:
    """A small request that took long only waiting (for a subscriber, for the CPU of a loaded machine) allocated
    nothing to give back: no trim, which would run on the session's worker ahead of its next request. One that
    kept the worker busy for BIG_S is trimmed."""
    import time
    from types import SimpleNamespace

    from singbox_agent.netconf import heap, messages
    from singbox_agent.netconf.framing import Framer
    from singbox_agent.netconf.session import NetconfSession
    from singbox_agent.netconf.state import ServerState

    events: list[str] = []
    monkeypatch.setattr(heap, "trim", lambda: events.append("trim"))

    def no_sysrepo(datastore: str) -> None:
        raise RuntimeError("no sysrepo here")

    def handle(session: Any, message: bytes) -> tuple[bytes, bool]:
        if work == "wait":
            time.sleep(3 * heap.BIG_S)
        else:
            until = time.thread_time() + 3 * heap.BIG_S
            while time.thread_time() < until:
                pass
        return b"<rpc-reply><ok/></rpc-reply>", False

    server = SimpleNamespace(
        state=ServerState(), limits=SimpleNamespace(max_message_size=1 << 24), hello_timeout=60.0,
        capabilities=lambda: [messages.BASE_1_0], dispatch=handle,
        conn=SimpleNamespace(start_session=no_sysrepo), session_end_hooks=(),
        events=SimpleNamespace(session_start=lambda s: None, session_end=lambda s: None),
        confirmed_on_session_end=lambda s: None)

    async def run() -> None:
        sent = lambda data: events.append("sent")  # noqa: E731
        session = NetconfSession(server, "u", sent, lambda: None)  # type: ignore[arg-type]
        session.hello_done = True
        request = Framer().frame(f'<rpc xmlns="{messages.BASE_NS}" message-id="1"><edit-config/></rpc>'.encode())
        session.data_received(request)
        for _ in range(500):
            if "sent" in events:
                break
            await asyncio.sleep(0.01)
        session.data_received(request)  # the next request queues behind any trim on the worker
        for _ in range(500):
            if events.count("sent") == 2:
                break
            await asyncio.sleep(0.01)
        session.close()

    asyncio.run(run())
    if work == "wait":
        assert events == ["sent", "sent"]
    else:
        assert events[:3] == ["sent", "trim", "sent"]
