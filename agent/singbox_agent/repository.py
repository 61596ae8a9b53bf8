"""Isolated sysrepo instances and installation of the project's YANG modules.

sysrepo picks its repository and shared-memory names from the environment. Values it cannot use make it fall back
SILENTLY to the system-wide defaults (a repository path of 256+ characters, a prefix containing "/" or too long),
after which a test or a `make run` would write into the appliance's real datastore. Everything here therefore
validates those values before any sysrepo call sees them.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import traceback
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

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


class RepositoryError(RuntimeError):
    """A read or change of sysrepo's modules that failed: the message says what, and why (sysrepo's own error lines
    with it when they were logged to stderr, as in a child process and in the `sync` command)."""


# Everything below goes through libsysrepo (the binding, and `mgmt.libsysrepo` for the calls it lacks), not through
# sysrepo's command-line tools: Debian's trixie-backports carries libsysrepo7 3.7 but no longer its tools
# (sysrepoctl, sysrepocfg), whose package is sysrepo 5 there, on a libyang that Breaks libyang3.
#
# `env` None: the instance this process selects, in this process. `env` given: that instance, in a child process
# (`_in_child`) — libsysrepo fixes a process's repository path and SHM prefix at their first use (sr_get_repo_path
# caches them), so a process that has used one instance cannot reach another, and one that has not would be tied
# to the one it reached.
_CHILD_COMMAND = "_in-child"


_FORK_UNUSABLE = 3  # a fork's exit status: libsysrepo in this process is tied to another instance


def _in_child(env: Mapping[str, str], request: dict[str, Any]) -> Any:
    """Runs `request` (see `_serve`) in the instance `env` selects and returns its answer: in a fork of this process
    where that works (`_in_fork`), else with `python -m singbox_agent.repository`. :raises RepositoryError:"""
    forked, answer = _in_fork(env, request)
    if forked:
        return answer
    package_dir = str(Path(__file__).resolve().parent.parent)
    pythonpath = os.pathsep.join(p for p in (package_dir, os.environ.get("PYTHONPATH", "")) if p)
    done = subprocess.run([sys.executable, "-m", "singbox_agent.repository", _CHILD_COMMAND],
                          input=json.dumps(request), env={**os.environ, **env, "PYTHONPATH": pythonpath},
                          capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise RepositoryError(done.stderr.strip() or f"{request['op']}: exit status {done.returncode}")
    return json.loads(done.stdout)


def _in_fork(env: Mapping[str, str], request: dict[str, Any]) -> tuple[bool, Any]:
    """`request` in a fork of this process, which has the modules imported already (a new interpreter takes ~0.3 s
    to import the bindings, longer than the installation itself): (True, its answer), or (False, None) where a fork
    cannot serve — this process has threads (a fork could inherit a lock one of them holds), or libsysrepo in it has
    fixed its paths for another instance. :raises RepositoryError:"""
    if len(os.listdir("/proc/self/task")) != 1:
        return False, None
    with tempfile.TemporaryFile() as answer, tempfile.TemporaryFile() as log:
        pid = os.fork()
        if pid == 0:  # never returns into the caller's code
            code = 1
            try:
                os.dup2(log.fileno(), 2)
                os.environ.update(env)
                from singbox_agent.mgmt import libsysrepo

                wanted = (env.get(REPOSITORY_ENV), env.get(SHM_PREFIX_ENV), env.get(SHM_DIR_ENV))
                if any(w is not None and w != got for w, got in zip(wanted, libsysrepo.instance_paths())):
                    code = _FORK_UNUSABLE
                else:
                    _log_sysrepo_errors()
                    answer.write(json.dumps(_serve(request)).encode())
                    answer.flush()
                    code = 0
            except RepositoryError as exc:
                os.write(2, f"{exc}\n".encode())
            except BaseException:  # noqa: BLE001 - the parent reports it
                os.write(2, traceback.format_exc().encode())
            finally:
                os._exit(code)
        _, status = os.waitpid(pid, 0)
        if os.waitstatus_to_exitcode(status) == _FORK_UNUSABLE:
            return False, None
        if os.waitstatus_to_exitcode(status) != 0:
            log.seek(0)
            raise RepositoryError(log.read().decode(errors="replace").strip()
                                  or f"{request['op']}: {os.waitstatus_to_exitcode(status)}")
        answer.seek(0)
        return True, json.loads(answer.read())


def _serve(request: dict[str, Any]) -> Any:
    """A child's side of `_in_child`: the same function, on this process's instance, its answer as JSON."""
    op = request["op"]
    access = Access(*request["access"]) if request.get("access") else None
    if op == "install":
        install_modules(map(Path, request["files"]), map(Path, request["dirs"]), access=access,
                        with_features=[(Path(f), feats) for f, feats in request["with_features"]])
        return None
    if op == "sync":
        return sync_modules(map(Path, request["files"]), map(Path, request["dirs"]), access=access)
    if op == "sync_features":
        return sync_features([(Path(f), feats) for f, feats in request["modules"]])
    if op == "info":
        return {name: [m.revision, m.owner, m.permissions, sorted(m.features)]
                for name, m in installed_module_info().items()}
    raise ValueError(f"unknown request {op!r}")


@contextmanager
def _connection() -> Iterator[Any]:
    """A connection to this process's instance. :raises RepositoryError:"""
    import sysrepo

    try:
        conn = sysrepo.SysrepoConnection()
    except sysrepo.SysrepoError as exc:
        raise RepositoryError(f"connecting to sysrepo: {exc}") from exc
    try:
        yield conn
    finally:
        conn.disconnect()


