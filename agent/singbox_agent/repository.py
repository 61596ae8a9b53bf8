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

    def install_modules(self, files: Iterable[Path], search_dirs: Iterable[Path] = (),
                        with_features: Iterable[tuple[Path, Iterable[str]]] = ()) -> None:
        """Install YANG modules with all their features enabled, and those of `with_features` with the features
        named, in one call (see `install_modules`)."""
        self.repository.mkdir(parents=True, exist_ok=True)
        install_modules(files, search_dirs, env=self.env, with_features=with_features)

    def sync_modules(self, files: Iterable[Path], search_dirs: Iterable[Path] = (),
                     access: Access | None = None) -> list[str]:
        """Install missing modules and update outdated ones (see `sync_modules`)."""
        self.repository.mkdir(parents=True, exist_ok=True)
        return sync_modules(files, search_dirs, env=self.env, access=access)

    def sync_features(self, modules: Iterable[tuple[Path, Iterable[str]]]) -> list[str]:
        """Install missing modules with these features, or enable the features (see `sync_features`)."""
        self.repository.mkdir(parents=True, exist_ok=True)
        return sync_features(modules, env=self.env)

    def sync_product(self, top: Path) -> list[str]:
        """Everything the product needs in this instance: the project's modules (installed or updated) and
        sysrepo's own it needs with their features, those first (ours import them). Returns what changed (module
        names, "module:feature")."""
        changed = self.sync_features(sysrepo_modules())
        return changed + self.sync_modules(project_yang_files(top), project_yang_dirs(top))

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


@dataclass(frozen=True)
class Access:
    """Filesystem access rights sysrepo gives a module's data files (sysrepoctl -g/-p). Debian's sysrepo makes its
    own modules root:sysrepo and readable by the group; the appliance's daemons run as a member of that group and
    write configuration, so the modules the package installs are made group-writable."""

    group: str
    permissions: str  # chmod octal, e.g. "660"

    def args(self) -> list[str]:
        return ["-g", self.group, "-p", self.permissions]


def install_modules(files: Iterable[Path], search_dirs: Iterable[Path] = (), *, env: Mapping[str, str] | None = None,
                    access: Access | None = None, with_features: Iterable[tuple[Path, Iterable[str]]] = ()) -> None:
    """Install YANG modules with all their features enabled, in one sysrepoctl call (one context rebuild).

    `env` selects the instance (None: the system's); `access` sets group and permissions of each module (None:
    sysrepo's defaults); `with_features`: further modules, each with only the features named (sysrepo's defaults
    for access), installed after `files` in the same call. :raises subprocess.CalledProcessError: stderr says why.
    """
    args = ["-v", "1"]
    chosen = [(f, list(feats)) for f, feats in with_features]
    dirs = list(dict.fromkeys([*map(str, search_dirs), *(str(f.parent) for f, _ in chosen)]))
    if dirs:
        args += ["-s", ":".join(dirs)]
    modules = [a for f in files for a in ("-i", str(f), "-e", "*", *(access.args() if access else []))]
    modules += [a for f, feats in chosen for a in ("-i", str(f), *[x for feat in feats for x in ("-e", feat)])]
    if modules:
        _sysrepoctl(args + modules, env)


@dataclass(frozen=True)
class InstalledModule:
    revision: str
    owner: str  # "user:group" of the startup data
    permissions: str  # of the startup data, e.g. "660"


def installed_module_info(*, env: Mapping[str, str] | None = None) -> dict[str, InstalledModule]:
    """Module name -> revision, owner and permissions of every module installed (not only imported)."""
    modules: dict[str, InstalledModule] = {}
    for line in _sysrepoctl(["-l"], env).splitlines():
        cells = [c.strip() for c in line.split("|")]
        if len(cells) > 5 and "I" in cells[2]:
            modules[cells[0]] = InstalledModule(cells[1], cells[3], cells[4])
    return modules


def installed_modules(*, env: Mapping[str, str] | None = None) -> dict[str, str]:
    """Module name -> revision of every module installed (not only imported)."""
    return {name: info.revision for name, info in installed_module_info(env=env).items()}


def sync_modules(files: Iterable[Path], search_dirs: Iterable[Path] = (), *, env: Mapping[str, str] | None = None,
                 access: Access | None = None) -> list[str]:
    """Install the modules that are missing and update those installed at another revision; with `access`, also
    give the modules of `files` that group and permissions where they differ (an upgrade from a package that
    installed them with sysrepo's defaults).

    File names follow RFC 8407 (`name@revision.yang`). Returns the names of the modules it changed. This is what
    `make run` and the Debian package's postinst run, so an upgrade brings new revisions in without losing data.
    """
    dirs = list(search_dirs)
    installed = installed_module_info(env=env)
    missing: list[Path] = []
    changed: list[str] = []
    for f in files:
        name, _, revision = f.stem.partition("@")
        if name not in installed:
            missing.append(f)
            changed.append(name)
            continue
        if revision and installed[name].revision != revision:
            _sysrepoctl(["-U", str(f), "-s", ":".join(map(str, dirs))], env)
            changed.append(name)
        if access and (installed[name].owner.partition(":")[2] != access.group
                       or installed[name].permissions != access.permissions):
            _sysrepoctl(["-c", name, *access.args()], env)
            changed.append(name)
    install_modules(missing, dirs, env=env, access=access)
    return list(dict.fromkeys(changed))


