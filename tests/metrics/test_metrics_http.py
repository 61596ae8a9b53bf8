"""The exporter over real HTTPS: HTTP Basic against the shared user store, the generated certificate, content
negotiation — with httpx and curl as clients, in this process (a stats source in memory) and as the daemon
(singbox-exporterd, its settings in sysrepo)."""

from __future__ import annotations

import gzip
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from daemon import bootstrap_admin, set_settings, start_daemon, wait_ready
from metricsdata import ADMIN, InProcessExporter, add_user, plugin_segment
from singbox_agent.repository import SysrepoInstance


@pytest.fixture
def exporter(sysrepo_instance: SysrepoInstance, tmp_path: Path) -> Iterator[InProcessExporter]:
    add_user(*ADMIN)
    exp = InProcessExporter(plugin_segment(endpoints=2, sessions=7), tmp_path)
    try:
        yield exp
    finally:
        exp.close()


def test_without_credentials_401_with_them_200(exporter: InProcessExporter) -> None:
    with httpx.Client(verify=exporter.ca, timeout=30) as c:
        r = c.get(exporter.url)
        assert r.status_code == 401 and r.headers["www-authenticate"].startswith("Basic ")
        assert "singbox" not in r.text
        assert c.get(exporter.url, auth=(ADMIN[0], "wrong")).status_code == 401
        assert c.get(exporter.url, auth=("nobody", ADMIN[1])).status_code == 401
        assert c.get(exporter.url.replace("/metrics", "/other")).status_code == 401  # nothing before auth
        r = c.get(exporter.url, auth=ADMIN)
        assert r.status_code == 200, r.text
        assert r.headers["content-type"] == "text/plain; version=0.0.4; charset=utf-8"
        assert "singbox_server_active_sessions 7\n" in r.text
        assert 'singbox_agent_build_info{version="9.9.9"} 1\n' in r.text
        assert c.post(exporter.url, auth=ADMIN).status_code == 405
        assert c.get(exporter.url.replace("/metrics", "/other"), auth=ADMIN).status_code == 404


def test_curl_with_the_ca_and_basic_auth(exporter: InProcessExporter) -> None:
    base = ["curl", "-sS", "--max-time", "30", "--cacert", exporter.ca, "-o", "/dev/null", "-w", "%{http_code}"]
    assert subprocess.run(base + [exporter.url], capture_output=True, text=True, timeout=60).stdout == "401"
    assert subprocess.run(base + ["-u", ":".join(ADMIN), exporter.url], capture_output=True, text=True,
                          timeout=60).stdout == "200"
    # HTTP/2 by ALPN, as with RESTCONF
    done = subprocess.run(base[:-4] + ["--http2", "-u", ":".join(ADMIN), "-w", "%{http_version}", "-o", "/dev/null",
                                       exporter.url], capture_output=True, text=True, timeout=60)
    assert done.stdout == "2", done.stderr


def test_scrape_credentials_are_checked_as_restconf_checks_them(exporter: InProcessExporter) -> None:
    """One door, one policy: a NUL in the password is refused as malformed (never compared cut at the NUL), and
    repeated failures from one address are held back with 429 + Retry-After — the right password too, while the
    address is blocked — as the RESTCONF server does (mgmt.http_basic)."""
    with httpx.Client(verify=exporter.ca, timeout=30) as c:
        r = c.get(exporter.url, auth=(ADMIN[0], ADMIN[1] + "\0junk"))
        assert r.status_code == 401 and "NUL" in r.text
        codes = [c.get(exporter.url, auth=(ADMIN[0], f"wrong{i}")).status_code for i in range(12)]
        assert codes[0] == 401 and 429 in codes, codes
        r = c.get(exporter.url, auth=ADMIN)
        assert r.status_code == 429 and int(r.headers["retry-after"]) >= 1
        assert "singbox" not in r.text


