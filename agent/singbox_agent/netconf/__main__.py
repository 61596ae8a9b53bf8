"""`python -m singbox_agent.netconf --listen HOST:PORT [--listen ...] --state-dir DIR [--ready-file FILE]`.

Serves NETCONF over SSH on the sysrepo instance the environment selects. `--listen` seeds the listen endpoints in
sysrepo (ietf-netconf-server) on the first start only; from then on sysrepo's configuration is the source of truth
and a `--listen` that differs from it is logged as ignored. Once the server listens, the ready file gets host, port
and the host key's fingerprint and systemd gets READY=1 (`Type=notify`); an endpoint whose address cannot be bound
(not up yet) is retried every 2 s, and with none listening both wait for the first. SIGTERM/SIGINT stop it cleanly.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import sys
from pathlib import Path

import structlog
import sysrepo

from singbox_agent.logs import configure_logging
from singbox_agent.mgmt import datastore, nacm, shm_guard, systemd, yang_library
from singbox_agent.netconf import confirmed, heap
from singbox_agent.netconf.server import NetconfServer, load_or_create_host_key

log = structlog.get_logger("netconf")

STATUS_LOOK_S = 1.0  # how often `systemctl status` is brought in line with the endpoints listening


def parse_listen(value: str) -> tuple[str, int]:
    host, sep, port = value.rpartition(":")
    if not sep or not port.isdigit():
        raise argparse.ArgumentTypeError(f"expected HOST:PORT, got {value!r}")
    return host.strip("[]") or "127.0.0.1", int(port)


async def serve(args: argparse.Namespace) -> int:
    # from the start: a stop asked for while starting ends the server cleanly once it has started
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    # WATCHDOG=1 from this loop (every SSH session, RPC dispatch and settings change goes through it; sysrepo
    # calls run in executor threads): a loop wedged for longer than the unit's WatchdogSec= gets the server restarted
    heartbeat = asyncio.ensure_future(systemd.watchdog())
    status = systemd.StatusLine()
    try:
        return await _serve(args, stop, status)
    finally:
        heartbeat.cancel()


def listening_status(server: NetconfServer) -> str | None:
    """The line `systemctl status` shows: the endpoints listening, or those waiting for their address; None while
    the endpoints are being (re)bound."""
    if server.bound:
        return "listening on " + ", ".join(f"{h}:{p}" for h, p in server.bound)
    if server.unbound:
        return "waiting for a listen address: " + ", ".join(sorted(server.unbound.values()))
    return None


async def _follow_status(server: NetconfServer, status: systemd.StatusLine) -> None:
    """Keeps `systemctl status` on the endpoints as they move (changed in ietf-netconf-server, an address bound
    late): it said "listening on" the first endpoints for good."""
    while True:
        await asyncio.sleep(STATUS_LOOK_S)
        line = listening_status(server)
        if line is not None:
            status.update(line)


async def _serve(args: argparse.Namespace, stop: asyncio.Event, status: systemd.StatusLine) -> int:
    host_key = load_or_create_host_key(args.state_dir)
    # sysrepo keeps running parsed in this process and current (SR_CONN_CACHE_RUNNING): reads of running skip
    # loading and parsing the datastore on every request.
    conn = sysrepo.SysrepoConnection(cache_running=True)
    library = yang_library.announce_datastores(conn)  # noqa: F841 - its session holds <intended>'s entry
    # RFC 8341 3.4 recovery session: sysrepo's recovery user (root) and any account named on the command line.
    recovery = frozenset({*(args.recovery_user or ()), nacm.recovery_user()})
    server = NetconfServer(conn, recovery_users=recovery, hello_timeout=args.hello_timeout, state_dir=args.state_dir)
    confirmed.recover(server)  # before clients can connect
    endpoints = await server.start(args.listen or [("127.0.0.1", 830)], host_key)
    if not endpoints:
        # No traceback and no exit: the addresses may come later (boot, DHCP); the server binds them when they do.
        # Ready (the ready file, READY=1) means listening, so both wait for the first endpoint.
        log.error("no listen endpoint could be opened, retrying", endpoints=sorted(server.unbound.values()))
        status.update(listening_status(server) or "waiting for a listen address")
        listening = asyncio.ensure_future(server.listening.wait())
        stopping = asyncio.ensure_future(stop.wait())
        await asyncio.wait([listening, stopping], return_when=asyncio.FIRST_COMPLETED)
        listening.cancel()
        stopping.cancel()
        if stop.is_set():
            return await _stop(server, conn)
        endpoints = list(server.bound)
    bound_host, bound_port = endpoints[0]
    served_key = server.host_key or host_key
    fingerprint = served_key.get_fingerprint()
    log.info("netconf ready", endpoints=[f"{h}:{p}" for h, p in endpoints], host_key=fingerprint)
    asked = set(args.listen or ())
    if asked and not asked <= set(endpoints) and not any(port == 0 for _, port in asked):
        log.warning("--listen ignored: the endpoints configured in sysrepo apply (ietf-netconf-server "
                    "/netconf-server/listen); --listen only seeds them on the first start",
                    listen=sorted(f"{h}:{p}" for h, p in asked), configured=[f"{h}:{p}" for h, p in endpoints])
    heap.freeze_startup()  # before anyone is told: it takes a while on a loaded machine
    if args.ready_file:
        tmp = Path(str(args.ready_file) + ".tmp")
        tmp.write_text(json.dumps({
            "service": "netconf", "host": bound_host, "port": bound_port, "transport": "ssh",
            "subsystem": "netconf", "host_key_fingerprint": fingerprint,
            "host_key": served_key.export_public_key().decode().strip(),
            "endpoints": [{"host": h, "port": p} for h, p in endpoints],
        }))
        os.replace(tmp, args.ready_file)
    status.update("listening on " + ", ".join(f"{h}:{p}" for h, p in endpoints), ready=True)
    follower = asyncio.ensure_future(_follow_status(server, status))
    try:
        await stop.wait()
    finally:
        follower.cancel()
    return await _stop(server, conn)


async def _stop(server: NetconfServer, conn: sysrepo.SysrepoConnection) -> int:
    log.info("netconf stopping")
    systemd.notify_stopping()
    await server.close()
    server.shutdown()
    datastore.close_bulk()  # the connection large edits were written through, if one was opened
    conn.disconnect()
    return 0


def main(argv: list[str] | None = None) -> int:
    heap.configure()  # before any thread starts
    parser = argparse.ArgumentParser(prog="python -m singbox_agent.netconf", description=__doc__)
    parser.add_argument("--listen", type=parse_listen, action="append",
                        help="HOST:PORT to listen on; repeat for several endpoints (default 127.0.0.1:830). Seeds "
                             "sysrepo's endpoints on the first start only; later they are changed there")
    parser.add_argument("--state-dir", type=Path, required=True)
    parser.add_argument("--ready-file", type=Path)
    parser.add_argument("--recovery-user", action="append",
                        help="a user whose sessions are not NACM-restricted (RFC 8341 recovery session)")
    parser.add_argument("--hello-timeout", type=float, default=60.0,
                        help="seconds a client has to send its <hello> (default 60)")
    args = parser.parse_args(argv)
    configure_logging()
    shm_guard.start()  # sysrepo's subscription SHM of ours not other-readable (mgmt/shm_guard.py)
    return asyncio.run(serve(args))


if __name__ == "__main__":
    sys.exit(main())
