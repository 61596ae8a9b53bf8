"""RFC 8650 dynamic subscriptions over RESTCONF, with httpx over real TLS against the real server: establish-
subscription answers with the subscription's URI, its owner GETs it and receives YANG-Push and stream notifications
as server-sent events, delete-/kill-subscription end the stream with subscription-terminated, nobody else may open
or delete it, and one never opened ends after the server's timeout."""

from __future__ import annotations

import json
import threading
import time
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from helpers import JSON, XML
from rcserver import ADMIN, BOB, RestconfServer, bootstrap_users, start_server, start_service, stop_process, stop_server

from singbox_agent.repository import SysrepoInstance

OPS = "/restconf/operations/ietf-subscribed-notifications:"
SN = "ietf-subscribed-notifications"
SN_NS = "urn:ietf:params:xml:ns:yang:ietf-subscribed-notifications"
NCN_NS = "urn:ietf:params:xml:ns:yang:ietf-netconf-notifications"
RSN_NS = "urn:ietf:params:xml:ns:yang:ietf-restconf-subscribed-notifications"
OPEN_TIMEOUT_S = 2


@pytest.fixture
def restconf(sysrepo_instance: SysrepoInstance, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
             ) -> Iterator[RestconfServer]:
    """The server with a short time to open a subscription's URI (the sysrepo_instance fixture installs
    ietf-subscribed-notifications and ietf-yang-push)."""
    monkeypatch.setenv("SINGBOX_RESTCONF_SUBSCRIPTION_OPEN_S", str(OPEN_TIMEOUT_S))
    state = tmp_path / "state"
    state.mkdir()
    bootstrap_users(sysrepo_instance, state)
    server = start_server(sysrepo_instance, state)
    try:
        yield server
    finally:
        rc = stop_server(server)
        assert rc == 0, f"server exit status {rc}:\n{server.log()[-4000:]}"


class Reader:
    """Reads an SSE response to its end in a thread: `events` (each event's data), `status`."""

    def __init__(self, client: httpx.Client, url: str) -> None:
        self.events: list[str] = []
        self.status = 0
        self.ended = False
        self.ready = threading.Event()
        self.arrived = threading.Condition()
        self._thread = threading.Thread(target=self._run, args=(client, url), daemon=True)
        self._thread.start()
        assert self.ready.wait(30), "the stream did not open"

    def _run(self, client: httpx.Client, url: str) -> None:
        try:
            with client.stream("GET", url, timeout=60) as resp:
                self.status = resp.status_code
                self.content_type = resp.headers.get("content-type", "")
                self.ready.set()
                data: list[str] = []
                for line in resp.iter_lines():
                    if line.startswith("data:"):
                        data.append(line[5:].lstrip())
                    elif line == "" and data:
                        with self.arrived:
                            self.events.append("\n".join(data))
                            self.arrived.notify_all()
                        data = []
        finally:
            self.ended = True
            self.ready.set()
            with self.arrived:
                self.arrived.notify_all()

    def wait_for(self, text: str, timeout: float = 60) -> str:
        deadline = time.monotonic() + timeout
        with self.arrived:
            while True:
                hit = next((e for e in self.events if text in e), None)
                if hit is not None:
                    return hit
                left = deadline - time.monotonic()
                assert left > 0 and not self.ended, f"no event with {text!r}: {self.events}"
                self.arrived.wait(left)

    def join(self) -> None:
        self._thread.join(60)
        assert self.ended, "the stream did not end"


def establish(c: httpx.Client, body: dict[str, Any]) -> tuple[int, str]:
    resp = c.post(OPS + "establish-subscription", json={f"{SN}:input": body},
                  headers={"Content-Type": JSON, "Accept": JSON})
    assert resp.status_code == 200, resp.text
    out = resp.json()[f"{SN}:output"]
    return int(out["id"]), str(out["ietf-restconf-subscribed-notifications:uri"])


def rpc(c: httpx.Client, name: str, sub_id: int) -> httpx.Response:
    return c.post(OPS + name, json={f"{SN}:input": {"id": sub_id}}, headers={"Content-Type": JSON, "Accept": JSON})