def _call(what: str, function: Callable[..., Any], *args: Any) -> Any:
    """A sysrepo call whose failure says `what` it was doing. :raises RepositoryError:"""
    import sysrepo

    try:
        return function(*args)
    except sysrepo.SysrepoError as exc:
        raise RepositoryError(f"{what}: {exc}") from exc


@dataclass(frozen=True)
class Access:
    """Filesystem access rights sysrepo gives a module's data files (group and permissions of every datastore and
    of its notifications, sr_set_module_ds_access). Debian's sysrepo makes its own modules root:sysrepo and readable
    by the group; the appliance's daemons run as a member of that group and write configuration, so the modules the
    package installs are made group-writable."""

    group: str
    permissions: str  # chmod octal, e.g. "660"

    def __post_init__(self) -> None:
        if not re.fullmatch(r"0?[0-7]{3}", self.permissions):
            raise ValueError(f"permissions must be chmod octal digits such as 660: {self.permissions!r}")

    @property
    def mode(self) -> int:
        return int(self.permissions, 8)


def _module_install(file: Path, features: Iterable[str], access: Access | None = None) -> Any:
    from singbox_agent.mgmt import libsysrepo

    return libsysrepo.ModuleInstall(str(file), tuple(features), access.group if access else None,
                                    access.mode if access else 0)


def _install(conn: Any, modules: list[Any], dirs: Iterable[str]) -> None:
    """One sr_install_modules2 call: one rebuild of sysrepo's context for every module, its features and access."""
    from singbox_agent.mgmt import libsysrepo

    if modules:
        _call("installing " + ", ".join(Path(m.schema_path).name for m in modules), libsysrepo.install_modules,
              conn, modules, ":".join(dict.fromkeys(dirs)))


def install_modules(files: Iterable[Path], search_dirs: Iterable[Path] = (), *, env: Mapping[str, str] | None = None,
                    access: Access | None = None, with_features: Iterable[tuple[Path, Iterable[str]]] = ()) -> None:
    """Install YANG modules with all their features enabled, in one call (one context rebuild).

    `env` selects the instance (None: this process's); `access` sets group and permissions of each module (None:
    sysrepo's defaults); `with_features`: further modules, each with only the features named (sysrepo's defaults
    for access), installed after `files` in the same call. :raises RepositoryError: it says why.
    """
    files = list(files)
    chosen = [(f, list(feats)) for f, feats in with_features]
    dirs = [*map(str, search_dirs), *(str(f.parent) for f, _ in chosen)]
    if not files and not chosen:
        return
    if env is not None:
        _in_child(env, {"op": "install", "files": list(map(str, files)), "dirs": dirs,
                        "access": [access.group, access.permissions] if access else None,
                        "with_features": [(str(f), feats) for f, feats in chosen]})
        return
    modules = [_module_install(f, ("*",), access) for f in files] + [_module_install(f, feats) for f, feats in chosen]
    with _connection() as conn:
        _install(conn, modules, dirs)


