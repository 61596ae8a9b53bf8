# SPDX-License-Identifier: Apache-2.0
# Copyright (c) 2026 vpp-singbox authors
"""UDP ASSOCIATE through VPP's SOCKS5 server."""

from __future__ import annotations

from .conftest import UDP_PORT, Env, worker_counts
from .test_singbox_peer import start_sing_box
from vpptopo import ORIGIN_IP4, ORIGIN_IP6, VPP_CLIENT_IP4, VPP_CLIENT_IP6

# the issue asks for 0 and 2 workers (2 share a core here: see tests/vpp/README.md)
pytestmark = worker_counts(0, 2)


def test_udp_associate_relay_and_rules(env: Env) -> None:
    env.configure(allow_udp_associate=True)
    env.start()
    res = env.probe(VPP_CLIENT_IP4, "1080", "udp", ORIGIN_IP4, str(UDP_PORT),
                    "ok:one", "frag:two", "other:three", "ok:four", "close", "ok:five")
    assert res["rep"] == 0
    host, port = res["bnd"].rsplit(":", 1)
    assert host == VPP_CLIENT_IP4 and int(port) > 0
    got = [(kind, text) for kind, text, _ in res["results"]]
    assert got == [
        ("ok", "one"),  # echoed, with a header naming the origin
        ("frag", None),  # FRAG != 0 dropped
        ("other", None),  # not the associating client's socket: dropped
        ("ok", "four"),
        ("ok", None),  # association ended with its TCP connection
    ]
    hdr = bytes.fromhex(res["results"][0][2])
    assert hdr[:4] == b"\x00\x00\x00\x01" and hdr[4:8] == bytes(map(int, ORIGIN_IP4.split(".")))
    assert int.from_bytes(hdr[8:10], "big") == UDP_PORT
    st = env.stats()
    assert st["udp_dropped"] >= 2


def test_udp_associate_ipv6(env: Env) -> None:
    env.configure(allow_udp_associate=True)
    env.start(addr=VPP_CLIENT_IP6, name="v6")
    res = env.probe(VPP_CLIENT_IP6, "1080", "udp", ORIGIN_IP6, str(UDP_PORT), "ok:six")
    assert res["rep"] == 0 and res["results"][0][:2] == ["ok", "six"], res


def test_udp_associate_refused_when_disabled(env: Env) -> None:
    env.start()
    res = env.probe(VPP_CLIENT_IP4, "1080", "udp", ORIGIN_IP4, str(UDP_PORT), "ok:x")
    assert res.get("rep") == 0x07, res


def test_udp_idle_timeout(env: Env) -> None:
    env.configure(allow_udp_associate=True, udp_idle_timeout=2)
    env.start()
    res = env.probe(VPP_CLIENT_IP4, "1080", "udp", ORIGIN_IP4, str(UDP_PORT),
                    "ok:a", "sleep:4", "ok:b")
    assert [r[:2] for r in res["results"]] == [["ok", "a"], ["ok", None]], res
    env.wait_no_sessions()


def test_sing_box_udp_through_vpp(env: Env) -> None:
    env.configure(allow_udp_associate=True)
    env.start()
    start_sing_box(env, port=2081)
    # SOCKS5 UDP to sing-box's inbound; sing-box relays it with its own UDP
    # ASSOCIATE to VPP
    res = env.probe("127.0.0.1", "2081", "udp", ORIGIN_IP4, str(UDP_PORT), "ok:sb1", "ok:sb2")
    assert res["rep"] == 0, res
    assert [r[:2] for r in res["results"]] == [["ok", "sb1"], ["ok", "sb2"]], res
    assert env.stats()["accepted"] >= 1


def test_udp_associate_to_names(env: Env) -> None:
    """Datagrams to a name (ATYP 3) are resolved by VPP, once per
    association; the first one waits for the answer instead of being lost.
    A name that does not exist (NXDOMAIN) drops its datagrams."""
    env.configure(allow_udp_associate=True, dns_enabled=True, dns_server=ORIGIN_IP4)
    env.start()
    res = env.probe(VPP_CLIENT_IP4, "1080", "udp", "origin.test", str(UDP_PORT),
                    "ok:n1", "ok:n2", "ok:n3")
    assert res["rep"] == 0, res
    assert [r[:2] for r in res["results"]] == [["ok", "n1"], ["ok", "n2"], ["ok", "n3"]], res
    # replies name the address the datagram came from
    hdr = bytes.fromhex(res["results"][0][2])
    assert hdr[3] == 1 and hdr[4:8] == bytes(map(int, ORIGIN_IP4.split(".")))
    assert env.stats()["udp_dropped"] == 0
    res = env.probe(VPP_CLIENT_IP4, "1080", "udp", "nosuch.test", str(UDP_PORT), "ok:x", "ok:y")
    assert [r[:2] for r in res["results"]] == [["ok", None], ["ok", None]], res
    assert env.stats()["udp_dropped"] == 2


def test_udp_associate_names_need_dns(env: Env) -> None:
    env.configure(allow_udp_associate=True)
    env.start()
    res = env.probe(VPP_CLIENT_IP4, "1080", "udp", "origin.test", str(UDP_PORT), "ok:z")
    assert [r[:2] for r in res["results"]] == [["ok", None]], res
    assert env.stats()["udp_dropped"] == 1