def set_external_groups(c: httpx.Client, value: bool) -> None:
    resp = c.put("/restconf/data/ietf-netconf-acm:nacm/enable-external-groups",
                 json={"ietf-netconf-acm:enable-external-groups": value}, headers={"Content-Type": JSON})
    assert resp.status_code in (201, 204), resp.text


def test_yang_push_on_change_then_delete(restconf: RestconfServer) -> None:
    with restconf.client() as c, restconf.client(auth=BOB) as bob:
        sub_id, uri = establish(c, {
            "ietf-yang-push:datastore": "ietf-datastores:running",
            "ietf-yang-push:datastore-xpath-filter": "/ietf-netconf-acm:nacm",
            "ietf-yang-push:on-change": {"sync-on-start": False},
        })
        assert uri == f"{restconf.base_url}/restconf/subscriptions/{sub_id}"
        # only the subscriber may open it or delete it: to anyone else it does not exist
        assert bob.get(uri).status_code == 404
        refused = rpc(bob, "delete-subscription", sub_id)
        assert refused.status_code in (403, 404), refused.text
        assert rpc(c, "delete-subscription", sub_id + 1000).status_code == 404
        assert rpc(bob, "kill-subscription", sub_id).status_code == 403  # nacm:default-deny-all

        reader = Reader(c, uri)
        assert reader.status == 200 and reader.content_type.startswith("text/event-stream")
        assert c.get(uri).status_code == 404  # opened once only
        set_external_groups(c, False)
        update = json.loads(reader.wait_for("push-change-update"))["ietf-restconf:notification"]
        assert update["eventTime"].endswith("Z")
        patch = update["ietf-yang-push:push-change-update"]
        assert int(patch["id"]) == sub_id
        assert "enable-external-groups" in json.dumps(patch)

        assert rpc(c, "delete-subscription", sub_id).status_code == 204
        ended = json.loads(reader.wait_for("subscription-terminated"))["ietf-restconf:notification"]
        terminated = ended[f"{SN}:subscription-terminated"]
        assert int(terminated["id"]) == sub_id and terminated["reason"].endswith("no-such-subscription")
        reader.join()
        assert rpc(c, "delete-subscription", sub_id).status_code == 404


def test_stream_in_xml_modify_and_kill(restconf: RestconfServer) -> None:
    with restconf.client() as c:
        body = (f'<input xmlns="{SN_NS}"><stream>NETCONF</stream>'
                f'<stream-xpath-filter xmlns:ncn="{NCN_NS}">/ncn:netconf-config-change</stream-xpath-filter>'
                "</input>")
        resp = c.post(OPS + "establish-subscription", content=body, headers={"Content-Type": XML, "Accept": XML})
        assert resp.status_code == 200, resp.text
        out = ET.fromstring(resp.text)
        sub_id = int(out.findtext(f"{{{SN_NS}}}id") or 0)
        uri = out.findtext(f"{{{RSN_NS}}}uri") or ""
        reader = Reader(c, uri)
        set_external_groups(c, False)
        change = ET.fromstring(reader.wait_for("netconf-config-change"))
        assert change.tag == "{urn:ietf:params:xml:ns:netconf:notification:1.0}notification"

        modify = (f'<input xmlns="{SN_NS}"><id>{sub_id}</id>'
                  f'<stream-xpath-filter xmlns:ncn="{NCN_NS}">/ncn:netconf-session-start</stream-xpath-filter>'
                  "</input>")
        resp = c.post(OPS + "modify-subscription", content=modify, headers={"Content-Type": XML})
        assert resp.status_code == 204, resp.text
        modified = ET.fromstring(reader.wait_for("subscription-modified"))
        assert modified.find(f"{{{SN_NS}}}subscription-modified/{{{SN_NS}}}stream-xpath-filter") is not None

        assert rpc(c, "kill-subscription", sub_id).status_code == 204
        ET.fromstring(reader.wait_for("subscription-terminated"))
        reader.join()


