"""The planner and the YANG mapping, without sysrepo: order, inverses, and undo against the plugin's rules."""

from __future__ import annotations

from pathlib import Path

import pytest

from singbox_agent.agent.mapping import Change, RunningConfig, derive, split_path, unit_of
from singbox_agent.agent.planner import plan, undo_plan
from singbox_agent.dataplane.memory import MemoryDataplane
from singbox_agent.dataplane.objects import FACTORY, DataplaneError, Key, UserSpec, Value
from tests.agent.specs import endpoint_spec, interface_spec, listener_spec, server_settings

T = "/vpp-singbox:singbox"


def config(*changes: tuple[str, object]) -> RunningConfig:
    rc = RunningConfig()
    rc.updated(rc.changed_units([Change("created", p, v) for p, v in changes]))
    return rc


def test_split_path_handles_both_quotes_and_prefixes() -> None:
    assert split_path(f"{T}/client/interface[name=\"it's\"]/bypass-prefix[.='10.0.0.0/8']") == [
        ("singbox", None), ("client", None), ("interface", "it's"), ("bypass-prefix", "10.0.0.0/8")]
    assert split_path(f"{T}/server/authentication/user[username='a\"b']/password") == [
        ("singbox", None), ("server", None), ("authentication", None), ("user", 'a"b'), ("password", None)]


def test_units_of_paths() -> None:
    def unit(p: str) -> object:
        located = unit_of(split_path(T + p))
        return located[0] if located else None

    assert unit("/client/endpoint[name='e']/health-check/interval") == ("endpoint", "e")
    assert unit("/client/interface[name='i']/bypass-prefix[.='1.0.0.0/8']") == ("interface", "i")
    assert unit("/client/connection-pool/enabled") == ("client",)
    assert unit("/client/default-endpoint") == ("default-endpoint",)
    assert unit("/server/enabled") == ("server-enabled",)
    assert unit("/server/authentication/method") == ("server",)
    assert unit("/server/authentication/user[username='u']/password") == ("user", "u")
    assert unit("/server/allowed-client-prefix[.='10.0.0.0/8']") == ("allowed-prefix", "10.0.0.0/8")
    assert unit("/server/listen[name='l']/port") == ("listener", "l")
    assert unit("/client") is None


def test_derive_applies_yang_defaults() -> None:
    assert derive(("endpoint", "e"), {"address": "192.0.2.1"}) == {("endpoint", "e"): endpoint_spec("192.0.2.1")}
    assert derive(("interface", "i"), {"enabled": False, "bypass-prefix": {"10.0.0.0/8": None}}) == {}
    assert derive(("interface", "i"), {"bypass-prefix": {"10.0.0.0/8": None}}) == {
        ("interface", "i"): interface_spec(), ("bypass", "i", "10.0.0.0/8"): True}
    assert derive(("server",), {"allowed-command": {"udp-associate": None}}) == {
        ("server",): server_settings(allow_connect=False, allow_udp_associate=True)}


