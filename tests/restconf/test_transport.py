"""TLS, HTTP/1.1 and HTTP/2, authentication, media types, OPTIONS/HEAD, Cache-Control, shutdown."""

from __future__ import annotations

import asyncio
import json
import ssl
import threading
import time
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import httpx
import pytest
import sysrepo
from helpers import EP, JSON, RC_NS, SB, XML, endpoint_json, error_of, read_events, stand_in_agent
from rcserver import ADMIN, BOB, RestconfServer, bootstrap_users, start_server, stop_server


def test_tls_http1_http2_and_fixed_resources(restconf: RestconfServer) -> None:
    assert restconf.base_url.startswith("https://") and restconf.ca
    with restconf.client() as c1, restconf.client(http2=True) as c2:
        r1 = c1.get("/restconf")
        r2 = c2.get("/restconf")
        assert (r1.http_version, r2.http_version) == ("HTTP/1.1", "HTTP/2")
        for r in (r1, r2):
            assert r.status_code == 200
            assert r.headers["content-type"] == JSON
            assert r.json()["ietf-restconf:restconf"]["yang-library-version"] == "2019-01-04"
        xml_root = c2.get("/restconf", headers={"accept": XML})
        assert ET.fromstring(xml_root.content).tag == f"{RC_NS}restconf"
        meta = c1.get("/.well-known/host-meta")
        assert meta.status_code == 200 and meta.headers["content-type"] == "application/xrd+xml"
        link = ET.fromstring(meta.content).find("{http://docs.oasis-open.org/ns/xri/xrd-1.0}Link")
        assert link is not None and link.get("rel") == "restconf" and link.get("href") == "/restconf"
        v = c2.get("/restconf/yang-library-version")
        assert v.json() == {"ietf-restconf:yang-library-version": "2019-01-04"}
        with stand_in_agent():  # listed while something serves them
            ops = c2.get("/restconf/operations").json()["ietf-restconf:operations"]
        assert "vpp-singbox:test-endpoint" in ops and "vpp-singbox:clear-statistics" in ops
    # The CA in the ready file is what verifies the server: a client without it must fail.
    with pytest.raises(httpx.ConnectError), httpx.Client(verify=ssl.create_default_context()) as strict:
        strict.get(restconf.base_url + "/restconf")
    # curl, both protocol versions, verifying with the generated CA
    for flag, proto in (("--http1.1", "HTTP/1.1"), ("--http2", "HTTP/2")):
        out = restconf.curl("-i", flag, restconf.base_url + "/restconf/yang-library-version")
        assert out.returncode == 0, out.stderr
        assert out.stdout.startswith(proto), out.stdout[:80]
        assert "2019-01-04" in out.stdout
    # plain HTTP to the TLS port does not reach the application
    with pytest.raises(httpx.HTTPError):
        httpx.get(restconf.base_url.replace("https://", "http://") + "/restconf", timeout=5)


def test_authentication(restconf: RestconfServer) -> None:
    with restconf.client(auth=None) as c:
        r = c.get(SB)
        assert r.status_code == 401
        assert r.headers["www-authenticate"].startswith("Basic")
        assert error_of(r)["error-tag"] == "access-denied"
        for bad in (("admin", "wrong"), ("nobody", "x"), ("", "")):
            r = c.get(SB, auth=bad)
            assert r.status_code == 401, bad
        for header in ("Bearer abc", "Basic !!!notbase64", "Basic " + "YWRtaW4=", "Digest x"):
            r = c.get(SB, headers={"authorization": header})
            assert r.status_code == 401, header
        assert c.get(SB, auth=ADMIN).status_code in (200, 404)
        assert c.get("/restconf", auth=BOB).status_code == 200
    out = restconf.curl("-o", "/dev/null", "-w", "%{http_code}", restconf.base_url + SB, user=("admin", "nope"))
    assert out.stdout == "401"


def test_media_types(restconf: RestconfServer) -> None:
    with stand_in_agent(), restconf.client(http2=True) as c:
        assert c.put(f"{EP}=m1", content=endpoint_json("m1"), headers={"content-type": JSON}).status_code == 201
        for accept, ctype in (
            (JSON, JSON), (XML, XML), ("*/*", JSON), ("application/*", JSON), ("application/json", JSON),
            ("application/xml", XML), (f"{XML};q=0.9, {JSON};q=0.1", XML), (f"text/html, {XML}", XML),
        ):
            r = c.get(f"{EP}=m1", headers={"accept": accept})
            assert r.status_code == 200 and r.headers["content-type"] == ctype, accept
        r = c.get(f"{EP}=m1", headers={"accept": "text/html"})
        assert r.status_code == 406 and r.headers["content-type"] == JSON
        r = c.put(f"{EP}=m1", content=endpoint_json("m1"), headers={"content-type": "application/json"})
        assert r.status_code == 415
        r = c.put(f"{EP}=m1", content=endpoint_json("m1"), headers={"content-type": "text/plain"})
        assert r.status_code == 415
        r = c.put(f"{EP}=m1", content=endpoint_json("m1"), headers={"content-type": f"{JSON}; charset=utf-8"})
        assert r.status_code == 204