def test_unopened_subscription_ends(restconf: RestconfServer) -> None:
    with restconf.client() as c:
        sub_id, uri = establish(c, {"stream": "NETCONF"})
        time.sleep(OPEN_TIMEOUT_S + 3)  # the server's timeout to open the URI, and a margin
        assert c.get(uri).status_code == 404
        assert rpc(c, "delete-subscription", sub_id).status_code == 404


def test_closing_the_stream_ends_the_subscription(restconf: RestconfServer) -> None:
    with restconf.client() as c:
        sub_id, uri = establish(c, {"stream": "NETCONF"})
        with c.stream("GET", uri, timeout=30) as resp:
            assert resp.status_code == 200
        deadline = time.monotonic() + 30
        while rpc(c, "delete-subscription", sub_id).status_code != 404:
            assert time.monotonic() < deadline, "the subscription outlived its stream"
            time.sleep(0.2)


def test_listed_in_operations(restconf: RestconfServer) -> None:
    with restconf.client() as c:
        ops = c.get("/restconf/operations", headers={"Accept": JSON}).json()["ietf-restconf:operations"]
    for name in ("establish-subscription", "modify-subscription", "delete-subscription", "kill-subscription"):
        assert f"{SN}:{name}" in ops


def test_server_stops_with_an_open_subscription(restconf: RestconfServer) -> None:
    """The fixture's teardown wants exit status 0 with this stream still attached."""
    with restconf.client() as c:
        _, uri = establish(c, {"stream": "NETCONF"})
        reader = Reader(c, uri)
        assert reader.status == 200
        _, unopened = establish(c, {"stream": "NETCONF"})


def resync(c: httpx.Client, sub_id: int) -> httpx.Response:
    return c.post("/restconf/operations/ietf-yang-push:resync-subscription",
                  json={"ietf-yang-push:input": {"id": sub_id}}, headers={"Content-Type": JSON, "Accept": JSON})


def test_resync_subscription(restconf: RestconfServer) -> None:
    """RFC 8641 4.6 over RESTCONF: resync-subscription sends an on-change subscription a push-update of everything
    it selects; a periodic subscription, another user's, or an unknown id is no-such-subscription-resync."""
    with restconf.client() as c, restconf.client(auth=BOB) as bob:
        ops = c.get("/restconf/operations", headers={"Accept": JSON}).json()["ietf-restconf:operations"]
        assert "ietf-yang-push:resync-subscription" in ops
        sub_id, uri = establish(c, {
            "ietf-yang-push:datastore": "ietf-datastores:running",
            "ietf-yang-push:datastore-xpath-filter": "/ietf-netconf-acm:nacm",
            "ietf-yang-push:on-change": {"sync-on-start": False},
        })
        reader = Reader(c, uri)
        assert resync(c, sub_id).status_code == 204
        update = json.loads(reader.wait_for("push-update"))["ietf-restconf:notification"]["ietf-yang-push:push-update"]
        assert int(update["id"]) == sub_id and "ietf-netconf-acm:nacm" in json.dumps(update)
        assert resync(bob, sub_id).status_code in (403, 404)
        periodic_id, _ = establish(c, {
            "ietf-yang-push:datastore": "ietf-datastores:running",
            "ietf-yang-push:datastore-xpath-filter": "/ietf-netconf-acm:nacm",
            "ietf-yang-push:periodic": {"period": 100},
        })
        for wrong in (periodic_id, sub_id + 1000):
            refused = resync(c, wrong)
            assert refused.status_code in (400, 404), refused.text
            assert "no-such-subscription" in refused.text, refused.text
        assert rpc(c, "delete-subscription", sub_id).status_code == 204
        reader.join()


