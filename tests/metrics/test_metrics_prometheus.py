"""A real Prometheus (Debian's `prometheus`) scrapes the exporter over HTTPS with Basic auth and the CA, and its
HTTP API answers a query for a counter after the counter changed."""

from __future__ import annotations

import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from metricsdata import ADMIN, InProcessExporter, add_user, missing_tool_reason, plugin_segment, prometheus_tool
from singbox_agent.metrics.segment import MemorySource, SimpleCounter
from singbox_agent.repository import SysrepoInstance

WAIT_S = 60.0


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Prometheus:
    def __init__(self, binary: Path, directory: Path, exporter: InProcessExporter) -> None:
        (directory / "password").write_text(ADMIN[1])
        (directory / "wrong").write_text("not-the-password")
        target = f"127.0.0.1:{exporter.port}"
        job = ("  - job_name: {name}\n    scheme: https\n    basic_auth:\n      username: {user}\n"
               "      password_file: {pw}\n    tls_config:\n      ca_file: {ca}\n"
               "    static_configs:\n      - targets: ['{target}']\n")
        config = "global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\nscrape_configs:\n" + job.format(
            name="singbox", user=ADMIN[0], pw=directory / "password", ca=exporter.ca, target=target) + job.format(
            name="intruder", user=ADMIN[0], pw=directory / "wrong", ca=exporter.ca, target=target)
        (directory / "prometheus.yml").write_text(config)
        self.port = _free_port()
        self.api = f"http://127.0.0.1:{self.port}"
        self.log = directory / "prometheus.log"
        with open(self.log, "wb") as out:
            self.proc = subprocess.Popen(
                [str(binary), f"--config.file={directory / 'prometheus.yml'}",
                 f"--storage.tsdb.path={directory / 'data'}", f"--web.listen-address=127.0.0.1:{self.port}"],
                stdout=out, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + WAIT_S
        while True:
            assert self.proc.poll() is None, f"prometheus exited:\n{self.log.read_text()}"
            try:
                if httpx.get(f"{self.api}/-/ready", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert time.monotonic() < deadline, f"prometheus not ready:\n{self.log.read_text()}"
            time.sleep(0.2)

    def query(self, expr: str) -> list[dict[str, Any]]:
        r = httpx.get(f"{self.api}/api/v1/query", params={"query": expr}, timeout=10)
        r.raise_for_status()
        body = r.json()
        assert body["status"] == "success", body
        return body["data"]["result"]  # type: ignore[no-any-return]

    def wait_value(self, expr: str, want: float) -> None:
        deadline = time.monotonic() + WAIT_S
        last: object = None
        while time.monotonic() < deadline:
            result = self.query(expr)
            last = result
            if result and float(result[0]["value"][1]) == want:
                return
            time.sleep(0.25)
        raise AssertionError(f"{expr} did not become {want} within {WAIT_S} s: {last}\n{self.log.read_text()[-3000:]}")

    def targets(self) -> dict[str, dict[str, Any]]:
        body = httpx.get(f"{self.api}/api/v1/targets", timeout=10).json()
        return {t["labels"]["job"]: t for t in body["data"]["activeTargets"]}

    def close(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


@pytest.fixture
def prometheus_binary() -> Path:
    binary = prometheus_tool("prometheus")
    if binary is None:
        pytest.skip(missing_tool_reason("prometheus"))
    return binary


@pytest.fixture
def scraped(prometheus_binary: Path, sysrepo_instance: SysrepoInstance,
            tmp_path: Path) -> Iterator[tuple[InProcessExporter, Prometheus]]:
    add_user(*ADMIN)
    (tmp_path / "exporter").mkdir()
    (tmp_path / "prometheus").mkdir()
    exporter = InProcessExporter(plugin_segment(endpoints=3, sessions=5), tmp_path / "exporter")
    prom: Prometheus | None = None
    try:
        prom = Prometheus(prometheus_binary, tmp_path / "prometheus", exporter)
        yield exporter, prom
    finally:
        if prom is not None:
            prom.close()
        exporter.close()


def test_prometheus_scrapes_over_https_and_sees_a_counter_change(
        scraped: tuple[InProcessExporter, Prometheus]) -> None:
    exporter, prom = scraped
    source = exporter.app.source
    assert isinstance(source, MemorySource)
    source.set("/singbox/server/accepted", SimpleCounter(((10,), (5,))))
    prom.wait_value('singbox_server_connections_accepted_total{job="singbox"}', 15)
    source.set("/singbox/server/accepted", SimpleCounter(((1000,), (234,))))  # traffic
    prom.wait_value('singbox_server_connections_accepted_total{job="singbox"}', 1234)
    # labels as a dashboard wants them
    prom.wait_value('singbox_client_endpoint_state{job="singbox",endpoint="ep1",state="down"}', 1)
    prom.wait_value('singbox_client_interface_active_connections{job="singbox",interface="host-veth1"}', 2)
    prom.wait_value('singbox_agent_build_info{job="singbox",version="9.9.9"}', 1)
    targets = prom.targets()
    assert targets["singbox"]["health"] == "up" and targets["singbox"]["lastError"] == ""
    # the same scrape with a wrong password is refused
    assert targets["intruder"]["health"] != "up"
    assert "401" in targets["intruder"]["lastError"], targets["intruder"]
    prom.wait_value('up{job="intruder"}', 0)


def test_the_dashboard_queries_are_valid_promql(prometheus_binary: Path, tmp_path: Path) -> None:
    """Every expression of the Grafana dashboard, as a recording rule: `promtool check rules` parses them."""
    import json

    promtool = prometheus_tool("promtool")
    if promtool is None:
        pytest.skip(missing_tool_reason("promtool"))
    dashboard = json.loads((Path(__file__).resolve().parents[2]
                            / "agent/singbox_agent/metrics/grafana-dashboard.json").read_text())
    exprs = [t["expr"] for p in dashboard["panels"] for t in p.get("targets", [])]
    assert exprs
    rules = "groups:\n  - name: dashboard\n    rules:\n" + "".join(
        f"      - record: dashboard_{i}\n        expr: {json.dumps(e.replace('$__rate_interval', '1m').replace('$instance', '.*'))}\n"
        for i, e in enumerate(exprs))
    (tmp_path / "rules.yml").write_text(rules)
    done = subprocess.run([str(promtool), "check", "rules", str(tmp_path / "rules.yml")], capture_output=True,
                          text=True, timeout=60)
    assert done.returncode == 0, done.stdout + done.stderr
