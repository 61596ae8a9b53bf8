"""The names and addresses a server on this host is reached by, for the subject alternative names of a generated
TLS certificate: the host name, its fully qualified name, and the address it listens on — every address of every
interface when that is a wildcard (0.0.0.0, ::), as clients connect to a concrete one.
"""

from __future__ import annotations

import fcntl
import ipaddress
import socket
import struct
from pathlib import Path

_SIOCGIFADDR = 0x8915
_IF_INET6 = Path("/proc/net/if_inet6")


def _ipv4_addresses() -> list[str]:
    out: list[str] = []
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        for _, name in socket.if_nameindex():
            try:
                packed = fcntl.ioctl(sock.fileno(), _SIOCGIFADDR, struct.pack("256s", name.encode()[:15]))
            except OSError:  # no IPv4 address on this interface
                continue
            out.append(socket.inet_ntoa(packed[20:24]))
    return out


def _ipv6_addresses() -> list[str]:
    """Global and loopback IPv6 addresses (link-local ones need a zone a certificate cannot carry)."""
    try:
        lines = _IF_INET6.read_text().splitlines()
    except OSError:
        return []
    out: list[str] = []
    for line in lines:
        fields = line.split()
        if not fields:
            continue
        address = ipaddress.IPv6Address(int(fields[0], 16))
        if not address.is_link_local:
            out.append(str(address))
    return out


def interface_addresses() -> list[str]:
    return _ipv4_addresses() + _ipv6_addresses()


def server_names(listen_host: str) -> list[str]:
    """Host name, FQDN and the addresses clients may use for a server bound to `listen_host`, without duplicates."""
    names = [socket.gethostname(), socket.getfqdn()]
    try:
        wildcard = ipaddress.ip_address(listen_host).is_unspecified
    except ValueError:  # a name, not an address
        wildcard = False
    names += interface_addresses() if wildcard else [listen_host]
    return list(dict.fromkeys(n for n in names if n))
