"""No SSH_MSG_IGNORE before every packet unless the cipher is CBC.

asyncssh (2.24) sends an SSH_MSG_IGNORE ahead of every packet it sends after the key exchange — RFC 4251 9.3.1's
countermeasure against the chosen-plaintext attack on CBC mode, where the next packet's IV is the last ciphertext
block. With the modes clients negotiate (paramiko, so ncclient: aes128-ctr; OpenSSH: chacha20-poly1305, AES-GCM) it
protects nothing, and neither OpenSSH nor libssh (netopeer2) sends it. It doubled the packets of every reply: one
more packet for our server to encrypt and sign, and for the client to read, decrypt and verify (paramiko does it in
Python, per packet) — on a one-leaf edit's round trip (issue 17). With a CBC cipher asyncssh's behaviour stays.
"""

from __future__ import annotations

from typing import Any

from asyncssh.constants import MSG_IGNORE


def install(conn: Any) -> None:
    """Wrap `conn.send_packet` (asyncssh's connection; its countermeasure calls it through the instance) so that the
    countermeasure's SSH_MSG_IGNORE goes out only while the cipher towards the client is CBC. Nothing else of ours
    sends SSH_MSG_IGNORE."""
    inner = conn.send_packet

    def send_packet(pkttype: int, *args: bytes, **kwargs: Any) -> None:
        if pkttype == MSG_IGNORE and not str(conn.get_extra_info("send_cipher", "")).endswith("-cbc"):
            return
        inner(pkttype, *args, **kwargs)

    conn.send_packet = send_packet
