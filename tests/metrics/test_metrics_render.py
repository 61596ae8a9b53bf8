"""The snapshot (stats paths -> the product's metrics) and the renderer, without VPP: the exposition is what
Prometheus' own linter and a line-by-line reading of both formats accept."""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path

import pytest

from metricsdata import missing_tool_reason, plugin_segment, prometheus_tool
from singbox_agent.metrics import render, snapshot
from singbox_agent.metrics.segment import CombinedCounter, NameVector, SimpleCounter

TOP = Path(__file__).resolve().parents[2]
SAMPLE = re.compile(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(.*)\})? (\S+)$')


def build(**kw: object) -> snapshot.Snapshot:
    return snapshot.build(plugin_segment(**kw).read(), agent_version="1.2.3",  # type: ignore[arg-type]
                          versions=snapshot.Versions("26.06-release", "1.0.0"))


def samples(text: str) -> dict[str, float]:
    """'name{labels}' -> value of every sample line."""
    out: dict[str, float] = {}
    for line in text.splitlines():
        if line.startswith("#") or not line:
            continue
        m = SAMPLE.match(line)
        assert m, f"not a sample line: {line!r}"
        out[f"{m[1]}{m[2] or ''}"] = float(m[4])
    return out


def test_server_counters_are_summed_over_threads() -> None:
    s = build(threads=3, sessions=42).server
    assert s is not None
    # accepted is counter 1: thread t holds 1 + t
    assert (s.accepted, s.rejected, s.udp_dropped) == (1 + 2 + 3, 2 + 3 + 4, 9 + 10 + 11)
    assert s.udp_from_client == (9, 900) and s.udp_to_client == (12, 1200)
    assert s.active_sessions == 42


def test_interfaces_are_named_from_the_segment_name_vector() -> None:
    snap = build(interfaces=3)
    assert [(i.name, i.active_connections, i.connections) for i in snap.client_interfaces] == [
        ("host-veth0", 1, 2 * 101), ("host-veth1", 2, 2 * 102), ("host-veth2", 3, 2 * 103)]
    assert [i.name for i in snap.interfaces] == ["local0", "host-veth0", "host-veth1", "host-veth2"]
    veth1 = snap.interfaces[2]
    assert (veth1.rx_packets, veth1.rx_bytes, veth1.tx_bytes) == (20 + 21, 2000 + 2001, 2 * 4000)


def test_a_deleted_interface_does_not_shift_the_names_of_later_ones() -> None:
    # vpp-papi's own name reader drops empty slots, which would give host-veth1's counters to host-veth2's name
    snap = build(interfaces=3, deleted=(2,))
    assert [i.name for i in snap.interfaces] == ["local0", "host-veth0", "host-veth2"]
    assert snap.interfaces[2].rx_packets == 30 + 31  # index 3's counters
    assert [i.name for i in snap.client_interfaces] == ["host-veth0", "host-veth2", "sw_if_index=2"]


def test_endpoints_by_name_with_state_rtt_and_failures() -> None:
    eps = {e.name: e for e in build(endpoints=3).endpoints}
    assert {n: e.state for n, e in eps.items()} == {"ep0": "up", "ep1": "down", "ep2": "unknown"}
    assert eps["ep1"].rtt_seconds == pytest.approx(0.001501) and eps["ep2"].failures == 2
    assert eps["ep0"].connections is None  # the plugin does not export it (yet)
    src = plugin_segment(endpoints=1)
    src.set("/singbox/client/endpoint/ep0/connections", 77)
    snap = snapshot.build(src.read(), agent_version="x")
    assert snap.endpoints[0].connections == 77


def test_endpoint_group_members_by_group_and_endpoint() -> None:
    """The plugin's per-member gauges of an endpoint group (issue 19) become labelled series."""
    src = plugin_segment(endpoints=2)
    for ep, (conns, active, failures) in {"ep0": (1000, 3, 1), "ep1": (2000, 6, 0)}.items():
        src.set(f"/singbox/client/group/pool/{ep}/connections", conns)
        src.set(f"/singbox/client/group/pool/{ep}/active", active)
        src.set(f"/singbox/client/group/pool/{ep}/failures", failures)
    snap = snapshot.build(src.read(), agent_version="x")
    assert [(m.group, m.endpoint, m.connections, m.active_connections, m.failures) for m in snap.group_members] == [
        ("pool", "ep0", 1000, 3, 1), ("pool", "ep1", 2000, 6, 0)]
    got = samples(render.render(snap))
    assert got['singbox_client_group_member_connections_total{group="pool",endpoint="ep1"}'] == 2000
    assert got['singbox_client_group_member_active_connections{group="pool",endpoint="ep0"}'] == 3
    assert got['singbox_client_group_member_failures_total{group="pool",endpoint="ep0"}'] == 1


