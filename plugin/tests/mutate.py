#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
# Copyright (c) 2026 vpp-singbox authors
"""Proves the unit tests can fail: breaks the core in ways that matter, one at a time, and checks
that the test binary notices each. Run by `make mutation`; prints one line per mutant."""

import os
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
PLUGIN = os.path.dirname(HERE)
SINGBOX = os.path.join(PLUGIN, "singbox")

# (what the mutant breaks, text in socks5_proto.c, replacement[, file if not the .c])
MUTANTS = [
    ("method chosen without being offered",
     "if (userpass && (s->methods & SOCKS5_METHOD_F_USERPASS))",
     "if ((s->methods & SOCKS5_METHOD_F_USERPASS))"),
    ("username/password not preferred",
     "if (userpass && (s->methods & SOCKS5_METHOD_F_USERPASS))",
     "if (0)"),
    ("input over-consumed past the message",
     "  n = want - *rx_len;\n", "  n = len - *pos;\n"),
    ("NMETHODS=0 gets no 0xFF",
     "socks5_out_put2 (out, SOCKS5_VERSION, SOCKS5_METHOD_NO_ACCEPTABLE);", ";"),
    ("greeting version not checked",
     "if (rx[0] != SOCKS5_VERSION)\n\t    {\n\t      t = socks5_server_fail (s, ev, out, SOCKS5_ERR_BAD_VERSION, 0);\n\t      goto done;\n\t    }\n\t  if (!socks5_fill (rx, &s->rx_len, 2, data, len, &pos))\n\t    goto need_data;\n\t  if (rx[1] == 0)",
     "if (0)\n\t    {\n\t      t = socks5_server_fail (s, ev, out, SOCKS5_ERR_BAD_VERSION, 0);\n\t      goto done;\n\t    }\n\t  if (!socks5_fill (rx, &s->rx_len, 2, data, len, &pos))\n\t    goto need_data;\n\t  if (rx[1] == 0)"),
    ("RFC 1929 version not checked",
     "if (rx[0] != SOCKS5_AUTH_VERSION)\n\t    {\n\t      t = socks5_server_fail",
     "if (0)\n\t    {\n\t      t = socks5_server_fail"),
    ("empty domain accepted",
     "(p[1] == 0 || memchr (p + 2, 0, p[1]))", "(memchr (p + 2, 0, p[1]))"),
    ("NUL in domain accepted",
     "(p[1] == 0 || memchr (p + 2, 0, p[1]))", "(p[1] == 0)"),
    ("BIND accepted", "  if (cmd == SOCKS5_CMD_UDP_ASSOCIATE)",
     "  if (cmd == SOCKS5_CMD_BIND) return 1;\n  if (cmd == SOCKS5_CMD_UDP_ASSOCIATE)"),
    ("failed auth leaves the session open",
     "      s->state = SOCKS5_SERVER_CLOSED;\n      s->error = SOCKS5_ERR_AUTH_FAILED;",
     "      s->state = SOCKS5_SERVER_REQUEST;\n      s->error = SOCKS5_ERR_AUTH_FAILED;"),
    ("credentials kept after the check", "  memset (s->rx, 0, s->rx_len);\n", ""),
    ("UDP fragments accepted", "  if (h->frag != 0)\n", "  if (0)\n"),
    ("DNS failure mapped to 0x01",
     "_ (DNS_FAILURE, SOCKS5_REP_HOST_UNREACHABLE", "_ (DNS_FAILURE, SOCKS5_REP_GENERAL_FAILURE",
     "socks5_proto.h"),
    ("client follows an unoffered method",
     "if (c->method == SOCKS5_METHOD_USERPASS && c->offer_userpass)",
     "if (c->method == SOCKS5_METHOD_USERPASS)"),
    ("client ignores a failure REP",
     "if (rx[1] != SOCKS5_REP_SUCCEEDED)\n\t    {\n\t      t = socks5_client_fail",
     "if (0)\n\t    {\n\t      t = socks5_client_fail"),
    ("reply BND port byte order swapped",
     "  p[n++] = (uint8_t) (a->port >> 8);\n  p[n++] = (uint8_t) a->port;",
     "  p[n++] = (uint8_t) a->port;\n  p[n++] = (uint8_t) (a->port >> 8);"),
    ("IPv6 length wrong", "      return SOCKS5_HDR_LEN + 16 + 2;", "      return SOCKS5_HDR_LEN + 16 + 1;"),
    ("errno sign not normalised", "  if (err < 0)\n    err = -err;\n", ""),
    ("pipelined client follows a method it did not offer",
     "if (c->method != (c->offer_userpass ? SOCKS5_METHOD_USERPASS : SOCKS5_METHOD_NO_AUTH))",
     "if (0)"),
    ("pipelined client keeps the credentials",
     "\tsocks5_client_put_auth (c, out);\n      socks5_client_forget_credentials (c);",
     "\tsocks5_client_put_auth (c, out);"),
    ("pipelined client writes the request again after auth",
     "\t  if (!c->pipeline)\n\t    socks5_client_put_request (c, out);",
     "\t  socks5_client_put_request (c, out);"),
    ("deferred request accepted twice",
     "  if (!c->pipeline || c->request_sent)", "  if (!c->pipeline)"),
    ("deferred request waits in READY forever",
     "  if (c->state == SOCKS5_CLIENT_READY)\n    c->state = SOCKS5_CLIENT_REPLY;", ""),
]


def main() -> int:
    cc = os.environ.get("GCC", "gcc")
    survived = 0
    with tempfile.TemporaryDirectory() as tmp:
        for name, old, new, *target in MUTANTS:
            target_file = target[0] if target else "socks5_proto.c"
            sources = {}
            for fn in ("socks5_proto.c", "socks5_proto.h"):
                with open(os.path.join(SINGBOX, fn)) as f:
                    sources[fn] = f.read()
            if old not in sources[target_file]:
                print(f"STALE    {name}: pattern not found in {target_file}")
                survived += 1
                continue
            sources[target_file] = sources[target_file].replace(old, new, 1)
            for fn, text in sources.items():
                with open(os.path.join(tmp, fn), "w") as f:
                    f.write(text)
            mutant = os.path.join(tmp, "socks5_proto.c")
            exe = os.path.join(tmp, "t")
            build = subprocess.run(
                [cc, "-std=c11", "-O1", "-w", f"-I{tmp}", f"-I{HERE}", "-o", exe, mutant,
                 f"{HERE}/socks5_driver.c", f"{HERE}/harness.c", f"{HERE}/test_socks5.c"],
                capture_output=True, text=True)
            if build.returncode:
                print(f"NOBUILD  {name}\n{build.stderr}")
                survived += 1
                continue
            run = subprocess.run([exe], capture_output=True, text=True, timeout=120)
            if run.returncode == 0:
                print(f"SURVIVED {name}")
                survived += 1
            else:
                fails = [line[5:] for line in run.stdout.splitlines() if line.startswith("FAIL ")]
                print(f"killed   {name}: {', '.join(fails) or 'crash'}")
    print(f"{len(MUTANTS) - survived} killed, {survived} survived")
    return 1 if survived else 0


if __name__ == "__main__":
    sys.exit(main())