def test_subtree_filters(restconf: RestconfServer) -> None:
    """RFC 8650 over RESTCONF with RFC 6241 subtree filters, as NETCONF has them: in JSON (the anydata's JSON form)
    and in XML; a filter selecting nothing this server knows is refused."""
    with restconf.client() as c:
        sub_id, uri = establish(c, {
            "ietf-yang-push:datastore": "ietf-datastores:running",
            "ietf-yang-push:datastore-subtree-filter": {"ietf-netconf-acm:nacm": {"enable-external-groups": [None]}},
            "ietf-yang-push:on-change": {"sync-on-start": False},
        })
        reader = Reader(c, uri)
        set_external_groups(c, False)
        patch = json.loads(reader.wait_for("push-change-update"))["ietf-restconf:notification"]
        assert "enable-external-groups" in json.dumps(patch)
        assert rpc(c, "delete-subscription", sub_id).status_code == 204
        reader.join()

        body = (f'<input xmlns="{SN_NS}"><datastore xmlns="urn:ietf:params:xml:ns:yang:ietf-yang-push" '
                f'xmlns:ds="urn:ietf:params:xml:ns:yang:ietf-datastores">ds:running</datastore>'
                f'<datastore-subtree-filter xmlns="urn:ietf:params:xml:ns:yang:ietf-yang-push">'
                f'<nacm xmlns="urn:ietf:params:xml:ns:yang:ietf-netconf-acm"><enable-external-groups/></nacm>'
                f"</datastore-subtree-filter>"
                f'<on-change xmlns="urn:ietf:params:xml:ns:yang:ietf-yang-push"><sync-on-start>true</sync-on-start>'
                f"</on-change></input>")
        resp = c.post(OPS + "establish-subscription", content=body, headers={"Content-Type": XML, "Accept": XML})
        assert resp.status_code == 200, resp.text
        out = ET.fromstring(resp.text)
        reader = Reader(c, out.findtext(f"{{{RSN_NS}}}uri") or "")
        update = reader.wait_for("push-update")  # sync-on-start: what the filter selects, and nothing else
        assert "enable-external-groups" in update and "read-default" not in update, update
        assert rpc(c, "delete-subscription", int(out.findtext(f"{{{SN_NS}}}id") or 0)).status_code == 204
        reader.join()

        nothing = body.replace('<nacm xmlns="urn:ietf:params:xml:ns:yang:ietf-netconf-acm"><enable-external-groups/>'
                               "</nacm>", '<x xmlns="urn:example:unknown"/>')
        refused = c.post(OPS + "establish-subscription", content=nothing, headers={"Content-Type": XML, "Accept": XML})
        assert refused.status_code == 400 and "selects nothing" in refused.text, refused.text


def test_subscriptions_state(restconf: RestconfServer) -> None:
    """RFC 8639's /subscriptions in operational lists the RESTCONF server's subscriptions too, each receiver with
    RFC 8650's uri; a deleted one is gone."""
    with restconf.client() as c:
        sub_id, uri = establish(c, {
            "ietf-yang-push:datastore": "ietf-datastores:running",
            "ietf-yang-push:datastore-xpath-filter": "/ietf-netconf-acm:nacm",
            "ietf-yang-push:on-change": {"dampening-period": 50, "sync-on-start": False},
        })
        path = "/restconf/data/ietf-subscribed-notifications:subscriptions"
        resp = c.get(path, headers={"Accept": JSON})
        assert resp.status_code == 200, resp.text
        subs = resp.json()[f"{SN}:subscriptions"]["subscription"]
        mine = next(s for s in subs if int(s["id"]) == sub_id)
        assert mine["ietf-yang-push:datastore-xpath-filter"] == "/ietf-netconf-acm:nacm"
        assert mine["ietf-yang-push:on-change"]["dampening-period"] == 50
        receiver = mine["receivers"]["receiver"][0]
        assert receiver["ietf-restconf-subscribed-notifications:uri"] == uri, receiver
        assert receiver["state"] == "active"
        assert rpc(c, "delete-subscription", sub_id).status_code == 204
        after = c.get(path, headers={"Accept": JSON})
        left = [] if after.status_code == 404 else \
            after.json().get(f"{SN}:subscriptions", {}).get("subscription", [])
        assert all(int(s["id"]) != sub_id for s in left), after.text


