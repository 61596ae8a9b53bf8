"""sysrepo's notification replay store on disk (its JSON notification plugin, src/plugins/ntf_json.c of sysrepo
3.7.11): each module's notifications in `<repo>/data/notif/<module>.notif.<first>-<last>`, epoch seconds of the
first and last notification inside. Read by the retention (`replay_retention.py`) and the keeper
(`replay_keeper.py`).
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path

from singbox_agent.mgmt import libsysrepo

_FILE_NAME = re.compile(r"^(?P<module>.+)\.notif\.(?P<first>\d+)-(?P<last>\d+)$")


@dataclass(frozen=True)
class StoredFile:
    name: str
    module: str
    first: int
    last: int
    size: int


def parse_name(name: str, size: int = 0) -> StoredFile | None:
    """A sysrepo notification file name, or None for anything else (never touched)."""
    m = _FILE_NAME.match(name)
    if m is None:
        return None
    first, last = int(m["first"]), int(m["last"])
    if first > last:
        return None  # sysrepo ignores such files too
    return StoredFile(name, m["module"], first, last, size)


def notification_dir() -> Path:
    """Where this process's sysrepo keeps notifications (the Debian build sets no SR_NOTIFICATION_PATH)."""
    return Path(libsysrepo.repo_path()) / "data" / "notif"


def scan(directory: Path) -> list[StoredFile]:
    out: list[StoredFile] = []
    try:
        entries = list(os.scandir(directory))
    except FileNotFoundError:
        return out
    for entry in entries:
        try:
            size = entry.stat().st_size
        except FileNotFoundError:
            continue
        f = parse_name(entry.name, size)
        if f is not None:
            out.append(f)
    return out
