"""Isolated sysrepo instances and installation of the project's YANG modules.

sysrepo picks its repository and shared-memory names from the environment. Values it cannot use make it fall back
SILENTLY to the system-wide defaults (a repository path of 256+ characters, a prefix containing "/" or too long),
after which a test or a `make run` would write into the appliance's real datastore. Everything here therefore
validates those values before any sysrepo call sees them.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

REPOSITORY_ENV = "SYSREPO_REPOSITORY_PATH"
SHM_PREFIX_ENV = "SYSREPO_SHM_PREFIX"
SHM_DIR_ENV = "SYSREPO_SHM_DIR"

# sysrepo builds file names as <repo>/data/<module>.<ds>.perm and so on; keep a wide margin under its 256 limit.
_MAX_REPOSITORY_LEN = 120
# Letters and digits only: sysrepo rejects "/" and the prefix becomes part of /dev/shm file names.
_PREFIX_RE = re.compile(r"^[A-Za-z][A-Za-z0-9]{0,15}$")


class InstanceConfigError(ValueError):
    """A repository path or SHM prefix that sysrepo would silently replace with the system default."""


@dataclass(frozen=True)
class SysrepoInstance:
    """One sysrepo instance: its own repository directory and shared-memory prefix."""

    repository: Path
    shm_prefix: str
    shm_dir: Path = Path("/dev/shm")

    def __post_init__(self) -> None:
        repo = str(self.repository)
        if not self.repository.is_absolute():
            raise InstanceConfigError(f"sysrepo repository path must be absolute: {repo!r}")
        if len(repo) > _MAX_REPOSITORY_LEN:
            raise InstanceConfigError(
                f"sysrepo repository path is {len(repo)} characters, at most {_MAX_REPOSITORY_LEN} are safe: {repo!r}"
            )
        if not _PREFIX_RE.match(self.shm_prefix):
            raise InstanceConfigError(
                f"sysrepo SHM prefix must be 1-16 letters or digits starting with a letter: {self.shm_prefix!r}"
            )

    @property
    def env(self) -> dict[str, str]:
        """The environment variables that select this instance (for this process or a child)."""
        return {
            REPOSITORY_ENV: str(self.repository),
            SHM_PREFIX_ENV: self.shm_prefix,
            SHM_DIR_ENV: str(self.shm_dir),
        }

    def activate(self) -> None:
        """Select this instance for sysrepo connections made by this process from now on."""
        os.environ.update(self.env)

    def install_modules(self, files: Iterable[Path], search_dirs: Iterable[Path] = ()) -> None:
        """Install YANG modules with all their features enabled (see `install_modules`)."""
        self.repository.mkdir(parents=True, exist_ok=True)
        install_modules(files, search_dirs, env=self.env)

    def sync_modules(self, files: Iterable[Path], search_dirs: Iterable[Path] = ()) -> list[str]:
        """Install missing modules and update outdated ones (see `sync_modules`)."""
        self.repository.mkdir(parents=True, exist_ok=True)
        return sync_modules(files, search_dirs, env=self.env)

    def destroy(self) -> None:
        """Remove the repository and every shared-memory file of this instance."""
        shutil.rmtree(self.repository, ignore_errors=True)
        for pattern in (f"{self.shm_prefix}_*", f"{self.shm_prefix}sub_*"):
            for f in self.shm_dir.glob(pattern):
                f.unlink(missing_ok=True)


def project_yang_dirs(top: Path) -> list[Path]:
    """Directories of the project's YANG modules: the product's contract and the management plane's own."""
    return [d for d in (top / "yang", top / "agent" / "singbox_agent" / "yang") if d.is_dir()]


def project_yang_files(top: Path) -> list[Path]:
    """Every YANG module the project ships, ready for `SysrepoInstance.install_modules`."""
    return sorted(f for d in project_yang_dirs(top) for f in d.glob("*.yang"))


def _sysrepoctl(args: list[str], env: Mapping[str, str] | None) -> str:
    done = subprocess.run(
        ["sysrepoctl", *args], env={**os.environ, **(env or {})}, check=True, capture_output=True, text=True
    )
    return done.stdout


def install_modules(files: Iterable[Path], search_dirs: Iterable[Path] = (), *, env: Mapping[str, str] | None = None) -> None:
    """Install YANG modules with all their features enabled, in one sysrepoctl call (one context rebuild).

    `env` selects the instance (None: the system's). :raises subprocess.CalledProcessError: stderr says why.
    """
    args = ["-v", "1"]
    dirs = [str(d) for d in search_dirs]
    if dirs:
        args += ["-s", ":".join(dirs)]
    modules = [a for f in files for a in ("-i", str(f), "-e", "*")]
    if modules:
        _sysrepoctl(args + modules, env)


def installed_modules(*, env: Mapping[str, str] | None = None) -> dict[str, str]:
    """Module name -> revision of every module installed (not only imported)."""
    modules: dict[str, str] = {}
    for line in _sysrepoctl(["-l"], env).splitlines():
        cells = [c.strip() for c in line.split("|")]
        if len(cells) > 2 and "I" in cells[2]:
            modules[cells[0]] = cells[1]
    return modules


def sync_modules(files: Iterable[Path], search_dirs: Iterable[Path] = (), *, env: Mapping[str, str] | None = None) -> list[str]:
    """Install the modules that are missing and update those installed at another revision.

    File names follow RFC 8407 (`name@revision.yang`). Returns the names of the modules it changed. This is what
    `make run` and the Debian package's postinst run, so an upgrade brings new revisions in without losing data.
    """
    dirs = list(search_dirs)
    installed = installed_modules(env=env)
    missing: list[Path] = []
    changed: list[str] = []
    for f in files:
        name, _, revision = f.stem.partition("@")
        if name not in installed:
            missing.append(f)
            changed.append(name)
        elif revision and installed[name] != revision:
            _sysrepoctl(["-U", str(f), "-s", ":".join(map(str, dirs))], env)
            changed.append(name)
    install_modules(missing, dirs, env=env)
    return changed


def main(argv: list[str] | None = None) -> int:
    """`python -m singbox_agent.repository sync DIR...`: bring the system's sysrepo to the modules in DIRs."""
    parser = argparse.ArgumentParser(prog="python -m singbox_agent.repository")
    sub = parser.add_subparsers(dest="command", required=True)
    sync = sub.add_parser("sync", help="install missing and update outdated YANG modules")
    sync.add_argument("dirs", nargs="+", type=Path)
    opts = parser.parse_args(argv)
    files = sorted(f for d in opts.dirs for f in d.glob("*.yang"))
    changed = sync_modules(files, opts.dirs)
    print("installed or updated: " + (", ".join(changed) if changed else "nothing"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
