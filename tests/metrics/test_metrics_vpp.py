"""With a real VPP running the singbox plugin: the exporter's stats reader after real traffic — SOCKS5 server
counters from curl through the server, client-mode counters and an endpoint's health from connections relayed
through sing-box, VPP's own interface counters, all named — and the exposition of that segment, served over HTTPS
and clean for promtool. Skipped, saying what is missing, without VPP (see tests/vpp/README.md)."""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

VPP_TESTS = Path(__file__).resolve().parents[1] / "vpp"
sys.path.insert(0, str(VPP_TESTS))

import vpptopo  # noqa: E402
from vppfixtures import HTTP_PORT, skip_reason, start_origin, vpp_output  # noqa: E402

from metricsdata import ADMIN, InProcessExporter, add_user, missing_tool_reason, prometheus_tool  # noqa: E402
from singbox_agent.metrics import render, snapshot  # noqa: E402
from singbox_agent.metrics.vppstats import VppStatsSource  # noqa: E402
from singbox_agent.repository import SysrepoInstance  # noqa: E402

pytestmark = pytest.mark.vpp
SB_PORT = 1090
WAIT_S = 30.0


class Box:
    def __init__(self) -> None:
        self.vpp = vpptopo.Vpp(workers=0)
        self.topo: vpptopo.Topology | None = None
        self.papi: Any = None
        self.sing_box: Any = None
        try:
            self.topo = vpptopo.Topology(self.vpp, tag=f"m{int(time.time() * 1000) % 100000}")
            start_origin(self.topo)
            from vpp_papi import VPPApiClient

            self.papi = VPPApiClient(server_address=str(self.vpp.api_sock), bootstrapapi=True, read_timeout=10)
            self.papi.connect("sbx-metrics-test")
            self.api = self.papi.api
        except Exception:
            self.close()
            raise

    @property
    def t(self) -> vpptopo.Topology:
        assert self.topo is not None
        return self.topo

    def sw_if_index(self, name: str) -> int:
        for line in self.vpp.cli("show interface").splitlines():
            parts = line.split()
            if parts and parts[0] == name:
                return int(parts[1])
        raise AssertionError(name)

    def close(self) -> None:
        if self.sing_box is not None:
            self.sing_box.kill()
        if self.papi is not None:
            try:
                self.papi.disconnect()
            except Exception:  # noqa: BLE001
                pass
        if self.topo is not None:
            self.topo.close()
        self.vpp.close()


@pytest.fixture(scope="module")
def box() -> Iterator[Box]:
    reason = skip_reason("tests with VPP")
    if reason:
        pytest.skip(reason)
    b = Box()
    try:
        yield b
    finally:
        log = vpp_output(b.vpp)
        alive = b.vpp.alive()
        b.close()
        assert alive, "VPP died during the tests:\n" + log


def wait_for(source: VppStatsSource, ok: Callable[[snapshot.Snapshot], bool], what: str) -> snapshot.Snapshot:
    deadline = time.monotonic() + WAIT_S
    snap = None
    while time.monotonic() < deadline:
        snap = snapshot.build(source.read(), agent_version="test")
        if ok(snap):
            return snap
        time.sleep(0.2)
    raise AssertionError(f"{what} not seen within {WAIT_S} s: {snap}")


def test_server_counters_after_real_socks_traffic(box: Box) -> None:
    api = box.api
    assert api.singbox_server_config(
        auth_required=False, allow_connect=True, allow_udp_associate=False, max_sessions=1024,
        handshake_timeout=10, idle_timeout=300, connect_timeout=10, udp_idle_timeout=60,
        udp_public_address="0.0.0.0", dns_enabled=False, dns_server="0.0.0.0", dns_server_port=0).retval == 0
    assert api.singbox_server_listener_add_del(is_add=True, name="main", addr=vpptopo.VPP_CLIENT_IP4, port=1080,
                                               table_id=0).retval == 0
    assert api.singbox_server_enable_disable(enable=True).retval == 0
    source = VppStatsSource(str(box.vpp.stats_sock))
    try:
        before = snapshot.build(source.read(), agent_version="test")
        assert before.dataplane_up and before.server is not None
        names = [i.name for i in before.interfaces]
        assert box.t.vpp_if_client in names and box.t.vpp_if_origin in names and "local0" in names
        url = f"http://{vpptopo.ORIGIN_IP4}:{HTTP_PORT}/"
        for _ in range(5):
            r = box.t.run_in(box.t.ns_client, "curl", "-sS", "-m", "10", "-o", "/dev/null",
                             "--socks5", f"{vpptopo.VPP_CLIENT_IP4}:1080", url)
            assert r.returncode == 0, r.stderr
        after = wait_for(source, lambda s: s.server is not None and before.server is not None
                         and s.server.accepted >= before.server.accepted + 5
                         and s.server.bytes_to_client > before.server.bytes_to_client, "5 accepted connections")
        assert after.server is not None and after.server.bytes_from_client > 0
        itf = {i.name: i for i in after.interfaces}[box.t.vpp_if_client]
        was = {i.name: i for i in before.interfaces}[box.t.vpp_if_client]
        assert itf.rx_packets > was.rx_packets and itf.tx_bytes > was.tx_bytes
        # the same count the binary API gives (nothing connects meanwhile)
        reply = api.singbox_server_get_stats()
        assert reply.retval == 0 and reply.accepted == after.server.accepted
    finally:
        source.close()
        assert api.singbox_server_enable_disable(enable=False).retval == 0


