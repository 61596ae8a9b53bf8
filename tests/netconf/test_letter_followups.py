"""What the NETCONF letter audit (session 10) left open, each test failing on the code before its fix: RFC 6022's
dropped-sessions and kill-session, RFC 8341's denial counters, and the access-denied of a data write."""

from __future__ import annotations

import re

from tests.netconf.conftest import ServerInfo

MON = "urn:ietf:params:xml:ns:yang:ietf-netconf-monitoring"


def _dropped_sessions(m: object) -> int:
    data = m.get(filter=("subtree", f'<netconf-state xmlns="{MON}"><statistics><dropped-sessions/></statistics>'  # type: ignore[attr-defined]
                                    "</netconf-state>")).data_xml
    found = re.search(r"<dropped-sessions>(\d+)</dropped-sessions>", data)
    assert found is not None, data
    return int(found.group(1))


def test_a_killed_session_is_not_a_dropped_one(netconf_server: ServerInfo) -> None:
    """RFC 6022 dropped-sessions: "This counter is not incremented when a session is properly closed by a
    <close-session> operation, or killed by a <kill-session> operation." A kill counted one."""
    with netconf_server.connect() as admin:
        before = _dropped_sessions(admin)
        victim = netconf_server.connect()
        admin.kill_session(victim.session_id)
        assert _dropped_sessions(admin) == before
        netconf_server.connect().close_session()
        assert _dropped_sessions(admin) == before
