"""RFC 8639/8640/8641 over the real NETCONF server (a subprocess on its own sysrepo instance with
ietf-subscribed-notifications and ietf-yang-push installed), with ncclient sending the raw RPCs."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from ncclient import manager
from ncclient.operations.rpc import RPCError

from singbox_agent.repository import SysrepoInstance, sysrepo_modules
from singbox_agent.subscriptions import srsn

SN = srsn.SN_NS
YP = srsn.YP_NS
DS = "urn:ietf:params:xml:ns:yang:ietf-datastores"
METRICS_NS = "urn:vpp-singbox:yang:vpp-singbox-metrics"
ADMIN, PASSWORD = "admin", "admin-secret"


def install_srsn_modules(instance: SysrepoInstance) -> None:
    """The sysrepo_instance fixture installs them already (as make run and the package do); kept as a check."""
    assert instance.sync_features(sysrepo_modules()) == []


class Server:
    def __init__(self, instance: SysrepoInstance, state: Path) -> None:
        self.env = {**os.environ, **instance.env}
        pw = state / "pw"
        pw.write_text(PASSWORD)
        subprocess.run([sys.executable, "-m", "singbox_agent.mgmt", "bootstrap-admin", "--user", ADMIN,
                        "--password-file", str(pw)], env=self.env, check=True, capture_output=True, timeout=60)
        ready = state / "ready.json"
        self.log = state / "netconf.log"
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "singbox_agent.netconf", "--listen", "127.0.0.1:0", "--state-dir", str(state),
             "--ready-file", str(ready)], env=self.env, stdout=open(self.log, "ab"), stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 30
        while not ready.exists():
            assert self.proc.poll() is None and time.monotonic() < deadline, self.log.read_text()
            time.sleep(0.05)
        self.port = int(json.loads(ready.read_text())["port"])

    def connect(self) -> Any:
        return manager.connect(host="127.0.0.1", port=self.port, username=ADMIN, password=PASSWORD,
                               hostkey_verify=False, look_for_keys=False, allow_agent=False, timeout=60)

    def stop(self) -> int:
        self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            return -9


@pytest.fixture
def server(sysrepo_instance: SysrepoInstance, tmp_path: Path) -> Iterator[Server]:
    install_srsn_modules(sysrepo_instance)
    s = Server(sysrepo_instance, tmp_path)
    try:
        yield s
    finally:
        assert s.stop() == 0, s.log.read_text()[-3000:]


def rpc(m: Any, xml: str) -> ET.Element:
    from lxml import etree

    reply = m.dispatch(etree.fromstring(xml))
    return ET.fromstring(reply.xml)


def take(m: Any, want: str, timeout: float = 10) -> ET.Element:
    """The next notification whose content is `want` (a local name), skipping others."""
    deadline = time.monotonic() + timeout
    seen = []
    while time.monotonic() < deadline:
        n = m.take_notification(block=True, timeout=0.5)
        if n is None:
            continue
        root = ET.fromstring(n.notification_xml)
        content = [c for c in root if not c.tag.endswith("eventTime")][0]
        seen.append(content.tag)
        if content.tag.endswith("}" + want):
            return content
    raise AssertionError(f"no {want} within {timeout} s; got {seen}")


def set_port(m: Any, port: int) -> None:
    m.edit_config(target="running", config=f'<config xmlns="urn:ietf:params:xml:ns:netconf:base:1.0">'
                  f'<metrics-exporter xmlns="{METRICS_NS}"><listen><port>{port}</port></listen>'
                  f"</metrics-exporter></config>")


def establish_periodic(m: Any, period_cs: int = 10) -> int:
    reply = rpc(m, f'<establish-subscription xmlns="{SN}">'
                   f'<datastore xmlns="{YP}" xmlns:ds="{DS}">ds:running</datastore>'
                   f'<datastore-xpath-filter xmlns="{YP}" xmlns:sbmx="{METRICS_NS}">/sbmx:metrics-exporter</datastore-xpath-filter>'
                   f'<periodic xmlns="{YP}"><period>{period_cs}</period></periodic></establish-subscription>')
    return int(reply.find(f"{{{SN}}}id").text)  # type: ignore[union-attr, arg-type]


def test_periodic_yang_push_and_two_subscriptions_on_one_session(server: Server) -> None:
    with server.connect() as m:
        set_port(m, 1111)
        first = establish_periodic(m)
        update = take(m, "push-update")
        assert update.findtext(f"{{{YP}}}id") == str(first)
        assert update.find(f".//{{{METRICS_NS}}}port").text == "1111"  # type: ignore[union-attr]
        # a second subscription, on-change, on the same session
        reply = rpc(m, f'<establish-subscription xmlns="{SN}">'
                       f'<datastore xmlns="{YP}" xmlns:ds="{DS}">ds:running</datastore>'
                       f'<datastore-subtree-filter xmlns="{YP}"><metrics-exporter xmlns="{METRICS_NS}"/>'
                       f'</datastore-subtree-filter><on-change xmlns="{YP}"><sync-on-start>false</sync-on-start>'
                       f"</on-change></establish-subscription>")
        second = int(reply.findtext(f"{{{SN}}}id"))  # type: ignore[arg-type]
        assert second != first
        set_port(m, 2222)
        change = take(m, "push-change-update")
        assert change.findtext(f"{{{YP}}}id") == str(second)
        assert change.find(f".//{{{METRICS_NS}}}port").text == "2222"  # type: ignore[union-attr]
        # the state of both, in operational
        state = m.get(filter=("subtree", f'<subscriptions xmlns="{SN}"/>')).data_ele
        ids = {int(e.text) for e in state.iter(f"{{{SN}}}id")}
        assert {first, second} <= ids
        streams = m.get(filter=("subtree", f'<streams xmlns="{SN}"/>')).data_ele
        assert "NETCONF" in [e.text for e in streams.iter(f"{{{SN}}}name")]


def test_modify_delete_and_kill(server: Server) -> None:
    with server.connect() as m, server.connect() as other:
        sub = establish_periodic(m, 50)
        take(m, "push-update")
        rpc(m, f'<modify-subscription xmlns="{SN}"><id>{sub}</id>'
               f'<datastore xmlns="{YP}" xmlns:ds="{DS}">ds:running</datastore>'
               f'<datastore-xpath-filter xmlns="{YP}" xmlns:sbmx="{METRICS_NS}">/sbmx:metrics-exporter</datastore-xpath-filter>'
               f'<periodic xmlns="{YP}"><period>20</period></periodic></modify-subscription>')
        modified = take(m, "subscription-modified")
        assert modified.findtext(f"{{{SN}}}id") == str(sub)
        assert modified.findtext(f".//{{{YP}}}period") == "20"
        # another session may neither modify nor delete it
        with pytest.raises(RPCError) as err:
            rpc(other, f'<delete-subscription xmlns="{SN}"><id>{sub}</id></delete-subscription>')
        assert err.value.tag == "invalid-value"
        rpc(m, f'<delete-subscription xmlns="{SN}"><id>{sub}</id></delete-subscription>')
        ended = take(m, "subscription-terminated")
        assert ended.findtext(f"{{{SN}}}id") == str(sub)
        # kill-subscription (admin) ends another session's subscription
        victim = establish_periodic(other, 50)
        rpc(m, f'<kill-subscription xmlns="{SN}"><id>{victim}</id></kill-subscription>')
        take(other, "subscription-terminated")
        with pytest.raises(RPCError):
            rpc(m, f'<kill-subscription xmlns="{SN}"><id>{victim}</id></kill-subscription>')


def test_stream_subscription_with_replay_and_stop_time(server: Server) -> None:
    with server.connect() as m:
        before = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() - 5))
        stop = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() + 3))
        # a configuration change makes a netconf-config-change notification on the NETCONF stream
        reply = rpc(m, f'<establish-subscription xmlns="{SN}"><stream>NETCONF</stream>'
                       f"<replay-start-time>{before}</replay-start-time><stop-time>{stop}</stop-time>"
                       f"</establish-subscription>")
        assert reply.findtext(f"{{{SN}}}id")
        take(m, "replay-completed")
        set_port(m, 3333)
        take(m, "netconf-config-change")
        done = take(m, "subscription-completed", timeout=15)
        assert done.findtext(f"{{{SN}}}id") == reply.findtext(f"{{{SN}}}id")


def test_bad_requests_are_precise_errors(server: Server) -> None:
    with server.connect() as m:
        future = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() + 3600))
        with pytest.raises(RPCError) as err:
            rpc(m, f'<establish-subscription xmlns="{SN}"><stream>NETCONF</stream>'
                   f"<replay-start-time>{future}</replay-start-time></establish-subscription>")
        assert "future" in str(err.value)
        with pytest.raises(RPCError) as err:
            rpc(m, f'<modify-subscription xmlns="{SN}"><id>999</id></modify-subscription>')
        assert err.value.tag == "invalid-value"
        with pytest.raises(RPCError):
            rpc(m, f'<establish-subscription xmlns="{SN}"><stream>NETCONF</stream>'
                   f'<encoding xmlns:sn="{SN}">sn:encode-json</encoding></establish-subscription>')


def test_periodic_push_of_the_agents_operational_data(server: Server, tmp_path: Path) -> None:
    """The agent (its own process, no VPP) serves /singbox operational data; a periodic subscription on the
    operational datastore pushes it over NETCONF."""
    agent_state = tmp_path / "agent"
    agent_state.mkdir()
    ready = agent_state / "ready.json"
    agent = subprocess.Popen([sys.executable, "-m", "singbox_agent.agent", "--state-dir", str(agent_state),
                              "--ready-file", str(ready)], env=server.env, stdout=subprocess.DEVNULL,
                             stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 30
        while not ready.exists():
            assert agent.poll() is None and time.monotonic() < deadline, "agent did not start"
            time.sleep(0.05)
        with server.connect() as m:
            rpc(m, f'<establish-subscription xmlns="{SN}">'
                   f'<datastore xmlns="{YP}" xmlns:ds="{DS}">ds:operational</datastore>'
                   f'<datastore-xpath-filter xmlns="{YP}" xmlns:sb="urn:vpp-singbox:yang:vpp-singbox">'
                   f"/sb:singbox/sb:dataplane</datastore-xpath-filter>"
                   f'<periodic xmlns="{YP}"><period>20</period></periodic></establish-subscription>')
            update = take(m, "push-update")
            connected = update.find(".//{urn:vpp-singbox:yang:vpp-singbox}connected")
            assert connected is not None and connected.text == "false"  # no VPP here: what the agent reports
    finally:
        agent.terminate()
        agent.wait(timeout=30)


def test_nacm_hides_from_a_push_what_the_user_may_not_read(server: Server) -> None:
    """bob (no group) subscribes to the whole user list: the push-update names the users but carries no password
    hash (bootstrap's NACM rule), as a <get> would not."""
    from singbox_agent.mgmt.users import hash_password

    bob_pw = "bob-secret-9"
    subprocess.run([sys.executable, "-c", (
        "import sysrepo, sys\n"
        "with sysrepo.SysrepoConnection() as c:\n"
        "  s = c.start_session('running')\n"
        "  s.edit_batch({'system': {'authentication': {'user': [{'name': 'bob', 'password': sys.argv[1]}]}}},"
        " 'ietf-system')\n"
        "  s.apply_changes()\n"), hash_password(bob_pw)], env=server.env, check=True, capture_output=True, timeout=60)
    with manager.connect(host="127.0.0.1", port=server.port, username="bob", password=bob_pw, hostkey_verify=False,
                         look_for_keys=False, allow_agent=False, timeout=60) as m:
        rpc(m, f'<establish-subscription xmlns="{SN}">'
               f'<datastore xmlns="{YP}" xmlns:ds="{DS}">ds:running</datastore>'
               f'<datastore-xpath-filter xmlns="{YP}" xmlns:sys="urn:ietf:params:xml:ns:yang:ietf-system">'
               f"/sys:system</datastore-xpath-filter>"
               f'<periodic xmlns="{YP}"><period>20</period></periodic></establish-subscription>')
        update = take(m, "push-update")
        text = ET.tostring(update, encoding="unicode")
        assert "admin" in text  # the user list itself is readable
        assert "$6$" not in text and "password" not in text, text


NACM = "urn:ietf:params:xml:ns:yang:ietf-netconf-acm"
_DS = f'<datastore xmlns="{YP}" xmlns:ds="{DS}">ds:running</datastore>'
_ON_CHANGE = f'<on-change xmlns="{YP}"><sync-on-start>false</sync-on-start></on-change>'
_PAST = "2020-01-01T00:00:00Z"
# Malformed establish-subscription inputs and what the rpc-error must name: never operation-failed, no traceback,
# and no subscription left behind.
BAD_ESTABLISH = {
    "subtree unknown node in a known module": (
        f'{_DS}<datastore-subtree-filter xmlns="{YP}"><nacm xmlns="{NACM}"><no-such-node/></nacm>'
        f"</datastore-subtree-filter>{_ON_CHANGE}", "no-such-node"),
    "subtree unknown content match node": (
        f'{_DS}<datastore-subtree-filter xmlns="{YP}"><nacm xmlns="{NACM}"><no-such-leaf>x</no-such-leaf>'
        f"<enable-nacm/></nacm></datastore-subtree-filter>{_ON_CHANGE}", "no-such-leaf"),
    "subtree unknown top node in a known module": (
        f'{_DS}<datastore-subtree-filter xmlns="{YP}"><no-such-top xmlns="{NACM}"/>'
        f"</datastore-subtree-filter>{_ON_CHANGE}", "no-such-top"),
    "stream subtree unknown notification": (
        f'<stream>NETCONF</stream><stream-subtree-filter><no-such-notif xmlns="{NACM}"/></stream-subtree-filter>',
        "no-such-notif"),
    "unknown stream": ("<stream>NO-SUCH-STREAM</stream>", "NO-SUCH-STREAM"),
    "xpath undeclared prefix": ("<stream>NETCONF</stream><stream-xpath-filter>/nope:thing</stream-xpath-filter>",
                                "nope"),
    "xpath unknown node": (
        f'{_DS}<datastore-xpath-filter xmlns="{YP}" xmlns:a="{NACM}">/a:nacm/a:no-such-leaf'
        f"</datastore-xpath-filter>{_ON_CHANGE}", "no-such-leaf"),
    "xpath syntax": (
        f'{_DS}<datastore-xpath-filter xmlns="{YP}" xmlns:a="{NACM}">/a:nacm[</datastore-xpath-filter>{_ON_CHANGE}',
        "invalid-value"),
    "stop-time in the past": (f"<stream>NETCONF</stream><stop-time>{_PAST}</stop-time>", "stop-time"),
    "datastore stop-time in the past": (f"{_DS}<stop-time>{_PAST}</stop-time>{_ON_CHANGE}", "stop-time"),
    "period 0": (f'{_DS}<periodic xmlns="{YP}"><period>0</period></periodic>', "period"),
    "dampening on periodic": (
        f'{_DS}<periodic xmlns="{YP}"><period>100</period><dampening-period>10</dampening-period></periodic>',
        "dampening-period"),
    "periodic and on-change": (f'{_DS}<periodic xmlns="{YP}"><period>100</period></periodic>{_ON_CHANGE}',
                               "on-change"),
    "xpath and subtree filter": (
        f'{_DS}<datastore-xpath-filter xmlns="{YP}" xmlns:a="{NACM}">/a:nacm</datastore-xpath-filter>'
        f'<datastore-subtree-filter xmlns="{YP}"><nacm xmlns="{NACM}"/></datastore-subtree-filter>{_ON_CHANGE}',
        "filter"),
    "unknown encoding": ('<stream>NETCONF</stream><encoding xmlns:x="urn:example:x">x:encode-cbor</encoding>',
                         "encode-cbor"),
    "unknown datastore": (f'<datastore xmlns="{YP}" xmlns:x="urn:example:x">x:nowhere</datastore>{_ON_CHANGE}',
                          "nowhere"),
    "datastore not subscribable": (f'<datastore xmlns="{YP}" xmlns:ds="{DS}">ds:intended</datastore>{_ON_CHANGE}',
                                   "intended"),
    "no trigger": (_DS, "on-change"),
    "huge xpath filter": (
        f'{_DS}<datastore-xpath-filter xmlns="{YP}" xmlns:a="{NACM}">/a:nacm'
        + "[a:enable-nacm='true']" * 5000 + f"</datastore-xpath-filter>{_ON_CHANGE}", "max-xpath-predicates"),
}


def _listed(m: Any) -> list[ET.Element]:
    data = ET.fromstring(m.get(filter=("subtree", f'<subscriptions xmlns="{SN}"/>')).data_xml)
    return list(data.iter(f"{{{SN}}}subscription"))


def _refused(m: Any, xml: str, names: str) -> RPCError:
    with pytest.raises(RPCError) as err:
        rpc(m, xml)
    text = ET.tostring(err.value.xml, encoding="unicode") if err.value.xml is not None else str(err.value)
    assert err.value.tag != "operation-failed" and "Traceback" not in text, text
    assert names in text, text
    return err.value


@pytest.mark.parametrize("body,names", list(BAD_ESTABLISH.values()), ids=list(BAD_ESTABLISH))
def test_bad_establish_is_a_precise_error(server: Server, body: str, names: str) -> None:
    """Bad input of establish-subscription gets an rpc-error naming what is wrong (RFC 8639 2.4.2's
    filter-unsupported for a filter the server cannot apply), never operation-failed, and establishes nothing."""
    with server.connect() as m:
        _refused(m, f'<establish-subscription xmlns="{SN}">{body}</establish-subscription>', names)
        assert _listed(m) == []


def test_json_encoding_is_encoding_unsupported(server: Server) -> None:
    """RFC 8640 carries XML only. Every element prefixed: ncclient re-serialises the rpc and drops a prefix
    declaration whose namespace is already the default one, which would leave sn: of the value unbound."""
    with server.connect() as m:
        err = _refused(m, f'<sn:establish-subscription xmlns:sn="{SN}"><sn:stream>NETCONF</sn:stream>'
                          "<sn:encoding>sn:encode-json</sn:encoding></sn:establish-subscription>",
                       "encoding-unsupported")
        assert err.tag == "invalid-value"
        assert _listed(m) == []


BAD_MODIFY = {
    "subtree unknown node": (
        f'<datastore-subtree-filter xmlns="{YP}"><nacm xmlns="{NACM}"><no-such-node/></nacm>'
        "</datastore-subtree-filter>", "no-such-node"),
    "xpath unknown node": (
        f'<datastore-xpath-filter xmlns="{YP}" xmlns:a="{NACM}">/a:nacm/a:nope</datastore-xpath-filter>',
        "filter-unsupported"),
    "xpath syntax": (f'<datastore-xpath-filter xmlns="{YP}" xmlns:a="{NACM}">/a:nacm[</datastore-xpath-filter>',
                     "invalid-value"),
    "period 0": (f'<periodic xmlns="{YP}"><period>0</period></periodic>', "period"),
}


@pytest.mark.parametrize("body,names", list(BAD_MODIFY.values()), ids=list(BAD_MODIFY))
def test_bad_modify_is_a_precise_error(server: Server, body: str, names: str) -> None:
    """modify-subscription with bad input: an rpc-error naming it; the subscription runs on unchanged."""
    with server.connect() as m:
        sub = establish_periodic(m, 500)
        _refused(m, f'<modify-subscription xmlns="{SN}"><id>{sub}</id>{_DS}{body}</modify-subscription>', names)
        (mine,) = _listed(m)
        assert mine.findtext(f"{{{YP}}}datastore-xpath-filter") == "/sbmx:metrics-exporter"
        assert mine.findtext(f"{{{YP}}}periodic/{{{YP}}}period") == "500"


@pytest.mark.parametrize("name", ["delete-subscription", "kill-subscription", "modify-subscription",
                                  "resync-subscription"])
@pytest.mark.parametrize("sub_id", ["12345", "-1", "abc"])
def test_bad_ids_are_precise_errors(server: Server, name: str, sub_id: str) -> None:
    with server.connect() as m:
        ns = YP if name == "resync-subscription" else SN
        _refused(m, f'<{name} xmlns="{ns}"><id>{sub_id}</id></{name}>', "")
