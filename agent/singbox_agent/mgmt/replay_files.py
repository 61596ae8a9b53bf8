"""sysrepo's notification replay store on disk (its JSON notification plugin, src/plugins/ntf_json.c of sysrepo
3.7.11): each module's notifications in `<repo>/data/notif/<module>.notif.<first>-<last>`, epoch seconds of the
first and last notification inside. Read by the retention (`replay_retention.py`), the keeper
(`replay_keeper.py`) and the writes that wait for room (`started_in_second`, `mgmt.datastore.wait_for_replay_room`).

sysrepo appends a notification to its module's newest file while that stays within 1 MiB (SRPJSON_NOTIF_FILE_MAX_SIZE), else starts
a file named by the notification's second — unless the newest file was started in that very second: then it
refuses to store it (having delivered it already).
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


def started_in_second(directory: Path, module: str, sec: int) -> bool:
    """Whether a store file of `module` was started in second `sec`: then sysrepo refuses every notification of that
    second that does not fit in it (one stat, no listing: called before every write). sysrepo starts a file only
    when the newest one is full, so this is rare: right after a large notification, or once per
    MiB of small ones."""
    try:
        os.stat(f"{directory}/{module}.notif.{sec}-{sec}")  # not pathlib: this runs before every write
    except FileNotFoundError:
        return False
    return True
