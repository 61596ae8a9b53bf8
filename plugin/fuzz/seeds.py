#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
# Copyright (c) 2026 vpp-singbox authors
"""Writes the seed corpus under corpus/<fuzzer>/: one valid handshake per path through the code,
laid out as each fuzzer reads its input (parameter bytes first; see the fuzzers' comments)."""

import os
import struct

HERE = os.path.dirname(os.path.abspath(__file__))


def addr(kind: str) -> bytes:
    if kind == "v4":
        return b"\x01" + bytes([192, 0, 2, 1]) + struct.pack(">H", 443)
    if kind == "v6":
        return b"\x04" + bytes([0x20, 0x01, 0x0d, 0xb8] + [0] * 11 + [1]) + struct.pack(">H", 80)
    return b"\x03" + bytes([11]) + b"example.com" + struct.pack(">H", 8080)


def auth(user: bytes, pw: bytes) -> bytes:
    return bytes([1, len(user)]) + user + bytes([len(pw)]) + pw


def request(cmd: int, kind: str) -> bytes:
    return bytes([5, cmd, 0]) + addr(kind)


def reply(rep: int, kind: str) -> bytes:
    return bytes([5, rep, 0]) + addr(kind)


NO_AUTH_ALL_CMDS = 0x01 | 0x0C | 0x10  # methods, commands, accept any credentials
USERPASS_ALL_CMDS = 0x02 | 0x0C
BOTH_ALL_CMDS = 0x03 | 0x0C
API = 0x80

