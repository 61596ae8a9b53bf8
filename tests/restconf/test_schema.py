"""RFC 8040 §3.7 schema resources and the ietf-yang-library locations pointing at them, through httpx and curl."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from rcserver import ADMIN, BOB, RestconfServer, bootstrap_users, start_server, stop_server

from singbox_agent.repository import SysrepoInstance

TEST_YANG = Path(__file__).resolve().parent / "yang"
YL = "/restconf/data/ietf-yang-library:yang-library"
YANG = "/restconf/yang"
JSON = "application/yang-data+json"


@pytest.fixture
def server(sysrepo_instance: SysrepoInstance, tmp_path: Path) -> Iterator[RestconfServer]:
    """The server over an instance that also holds a module with a submodule and a module without a revision."""
    sysrepo_instance.install_modules(
        [TEST_YANG / "rc-schema-test@2026-11-22.yang", TEST_YANG / "rc-schema-norev.yang"], [TEST_YANG]
    )
    state = tmp_path / "state"
    state.mkdir()
    bootstrap_users(sysrepo_instance, state)
    srv = start_server(sysrepo_instance, state)
    try:
        yield srv
    finally:
        assert stop_server(srv) == 0, srv.log()[-4000:]


def _entries(library: dict[str, Any]) -> list[tuple[str, str | None, list[str], bool]]:
    """(name, revision, locations, is_submodule) of every module, import-only module and submodule."""
    out: list[tuple[str, str | None, list[str], bool]] = []
    for module_set in library["ietf-yang-library:yang-library"]["module-set"]:
        for key in ("module", "import-only-module"):
            for mod in module_set.get(key, []):
                out.append((mod["name"], mod.get("revision"), mod.get("location", []), False))
                for sub in mod.get("submodule", []):
                    out.append((sub["name"], sub.get("revision"), sub.get("location", []), True))
    return out


def test_every_location_serves_its_schema(server: RestconfServer) -> None:
    with server.client() as c:
        r = c.get(YL)
        assert r.status_code == 200, r.text
        assert "file:" not in r.text  # sysrepo's file paths never reach the client
        entries = _entries(r.json())
        names = {e[0] for e in entries}
        assert {"ietf-system", "vpp-singbox", "ietf-inet-types", "rc-schema-test", "rc-schema-test-sub",
                "rc-schema-norev"} <= names
        assert any(e[3] for e in entries), "no submodule reported"
        for name, revision, locations, is_sub in entries:
            expected = f"{server.base_url}{YANG}/{name}" + (f"@{revision}" if revision else "")
            assert locations == [expected], (name, locations)
            got = c.get(expected)
            assert got.status_code == 200, (name, got.text)
            assert got.headers["content-type"] == "application/yang"
            keyword = "submodule" if is_sub else "module"
            assert got.text.startswith(f"{keyword} {name} {{"), (name, got.text[:80])
            if revision:
                assert f"revision {revision}" in got.text
        # RFC 7895 modules-state carries the same URLs in its schema leaves
        state = c.get("/restconf/data/ietf-yang-library:modules-state").json()["ietf-yang-library:modules-state"]
        mod = next(m for m in state["module"] if m["name"] == "rc-schema-test")
        assert mod["schema"] == f"{server.base_url}{YANG}/rc-schema-test@2026-11-22"
        assert mod["submodule"][0]["schema"] == f"{server.base_url}{YANG}/rc-schema-test-sub@2026-11-22"
        # the whole datastore too: no file path anywhere
        assert "file:" not in c.get("/restconf/data").text


def test_schema_text_and_forms(server: RestconfServer) -> None:
    with server.client(http2=True) as c:
        main = c.get(f"{YANG}/rc-schema-test@2026-11-22")
        assert main.status_code == 200 and main.http_version == "HTTP/2"
        assert "include rc-schema-test-sub" in main.text and 'namespace "urn:vpp-singbox:test:rc-schema-test"' in main.text
        sub = c.get(f"{YANG}/rc-schema-test-sub@2026-11-22")
        assert sub.status_code == 200 and "belongs-to rc-schema-test" in sub.text and "from-submodule" in sub.text
        # the file-name form
        assert c.get(f"{YANG}/rc-schema-test@2026-11-22.yang").text == main.text
        assert c.get(f"{YANG}/rc-schema-norev.yang").text == c.get(f"{YANG}/rc-schema-norev").text
        assert c.get(f"{YANG}/rc-schema-norev").text.startswith("module rc-schema-norev {")
        # conditional GET and HEAD
        etag = main.headers["etag"]
        assert c.get(f"{YANG}/rc-schema-test@2026-11-22", headers={"if-none-match": etag}).status_code == 304
        head = c.head(f"{YANG}/rc-schema-test@2026-11-22")
        assert head.status_code == 200 and head.content == b"" and int(head.headers["content-length"]) == len(main.content)
        opts = c.options(f"{YANG}/ietf-system@2014-08-06")
        assert opts.status_code == 200 and opts.headers["allow"] == "GET, HEAD, OPTIONS"


BAD_SCHEMA_REQUESTS = [
    ("GET", f"{YANG}/ietf-system", 404),  # the module has a revision: it is part of the name
    ("GET", f"{YANG}/ietf-system@1999-12-13", 404),
    ("GET", f"{YANG}/ietf-system@abcd-ef-gh", 404),
    ("GET", f"{YANG}/rc-schema-norev@2026-11-22", 404),  # no revision: none may be given
    ("GET", f"{YANG}/no-such-module", 404),
    ("GET", f"{YANG}/no-such-module@2020-01-01.yang", 404),
    ("GET", f"{YANG}/", 404),
    ("GET", YANG, 404),
    ("GET", f"{YANG}/ietf-system@2014-08-06/x", 404),
    ("GET", f"{YANG}/9bad", 404),
    ("GET", f"{YANG}/ietf%2Fsystem@2014-08-06", 404),
    ("GET", f"{YANG}/ietf-system%40", 404),
    ("GET", f"{YANG}/ietf-system@2014-08-06?depth=1", 400),
    ("GET", f"{YANG}/%zz", 400),
    ("PUT", f"{YANG}/ietf-system@2014-08-06", 405),
    ("POST", f"{YANG}/ietf-system@2014-08-06", 405),
    ("DELETE", f"{YANG}/ietf-system@2014-08-06", 405),
    ("PATCH", f"{YANG}/ietf-system@2014-08-06", 405),
]


def test_bad_schema_requests(server: RestconfServer) -> None:
    with server.client() as c:
        for method, path, status in BAD_SCHEMA_REQUESTS:
            r = c.request(method, path)
            assert r.status_code == status, (method, path, r.text)
            assert r.headers["content-type"] == JSON
            tag = r.json()["ietf-restconf:errors"]["error"][0]["error-tag"]
            assert tag in ("invalid-value", "operation-not-supported"), (method, path, tag)
            if status == 405:
                assert r.headers["allow"] == "GET, HEAD, OPTIONS"
        assert c.get(f"{YANG}/ietf-system@2014-08-06").status_code == 200  # still serving


def test_schema_needs_nacm_read_of_the_library_entry(server: RestconfServer) -> None:
    """A user NACM keeps from a module's yang-library entry gets 404 for its schema, and its location stays
    hidden; others, and the user's other modules, are unaffected. Same with curl."""
    with server.client() as admin, server.client(auth=BOB) as bob:
        product = next((TEST_YANG.parents[2] / "yang").glob("vpp-singbox@*.yang")).stem  # the current revision
        vs = f"{YANG}/{product}"
        assert bob.get(vs).status_code == 200
        h = {"content-type": JSON}
        assert admin.post("/restconf/data/ietf-netconf-acm:nacm/groups", headers=h, content=json.dumps(
            {"ietf-netconf-acm:group": [{"name": "users", "user-name": ["bob"]}]})).status_code == 201
        rule = {"ietf-netconf-acm:rule-list": [{"name": "hide-product", "group": ["users"], "rule": [
            {"name": "no-vpp-singbox-entry", "module-name": "ietf-yang-library", "access-operations": "read",
             "path": "/ietf-yang-library:yang-library/module-set/module[name='vpp-singbox']", "action": "deny"},
            {"name": "no-sub-location", "module-name": "ietf-yang-library", "access-operations": "read",
             "path": "/ietf-yang-library:yang-library/module-set/module[name='rc-schema-test']/submodule",
             "action": "deny"}]}]}
        r = admin.post("/restconf/data/ietf-netconf-acm:nacm", headers=h, content=json.dumps(rule),
                       params={"insert": "first"})
        assert r.status_code == 201, r.text
        denied = bob.get(vs)
        assert denied.status_code == 404 and "vpp-singbox" in denied.json()["ietf-restconf:errors"]["error"][0][
            "error-message"]
        assert bob.get(f"{YANG}/rc-schema-test-sub@2026-11-22").status_code == 404
        assert bob.get(f"{YANG}/rc-schema-test@2026-11-22").status_code == 200
        assert bob.get(f"{YANG}/ietf-system@2014-08-06").status_code == 200
        assert admin.get(vs).status_code == 200
        assert admin.get(f"{YANG}/rc-schema-test-sub@2026-11-22").status_code == 200
        names = {e[0] for e in _entries(bob.get(YL).json())}
        assert "vpp-singbox" not in names and "rc-schema-test-sub" not in names and "ietf-system" in names
        out = server.curl("-o", "/dev/null", "-w", "%{http_code}", server.base_url + vs, user=BOB)
        assert out.stdout == "404", out.stderr
        out = server.curl("-D", "-", server.base_url + vs, user=ADMIN)
        assert out.returncode == 0 and "content-type: application/yang" in out.stdout.lower()
        assert "module vpp-singbox {" in out.stdout


def test_locations_follow_the_host_the_client_used(server: RestconfServer) -> None:
    """A server listening on 0.0.0.0 or reached through a forwarded port: locations use the request's Host."""
    path = f"{YL}/module-set=complete/module=ietf-system"
    scheme = server.base_url.split("://")[0]
    with server.client() as c:
        for host in ("rc.example:9443", "[2001:db8::1]:8443", "198.18.0.1"):
            r = c.get(path, headers={"host": host})
            assert r.status_code == 200, (host, r.status_code, r.text[:300])
            location = r.json()["ietf-yang-library:module"][0]["location"]
            assert location == [f"{scheme}://{host}{YANG}/ietf-system@2014-08-06"], host
        for odd in ("x!y", "%41b", "[v1.x:y]"):  # RFC 9110 §7.2 allows them; nothing a location should name
            location = c.get(path, headers={"host": odd}).json()["ietf-yang-library:module"][0]["location"]
            assert location == [f"{server.base_url}{YANG}/ietf-system@2014-08-06"], odd
        for bad in ("a b", "evil.example/x", "x@y", "h:port"):  # RFC 9112 §3.2: invalid Host values are 400s
            assert c.get(path, headers={"host": bad}).status_code == 400, bad
