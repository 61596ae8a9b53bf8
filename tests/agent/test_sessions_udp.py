"""Client mode's UDP flows in the operational sessions list, beside the TCP sessions, with ids that never collide
with theirs; disconnect-session refuses a flow's id and closes nothing."""

from __future__ import annotations

import pytest
import sysrepo

from singbox_agent.dataplane.base import Session, is_udp_session_id, udp_session_id
from tests.agent.conftest import TOP, Env
from tests.agent.test_oper_rpc_notif import FULL, operational, rpc

FLOW_ID = (3 << 32) | 5  # generation 3, index 5: the same number as the TCP session below
UDP_ID = udp_session_id(FLOW_ID)


def flow(**changes: int) -> Session:
    values = {"bytes_from_client": 1200, "bytes_to_client": 3400, "packets_from_client": 3, "packets_to_client": 4,
              "age": 7} | changes
    return Session(UDP_ID, "client", "established", "2001:db8::7", 5353, destination_address="198.18.9.9",
                   destination_port=53, interface="tap0", endpoint="e", protocol="udp", **values)


def tcp() -> Session:
    return Session(FLOW_ID, "client", "established", "192.0.2.7", 40000, destination_address="198.18.2.2",
                   destination_port=443, interface="tap0", endpoint="e", bytes_from_client=10, bytes_to_client=20)


def test_udp_flow_ids_never_collide_with_tcp_session_ids() -> None:
    assert UDP_ID != FLOW_ID and is_udp_session_id(UDP_ID) and not is_udp_session_id(FLOW_ID)
    # the flow's generation and index stay in the id (the largest generation too)
    top = (0xFFFFFFFF << 32) | 0x7FFFFFFF
    assert udp_session_id(top) & ~(1 << 31) == top and udp_session_id(top) < 1 << 64


def test_udp_flow_is_in_the_sessions_list(env: Env) -> None:
    env.commit(FULL)
    env.dp.sessions = {FLOW_ID: tcp(), UDP_ID: flow()}
    got = {s["id"]: s for s in operational()["sessions"]["session"]}  # validated against the model
    assert set(got) == {FLOW_ID, UDP_ID}
    u = got[UDP_ID]
    assert u["protocol"] == "udp" and u["mode"] == "client" and u["state"] == "established"
    assert (u["client-address"], u["client-port"]) == ("2001:db8::7", 5353)
    assert (u["destination-address"], u["destination-port"]) == ("198.18.9.9", 53)
    assert (u["interface"], u["endpoint"]) == ("tap0", "e")
    assert (u["bytes-from-client"], u["bytes-to-client"]) == (1200, 3400)
    assert (u["packets-from-client"], u["packets-to-client"]) == (3, 4)
    t = got[FLOW_ID]
    assert t.get("protocol", "tcp") == "tcp" and "packets-from-client" not in t
    assert t["client-address"] == "192.0.2.7" and t["bytes-to-client"] == 20

    # the kept tree (sessions_tree.py) follows the flow's counters from read to read, and its end
    env.dp.sessions = {FLOW_ID: tcp(), UDP_ID: flow(packets_from_client=9, bytes_from_client=5000, age=8)}
    u = {s["id"]: s for s in operational()["sessions"]["session"]}[UDP_ID]
    assert (u["packets-from-client"], u["bytes-from-client"], u["age"]) == (9, 5000, 8)
    env.dp.sessions = {FLOW_ID: tcp()}
    assert [s["id"] for s in operational()["sessions"]["session"]] == [FLOW_ID]


def test_a_read_of_one_udp_flow(env: Env) -> None:
    env.commit(FULL)
    env.dp.sessions = {FLOW_ID: tcp(), UDP_ID: flow()}
    conn = sysrepo.SysrepoConnection()
    try:
        with conn.start_session("operational") as sess, \
                sess.get_data_ly(f"{TOP}/sessions/session[id='{UDP_ID}']/packets-to-client") as data:
            got = data.print_dict()["singbox"]["sessions"]["session"]
    finally:
        conn.disconnect()
    assert [(s["id"], s["packets-to-client"]) for s in got] == [(UDP_ID, 4)]


def test_disconnect_session_refuses_a_udp_flow(env: Env) -> None:
    env.commit(FULL)
    env.dp.sessions = {FLOW_ID: tcp(), UDP_ID: flow()}
    with pytest.raises(sysrepo.SysrepoError, match=f"session {UDP_ID} is a UDP flow"):
        rpc("/vpp-singbox:disconnect-session", {"id": UDP_ID})
    assert set(env.dp.sessions) == {FLOW_ID, UDP_ID}  # nothing closed
    rpc("/vpp-singbox:disconnect-session", {"id": FLOW_ID})  # the TCP session with the flow's number
    assert set(env.dp.sessions) == {UDP_ID}
