"""singbox-exporterd whose configured listen address cannot be bound yet (not up at boot, the port held): no
traceback and no exit — one error line naming the address and the reason — and it serves there as soon as the
address can be bound, retrying by itself (before, it waited for the settings to change)."""

from __future__ import annotations

import signal
import socket
from pathlib import Path

import httpx
from daemon import bootstrap_admin, set_settings, start_daemon, wait_ready

NOT_HERE = "192.0.2.1"  # RFC 5737 TEST-NET-1: never an address of this host; only a bind attempt, no traffic


def test_address_not_on_this_host(sysrepo_instance_factory, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    instance = sysrepo_instance_factory()
    state = tmp_path / "state"
    state.mkdir()
    bootstrap_admin(instance, state)
    set_settings(instance, address=NOT_HERE, port=9464)
    proc, ready, log = start_daemon(instance, state, tmp_path / "no-vpp.sock")
    try:
        info = wait_ready(ready, proc, log, lambda i: i.get("enabled"))
        assert info["port"] is None
    finally:
        proc.send_signal(signal.SIGTERM)
        code = proc.wait(timeout=30)
    text = log.read_text()
    assert "Traceback" not in text and code == 0, text[-4000:]
    errors = [line for line in text.splitlines() if "cannot listen" in line]
    assert errors and NOT_HERE in errors[0] and "cannot assign requested address" in errors[0].lower(), text[-4000:]


def test_serves_once_the_address_can_be_bound(sysrepo_instance_factory, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    instance = sysrepo_instance_factory()
    state = tmp_path / "state"
    state.mkdir()
    bootstrap_admin(instance, state)
    holder = socket.socket()  # the port is taken until the test lets it go, as an address that is not up yet
    holder.bind(("127.0.0.1", 0))
    holder.listen()
    port = holder.getsockname()[1]
    set_settings(instance, address="127.0.0.1", port=port)
    proc, ready, log = start_daemon(instance, state, tmp_path / "no-vpp.sock")
    try:
        try:
            info = wait_ready(ready, proc, log, lambda i: i.get("enabled"))
            assert info["port"] is None
        finally:
            holder.close()
        info = wait_ready(ready, proc, log, lambda i: i.get("port"), timeout=60)  # no settings change: a retry
        assert info["port"] == port
        r = httpx.get(info["metrics_url"], verify=info["ca_certificate"], timeout=30)
        assert r.status_code == 401
    finally:
        proc.send_signal(signal.SIGTERM)
        code = proc.wait(timeout=30)
    text = log.read_text()
    assert "Traceback" not in text and code == 0, text[-4000:]
    assert sum("cannot listen" in line for line in text.splitlines()) == 1, text[-4000:]
