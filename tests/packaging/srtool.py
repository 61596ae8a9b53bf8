"""What the install test reads and writes of sysrepo on the appliance, with the appliance's own python3 and
libsysrepo7 (ctypes): the appliance has no sysrepo tools (trixie-backports' sysrepoctl and sysrepocfg are sysrepo
5's, not installable next to libsysrepo7), and after a purge no venv of the product either. Independent of the
product's code, whose work it checks.

  python3 srtool.py modules                      the installed modules (sysrepo's own list, sr_get_module_info) as
                                                 JSON: name -> {"revision", "features", "replay"}
  python3 srtool.py export DS XPATH xml|json     the data of a datastore under XPATH (sr_get_data), as libyang prints
  python3 srtool.py set DS PATH VALUE            one leaf, applied (sr_set_item_str, sr_apply_changes)
"""

from __future__ import annotations

import ctypes
import json
import sys
from typing import Any

sr = ctypes.CDLL("libsysrepo.so.7")
ly = ctypes.CDLL("libyang.so.3")
libc = ctypes.CDLL(None)
sr.sr_strerror.restype = ctypes.c_char_p
DATASTORES = {"startup": 0, "running": 1, "candidate": 2, "operational": 3}
FORMATS = {"xml": 1, "json": 2}  # LYD_FORMAT
PRINT_WITHSIBLINGS = 0x01


class Data(ctypes.Structure):  # sr_data_t
    _fields_ = [("conn", ctypes.c_void_p), ("tree", ctypes.c_void_p)]


def check(what: str, rc: int) -> None:
    if rc:
        raise SystemExit(f"srtool: {what}: {sr.sr_strerror(rc).decode()}")


def printed(tree: Any, fmt: int) -> str:
    out = ctypes.c_void_p()
    if not tree or ly.lyd_print_mem(ctypes.byref(out), ctypes.c_void_p(tree), fmt, PRINT_WITHSIBLINGS) != 0:
        return ""
    try:
        return ctypes.string_at(out).decode() if out.value else ""
    finally:
        libc.free(out)


def main(args: list[str]) -> None:
    conn = ctypes.c_void_p()
    check("connect", sr.sr_connect(0, ctypes.byref(conn)))
    data = ctypes.POINTER(Data)()
    try:
        if args[0] == "modules":
            check("sr_get_module_info", sr.sr_get_module_info(conn, ctypes.byref(data)))
            tree = json.loads(printed(data.contents.tree, FORMATS["json"]))
            print(json.dumps({m["name"]: {"revision": m.get("revision", ""), "features": m.get("enabled-feature", []),
                                          "replay": "replay-support" in m}
                              for m in tree["sysrepo:sysrepo-modules"]["module"]}))
            return
        sess = ctypes.c_void_p()
        check("session", sr.sr_session_start(conn, DATASTORES[args[1]], ctypes.byref(sess)))
        if args[0] == "export":
            check("sr_get_data", sr.sr_get_data(sess, args[2].encode(), 0, 0, 0, ctypes.byref(data)))
            if data:
                print(printed(data.contents.tree, FORMATS[args[3]]), end="")
        elif args[0] == "set":
            check("sr_set_item_str", sr.sr_set_item_str(sess, args[2].encode(), args[3].encode(), None, 0))
            check("sr_apply_changes", sr.sr_apply_changes(sess, 0))
        else:
            raise SystemExit(f"srtool: unknown command {args[0]!r}")
        sr.sr_session_stop(sess)
    finally:
        if data:
            sr.sr_release_data(data)
        sr.sr_disconnect(conn)


if __name__ == "__main__":
    main(sys.argv[1:])
