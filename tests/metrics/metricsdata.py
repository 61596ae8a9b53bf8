"""A stats segment in memory shaped like the singbox plugin's, and where Prometheus' tools are."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from singbox_agent.metrics.segment import CombinedCounter, MemorySource, NameVector, SimpleCounter

SERVER_COUNTERS = ("accepted", "rejected", "rejected-max-sessions", "rejected-prefix", "auth-failures",
                   "connect-failures", "bytes-to-client", "bytes-from-client", "udp-dropped")


def prometheus_tool(name: str) -> Path | None:
    """`promtool` or `prometheus` from PATH (Debian trixie's packages `promtool` and `prometheus`, the server
    depending on the tool), else from $PROMETHEUS_BIN_DIR."""
    found = shutil.which(name)
    if found:
        return Path(found)
    directory = os.environ.get("PROMETHEUS_BIN_DIR")
    if directory and (Path(directory) / name).is_file():
        return Path(directory) / name
    return None


def missing_tool_reason(name: str) -> str:
    return (f"{name} not found: install Debian's package `{name}` (it belongs in scripts/rootfs-packages.txt) "
            f"or set PROMETHEUS_BIN_DIR")


def plugin_segment(*, interfaces: int = 2, endpoints: int = 3, threads: int = 2, sessions: int = 0,
                   deleted: tuple[int, ...] = ()) -> MemorySource:
    """VPP interfaces local0 + host-vethN (N < `interfaces`), singbox relaying enabled on every host-veth, one
    endpoint per `endpoints` (ep0 up, ep1 down, ep2 unknown, ...), counters spread over `threads`. `deleted`:
    sw_if_indexes whose name slot is empty (interfaces deleted since)."""
    names = ["local0"] + [f"host-veth{i}" for i in range(interfaces)]
    for d in deleted:
        names[d] = ""
    width = len(names)
    src = MemorySource()
    src.set("/if/names", NameVector(tuple(names)))
    src.set("/sys/boottime", 1_765_000_000)
    src.set("/if/rx", CombinedCounter(tuple(tuple((10 * i + t, 1000 * i + t) for i in range(width))
                                            for t in range(threads))))
    src.set("/if/tx", CombinedCounter(tuple(tuple((20 * i, 2000 * i) for i in range(width)) for _ in range(threads))))
    src.set("/if/drops", SimpleCounter(tuple(tuple(i for i in range(width)) for _ in range(threads))))
    for n, name in enumerate(SERVER_COUNTERS):
        src.set(f"/singbox/server/{name}", SimpleCounter(tuple((n + 1 + t,) for t in range(threads))))
    src.set("/singbox/server/udp-datagrams", CombinedCounter(tuple(((3, 300), (4, 400)) for _ in range(threads))))
    src.set("/singbox/server/active-sessions", sessions)
    src.set("/singbox/client/interface/connections",
            SimpleCounter(tuple(tuple(100 + i for i in range(width)) for _ in range(threads))))
    src.set("/singbox/client/interface/failures",
            SimpleCounter(tuple(tuple(i for i in range(width)) for _ in range(threads))))
    src.set("/singbox/client/interface/redirected",
            CombinedCounter(tuple(tuple((5 * i, 500 * i) for i in range(width)) for _ in range(threads))))
    for i in range(1, width):
        src.set(f"/singbox/client/interface/{i}/active", i)
    for e in range(endpoints):
        src.set(f"/singbox/client/endpoint/ep{e}/state", (1, 2, 0)[e % 3])
        src.set(f"/singbox/client/endpoint/ep{e}/rtt-us", 1500 + e)
        src.set(f"/singbox/client/endpoint/ep{e}/failures", e)
    return src


# --- the exporter served in this process (a thread of its own), over real HTTPS with the real user store ---------

import asyncio  # noqa: E402
import threading  # noqa: E402
from collections.abc import Callable  # noqa: E402

ADMIN = ("admin", "admin-secret-1")


def add_user(name: str, password: str) -> None:
    """A user of the shared store (ietf-system) in the sysrepo instance this process uses."""
    import sysrepo

    from singbox_agent.mgmt.users import hash_password

    with sysrepo.SysrepoConnection() as conn:
        sess = conn.start_session("running")
        sess.edit_batch({"system": {"authentication": {"user": [{"name": name, "password": hash_password(password)}]}}},
                        "ietf-system")
        sess.apply_changes()
        sess.stop()


class InProcessExporter:
    """`metrics.server.Exporter` with a given source, on 127.0.0.1:0, with a generated certificate in `state_dir`."""

    def __init__(self, source: object, state_dir: Path, *, versions: Callable[[], object] = lambda: None,
                 address: str = "127.0.0.1") -> None:
        import sysrepo

        from singbox_agent.metrics.app import MetricsApp
        from singbox_agent.metrics.server import Exporter, ServingLoop, TlsFiles
        from singbox_agent.metrics.settings import Settings
        from singbox_agent.mgmt.http_basic import BasicAuthenticator
        from singbox_agent.mgmt.users import UserStore
        from singbox_agent.restconf.tls import ensure_certificate

        files = ensure_certificate(state_dir)
        self.ca = str(files.ca_certificate)
        self.conn = sysrepo.SysrepoConnection()
        self.users = UserStore(self.conn)
        self.app = MetricsApp(source, BasicAuthenticator(self.users), agent_version="9.9.9", versions=versions)  # type: ignore[arg-type]
        self.settings = Settings(True, address, 0)
        self.port: int | None = None
        self._bound = threading.Event()
        self._loop: asyncio.AbstractEventLoop | None = None
        tls = TlsFiles(files.certfile, files.keyfile, files.ca_certificate)

        async def read_settings() -> Settings:
            return self.settings

        def on_serving(_s: Settings, port: int | None) -> None:
            self.port = port
            self._bound.set()

        async def main() -> None:
            self._loop = asyncio.get_running_loop()
            self.exporter = Exporter(self.app, tls, read_settings, on_serving)
            await self.exporter.run()

        def run() -> None:
            with asyncio.Runner(loop_factory=ServingLoop) as runner:
                runner.run(main())

        self._thread = threading.Thread(target=run, name="exporter", daemon=True)
        self._thread.start()
        if not self._bound.wait(30):
            raise RuntimeError("the exporter did not bind within 30 s")
        if self.port is None:
            self.close()
            raise RuntimeError(f"the exporter could not listen on {address}")

    @property
    def url(self) -> str:
        host = f"[{self.settings.address}]" if ":" in self.settings.address else self.settings.address
        return f"https://{host}:{self.port}/metrics"

    def close(self) -> None:
        assert self._loop is not None
        self._loop.call_soon_threadsafe(self.exporter.stop.set)
        self._thread.join(30)
        assert not self._thread.is_alive(), "the exporter did not stop"
        self.app.close()
        self.users.close()
        self.conn.disconnect()
