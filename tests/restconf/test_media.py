"""Accept negotiation (RFC 9110 §12.5.1) without a server: qualities, specificity, 406."""

from __future__ import annotations

import pytest

from singbox_agent.restconf.errors import RestconfError
from singbox_agent.restconf.media import response_encoding
from singbox_agent.restconf.uri import Encoding

JSON, XML = Encoding.JSON, Encoding.XML


@pytest.mark.parametrize(("accept", "expected"), [
    # a type excluded by q=0 stays excluded under a wildcard: the more specific range has precedence
    ("application/yang-data+json;q=0, */*", XML),
    ("application/yang-data+xml;q=0, application/*", JSON),
    ("application/yang-data+json;q=0, application/*;q=0.2, */*", XML),  # application/* before */*
    ("application/yang-data+xml;q=0.5, application/yang-data+json;q=0.9", JSON),
    ("application/*;q=0.1, application/yang-data+xml", XML),
    ("*/*;q=0.5, application/yang-data+xml;q=0.4", JSON),  # the wildcard's 0.5 is JSON's quality
    ("application/yang-data+xml;q=0.5, application/yang-data+json;q=0.5", XML),  # a tie: the first named
    ("application/yang-data+xml, */*", XML),
    ("text/html, */*;q=0.1", JSON),
    ("APPLICATION/YANG-DATA+XML", XML),
    ("application/xml", XML),
    ("application/yang-data+xml;q=nan, application/yang-data+json;q=0.1", JSON),  # no qvalue: not a weight
    ("application/yang-data+xml;q=2, application/yang-data+json;q=0.1", JSON),
    (None, JSON),
    ("", JSON),
])
def test_accept(accept: str | None, expected: Encoding) -> None:
    assert response_encoding(accept) == expected


@pytest.mark.parametrize("accept", ["text/html", "application/yang-data+json;q=0",
                                    "application/yang-data+json;q=0, application/yang-data+xml;q=0"])
def test_not_acceptable(accept: str) -> None:
    with pytest.raises(RestconfError) as caught:
        response_encoding(accept)
    assert caught.value.status == 406


def test_wildcards_take_the_default() -> None:
    assert response_encoding("*/*", XML) == XML and response_encoding("application/*", XML) == XML