def test_options_and_head(restconf: RestconfServer) -> None:
    with stand_in_agent(), restconf.client() as c:
        r = c.options(SB)
        assert r.status_code == 200
        assert set(r.headers["allow"].split(", ")) == {"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"}
        assert "application/yang-patch+json" in r.headers["accept-patch"]
        r = c.options(f"{SB}/dataplane")
        assert r.headers["allow"] == "GET, HEAD, OPTIONS" and "accept-patch" not in r.headers
        get = c.get("/restconf/data/ietf-restconf-monitoring:restconf-state")
        head = c.head("/restconf/data/ietf-restconf-monitoring:restconf-state")
        assert head.status_code == 200 and head.content == b""
        assert head.headers["etag"] == get.headers["etag"]
        assert int(head.headers["content-length"]) == len(get.content)


def test_cache_control_on_every_response(restconf: RestconfServer) -> None:
    """§5.5: "Cache-Control: no-cache" on every response: fixed resources, 201/204 of writes, OPTIONS, errors."""
    with stand_in_agent(), restconf.client() as c:
        h = {"content-type": JSON}
        replies = [
            c.get("/restconf"), c.get("/restconf/yang-library-version"), c.get("/restconf/operations"),
            c.get("/.well-known/host-meta"), c.options(SB),
            c.put(f"{EP}=cc", content=endpoint_json("cc"), headers=h),
            c.put(f"{EP}=cc", content=endpoint_json("cc"), headers=h),
            c.post(f"{SB}/client", content=endpoint_json("cc2"), headers=h),
            c.delete(f"{EP}=cc2"),
            c.get(f"{EP}=nothing"), c.get("/restconf/data/no-module:x"), c.request("TRACE", SB),
            c.get(SB, auth=("admin", "wrong")),
            c.put(SB, content=b"{", headers=h),
        ]
        statuses = [r.status_code for r in replies]
        assert statuses == [200, 200, 200, 200, 200, 201, 204, 201, 204, 404, 400, 501, 401, 400], statuses
        for r in replies:
            assert r.headers.get("cache-control") == "no-cache", (r.request.method, r.request.url, r.status_code)


def test_http2_connection_carries_many_concurrent_requests(restconf: RestconfServer) -> None:
    """More than Hypercorn's default 1,000 requests per connection, 32 streams at a time, all answered."""
    import asyncio

    async def run() -> dict[int, int]:
        codes: dict[int, int] = {}
        async with httpx.AsyncClient(base_url=restconf.base_url, verify=restconf.ca or False, http2=True,
                                     auth=ADMIN, timeout=30) as client:
            gate = asyncio.Semaphore(32)

            async def one() -> None:
                async with gate:
                    r = await client.get("/restconf/yang-library-version")
                    assert r.http_version == "HTTP/2"
                    codes[r.status_code] = codes.get(r.status_code, 0) + 1

            await asyncio.gather(*(one() for _ in range(1500)))
        return codes

    assert asyncio.run(run()) == {200: 1500}


def test_server_stops_promptly_under_idle_tls_clients(sysrepo_instance: Any, tmp_path: Path) -> None:
    """Idle keep-alive TLS connections whose clients never answer the server's close_notify (a pooled connection
    nobody reads: the usual case, e.g. a stream client whose response just ended) are cut once the grace time is
    over: SIGTERM ends the process with status 0 within it. They held asyncio.run()'s final task cancellation open
    for asyncio's 30 s TLS shutdown timeout, past the test's 15 s SIGKILL (and systemd's patience)."""
    state = tmp_path / "state"
    state.mkdir()
    bootstrap_users(sysrepo_instance, state)
    server = start_server(sysrepo_instance, state)
    clients = [server.client(), server.client(), server.client(http2=True)]
    try:
        for client in clients:
            assert client.get("/restconf/yang-library-version").status_code == 200
        ready = threading.Event()
        reader = threading.Thread(target=read_events, daemon=True,
                                  args=(clients[1], server.base_url + "/restconf/streams/NETCONF/json", 10**6, [],
                                        ready))
        reader.start()
        assert ready.wait(15)
        started = time.monotonic()
        rc = stop_server(server)
        elapsed = time.monotonic() - started
        assert rc == 0, f"server exit status {rc}:\n{server.log()[-4000:]}"
        assert elapsed < 10, f"stopping took {elapsed:.1f} s:\n{server.log()[-4000:]}"
    finally:
        for client in clients:
            client.close()
        if server.process.poll() is None:
            stop_server(server)


def test_server_stops_cleanly_under_attached_streams(sysrepo_instance: Any, tmp_path: Path) -> None:
    """SIGTERM while stream clients are attached (and one has just left) ends within the grace time with status 0:
    the streams end (endless responses held the HTTP server's graceful shutdown open until SIGKILL), and every
    stream's sysrepo session is closed before the connection goes, not torn down under its listener threads."""
    state = tmp_path / "state"
    state.mkdir()
    bootstrap_users(sysrepo_instance, state)
    server = start_server(sysrepo_instance, state)
    clients = [server.client() for _ in range(3)]
    try:
        readers = []
        for client in clients:
            ready = threading.Event()
            reader = threading.Thread(target=read_events, daemon=True,
                                      args=(client, server.base_url + "/restconf/streams/NETCONF/json", 10**6, [],
                                            ready))
            reader.start()
            assert ready.wait(15)
            readers.append(reader)
        clients[0].close()  # one stream ends from the client side while the server stops
        rc = stop_server(server)  # SIGKILLed (-9) when still running after 15 s
        assert rc == 0, f"server exit status {rc}:\n{server.log()[-4000:]}"
    finally:
        for client in clients:
            client.close()
        if server.process.poll() is None:
            stop_server(server)
