"""What the RESTCONF letter audit (session 10) left open, each test failing on the code before its fix: RFC 9112
§3.2's Host rules."""

from __future__ import annotations

import rawhttp
from rcserver import RestconfServer

DATA = "/restconf/data/ietf-system:system"


def _raw(lines: list[str]) -> bytes:
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")


def test_host_rules_of_rfc_9112(restconf: RestconfServer) -> None:
    """RFC 9112 §3.2: "A server MUST respond with a 400 (Bad Request) status code to any HTTP/1.1 request message
    that lacks a Host header field and to any request message that contains more than one Host header field line
    or a Host header field with an invalid field value." HTTP/1.0 needs none; an empty one is valid (an authority
    the target lacks), and so is any uri-host [":" port] (RFC 9110 §7.2, RFC 3986 §3.2.2)."""
    auth = f"Authorization: {rawhttp.ADMIN_AUTH}"
    cases: list[tuple[list[str], int]] = [
        ([f"GET {DATA} HTTP/1.1", auth], 400),  # no Host
        ([f"GET {DATA} HTTP/1.1", "Host: localhost", "Host: localhost", auth], 400),  # two lines
        ([f"GET {DATA} HTTP/1.1", "Host: localhost", auth, "Host: other"], 400),
        ([f"GET https://localhost{DATA} HTTP/1.1", auth], 400),  # absolute-form: Host still required
        ([f"GET {DATA} HTTP/1.0", auth], 200),  # HTTP/1.0: Host is not required
        ([f"GET {DATA} HTTP/1.1", "Host: ", auth], 200),
        ([f"GET https://localhost{DATA} HTTP/1.1", "Host: ignored.example", auth], 200),
    ]
    for bad in ("a b", "evil.example/x", "x@y", "h:port", "[::1", "[2001:db8::1", "::1", "h:1:2", "a\\b",
                "host:65536x", "%zz", "[v1.x"):
        cases.append(([f"GET {DATA} HTTP/1.1", f"Host: {bad}", auth], 400))
    for good in ("localhost:8443", "198.18.0.1", "[2001:db8::1]:443", "[::1]", "rc.example:", "x!y$&'()*+,;=",
                 "%41b", "[v1.x:y]", "EXAMPLE.net"):
        cases.append(([f"GET {DATA} HTTP/1.1", f"Host: {good}", auth], 200))
    got = [(lines, rawhttp.exchange(restconf, _raw(lines)).status) for lines, _ in cases]
    wrong = [([line for line in lines if line != auth], status, want)
             for (lines, status), (_, want) in zip(got, cases) if status != want]
    assert not wrong, "\n".join(map(str, wrong))

