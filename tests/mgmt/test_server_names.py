"""The RESTCONF certificate names what clients connect to: host name, FQDN, listen address (every interface
address for a wildcard), and is made again when it does not cover them."""

from __future__ import annotations

import ipaddress
import socket
from pathlib import Path

from cryptography import x509

from singbox_agent.mgmt.hostnames import interface_addresses, server_names
from singbox_agent.restconf.tls import ensure_certificate


def _names(cert_path: Path) -> set[str]:
    cert = x509.load_pem_x509_certificate(cert_path.read_bytes())
    san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    return {str(n.value) for n in san}


def test_wildcard_listen_names_every_interface_address() -> None:
    names = server_names("0.0.0.0")
    assert socket.gethostname() in names and socket.getfqdn() in names
    assert "127.0.0.1" in names and set(interface_addresses()) <= set(names)
    assert server_names("192.0.2.7")[-1] == "192.0.2.7"
    assert not any(ipaddress.ip_address(a).is_link_local for a in interface_addresses())


def test_certificate_covers_the_names_and_is_remade_for_new_ones(tmp_path: Path) -> None:
    files = ensure_certificate(tmp_path, ["appliance.example", "192.0.2.7"])
    names = _names(files.certfile)
    assert {"localhost", "127.0.0.1", "::1", "appliance.example", "192.0.2.7"} <= names
    first = files.certfile.read_bytes()
    assert ensure_certificate(tmp_path, ["192.0.2.7"]).certfile.read_bytes() == first  # covered: kept
    ensure_certificate(tmp_path, ["192.0.2.8"])
    assert "192.0.2.8" in _names(files.certfile)
