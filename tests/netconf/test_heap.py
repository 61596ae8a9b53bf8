"""netconf/heap.py: memory a request freed goes back to the system (issue 17: RSS). Each check runs in a fresh
interpreter, since malloc's settings are per process."""

from __future__ import annotations

import subprocess
import sys
import textwrap

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
    a trim gives their pages back: after each big request, however close they follow one another."""
    run("""
        for request in range(3):
            blocks = [bytes(600) for _ in range(100_000)]  # each its own malloc block (not Python's small objects)
            keep = blocks[::512]  # a few survivors: the heap's top cannot shrink past them
            del blocks
            held = rss()
            heap.after_request(100 if request == 2 else heap.BIG_BYTES, 0.001 if request < 2 else heap.BIG_S)
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
        heap.after_request(heap.BIG_BYTES, 0.001)
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
