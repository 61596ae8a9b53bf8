"""The pending confirmed commit on disk (`STATE_DIR/netconf/confirmed-commit.json`, 0600), so a server restart
neither loses the rollback nor keeps an unconfirmed change for ever (RFC 6241 8.4).

The file holds the running configuration from before the first confirmed commit (it may hold secrets: hashes,
keys, hence 0600 in a 0700 directory), the persist token, the issuing session and the wall-clock deadline. It is
written before running changes and removed once the commit is confirmed or rolled back; writes are atomic (temp file,
fsync, rename) so a crash leaves either the old record or the new one.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

import structlog

log = structlog.get_logger("netconf.confirmed_store")

FILE_NAME = "confirmed-commit.json"


@dataclass(frozen=True)
class Record:
    backup_xml: str
    persist: str | None
    session_id: int | None
    deadline: float  # seconds since the epoch: the only clock that means something across a restart
    token: str  # which confirmed commit this is: a late rollback of an old one must not remove a newer record


class ConfirmedStore:
    def __init__(self, state_dir: Path) -> None:
        self.dir = state_dir / "netconf"
        self.path = self.dir / FILE_NAME

    def save(self, record: Record) -> None:
        self.dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        tmp = self.path.with_suffix(".tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as f:
            json.dump({"backup": record.backup_xml, "persist": record.persist, "session-id": record.session_id,
                       "deadline": record.deadline, "token": record.token}, f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, self.path)
        dir_fd = os.open(self.dir, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)

    def load(self) -> Record | None:
        try:
            raw = json.loads(self.path.read_text())
            return Record(str(raw["backup"]), None if raw["persist"] is None else str(raw["persist"]),
                          None if raw["session-id"] is None else int(raw["session-id"]), float(raw["deadline"]),
                          str(raw["token"]))
        except FileNotFoundError:
            return None
        except (ValueError, KeyError, TypeError) as exc:
            # A record we cannot read cannot be rolled back to; keep it for the operator, say so loudly.
            log.error("unreadable confirmed-commit record, not restored", path=str(self.path), error=str(exc))
            return None

    def clear(self, token: str) -> None:
        """Remove the record of the confirmed commit `token` (not one written since by another)."""
        try:
            current = json.loads(self.path.read_text()).get("token")
        except FileNotFoundError:
            return
        except ValueError:
            current = None
        if current in (token, None):
            self.path.unlink(missing_ok=True)