def test_client_udp_counters_by_interface_and_direction() -> None:
    """The plugin's client-mode UDP counters (issue 19: /singbox/client/interface/udp-*, per sw_if_index, summed
    over threads) and the udp-active gauge become series per interface."""
    src = plugin_segment(interfaces=2, threads=2)
    src.set("/singbox/client/interface/udp-flows", SimpleCounter(((0, 4, 0), (0, 3, 1))))
    src.set("/singbox/client/interface/udp-failures", SimpleCounter(((0, 1, 0), (0, 0, 0))))
    src.set("/singbox/client/interface/udp-dropped", SimpleCounter(((0, 2, 0), (0, 5, 0))))
    src.set("/singbox/client/interface/udp-to-proxy", CombinedCounter((((0, 0), (10, 1000), (0, 0)),
                                                                      ((0, 0), (5, 500), (0, 0)))))
    src.set("/singbox/client/interface/udp-from-proxy", CombinedCounter((((0, 0), (9, 1800), (0, 0)),
                                                                        ((0, 0), (6, 1200), (0, 0)))))
    src.set("/singbox/client/interface/1/udp-active", 3)
    snap = snapshot.build(src.read(), agent_version="x")
    veth0 = snap.client_interfaces[0]
    assert (veth0.name, veth0.udp_flows, veth0.udp_flow_failures, veth0.udp_dropped, veth0.udp_active_flows) == (
        "host-veth0", 7, 1, 7, 3)
    assert (veth0.udp_to_proxy, veth0.udp_from_proxy) == ((15, 1500), (15, 3000))
    got = samples(render.render(snap))
    assert got['singbox_client_interface_udp_flows_total{interface="host-veth0"}'] == 7
    assert got['singbox_client_interface_udp_flows_total{interface="host-veth1"}'] == 1
    assert got['singbox_client_interface_udp_datagrams_total{interface="host-veth0",direction="to_proxy"}'] == 15
    assert got['singbox_client_interface_udp_relayed_bytes_total{interface="host-veth0",direction="from_proxy"}'] \
        == 3000
    assert got['singbox_client_interface_udp_active_flows{interface="host-veth0"}'] == 3
    assert got['singbox_client_interface_udp_active_flows{interface="host-veth1"}'] == 0


def test_no_dataplane_is_up_0_with_the_build_info() -> None:
    text = render.render(snapshot.build(None, agent_version="1.2.3"))
    got = samples(text)
    assert got == {"singbox_agent_build_info{version=\"1.2.3\"}": 1, "singbox_dataplane_up": 0}
    # VPP without the plugin: VPP's interfaces, but the singbox dataplane is not up
    src = plugin_segment()
    for path in list(src.entries):
        if path.startswith("/singbox/"):
            src.remove(path)
    snap = snapshot.build(src.read(), agent_version="x")
    assert not snap.dataplane_up and snap.server is None and snap.interfaces


def test_text_format_has_help_and_type_for_every_family_and_counters_end_in_total() -> None:
    text = render.render(build())
    families = render.families(build())
    for f in families:
        name = f.sample_name
        assert f"# HELP {name} " in text and f"# TYPE {name} " in text, name
        assert name.startswith("singbox_")
        if f.kind == "counter":
            assert name.endswith("_total") and f"# TYPE {name} counter" in text
    got = samples(text)
    assert got['singbox_client_endpoint_state{endpoint="ep1",state="down"}'] == 1
    assert got['singbox_client_endpoint_state{endpoint="ep1",state="up"}'] == 0
    assert got['singbox_server_relayed_bytes_total{direction="to_client"}'] == 7 + 8
    assert got['singbox_client_interface_active_connections{interface="host-veth1"}'] == 2
    assert got['singbox_dataplane_build_info{vpp_version="26.06-release",plugin_version="1.0.0"}'] == 1
    assert got["singbox_dataplane_start_time_seconds"] == 1_765_000_000
    assert got["singbox_dataplane_up"] == 1
    assert all(v >= 0 for v in got.values())


def test_label_values_are_escaped() -> None:
    src = plugin_segment(interfaces=1)
    src.set("/if/names", NameVector(("local0", 'we"ird\\name\nx')))
    text = render.render(snapshot.build(src.read(), agent_version='1"\\'))
    assert 'interface="we\\"ird\\\\name\\nx"' in text
    assert 'singbox_agent_build_info{version="1\\"\\\\"} 1' in text
    assert all(SAMPLE.match(line) for line in text.splitlines() if line and not line.startswith("#"))


def test_openmetrics_names_families_without_suffixes_and_ends_with_eof() -> None:
    text = render.render(build(), openmetrics=True)
    assert text.endswith("# EOF\n") and text.count("# EOF") == 1
    assert "# TYPE singbox_server_connections_accepted counter\n" in text
    assert "singbox_server_connections_accepted_total 3\n" in text
    assert "# TYPE singbox_agent_build info\n" in text and 'singbox_agent_build_info{version="1.2.3"} 1\n' in text
    assert "# UNIT singbox_client_endpoint_rtt_seconds seconds\n" in text
    for line in text.splitlines():
        if line.startswith("# UNIT "):
            _, _, name, unit = line.split(" ")
            assert name.endswith("_" + unit)
    # same series in both formats
    assert samples(text.replace("# EOF\n", "")) == samples(render.render(build()))


def test_promtool_check_metrics_is_clean() -> None:
    """The text format; OpenMetrics is parsed by Prometheus itself in test_metrics_prometheus.py (promtool check
    metrics reads only the text format)."""
    promtool = prometheus_tool("promtool")
    if promtool is None:
        pytest.skip(missing_tool_reason("promtool"))
    text = render.render(build(endpoints=4, sessions=10_000))
    done = subprocess.run([str(promtool), "check", "metrics"], input=text, capture_output=True, text=True,
                          timeout=60)
    assert done.returncode == 0 and not done.stdout.strip() and not done.stderr.strip(), done.stdout + done.stderr


def test_the_dashboard_uses_only_metrics_the_exporter_has() -> None:
    dashboard = json.loads((TOP / "agent/singbox_agent/metrics/grafana-dashboard.json").read_text())
    names = {f.sample_name for f in render.families(build())}
    used = set(re.findall(r"\b(singbox_[a-z0-9_]+)", json.dumps(dashboard)))
    assert used and used <= names, used - names
    assert dashboard["__inputs"][0]["pluginId"] == "prometheus"


def test_a_simple_counter_shorter_on_some_thread_reads_as_zero_there() -> None:
    c = SimpleCounter(((1, 2, 3), (4,)))
    assert (c.at(0), c.at(2), c.at(9)) == (5, 3, 0)
