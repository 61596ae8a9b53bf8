"""The NETCONF server's request limits: what is NETCONF's own (sans-IO).

The limits are configuration: `/vpp-singbox-netconf-server:netconf-server/limits` (module
`agent/singbox_agent/yang/vpp-singbox-netconf-server@*.yang`), defaults read from that schema. The XPath and
subtree-filter limits and their checks are shared with RESTCONF (`mgmt/request_limits.py`, which says why each
exists); here is the framing's part: the message size is bounded by the framer, XML depth and element count while
the envelope is parsed (`messages.parse_xml`), a reply by max-reply-size, and `check_request` finds every filter of
an `<rpc>` (and, when the message has brackets enough, every value, and with `=` enough, every element's attribute
count) before it goes to libyang. A request beyond a
limit costs milliseconds and gets `too-big` (size) or `resource-denied` with the limit's name.

`max-subscriptions` bounds the subscriptions of all sessions together, RFC 5277 create-subscription and RFC 8639
establish-subscription alike (each holds sysrepo subscriptions with threads of their own): the operations that
make them register a counter of theirs (`counts_subscriptions`) and make one inside `subscription_slot`, which
counts, refuses one past the limit and keeps a second from being made meanwhile.
"""

from __future__ import annotations

import threading
import xml.etree.ElementTree as ET
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, ClassVar

from singbox_agent.mgmt.errors import MgmtException, too_big
from singbox_agent.mgmt.request_limits import (
    RequestLimits, check_subscriptions, check_subtree_filter, check_values, check_xml_attributes, check_xpath,
    denied, may_hold_xpath_beyond,
)

MODULE = "vpp-singbox-netconf-server"
XPATH = f"/{MODULE}:netconf-server/limits"

_FILTERS = frozenset({"filter", "subtree-filter"})

# `limits.check_xpath` is what the operations (ops/common.py, ops/subscribed_notifications.py) call
__all__ = ["MODULE", "XPATH", "Limits", "message_too_big", "reply_too_big", "depth_exceeded", "elements_exceeded",
           "check_request", "check_xpath", "counts_subscriptions", "subscription_slot"]


@dataclass(frozen=True)
class Limits(RequestLimits):
    """The shared limits and NETCONF's own, one field per leaf of the `limits` container."""

    XPATH: ClassVar[str] = XPATH

    max_message_size: int = 64 * 1024 * 1024
    max_xml_depth: int = 64
    max_elements: int = 1_000_000
    max_reply_size: int = 256 * 1024 * 1024


# server -> how many subscriptions of one kind it runs (one counter per operation module that makes them)
_subscription_counters: list[Callable[[Any], int]] = []
_subscription_made = threading.Lock()


def counts_subscriptions(counter: Callable[[Any], int]) -> Callable[[Any], int]:
    """Registers `counter` (a NETCONF server -> its running subscriptions of one kind) with max-subscriptions."""
    _subscription_counters.append(counter)
    return counter


@contextmanager
def subscription_slot(server: Any, limits: Limits) -> Iterator[None]:
    """Room for one more subscription on `server`, all its sessions' kinds counted: the body makes it (and makes
    it count) before another can be counted. :raises MgmtException: resource-denied past max-subscriptions."""
    with _subscription_made:
        check_subscriptions(sum(count(server) for count in _subscription_counters), limits, "NETCONF subscriptions")
        yield


def message_too_big(size: int, limits: Limits) -> MgmtException:
    return too_big(f"The request of {size} bytes or more exceeds max-message-size, {limits.max_message_size} bytes "
                   f"({XPATH}).", error_type="rpc")


def reply_too_big(size: int, limits: Limits) -> MgmtException:
    return too_big(f"The reply of {size} bytes exceeds max-reply-size, {limits.max_reply_size} bytes ({XPATH}).",
                   error_type="application")


def depth_exceeded(limits: Limits) -> MgmtException:
    return denied(limits, "max-xml-depth", f"The request nests elements deeper than {limits.max_xml_depth}")


def elements_exceeded(limits: Limits) -> MgmtException:
    return denied(limits, "max-elements", f"The request has more than {limits.max_elements} elements")


def check_request(op: ET.Element, limits: Limits, raw: bytes = b"") -> None:
    """Every filter of an operation (`filter`, get-data's `subtree-filter` and `xpath-filter`, in any namespace)
    within the limits, and so every other value (`request_limits.check_values`). :raises MgmtException:
    resource-denied."""
    check_xml_attributes(raw, limits)
    if may_hold_xpath_beyond(raw, limits):
        check_values((value for el in op.iter() for value in (el.text, *el.attrib.values())), limits)
    if raw and b"filter" not in raw:
        return  # no element named *filter: an edit of 10,000 entries need not be walked in Python
    for el in op.iter():
        local = el.tag.rpartition("}")[2]
        if local in _FILTERS:
            check_subtree_filter(sum(1 for _ in el.iter()) - 1, limits)
            select = el.get("select")
            if select is not None:
                check_xpath(select, limits)
        elif local == "xpath-filter":
            check_xpath(el.text or "", limits)