@dataclass(frozen=True)
class InstalledModule:
    revision: str
    owner: str  # "user:group" of the startup data
    permissions: str  # of the startup data, e.g. "660"
    features: frozenset[str] = frozenset()  # those enabled


def _module_info(conn: Any) -> dict[str, InstalledModule]:
    """What `sysrepoctl -l` listed of the installed (implemented) modules, sysrepo's internal "sysrepo" left out: the
    revision and enabled features from the connection's context, owner and permissions of the startup data."""
    from libyang.util import c2str

    found: dict[str, tuple[str, frozenset[str]]] = {}
    with conn.get_ly_ctx() as ctx:
        for module in ctx:
            if module.implemented() and module.name() != "sysrepo":
                found[module.name()] = (c2str(module.cdata.revision) or "",
                                        frozenset(f.name() for f in module.features() if f.state()))
    modules = {}
    for name, (revision, features) in found.items():
        owner, group, perm = _call(f"reading the access rights of {name}", conn.get_module_ds_access, name, "startup")
        modules[name] = InstalledModule(revision, f"{owner}:{group}", f"{perm:03o}", features)
    return modules


def installed_module_info(*, env: Mapping[str, str] | None = None) -> dict[str, InstalledModule]:
    """Module name -> revision, owner, permissions and enabled features of every module installed (not only
    imported)."""
    if env is not None:
        got = _in_child(env, {"op": "info"})
        return {name: InstalledModule(revision, owner, permissions, frozenset(features))
                for name, (revision, owner, permissions, features) in got.items()}
    with _connection() as conn:
        return _module_info(conn)


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
    files = list(files)
    dirs = list(map(str, search_dirs))
    if env is not None:
        return list(_in_child(env, {"op": "sync", "files": list(map(str, files)), "dirs": dirs,
                                    "access": [access.group, access.permissions] if access else None}))
    with _connection() as conn:
        installed = _module_info(conn)
        missing: list[Path] = []
        outdated: list[Path] = []
        regroup: list[str] = []
        changed: list[str] = []
        for f in files:
            name, _, revision = f.stem.partition("@")
            if name not in installed:
                missing.append(f)
                changed.append(name)
                continue
            if revision and installed[name].revision != revision:
                outdated.append(f)
                changed.append(name)
            if access and (installed[name].owner.partition(":")[2] != access.group
                           or int(installed[name].permissions, 8) != access.mode):
                regroup.append(name)
                changed.append(name)
        if outdated:  # one call, one context rebuild; sysrepo keeps their data
            _call("updating " + ", ".join(f.name for f in outdated), conn.update_modules,
                  list(map(str, outdated)), dirs)
        from singbox_agent.mgmt import libsysrepo

        for name in regroup:
            _call(f"changing the access rights of {name}", libsysrepo.set_module_access, conn, name,
                  access.group if access else "", access.mode if access else 0)
        _install(conn, [_module_install(f, ("*",), access) for f in missing], dirs)
    return list(dict.fromkeys(changed))


def sysrepo_modules() -> tuple[tuple[Path, tuple[str, ...]], ...]:
    """Modules that come with sysrepo (its module directory, its package's files), not installed by default, that
    the product needs with some of their features: what `srsn` (subscribed notifications, YANG-Push) needs, as
    (file, features) in installation order (`subscriptions.srsn.MODULES`)."""
    from singbox_agent.subscriptions import srsn  # its cffi declarations only load when this is asked for

    return tuple((srsn.SR_MODULE_DIR / name, features) for name, features in srsn.MODULES)


def enabled_features(*, env: Mapping[str, str] | None = None) -> dict[str, set[str]]:
    """Module name -> the features enabled, of every installed module."""
    return {name: set(info.features) for name, info in installed_module_info(env=env).items()}