def test_ids_unique_across_the_netconf_and_restconf_servers(restconf: RestconfServer, tmp_path: Path) -> None:
    """RFC 8639 2.4.2: a subscription id is unique to the publisher. srsn numbers the subscriptions of each process
    from 1, and the NETCONF server is another process on the same sysrepo: its first subscription and the RESTCONF
    server's get different ids, /subscriptions lists both (from either server), and deleting the RESTCONF one
    leaves the NETCONF one running."""
    from lxml import etree
    from ncclient import manager

    nc_state = tmp_path / "netconf"
    nc_state.mkdir()
    proc, info = start_service(restconf.instance, "singbox_agent.netconf", nc_state, nc_state / "ready.json",
                               nc_state / "netconf.log")
    try:
        with manager.connect(host="127.0.0.1", port=int(str(info["port"])), username=ADMIN[0], password=ADMIN[1],
                             hostkey_verify=False, look_for_keys=False, allow_agent=False, timeout=60) as m:
            reply = ET.fromstring(m.dispatch(etree.fromstring(
                f'<establish-subscription xmlns="{SN_NS}">'
                '<datastore xmlns="urn:ietf:params:xml:ns:yang:ietf-yang-push" '
                'xmlns:ds="urn:ietf:params:xml:ns:yang:ietf-datastores">ds:running</datastore>'
                '<on-change xmlns="urn:ietf:params:xml:ns:yang:ietf-yang-push"><sync-on-start>false</sync-on-start>'
                "</on-change></establish-subscription>")).xml)
            nc_id = int(reply.findtext(f"{{{SN_NS}}}id") or "0")
            with restconf.client() as c:
                rc_id, _ = establish(c, {"ietf-yang-push:datastore": "ietf-datastores:running",
                                         "ietf-yang-push:on-change": {"sync-on-start": False}})
                assert nc_id != rc_id, (nc_id, rc_id)
                path = "/restconf/data/ietf-subscribed-notifications:subscriptions"

                def listed() -> dict[int, str]:
                    resp = c.get(path, headers={"Accept": JSON})
                    subs = [] if resp.status_code == 404 else resp.json()[f"{SN}:subscriptions"]["subscription"]
                    return {int(s["id"]): s["receivers"]["receiver"][0]["name"] for s in subs}

                both = listed()
                assert both.get(nc_id, "").startswith("NETCONF") and both.get(rc_id, "").startswith("RESTCONF"), both
                nc_view = m.get(filter=("subtree", f'<subscriptions xmlns="{SN_NS}"/>')).data_ele
                seen = {int(e.text or "0") for e in nc_view.iter(f"{{{SN_NS}}}id")}
                assert {nc_id, rc_id} <= seen, seen
                # the NETCONF subscription is not the RESTCONF user's to delete, whatever its srsn id
                assert rpc(c, "delete-subscription", nc_id).status_code == 404
                assert rpc(c, "delete-subscription", rc_id).status_code == 204
                after = listed()
                assert rc_id not in after and nc_id in after, after
    finally:
        assert stop_process(proc) == 0, (nc_state / "netconf.log").read_text()[-3000:]


