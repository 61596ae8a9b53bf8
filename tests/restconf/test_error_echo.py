"""Errors quote a bounded part of what the client sent (mgmt/errors.py: `clip`, and every error's message and
error-info bounded), however long the value: an invalid 100 KB value libyang refuses, a long `fields`."""

from __future__ import annotations

from helpers import JSON, SB, error_of
from rcserver import RestconfServer


def test_errors_do_not_echo_a_huge_input(restconf: RestconfServer) -> None:
    huge = "x" * 100_000
    with restconf.client() as c:
        bad = c.put(f"{SB}/log-level", json={"vpp-singbox:log-level": huge}, headers={"Content-Type": JSON})
        assert bad.status_code == 400, bad.text[:300]
        assert len(bad.content) < 4000 and "100000 characters" in error_of(bad)["error-message"], len(bad.content)
        bad = c.get(SB, params={"fields": "(" + "a;" * 3000 + ")"})
        assert bad.status_code == 400 and len(bad.content) < 4000, (bad.status_code, len(bad.content))
        assert c.get(SB).status_code in (200, 204)
