"""What the NETCONF server's process imports (issue 17: RSS): every module costs memory for as long as it runs."""

from __future__ import annotations

import subprocess
import sys
import xml.etree.ElementTree as ET
from xml.sax.saxutils import escape as sax_escape

import pytest

from singbox_agent.netconf import messages

# Neither the NETCONF server nor any of its operations need these: the other services (RESTCONF, the agent, the
# dataplane), HTTP clients and servers, and what xml.sax.saxutils pulls in for its escape() (~1 MB).
NOT_IMPORTED = (
    "singbox_agent.restconf", "singbox_agent.agent", "singbox_agent.dataplane", "httpx", "h11", "pydantic",
    "xml.sax", "urllib.request", "http.client", "email.parser",
)


def test_the_server_imports_nothing_it_does_not_use() -> None:
    code = ("import sys, singbox_agent.netconf.__main__, singbox_agent.netconf.ops; "
            f"print(sorted(m for m in sys.modules if m.startswith({NOT_IMPORTED!r})))")
    out = subprocess.run([sys.executable, "-W", "ignore", "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


@pytest.mark.parametrize("text", ["plain", "a < b && c > d", "<x y=\"1\" z='2'>\n\t\r</x>", "", "ü &amp; ©"])
def test_escaping_is_xml(text: str) -> None:
    assert messages.escape(text) == sax_escape(text)
    element = ET.fromstring(f"<e a={messages.quoteattr(text)}>{messages.escape(text)}</e>")
    assert element.get("a") == text
    assert (element.text or "") == text.replace("\r", "\n")  # XML's line-end normalisation of character data