def sync_features(modules: Iterable[tuple[Path, Iterable[str]]], *, env: Mapping[str, str] | None = None
                  ) -> list[str]:
    """Install each module that is missing with the given features, and enable those features where the module is
    installed without them. Nothing else is touched: the module's revision, access rights and other features are
    whoever installed it first's (another NETCONF server such as netopeer2 may share them). Returns "module:feature"
    for every feature it enabled (a module it installed counts with its features)."""
    wanted = [(f, list(feats)) for f, feats in modules]
    if env is not None:
        return list(_in_child(env, {"op": "sync_features", "modules": [(str(f), feats) for f, feats in wanted]}))
    enabled: list[str] = []
    with _connection() as conn:
        have = {name: info.features for name, info in _module_info(conn).items()}
        install = []
        for f, feats in wanted:
            name = f.stem.partition("@")[0]
            if name not in have:
                install.append(_module_install(f, feats))
                enabled += [f"{name}:{feat}" for feat in feats]
        _install(conn, install, sorted({str(f.parent) for f, _ in wanted}))  # one call, one context rebuild
        for f, feats in wanted:
            name = f.stem.partition("@")[0]
            for feat in [feat for feat in feats if name in have and feat not in have[name]]:
                _call(f"enabling {name}:{feat}", conn.enable_module_feature, name, feat)
                enabled.append(f"{name}:{feat}")
    return enabled


def record_installed(record: Path, names: Iterable[str]) -> None:
    """Add `names` to the list of modules this product installed (one per line): what a purge uninstalls, and only
    that — a module another package installed first stays."""
    known = record.read_text().split() if record.exists() else []
    record.write_text("".join(f"{n}\n" for n in dict.fromkeys([*known, *names])))


def _log_sysrepo_errors() -> None:
    """sysrepo's own error lines to stderr, as `sysrepoctl -v 1` printed them: a failed call's message alone says
    little ("Operation failed")."""
    import logging

    import sysrepo

    sysrepo.configure_logging(stderr_level=logging.ERROR)


def format_modules(modules: Mapping[str, InstalledModule]) -> str:
    """The `list` command's table: one module a line, columns separated by " | "."""
    rows = [("module", "revision", "owner", "perms", "enabled features")]
    rows += [(name, m.revision, m.owner, m.permissions, " ".join(sorted(m.features)))
             for name, m in sorted(modules.items())]
    widths = [max(len(row[i]) for row in rows) for i in range(4)]
    return "".join(" | ".join([*(c.ljust(w) for c, w in zip(row, widths)), row[4]]).rstrip() + "\n" for row in rows)


def main(argv: list[str] | None = None) -> int:
    """`python -m singbox_agent.repository sync [--group G --permissions P] [--record FILE] DIR...`: bring the
    system's sysrepo to the modules in DIRs, and sysrepo's own modules the product needs to the features it needs
    (`sysrepo_modules`; not recorded: they are sysrepo's, see packaging/README.md) — the Debian package's
    postinst. `... list`: the installed modules, their revisions, access rights and enabled features
    (`singbox-admin modules`)."""
    args = sys.argv[1:] if argv is None else argv
    if args[:1] == [_CHILD_COMMAND]:  # `_in_child`'s other side: a request on stdin, the answer on stdout
        _log_sysrepo_errors()
        try:
            print(json.dumps(_serve(json.loads(sys.stdin.read()))))
        except RepositoryError as exc:
            print(exc, file=sys.stderr)
            return 1
        return 0
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
    sub.add_parser("list", help="the installed YANG modules: revision, owner, permissions, enabled features")
    opts = parser.parse_args(args)
    _log_sysrepo_errors()
    if opts.command == "list":
        try:
            print(format_modules(installed_module_info()), end="")
        except RepositoryError as exc:
            print(exc, file=sys.stderr)
            return 1
        return 0
    if bool(opts.group) != bool(opts.permissions):
        parser.error("--group and --permissions go together")
    try:
        access = Access(opts.group, opts.permissions) if opts.group else None
    except ValueError as exc:
        parser.error(str(exc))
    files = sorted(f for d in opts.dirs for f in d.glob("*.yang"))
    changed: list[str] = []
    if not opts.no_sysrepo_modules:  # first: modules of ours import them (ietf-restconf-subscribed-notifications)
        try:
            changed += sync_features(sysrepo_modules())
        except RepositoryError as exc:
            # e.g. a feature of a module another package installed as root, 0600: subscriptions then answer "not
            # supported"; the rest of the product works, so this is no reason to fail the installation
            print(f"sysrepo's modules for subscriptions not brought to the features needed: {exc}", file=sys.stderr)
    try:
        before = set(installed_modules())  # after sysrepo's own: those are not recorded for purge
        changed += sync_modules(files, opts.dirs, access=access)
        new = sorted(set(installed_modules()) - before)
    except RepositoryError as exc:
        print(f"the YANG modules were not installed: {exc}", file=sys.stderr)
        return 1
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