def test_client_mode_interface_and_endpoint_by_name(box: Box) -> None:
    cfg = {"log": {"level": "warn"},
           "inbounds": [{"type": "socks", "tag": "in", "listen": vpptopo.ORIGIN_IP4, "listen_port": SB_PORT}],
           "outbounds": [{"type": "direct", "tag": "direct"}], "route": {"final": "direct"}}
    d = Path(tempfile.mkdtemp(prefix="sbx-metrics-"))
    (d / "config.json").write_text(json.dumps(cfg))
    box.sing_box = box.t.spawn(box.t.ns_origin, str(vpptopo.sing_box_binary()), "run", "-c", str(d / "config.json"))
    vpptopo.wait_port(box.t.ns_origin, vpptopo.ORIGIN_IP4, SB_PORT)
    api = box.api
    assert api.singbox_endpoint_add_del(
        is_add=True, name="upstream-a", proxy_addr=vpptopo.ORIGIN_IP4, proxy_port=SB_PORT, protocol_type=0,
        username="", password="", priority=0, connect_timeout=5, health_check_enabled=True,
        health_check_interval=1, health_check_timeout=0, failure_threshold=1, recovery_threshold=1,
        table_id=0).retval == 0
    assert api.singbox_endpoint_add_del(
        is_add=True, name="nowhere", proxy_addr=vpptopo.SILENT_IP4, proxy_port=SB_PORT, protocol_type=0,
        username="", password="", priority=1, connect_timeout=1, health_check_enabled=True,
        health_check_interval=1, health_check_timeout=0, failure_threshold=1, recovery_threshold=1,
        table_id=0).retval == 0
    idx = box.sw_if_index(box.t.vpp_if_client)
    assert api.singbox_enable_disable(sw_if_index=idx, enable_disable=True, endpoint_name="upstream-a").retval == 0
    source = VppStatsSource(str(box.vpp.stats_sock))
    try:
        for _ in range(3):
            r = box.t.run_in(box.t.ns_client, "curl", "-sS", "-m", "10", "-o", "/dev/null",
                             f"http://{vpptopo.ORIGIN_IP4}:{HTTP_PORT}/")
            assert r.returncode == 0, r.stderr
        snap = wait_for(source, lambda s: any(
            c.name == box.t.vpp_if_client and c.connections >= 3 and c.redirected_bytes > 0
            for c in s.client_interfaces) and {e.name: e.state for e in s.endpoints}.get("upstream-a") == "up"
            and {e.name: e.state for e in s.endpoints}.get("nowhere") == "down", "client-mode counters")
        eps = {e.name: e for e in snap.endpoints}
        assert eps["upstream-a"].rtt_seconds > 0 and eps["nowhere"].failures > 0
        if eps["upstream-a"].connections is not None:  # a plugin that exports /singbox/client/endpoint/<n>/connections
            assert eps["upstream-a"].connections >= 3
        text = render.render(snap)
        assert f'singbox_client_interface_connections_total{{interface="{box.t.vpp_if_client}"}}' in text
        assert 'singbox_client_endpoint_state{endpoint="nowhere",state="down"} 1' in text
        promtool = prometheus_tool("promtool")
        if promtool is not None:
            done = subprocess.run([str(promtool), "check", "metrics"], input=text, capture_output=True, text=True,
                                  timeout=60)
            assert done.returncode == 0, done.stdout + done.stderr
        # relaying disabled on the interface: its series go, the endpoint's stay
        assert api.singbox_enable_disable(sw_if_index=idx, enable_disable=False).retval == 0
        wait_for(source, lambda s: not s.client_interfaces, "the interface's series removed")
    finally:
        source.close()
        api.singbox_enable_disable(sw_if_index=idx, enable_disable=False)
        for name in ("upstream-a", "nowhere"):
            api.singbox_endpoint_add_del(is_add=False, name=name)