SEEDS = {
    "fuzz_server": {
        "noauth-v4": bytes([NO_AUTH_ALL_CMDS, 0x40, 0]) + b"\x05\x01\x00" + request(1, "v4"),
        "userpass-domain": bytes([USERPASS_ALL_CMDS, 0xC0, 0]) + b"\x05\x01\x02"
        + auth(b"alice", b"secret") + request(1, "domain"),
        "both-v6-split": bytes([BOTH_ALL_CMDS, 0x80, 3, 1, 2, 5]) + b"\x05\x02\x00\x02"
        + auth(b"alice", b"secret") + request(1, "v6") + b"GET / HTTP/1.1\r\n",
        "udp-associate": bytes([NO_AUTH_ALL_CMDS, 0x40, 1, 1]) + b"\x05\x01\x00" + request(3, "v4"),
        "wrong-password": bytes([USERPASS_ALL_CMDS, 0, 0]) + b"\x05\x01\x02"
        + auth(b"alice", b"wrong") + request(1, "v4"),
        "refused": bytes([NO_AUTH_ALL_CMDS, 0x05, 0]) + b"\x05\x01\x00" + request(1, "domain"),
        "bind": bytes([NO_AUTH_ALL_CMDS, 0, 0]) + b"\x05\x01\x00" + request(2, "v4"),
        "nmethods-0": bytes([BOTH_ALL_CMDS, 0, 0]) + b"\x05\x00",
        "socks4": bytes([BOTH_ALL_CMDS, 0, 0]) + b"\x04\x01\x00\x50\xc0\x00\x02\x01\x00",
        "long-creds": bytes([USERPASS_ALL_CMDS | 0x10, 0, 0]) + b"\x05\x01\x02"
        + auth(b"u" * 255, b"p" * 255) + request(1, "v4"),
        # API sequences (top bit): op&3 = 0 feed <n>, 1 auth_result, 2 reply <rep>, 3 abort <reason>
        "api-noauth": bytes([API | NO_AUTH_ALL_CMDS, 0x00, 13]) + b"\x05\x01\x00" + request(1, "v4")
        + bytes([0x06, 0x00, 0x03, 0x00, 0x00, 0x04]) + b"data",
        "api-userpass": bytes([API | USERPASS_ALL_CMDS, 0x00, 3]) + b"\x05\x01\x02"
        + bytes([0x00, 15]) + auth(b"alice", b"secret") + bytes([0x05, 0x00, 10]) + request(1, "v4")
        + bytes([0x02, 0x05, 0x00, 0x00, 0x01]),
        "api-abort": bytes([API | BOTH_ALL_CMDS, 0x00, 2]) + b"\x05\x01" + bytes([0x03, 0x06, 0x02, 0x00]),
    },
    "fuzz_client": {
        "noauth-v4": bytes([0x00, 0]) + b"\x05\x00" + reply(0, "v4") + b"relay",
        "userpass-domain": bytes([0x09, 5, 6, 0]) + b"\x05\x02\x01\x00" + reply(0, "domain"),
        "v6-bytewise": bytes([0x04, 2, 1, 1]) + b"\x05\x00" + reply(0, "v6"),
        "refused": bytes([0x00, 0]) + b"\x05\x00" + reply(5, "v4"),
        "no-acceptable": bytes([0x01, 3, 3, 0]) + b"\x05\xff",
        "auth-failed": bytes([0x01, 3, 3, 0]) + b"\x05\x02\x01\x01",
        "udp": bytes([0x02, 0]) + b"\x05\x00" + reply(0, "v4"),
    },
    "fuzz_pair": {
        "noauth-v4": bytes([0x00, 0x00, 0x01, 0xBB, 0, 0]) + b"relay data",
        "userpass-domain": bytes([0x11, 0x00, 0x1F, 0x90, 10]) + b"example.com"
        + bytes([5, 6]) + b"alice" + b"secret" + bytes([2, 1, 3, 1, 1]) + b"hello",
        "wrong-password": bytes([0x03, 0x00, 0, 80, 5, 6]) + b"alice" + b"secret" + bytes([0, 0]),
        "refused-v6": bytes([0x08, 0x85, 0, 22, 0, 0]),
        "udp-both": bytes([0x24, 0x00, 0x13, 0x88, 0, 0]),
    },
    "fuzz_udp": {
        "v4": b"\x00\x00\x00" + addr("v4") + b"payload",
        "v6": b"\x00\x00\x00" + addr("v6") + b"payload",
        "domain": b"\x00\x00\x00" + addr("domain") + b"payload",
        "frag": b"\x00\x00\x01" + addr("v4") + b"payload",
    },
    # HTTP CONNECT: [splits count, sizes...] response; the server's first byte picks its reply
    "fuzz_http_client": {
        "singbox-200": b"\x00HTTP/1.1 200 Connection established\r\n\r\n\x16\x03\x01",
        "headers-lf": b"\x02\x03\x01HTTP/1.0 200 OK\nProxy-Agent: x\n\nTUNNEL",
        "interim": b"\x00HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\n\r\n",
        "407": b"\x00HTTP/1.1 407 Proxy Authentication Required\r\nProxy-Authenticate: Basic\r\n\r\n",
        "socks-reply": b"\x00\x05\x00",
    },
    "fuzz_http_server": {
        "curl": b"\x01\x00CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\n"
                b"User-Agent: curl/8\r\nProxy-Connection: Keep-Alive\r\n\r\n\x16\x03",
        "auth-v6": b"\x02\x01\x05CONNECT [2001:db8::1]:80 HTTP/1.1\r\n"
                   b"Proxy-Authorization: Basic dXNlcjpwYXNz\r\n\r\n",
        "get": b"\x01\x00GET http://h/ HTTP/1.1\r\nHost: h\r\n\r\n",
        "content": b"\x03\x00CONNECT h:1 HTTP/1.1\r\nContent-Length: 2\r\n\r\nhi",
    },
}


def main() -> None:
    for fuzzer, seeds in SEEDS.items():
        d = os.path.join(HERE, "corpus", fuzzer)
        os.makedirs(d, exist_ok=True)
        for name, data in seeds.items():
            with open(os.path.join(d, name), "wb") as f:
                f.write(data)


if __name__ == "__main__":
    main()