NACM_NS = "urn:ietf:params:xml:ns:yang:ietf-netconf-acm"
YP_NS = "urn:ietf:params:xml:ns:yang:ietf-yang-push"
DS_NS = "urn:ietf:params:xml:ns:yang:ietf-datastores"
_DS = f'<datastore xmlns="{YP_NS}" xmlns:ds="{DS_NS}">ds:running</datastore>'
_ON_CHANGE = f'<on-change xmlns="{YP_NS}"><sync-on-start>false</sync-on-start></on-change>'
_PAST = "2020-01-01T00:00:00Z"
# Malformed establish-subscription inputs (XML, the rpc's input) and what the error must name: each is a 4xx with
# that text, never a 500 or operation-failed, and leaves no subscription behind.
BAD_ESTABLISH = {
    "subtree unknown node in a known module": (
        f"{_DS}<datastore-subtree-filter xmlns=\"{YP_NS}\"><nacm xmlns=\"{NACM_NS}\"><no-such-node/></nacm>"
        f"</datastore-subtree-filter>{_ON_CHANGE}", "no-such-node"),
    "subtree unknown top node in a known module": (
        f"{_DS}<datastore-subtree-filter xmlns=\"{YP_NS}\"><no-such-top xmlns=\"{NACM_NS}\"/>"
        f"</datastore-subtree-filter>{_ON_CHANGE}", "no-such-top"),
    "stream subtree unknown notification": (
        f"<stream>NETCONF</stream><stream-subtree-filter><no-such-notif xmlns=\"{NACM_NS}\"/>"
        "</stream-subtree-filter>", "no-such-notif"),
    "unknown stream": ("<stream>NO-SUCH-STREAM</stream>", "NO-SUCH-STREAM"),
    "xpath undeclared prefix": (
        "<stream>NETCONF</stream><stream-xpath-filter>/nope:thing</stream-xpath-filter>", "nope"),
    "xpath unknown module": (
        {"stream": "NETCONF", "stream-xpath-filter": "/nope:thing"}, "filter-unsupported"),
    "xpath unknown node": (
        f"{_DS}<datastore-xpath-filter xmlns=\"{YP_NS}\" xmlns:a=\"{NACM_NS}\">/a:nacm/a:no-such-leaf"
        f"</datastore-xpath-filter>{_ON_CHANGE}", "no-such-leaf"),
    "xpath unknown node in JSON": (
        {"ietf-yang-push:datastore": "ietf-datastores:running", "ietf-yang-push:on-change": {},
         "ietf-yang-push:datastore-xpath-filter": "/ietf-netconf-acm:nacm/no-such-leaf"}, "filter-unsupported"),
    "xpath syntax": (
        f"{_DS}<datastore-xpath-filter xmlns=\"{YP_NS}\" xmlns:a=\"{NACM_NS}\">/a:nacm[</datastore-xpath-filter>"
        f"{_ON_CHANGE}", "invalid-value"),
    "stop-time in the past": (f"<stream>NETCONF</stream><stop-time>{_PAST}</stop-time>", "stop-time"),
    "datastore stop-time in the past": (f"{_DS}<stop-time>{_PAST}</stop-time>{_ON_CHANGE}", "stop-time"),
    "period 0": (f"{_DS}<periodic xmlns=\"{YP_NS}\"><period>0</period></periodic>", "period"),
    "dampening on periodic": (
        f"{_DS}<periodic xmlns=\"{YP_NS}\"><period>100</period><dampening-period>10</dampening-period></periodic>",
        "dampening-period"),
    "periodic and on-change": (
        f"{_DS}<periodic xmlns=\"{YP_NS}\"><period>100</period></periodic>{_ON_CHANGE}", "on-change"),
    "xpath and subtree filter": (
        f"{_DS}<datastore-xpath-filter xmlns=\"{YP_NS}\" xmlns:a=\"{NACM_NS}\">/a:nacm</datastore-xpath-filter>"
        f"<datastore-subtree-filter xmlns=\"{YP_NS}\"><nacm xmlns=\"{NACM_NS}\"/></datastore-subtree-filter>"
        f"{_ON_CHANGE}", "filter"),
    "unknown encoding": (
        f"<stream>NETCONF</stream><encoding xmlns:x=\"urn:example:x\">x:encode-cbor</encoding>", "encod"),
    "unknown datastore": (
        f"<datastore xmlns=\"{YP_NS}\" xmlns:x=\"urn:example:x\">x:nowhere</datastore>{_ON_CHANGE}", "nowhere"),
    "datastore not subscribable": (
        {"ietf-yang-push:datastore": "ietf-datastores:intended", "ietf-yang-push:on-change": {}}, "intended"),
    "no trigger": (_DS, "on-change"),
}


def _listed(c: httpx.Client) -> list[Any]:
    resp = c.get("/restconf/data/ietf-subscribed-notifications:subscriptions", headers={"Accept": JSON})
    assert resp.status_code in (200, 404), resp.text
    return [] if resp.status_code == 404 else resp.json().get(f"{SN}:subscriptions", {}).get("subscription", [])


