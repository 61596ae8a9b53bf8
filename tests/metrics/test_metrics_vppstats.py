"""`VppStatsSource` against a stats segment laid out and served as VPP does (fakestats.py), without VPP: the
real reader, vpp-papi's real parser."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from fakestats import FakeSegment, FakeStatsSocket
from singbox_agent.metrics import snapshot
from singbox_agent.metrics.segment import NameVector
from singbox_agent.metrics.vppstats import VppStatsSource


def plugin_like(seg: FakeSegment) -> None:
    seg.names("/if/names", ["local0", "host-a", "", "host-c"])  # sw_if_index 2 deleted
    seg.combined("/if/rx", [[(1, 10), (2, 20), (3, 30), (4, 40)], [(1, 10), (2, 20), (3, 30), (4, 40)]])
    seg.gauge("/sys/boottime", 1_765_000_000)
    seg.simple("/singbox/server/accepted", [[5], [6]])
    seg.simple("/singbox/server/bytes-to-client", [[1000], [24]])
    seg.gauge("/singbox/server/active-sessions", 3)
    seg.simple("/singbox/client/interface/connections", [[0, 0, 0, 7], [0, 0, 0, 1]])
    seg.gauge("/singbox/client/interface/3/active", 2)
    seg.gauge("/singbox/client/endpoint/ep-a/state", 2)
    seg.gauge("/singbox/client/endpoint/ep-a/rtt-us", 2500)
    seg.simple("/err/ip4-input/no error", [[9]])  # not ours: not read
    seg.publish()


@pytest.fixture
def served(tmp_path: Path) -> Iterator[tuple[FakeSegment, FakeStatsSocket, VppStatsSource]]:
    seg = FakeSegment()
    plugin_like(seg)
    sock = FakeStatsSocket(tmp_path / "stats.sock", seg)
    source = VppStatsSource(str(sock.path))
    try:
        yield seg, sock, source
    finally:
        source.close()
        sock.close()
        seg.close()


def test_reads_what_the_exporter_needs_by_name(served: tuple[FakeSegment, FakeStatsSocket, VppStatsSource]) -> None:
    _, _, source = served
    segment = source.read()
    assert segment is not None
    assert "/err/ip4-input/no error" not in segment.entries
    snap = snapshot.build(segment, agent_version="t")
    assert snap.dataplane_up and snap.server is not None
    assert (snap.server.accepted, snap.server.bytes_to_client, snap.server.active_sessions) == (11, 1024, 3)
    assert snap.dataplane_start_time == 1_765_000_000
    # the deleted interface's slot keeps host-c at index 3: its counters carry its name
    assert [(i.name, i.rx_packets) for i in snap.interfaces] == [("local0", 2), ("host-a", 4), ("host-c", 8)]
    assert [(c.name, c.connections, c.active_connections) for c in snap.client_interfaces] == [("host-c", 8, 2)]
    assert [(e.name, e.state, e.rtt_seconds) for e in snap.endpoints] == [("ep-a", "down", 0.0025)]


def test_vpp_papis_own_name_reader_would_shift_the_names(
        served: tuple[FakeSegment, FakeStatsSocket, VppStatsSource]) -> None:
    """Why vppstats.py reads name vectors itself: vpp-papi's reader drops the empty slot."""
    from vpp_papi.vpp_stats import VPPStats

    _, sock, source = served
    papi = VPPStats(socketname=str(sock.path))
    papi.connect()
    try:
        assert papi["/if/names"] == ["local0", "host-a", "host-c"]  # host-c moved to index 2
    finally:
        papi.disconnect()
    segment = source.read()
    assert segment is not None and segment.entries["/if/names"] == NameVector(("local0", "host-a", "", "host-c"))


def test_gauges_change_in_place_and_entries_come_with_the_epoch(
        served: tuple[FakeSegment, FakeStatsSocket, VppStatsSource]) -> None:
    seg, _, source = served
    assert source.read() is not None
    seg.set_gauge("/singbox/server/active-sessions", 9999)
    seg.gauge("/singbox/client/endpoint/ep-b/state", 1)
    seg.publish()
    snap = snapshot.build(source.read(), agent_version="t")
    assert snap.server is not None and snap.server.active_sessions == 9999
    assert [e.name for e in snap.endpoints] == ["ep-a", "ep-b"]


def test_an_update_stuck_in_progress_does_not_hang_the_scrape(
        served: tuple[FakeSegment, FakeStatsSocket, VppStatsSource]) -> None:
    """A VPP killed in the middle of a directory update leaves in_progress set for good: vpp-papi's lock would spin
    forever; the reader gives up after bounded retries and reports no dataplane numbers for that scrape."""
    seg, _, source = served
    assert source.read() is not None
    seg.gauge("/singbox/client/endpoint/ep-c/state", 1)
    seg.publish()
    seg.set_in_progress(True)
    started = time.monotonic()
    segment = source.read()
    assert time.monotonic() - started < 30
    assert segment is not None and not snapshot.build(segment, agent_version="t").dataplane_up
    seg.set_in_progress(False)
    snap = snapshot.build(source.read(), agent_version="t")
    assert snap.dataplane_up and [e.name for e in snap.endpoints] == ["ep-a", "ep-c"]


def test_a_restarted_vpp_is_read_from_its_new_segment_and_a_gone_one_reads_none(
        served: tuple[FakeSegment, FakeStatsSocket, VppStatsSource], tmp_path: Path) -> None:
    seg, sock, source = served
    assert snapshot.build(source.read(), agent_version="t").server.accepted == 11  # type: ignore[union-attr]
    sock.close()  # VPP stops: its socket goes
    assert source.read() is None
    fresh = FakeSegment()  # VPP starts again: a new segment, counters from zero
    fresh.simple("/singbox/server/accepted", [[1]])
    fresh.publish()
    again = FakeStatsSocket(sock.path, fresh)
    try:
        assert snapshot.build(source.read(), agent_version="t").server.accepted == 1  # type: ignore[union-attr]
    finally:
        again.close()
        fresh.close()
