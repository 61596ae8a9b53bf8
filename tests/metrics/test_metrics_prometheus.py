"""A real Prometheus (Debian's `prometheus`) scrapes the exporter over HTTPS with Basic auth and the CA, and its
HTTP API answers a query for a counter after the counter changed."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from metricsdata import ADMIN, InProcessExporter, add_user, missing_tool_reason, plugin_segment, prometheus_tool
from promserver import Prometheus
from singbox_agent.metrics.segment import MemorySource, SimpleCounter
from singbox_agent.repository import SysrepoInstance

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
