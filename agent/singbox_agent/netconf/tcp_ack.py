"""An SSH packet that brings the session nothing is acknowledged at once (TCP_QUICKACK), not 40 ms later.

A client sends SSH messages that get no answer: SSH_MSG_CHANNEL_WINDOW_ADJUST (paramiko — so ncclient — sends one
each time it has read a tenth of its 2 MiB window: every ~31 small get-config replies), SSH_MSG_IGNORE, keepalive
replies. Our kernel sees a connection that answers what it receives (a request, then the reply) and so delays the
ACK of such a segment (Linux's delayed ACK, 40 ms at least), hoping for a reply to carry it. When the client wrote
its next request right behind it with Nagle's algorithm on (paramiko's socket has it, as most clients' do), that
request waits in the client's kernel for this ACK: the server sat idle for ~40 ms with the request unsent
(issue 17's "45 ms stall every ~60 iterations": strace showed the 64-byte read of the window adjust, then the
event loop in epoll_wait for 40 ms, then the request).

The same wait hit a large request: paramiko sends it as SSH packets of at most 32 KiB, each one TCP segment on
loopback; one segment is not enough for the kernel to acknowledge at once, and the client's Nagle held the short last
packet until it did — a 63 KB edit-config (1,000 NACM groups) waited ~40 ms for its last bytes in 5 of 6 loads.

So after every read of the connection that completed no NETCONF request — one that gave the channel no bytes, or
only part of a request — the pending ACK goes out now (`setsockopt(TCP_QUICKACK)`, one system call, only on such
reads). A read that completed a request is acknowledged by its reply (an ACK of its own would be one more packet per
request for nothing).
"""

from __future__ import annotations

import socket
from typing import Any

_QUICKACK = getattr(socket, "TCP_QUICKACK", None)  # Linux only


class AckTracker:
    """Counts the reads that completed a NETCONF request (`delivered`, bumped by the channel); `install`
    acknowledges every read that moved no count."""

    def __init__(self, sock: Any) -> None:
        self._sock = sock
        self.delivered = 0
        self.acks = 0  # reads acknowledged at once (tests)

    def ack_now(self) -> None:
        try:
            self._sock.setsockopt(socket.IPPROTO_TCP, _QUICKACK, 1)
        except OSError:  # the connection is going
            return
        self.acks += 1


def install(conn: Any) -> AckTracker | None:
    """Wrap the asyncio protocol `conn` (asyncssh's connection; the transport calls `data_received` through the
    instance) so that each read it handles without completing a request is acknowledged at once. None (nothing
    installed) without a TCP socket or without TCP_QUICKACK."""
    sock = conn.get_extra_info("socket")
    if _QUICKACK is None or sock is None or sock.family not in (socket.AF_INET, socket.AF_INET6):
        return None
    tracker = AckTracker(sock)
    inner = conn.data_received

    def data_received(data: bytes, datatype: Any = None) -> None:
        before = tracker.delivered
        inner(data, datatype)
        if tracker.delivered == before:
            tracker.ack_now()

    conn.data_received = data_received
    return tracker