def sysrepo_modules() -> tuple[tuple[Path, tuple[str, ...]], ...]:
    """Modules that come with sysrepo (its module directory, its package's files), not installed by default, that
    the product needs with some of their features: what `srsn` (subscribed notifications, YANG-Push) needs, as
    (file, features) in installation order (`subscriptions.srsn.MODULES`)."""
    from singbox_agent.subscriptions import srsn  # its cffi declarations only load when this is asked for

    return tuple((srsn.SR_MODULE_DIR / name, features) for name, features in srsn.MODULES)


def enabled_features(*, env: Mapping[str, str] | None = None) -> dict[str, set[str]]:
    """Module name -> the features enabled, of every installed module (`sysrepoctl -l`'s last column)."""
    features: dict[str, set[str]] = {}
    for line in _sysrepoctl(["-l"], env).splitlines():
        cells = [c.strip() for c in line.split("|")]
        if len(cells) > 6 and "I" in cells[2]:
            features[cells[0]] = set(cells[6].split())
    return features


def sync_features(modules: Iterable[tuple[Path, Iterable[str]]], *, env: Mapping[str, str] | None = None
                  ) -> list[str]:
    """Install each module that is missing with the given features, and enable those features where the module is
    installed without them. Nothing else is touched: the module's revision, access rights and other features are
    whoever installed it first's (another NETCONF server such as netopeer2 may share them). Returns "module:feature"
    for every feature it enabled (a module it installed counts with its features)."""
    wanted = [(f, list(feats)) for f, feats in modules]
    have = enabled_features(env=env)
    install: list[str] = []
    enabled: list[str] = []
    for f, feats in wanted:
        name = f.stem.partition("@")[0]
        if name not in have:
            install += ["-i", str(f), *[a for feat in feats for a in ("-e", feat)]]
            enabled += [f"{name}:{feat}" for feat in feats]
    if install:  # one call, one context rebuild
        dirs = ":".join(sorted({str(f.parent) for f, _ in wanted}))
        _sysrepoctl(["-v", "1", "-s", dirs, *install], env)
    for f, feats in wanted:
        name = f.stem.partition("@")[0]
        missing = [feat for feat in feats if name in have and feat not in have[name]]
        if missing:
            _sysrepoctl(["-c", name, *[a for feat in missing for a in ("-e", feat)]], env)
            enabled += [f"{name}:{feat}" for feat in missing]
    return enabled


def record_installed(record: Path, names: Iterable[str]) -> None:
    """Add `names` to the list of modules this product installed (one per line): what a purge uninstalls, and only
    that — a module another package installed first stays."""
    known = record.read_text().split() if record.exists() else []
    record.write_text("".join(f"{n}\n" for n in dict.fromkeys([*known, *names])))


def main(argv: list[str] | None = None) -> int:
    """`python -m singbox_agent.repository sync [--group G --permissions P] [--record FILE] DIR...`: bring the
    system's sysrepo to the modules in DIRs, and sysrepo's own modules the product needs to the features it needs
    (`sysrepo_modules`; not recorded: they are sysrepo's, see packaging/README.md) — the Debian package's
    postinst."""
    parser = argparse.ArgumentParser(prog="python -m singbox_agent.repository")
    sub = parser.add_subparsers(dest="command", required=True)
    sync = sub.add_parser("sync", help="install missing and update outdated YANG modules")
    sync.add_argument("--group", help="filesystem group of the modules' data (with --permissions)")
    sync.add_argument("--permissions", help="chmod octal permissions of the modules' data, e.g. 660")
    sync.add_argument("--record", type=Path,
                      help="add the names of the modules installed now to this file ('-': print them, one a line, "
                           "and the summary on stderr)")
    sync.add_argument("--no-sysrepo-modules", action="store_true",
                      help="leave sysrepo's own modules alone (by default those the product needs are installed "
                           "when missing, with the features it needs enabled)")
    sync.add_argument("dirs", nargs="+", type=Path)
    opts = parser.parse_args(argv)
    if bool(opts.group) != bool(opts.permissions):
        parser.error("--group and --permissions go together")
    access = Access(opts.group, opts.permissions) if opts.group else None
    files = sorted(f for d in opts.dirs for f in d.glob("*.yang"))
    changed: list[str] = []
    if not opts.no_sysrepo_modules:  # first: modules of ours import them (ietf-restconf-subscribed-notifications)
        try:
            changed += sync_features(sysrepo_modules())
        except subprocess.CalledProcessError as exc:
            # e.g. a feature of a module another package installed as root, 0600: subscriptions then answer "not
            # supported"; the rest of the product works, so this is no reason to fail the installation
            print(f"sysrepo's modules for subscriptions not brought to the features needed: {exc.stderr.strip()}",
                  file=sys.stderr)
    before = set(installed_modules())  # after sysrepo's own: those are not recorded for purge
    changed += sync_modules(files, opts.dirs, access=access)
    new = sorted(set(installed_modules()) - before)
    summary = "installed or updated: " + (", ".join(changed) if changed else "nothing")
    if opts.record and str(opts.record) == "-":
        print("".join(f"{name}\n" for name in new), end="")
        print(summary, file=sys.stderr)
        return 0
    if opts.record:
        record_installed(opts.record, new)
    print(summary)
    return 0


if __name__ == "__main__":
    sys.exit(main())
