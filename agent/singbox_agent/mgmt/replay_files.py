"""sysrepo's notification replay store on disk (its JSON notification plugin, src/plugins/ntf_json.c of sysrepo
3.7.11): each module's notifications in `<repo>/data/notif/<module>.notif.<first>-<last>`, epoch seconds of the
first and last notification inside. Read by the retention (`replay_retention.py`), the keeper
(`replay_keeper.py`) and the writes that make room for their config-change (`started_file_size`, `retire`,
`mgmt.datastore.wait_for_replay_room`).

sysrepo (srpntf_json_store) appends a notification to its module's newest file (srpntf_find_file: the greatest
first-last pair) while that stays within 1 MiB (SRPJSON_NOTIF_FILE_MAX_SIZE), else starts a file named by the
notification's second — unless the newest file is named `<that second>-<that second>`: then it refuses to store it
(having delivered it already).
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path

from singbox_agent.mgmt import libsysrepo

# srpntf_json_store appends while file size + record <= SRPJSON_NOTIF_FILE_MAX_SIZE * 1024; a record is a struct
# timespec (16 bytes on x86-64), a uint32 length and the JSON
FILE_MAX_SIZE = 1024 * 1024
RECORD_HEAD_SIZE = 16 + 4

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


def started_file_size(directory: Path, module: str, sec: int) -> int | None:
    """The size of `module`'s store file started in second `sec` and holding that second only, None without one
    (one stat, no listing: called before writes). Only such a file makes sysrepo refuse a notification of `sec`
    that does not fit in it; sysrepo starts a file only when the newest one is full, so one exists rarely: right
    after a large notification, or once per MiB of small ones."""
    try:
        return os.stat(f"{directory}/{module}.notif.{sec}-{sec}").st_size  # not pathlib: runs before writes
    except FileNotFoundError:
        return None


def retire(directory: Path, module: str, sec: int) -> bool | None:
    """Rename `module`'s file `<sec>-<sec>` to `<sec-1>-<sec>`, so that sysrepo stores a notification of second
    `sec` that does not fit in it in a file of its own instead of refusing it. True: renamed (here or by another
    process doing the same); False: `<sec-1>-<sec>` is another file (sysrepo's, holding the second before), nothing
    changed; None: no `<sec>-<sec>` any more (look again).

    Why sysrepo's code (ntf_json.c, 3.7.11) keeps working on the renamed file:
    - storing: the newest file is then `<sec-1>-<sec>`; a notification of `sec` that fits is appended to it, one
      that does not starts `<sec>-<sec>` (the refusal needs first == last == the notification's second). A later
      `<sec>-<sec>` is newer than it whatever the directory order (greater first second).
    - replay: sysrepo takes files in the order of their names' (first, last) seconds and replays each record by
      its own timestamp; a file named from a second before its first record is only opened a little early. Every
      other file of the module has first <= sec-1 and last <= sec, not both equal (that name taken: False), so it
      comes before the renamed one, as its records do.
    - races: within second `sec` sysrepo never renames `<sec>-<sec>` (it renames a file only to a later last
      second) and refuses any notification of `sec` that does not fit in it; a store that listed the directory
      before the rename and opens the old name after it fails as it would have been refused. The link keeps the
      data under one name or both at every moment; the caller renames only early in the second, as a store of the
      next second that listed the old name would fail.
    """
    old = f"{directory}/{module}.notif.{sec}-{sec}"
    new = f"{directory}/{module}.notif.{sec - 1}-{sec}"
    try:
        os.link(old, new)  # not os.rename: it would replace an existing file
    except FileNotFoundError:
        return None
    except FileExistsError:
        try:
            if not os.path.samefile(old, new):
                return False
        except FileNotFoundError:
            return True  # another process linked and removed it: retired
        # another process linked it a moment ago and removes the old name
    try:
        os.unlink(old)
    except FileNotFoundError:
        pass  # the other process removed it
    return True