def test_defaults_come_from_the_installed_module(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A leaf left out takes the default of the module in the context given (sysrepo's, in the agent), not a
    literal of the mapping: a module whose endpoint port defaults to 2080 gives 2080."""
    import libyang

    from singbox_agent.agent import defaults

    shipped = next((Path(__file__).resolve().parents[2] / "yang").glob("vpp-singbox@*.yang"))
    text = shipped.read_text()
    port = 'leaf port {\n          type port;\n          default "1080";'
    assert text.count(port) == 2  # the endpoint's, then the listener's
    (tmp_path / shipped.name).write_text(text.replace(port, port.replace('"1080"', '"2080"'), 1))
    for f in shipped.parent.glob("iana-*.yang"):
        (tmp_path / f.name).write_text(f.read_text())
    monkeypatch.setattr(defaults, "_current", None)
    ctx = libyang.Context(f"{tmp_path}:/usr/share/yang/modules/sysrepo")
    try:
        ctx.load_module("vpp-singbox").feature_enable_all()
        defaults.use_context(ctx)
    finally:
        ctx.destroy()
    assert derive(("endpoint", "e"), {"address": "192.0.2.1"})[("endpoint", "e")].port == 2080  # type: ignore
    monkeypatch.setattr(defaults, "_current", None)
    assert derive(("endpoint", "e"), {"address": "192.0.2.1"})[("endpoint", "e")].port == 1080  # type: ignore


def test_dependencies_are_ordered_both_ways() -> None:
    new = {("endpoint", "a"): endpoint_spec("192.0.2.1"), ("interface", "i"): interface_spec("a"),
           ("bypass", "i", "10.0.0.0/8"): True, ("default-endpoint",): "a"}
    create = [op.describe() for op in plan({}, new)]
    assert create == ["put endpoint 'a'", "put default-endpoint", "put interface 'i'",
                      "put bypass 'i' '10.0.0.0/8'"]
    delete = [op.describe() for op in plan(new, {("default-endpoint",): ""})]
    assert delete == ["delete bypass 'i' '10.0.0.0/8'", "delete interface 'i'", "put default-endpoint",
                      "delete endpoint 'a'"]


def test_moving_an_interface_to_another_endpoint_deletes_the_old_one_last() -> None:
    old = {("endpoint", "a"): endpoint_spec("192.0.2.1"), ("interface", "i"): interface_spec("a")}
    new = {("endpoint", "b"): endpoint_spec("192.0.2.2"), ("interface", "i"): interface_spec("b")}
    assert [op.describe() for op in plan(old, new)] == [
        "put endpoint 'b'", "put interface 'i'", "delete endpoint 'a'"]
    dp = MemoryDataplane()
    for op in plan(FACTORY, {**FACTORY, **old}) + plan(old, new):
        dp.apply(op)
    assert dp.objects == {**FACTORY, **new}


def test_server_stops_before_its_listeners_go_and_starts_after_they_come() -> None:
    on = {("server-enabled",): True, ("listener", "l"): listener_spec("0.0.0.0"), ("user", "u"): UserSpec("$6$x")}
    off = {("server-enabled",): False}
    assert [op.describe() for op in plan(off, on)][-1] == "put server-enabled"
    assert [op.describe() for op in plan(on, off)][0] == "put server-enabled"


BIG: dict[Key, Value] = {
    ("endpoint", "a"): endpoint_spec("192.0.2.1", username="u", password="p"),
    ("endpoint", "b"): endpoint_spec("192.0.2.2"),
    ("default-endpoint",): "a",
    ("interface", "i1"): interface_spec("b"),
    ("interface", "i2"): interface_spec(""),
    ("bypass", "i1", "10.0.0.0/8"): True,
    ("listener", "l"): listener_spec("0.0.0.0", 1080),
    ("user", "u"): UserSpec("$6$salt$hash"),
    ("allowed-prefix", "10.0.0.0/8"): True,
    ("server-enabled",): True,
}


@pytest.mark.parametrize("direction", ["create", "delete", "modify"])
def test_undo_after_failure_at_every_step_restores_the_dataplane(direction: str) -> None:
    base = {**FACTORY, **BIG} if direction != "create" else dict(FACTORY)
    if direction == "create":
        target = {**FACTORY, **BIG}
    elif direction == "delete":
        target = dict(FACTORY)
    else:
        target = {**base, ("endpoint", "b"): endpoint_spec("192.0.2.9"), ("interface", "i1"): interface_spec("a"),
                  ("default-endpoint",): "b", ("server-enabled",): False}
        del target[("bypass", "i1", "10.0.0.0/8")]
    ops = plan(base, target)
    assert len(ops) >= 3
    for step in range(len(ops)):
        dp = MemoryDataplane()
        for op in plan(FACTORY, base):
            dp.apply(op)
        before = dict(dp.objects)
        dp.fail_after = step
        applied = []
        with pytest.raises(DataplaneError):
            for op in ops:
                dp.apply(op)
                applied.append(op)
        assert len(applied) == step
        for op in undo_plan(applied):
            dp.apply(op)
        assert dp.objects == before, f"failure at step {step + 1} of {len(ops)}"
    dp = MemoryDataplane()
    for op in plan(FACTORY, base) + ops:
        dp.apply(op)
    assert dp.objects == target


def test_memory_dataplane_enforces_the_plugin_rules() -> None:
    dp = MemoryDataplane()
    for op in plan(FACTORY, {**FACTORY, ("endpoint", "a"): endpoint_spec("192.0.2.1"),
                             ("interface", "i"): interface_spec("a")}):
        dp.apply(op)
    with pytest.raises(DataplaneError, match="in use"):
        dp.apply(plan({("endpoint", "a"): endpoint_spec("192.0.2.1")}, {})[0])
    with pytest.raises(DataplaneError, match="no endpoint"):
        dp.apply(plan({}, {("interface", "j"): interface_spec("zz")})[0])
    with pytest.raises(DataplaneError, match="not enabled"):
        dp.apply(plan({}, {("bypass", "j", "10.0.0.0/8"): True})[0])
    with pytest.raises(DataplaneError, match="no such entry"):
        dp.apply(plan({("listener", "x"): listener_spec("0.0.0.0")}, {})[0])


def test_changes_touch_only_their_units() -> None:
    rc = config(*[(f"{T}/client/endpoint[name='e{i}']/address", f"192.0.2.{i}") for i in range(1, 50)])
    touched = rc.changed_units([Change("modified", f"{T}/client/endpoint[name='e7']/port", 2000)])
    assert list(touched) == [("endpoint", "e7")]
    assert rc.units[("endpoint", "e7")].get("port") is None  # copy-on-write: the cache is unchanged
    gone = rc.changed_units([Change("deleted", f"{T}/client/endpoint[name='e7']")])
    assert gone == {("endpoint", "e7"): None}
    # nested data (a list inside the unit, a leaf-list) is copied too, not shared with the cache
    group = f"{T}/client/endpoint-group[name='g']"
    rc.updated(rc.changed_units([Change("created", f"{group}/member[endpoint='e1']/weight", 5),
                                 Change("created", f"{group}/member[endpoint='e2']/weight", 7)]))
    iface = f"{T}/client/interface[name='i']"
    rc.updated(rc.changed_units([Change("created", f"{iface}/bypass-prefix[.='10.0.0.0/8']", "10.0.0.0/8")]))
    before = (rc.units[("endpoint-group", "g")], rc.units[("interface", "i")])
    snapshot = repr(before)
    touched = rc.changed_units([Change("modified", f"{group}/member[endpoint='e1']/weight", 9),
                                Change("deleted", f"{group}/member[endpoint='e2']"),
                                Change("created", f"{iface}/bypass-prefix[.='192.0.2.0/24']", "192.0.2.0/24")])
    assert repr(before) == snapshot, before
    assert touched[("endpoint-group", "g")] == {"member": {"e1": {"weight": 9}}}, touched
    interface = touched[("interface", "i")]
    assert interface is not None and set(interface["bypass-prefix"]) == {"10.0.0.0/8", "192.0.2.0/24"}, touched