def _refused(resp: httpx.Response, names: str) -> None:
    assert 400 <= resp.status_code < 500, (resp.status_code, resp.text)
    assert "operation-failed" not in resp.text and "Traceback" not in resp.text, resp.text
    assert names in resp.text, resp.text


@pytest.mark.parametrize("body,names", list(BAD_ESTABLISH.values()), ids=list(BAD_ESTABLISH))
def test_bad_establish_is_a_precise_error(restconf: RestconfServer, body: str | dict[str, Any], names: str
                                         ) -> None:
    """Bad input of establish-subscription gets a 4xx naming what is wrong (RFC 8639 2.4.2's filter-unsupported
    for a filter the server cannot apply), never a 500, and establishes nothing."""
    with restconf.client() as c:
        if isinstance(body, dict):
            resp = c.post(OPS + "establish-subscription", json={f"{SN}:input": body},
                          headers={"Content-Type": JSON, "Accept": JSON})
        else:
            resp = c.post(OPS + "establish-subscription", content=f'<input xmlns="{SN_NS}">{body}</input>',
                          headers={"Content-Type": XML, "Accept": XML})
        _refused(resp, names)
        assert _listed(c) == []


BAD_MODIFY = {
    "subtree unknown node": (
        f"<datastore-subtree-filter xmlns=\"{YP_NS}\"><nacm xmlns=\"{NACM_NS}\"><no-such-node/></nacm>"
        "</datastore-subtree-filter>", "no-such-node"),
    "xpath unknown node": (
        f"<datastore-xpath-filter xmlns=\"{YP_NS}\" xmlns:a=\"{NACM_NS}\">/a:nacm/a:nope</datastore-xpath-filter>",
        "filter-unsupported"),
    "xpath syntax": (f"<datastore-xpath-filter xmlns=\"{YP_NS}\" xmlns:a=\"{NACM_NS}\">/a:nacm[</datastore-xpath-filter>",
                     "invalid-value"),
    "period 0": (f"<periodic xmlns=\"{YP_NS}\"><period>0</period></periodic>", "period"),
}


@pytest.mark.parametrize("body,names", list(BAD_MODIFY.values()), ids=list(BAD_MODIFY))
def test_bad_modify_is_a_precise_error(restconf: RestconfServer, body: str, names: str) -> None:
    """modify-subscription with bad input: a 4xx naming it; the subscription runs on unchanged."""
    with restconf.client() as c:
        sub_id, _ = establish(c, {"ietf-yang-push:datastore": "ietf-datastores:running",
                                  "ietf-yang-push:datastore-xpath-filter": "/ietf-netconf-acm:nacm",
                                  "ietf-yang-push:periodic": {"period": 500}})
        resp = c.post(OPS + "modify-subscription",
                      content=f'<input xmlns="{SN_NS}"><id>{sub_id}</id>{_DS}{body}</input>',
                      headers={"Content-Type": XML, "Accept": XML})
        _refused(resp, names)
        (mine,) = _listed(c)
        assert mine["ietf-yang-push:datastore-xpath-filter"] == "/ietf-netconf-acm:nacm"
        assert mine["ietf-yang-push:periodic"]["period"] == 500
        assert rpc(c, "delete-subscription", sub_id).status_code == 204


@pytest.mark.parametrize("name", ["delete-subscription", "kill-subscription", "modify-subscription",
                                  "resync-subscription"])
@pytest.mark.parametrize("sub_id", ["12345", "-1", "abc"])
def test_bad_ids_are_precise_errors(restconf: RestconfServer, name: str, sub_id: str) -> None:
    with restconf.client() as c:
        module = "ietf-yang-push" if name == "resync-subscription" else SN
        resp = c.post(f"/restconf/operations/{module}:{name}",
                      content=f'{{"{module}:input": {{"id": {json.dumps(sub_id)}}}}}',
                      headers={"Content-Type": JSON, "Accept": JSON})
        _refused(resp, "")
