"""`connguard.Limits`, the shared admission of the exporter's, the NETCONF and the RESTCONF servers' connections:
one host's connections are capped only while they have not authenticated and the server is half full (OpenSSH's
MaxStartups counts the same way) — an orchestrator's many NETCONF sessions, a monitor's event streams or a burst of
logins from one host are not refused, while idle connections still cannot lock anyone out."""

from __future__ import annotations

from singbox_agent.mgmt.connguard import Limits


def test_a_burst_from_one_host_is_admitted_while_there_is_room() -> None:
    limits = Limits(total=64, per_source=16)
    tokens = [limits.admit(("192.0.2.1", 1000 + i))[0] for i in range(32)]
    assert None not in tokens  # 32 not yet authenticated, below half of 64: all in
    assert limits.admit(("192.0.2.1", 2000)) == (None, [])  # half full: its unauthenticated ones are over 16
    assert limits.admit(("192.0.2.2", 1))[0] is not None  # another host still comes in


def test_authenticated_sessions_do_not_count_against_their_host() -> None:
    limits = Limits(total=64, per_source=16)
    for i in range(40):
        limits.admit(("198.51.100.7", i))
        limits.trust(("198.51.100.7", i))  # an orchestrator's 40 logged-in sessions
    admitted = [limits.admit(("198.51.100.7", 100 + i))[0] for i in range(20)]
    assert admitted.count(None) == 4  # 16 logins under way from that host at once, not 0
    assert len(limits) == 56


def test_full_the_oldest_unauthenticated_connection_makes_room() -> None:
    limits = Limits(total=8, per_source=2)
    first = [limits.admit((f"203.0.113.{i}", 1))[0] for i in range(8)]
    limits.trust(("203.0.113.0", 1))
    token, evicted = limits.admit(("203.0.113.99", 1))
    assert token is not None and evicted == [first[1]]  # not the authenticated first one
