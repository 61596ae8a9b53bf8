"""Dataplane objects as the mapping makes them: every field the test does not give is the YANG default (read from
the schema by the mapping), so tests restate no default either. Positional arguments follow the object's fields."""

from __future__ import annotations

from dataclasses import fields, replace
from typing import Any, TypeVar

from singbox_agent.agent.mapping import derive
from singbox_agent.dataplane import objects

T = TypeVar("T")


def _spec(unit: tuple[str, ...], data: dict[str, Any], kind: type[T], args: tuple[Any, ...],
          kw: dict[str, Any]) -> T:
    base = derive(unit, data)[unit]
    assert isinstance(base, kind)
    names = [f.name for f in fields(base)]  # type: ignore[arg-type]
    return replace(base, **dict(zip(names, args)), **kw)  # type: ignore[type-var]


def endpoint_spec(*args: Any, **kw: Any) -> objects.EndpointSpec:
    return _spec(("endpoint", "e"), {"address": ""}, objects.EndpointSpec, args, kw)


def interface_spec(*args: Any, **kw: Any) -> objects.InterfaceSpec:
    return _spec(("interface", "i"), {}, objects.InterfaceSpec, args, kw)


def client_settings(*args: Any, **kw: Any) -> objects.ClientSettings:
    return _spec(("client",), {}, objects.ClientSettings, args, kw)


def server_settings(*args: Any, **kw: Any) -> objects.ServerSettings:
    return _spec(("server",), {}, objects.ServerSettings, args, kw)


def listener_spec(*args: Any, **kw: Any) -> objects.ListenerSpec:
    return _spec(("listener", "l"), {"address": ""}, objects.ListenerSpec, args, kw)