def test_openmetrics_when_asked_and_gzip(exporter: InProcessExporter) -> None:
    with httpx.Client(verify=exporter.ca, timeout=30, auth=ADMIN) as c:
        r = c.get(exporter.url, headers={"Accept": "application/openmetrics-text;version=1.0.0,text/plain;q=0.5"})
        assert r.headers["content-type"].startswith("application/openmetrics-text; version=1.0.0")
        assert r.text.endswith("# EOF\n")
        raw = c.get(exporter.url, headers={"Accept-Encoding": "gzip"})
        assert raw.headers.get("content-encoding") == "gzip"  # httpx decodes it
        assert gzip.compress(raw.content)  # and what it decoded is the exposition
        assert "singbox_dataplane_up 1" in raw.text


def test_a_changed_password_stops_matching_at_once(exporter: InProcessExporter) -> None:
    with httpx.Client(verify=exporter.ca, timeout=30) as c:
        assert c.get(exporter.url, auth=ADMIN).status_code == 200  # now cached
        add_user(ADMIN[0], "new-secret-3")
        deadline = time.monotonic() + 10
        while c.get(exporter.url, auth=ADMIN).status_code == 200:
            assert time.monotonic() < deadline, "the old password still works"
            time.sleep(0.05)
        assert c.get(exporter.url, auth=(ADMIN[0], "new-secret-3")).status_code == 200


def test_counters_follow_the_source_and_a_vpp_gone_reads_up_0(exporter: InProcessExporter) -> None:
    from singbox_agent.metrics.segment import MemorySource, SimpleCounter

    src = exporter.app.source
    assert isinstance(src, MemorySource)
    with httpx.Client(verify=exporter.ca, timeout=30, auth=ADMIN) as c:
        src.set("/singbox/server/accepted", SimpleCounter(((40,), (2,))))
        assert "singbox_server_connections_accepted_total 42\n" in c.get(exporter.url).text
        src.up = False
        text = c.get(exporter.url).text
        assert "\nsingbox_dataplane_up 0\n" in text and "\nsingbox_server_connections_accepted_total " not in text


def test_ipv6_listen_address(sysrepo_instance: SysrepoInstance, tmp_path: Path) -> None:
    add_user(*ADMIN)
    try:
        exp = InProcessExporter(plugin_segment(), tmp_path, address="::1")
    except RuntimeError:
        pytest.skip("no IPv6 loopback here")
    try:
        with httpx.Client(verify=exp.ca, timeout=30, auth=ADMIN) as c:
            assert c.get(exp.url).status_code == 200
    finally:
        exp.close()


# --- the daemon ---------------------------------------------------------------------------------------------

def test_daemon_serves_its_yang_settings_and_follows_their_changes(sysrepo_instance_factory, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    instance = sysrepo_instance_factory()
    state = tmp_path / "state"
    state.mkdir()
    bootstrap_admin(instance, state)
    set_settings(instance, port=0)
    proc, ready, log = start_daemon(instance, state, tmp_path / "no-vpp.sock")
    try:
        info = wait_ready(ready, proc, log, lambda i: i.get("port"))
        ca = info["ca_certificate"]
        assert ca == str(state / "restconf" / "ca.pem")  # the RESTCONF server's certificate and CA
        with httpx.Client(verify=ca, timeout=30) as c:
            assert c.get(info["metrics_url"]).status_code == 401
            r = c.get(info["metrics_url"], auth=ADMIN)
            assert r.status_code == 200 and "singbox_dataplane_up 0\n" in r.text  # no VPP here
            # a keep-alive connection stays open across the changes: the old listener still goes away
            set_settings(instance, enabled=False)
            info = wait_ready(ready, proc, log, lambda i: i.get("enabled") is False)
            assert info["port"] is None
            with pytest.raises(httpx.ConnectError):
                httpx.get(f"https://127.0.0.1:{r.url.port}/metrics", verify=ca, timeout=5)
            set_settings(instance, enabled=True, port=0)
            info = wait_ready(ready, proc, log, lambda i: i.get("enabled") and i.get("port"))
        with httpx.Client(verify=ca, timeout=30, auth=ADMIN) as c:
            assert c.get(info["metrics_url"]).status_code == 200
            started = time.monotonic()
            proc.send_signal(signal.SIGTERM)  # with this client's connection still open
            assert proc.wait(timeout=15) == 0, log.read_text()
            assert time.monotonic() - started < 10
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