def test_scrape_of_the_real_segment_over_https(box: Box, sysrepo_instance: SysrepoInstance, tmp_path: Path) -> None:
    import httpx

    add_user(*ADMIN)
    exporter = InProcessExporter(VppStatsSource(str(box.vpp.stats_sock)), tmp_path)
    try:
        with httpx.Client(verify=exporter.ca, auth=ADMIN, timeout=30) as c:
            text = c.get(exporter.url).text
        assert "\nsingbox_dataplane_up 1\n" in text
        assert f'singbox_dataplane_interface_receive_packets_total{{interface="{box.t.vpp_if_client}"}}' in text
    finally:
        exporter.close()


def test_prometheus_sees_the_accepted_counter_grow_after_traffic(box: Box, sysrepo_instance: SysrepoInstance,
                                                                  tmp_path: Path) -> None:
    """The whole chain: curl through VPP's SOCKS5 server, the plugin's counter in the stats segment, the exporter
    over HTTPS, a real Prometheus scraping it, its query API."""
    from promserver import Prometheus

    binary = prometheus_tool("prometheus")
    if binary is None:
        pytest.skip(missing_tool_reason("prometheus"))
    api = box.api
    assert api.singbox_server_listener_add_del(is_add=True, name="prom", addr=vpptopo.VPP_CLIENT_IP4, port=1081,
                                               table_id=0).retval == 0
    assert api.singbox_server_enable_disable(enable=True).retval == 0
    add_user(*ADMIN)
    (tmp_path / "exporter").mkdir()
    (tmp_path / "prometheus").mkdir()
    exporter = InProcessExporter(VppStatsSource(str(box.vpp.stats_sock)), tmp_path / "exporter")
    prom = None
    try:
        prom = Prometheus(binary, tmp_path / "prometheus", exporter)
        query = 'singbox_server_connections_accepted_total{job="singbox"}'
        before = int(api.singbox_server_get_stats().accepted)
        prom.wait_value(query, before)
        for _ in range(3):
            r = box.t.run_in(box.t.ns_client, "curl", "-sS", "-m", "10", "-o", "/dev/null",
                             "--socks5", f"{vpptopo.VPP_CLIENT_IP4}:1081", f"http://{vpptopo.ORIGIN_IP4}:{HTTP_PORT}/")
            assert r.returncode == 0, r.stderr
        prom.wait_value(query, before + 3)
        prom.wait_value('singbox_dataplane_up{job="singbox"}', 1)
    finally:
        if prom is not None:
            prom.close()
        exporter.close()
        api.singbox_server_enable_disable(enable=False)
        api.singbox_server_listener_add_del(is_add=False, name="prom")


def test_the_daemon_reads_the_vpp_it_is_given(box: Box, sysrepo_instance_factory, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    import httpx

    from daemon import bootstrap_admin, set_settings, start_daemon, wait_ready

    instance = sysrepo_instance_factory()
    bootstrap_admin(instance, tmp_path)
    set_settings(instance, port=0)
    proc, ready, log = start_daemon(instance, tmp_path, box.vpp.stats_sock)
    try:
        info = wait_ready(ready, proc, log, lambda i: i.get("port"))
        text = httpx.get(info["metrics_url"], verify=info["ca_certificate"], auth=ADMIN, timeout=30).text
        assert "\nsingbox_dataplane_up 1\n" in text
        assert f'singbox_dataplane_interface_receive_packets_total{{interface="{box.t.vpp_if_origin}"}}' in text
    finally:
        proc.terminate()
        assert proc.wait(timeout=15) == 0, log.read_text()


def test_a_vpp_that_stops_reads_as_no_dataplane() -> None:
    reason = skip_reason("tests with VPP")
    if reason:
        pytest.skip(reason)
    vpp = vpptopo.Vpp(workers=0)
    source = VppStatsSource(str(vpp.stats_sock))
    try:
        assert snapshot.build(source.read(), agent_version="t").dataplane_up
    finally:
        vpp.close()
    assert source.read() is None
    source.close()
