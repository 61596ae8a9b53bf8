# SPDX-License-Identifier: Apache-2.0
# Copyright (c) 2026 vpp-singbox authors
"""The plugin's CLI takes what its help names, checked through the binary API's dumps."""

from __future__ import annotations

from .conftest import Env, worker_counts

pytestmark = worker_counts(0)  # CLI parsing: the worker count changes nothing


def test_server_set_udp_options_ipv4_and_ipv6(env: Env) -> None:
    """`singbox server set` parses the udp-* options its short help names; udp-public-address takes IPv6 as well
    as IPv4 (it took IPv4 only: an IPv6 client's UDP ASSOCIATE reply could not announce a public address)."""
    env.cli("singbox server set udp-associate enable udp-idle-timeout 45 udp-public-address 2001:db8::7")
    srv = env.api.singbox_server_dump()[0]
    assert srv.allow_udp_associate and srv.udp_idle_timeout == 45
    assert str(srv.udp_public_address) == "2001:db8::7"
    env.cli("singbox server set udp-public-address 198.18.0.9 udp-associate disable")
    srv = env.api.singbox_server_dump()[0]
    assert not srv.allow_udp_associate and str(srv.udp_public_address) == "198.18.0.9"
    help_text = env.cli("help singbox server set", check=False)
    for option in ("udp-associate", "udp-idle-timeout", "udp-public-address", "name-server"):
        assert option in help_text, help_text


def test_set_endpoint_priority(env: Env) -> None:
    env.cli("singbox set endpoint 198.18.0.20:1080 socks5 name cli-ep priority 9")
    try:
        ep = next(e for e in env.api.singbox_endpoint_dump() if e.name == "cli-ep")
        assert ep.priority == 9
    finally:
        env.api.singbox_set_default_endpoint(name="")
        env.api.singbox_endpoint_add_del(is_add=False, name="cli-ep")
