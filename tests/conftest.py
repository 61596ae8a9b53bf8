"""Fixtures shared by every test: a real, isolated sysrepo instance per test, and VPP discovery."""

from __future__ import annotations

import os
import pickle
import secrets
import shutil
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from _pytest.runner import runtestprotocol

from singbox_agent.repository import SysrepoInstance, project_yang_dirs, project_yang_files, sysrepo_modules

TOP = Path(__file__).resolve().parent.parent


def new_sysrepo_instance(install: bool = True) -> SysrepoInstance:
    """A fresh instance under a short /tmp path with a fixed-length random prefix.

    Fixed length matters: sysrepo matches SHM files by prefix, so no prefix may be the start of another.
    """
    repo = Path(tempfile.mkdtemp(prefix="sr", dir="/tmp"))
    instance = SysrepoInstance(repository=repo, shm_prefix="sbt" + secrets.token_hex(4))
    if install:
        # what the product installs (make run, the package's postinst): the project's modules, and sysrepo's own
        # for subscribed notifications / YANG-Push with the features they need
        instance.install_modules(project_yang_files(TOP), project_yang_dirs(TOP), with_features=sysrepo_modules())
    return instance


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Run every test that uses sysrepo in a forked child of its own.

    libsysrepo keeps per-process state tied to the first repository a process connects to: a second instance in
    the same process fails with "No module connected". A fork per test gives each test a fresh process and a fresh
    instance, and a crash in a C callback fails one test instead of the run.
    """
    for item in items:
        if {"sysrepo_instance", "sysrepo_instance_factory"} & set(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.own_process)


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_protocol(item: pytest.Item, nextitem: pytest.Item | None) -> bool | None:
    if item.get_closest_marker("own_process") is None:
        return None
    hook = item.ihook
    hook.pytest_runtest_logstart(nodeid=item.nodeid, location=item.location)
    read_fd, write_fd = os.pipe()
    pid = os.fork()
    if pid == 0:  # child: run setup/call/teardown, ship the reports to the parent, never return into pytest
        code = 0
        try:
            os.close(read_fd)
            reports = runtestprotocol(item, log=False, nextitem=nextitem)
            payload = [item.config.hook.pytest_report_to_serializable(config=item.config, report=r) for r in reports]
            with os.fdopen(write_fd, "wb") as out:
                pickle.dump(payload, out)
        except BaseException:  # noqa: BLE001 - anything here must become the parent's failure report
            code = 1
        finally:
            os._exit(code)
    os.close(write_fd)
    with os.fdopen(read_fd, "rb") as inp:
        data = inp.read()
    _, status = os.waitpid(pid, 0)
    if data:
        for entry in pickle.loads(data):
            report = item.config.hook.pytest_report_from_serializable(config=item.config, data=entry)
            hook.pytest_runtest_logreport(report=report)
    else:
        call = pytest.CallInfo.from_call(
            lambda: pytest.fail(f"test process died: {_describe_status(status)}", pytrace=False), "call"
        )
        hook.pytest_runtest_logreport(report=pytest.TestReport.from_item_and_call(item, call))
    # The parent still holds the fixtures of the tests that ran in it; release those the next test does not need,
    # as pytest's own protocol would have after this item.
    item.session._setupstate.teardown_exact(nextitem)
    hook.pytest_runtest_logfinish(nodeid=item.nodeid, location=item.location)
    return True


def _describe_status(status: int) -> str:
    if os.WIFSIGNALED(status):
        return f"killed by signal {os.WTERMSIG(status)}"
    return f"exit status {os.WEXITSTATUS(status)}"


@pytest.fixture
def sysrepo_instance(monkeypatch: pytest.MonkeyPatch) -> Iterator[SysrepoInstance]:
    """A real sysrepo instance with the product's YANG modules installed (`new_sysrepo_instance`), selected for this
    process.

    Subprocesses get it through `instance.env`. Removed (repository and SHM files) after the test.
    """
    instance = new_sysrepo_instance()
    for key, value in instance.env.items():
        monkeypatch.setenv(key, value)
    try:
        yield instance
    finally:
        instance.destroy()


@pytest.fixture
def sysrepo_instance_factory() -> Iterator[Callable[[], SysrepoInstance]]:
    """Makes further instances for subprocesses (servers under test) through `.env`; all removed after.

    A process can use only one instance: do not `.activate()` one in a process that already used another.
    """
    made: list[SysrepoInstance] = []

    def make() -> SysrepoInstance:
        made.append(new_sysrepo_instance())
        return made[-1]

    yield make
    for instance in made:
        instance.destroy()


def find_vpp() -> tuple[Path | None, str]:
    """Where VPP is installed, or why it is not usable: (prefix, reason)."""
    prefix = os.environ.get("VPP_PREFIX")
    if prefix:
        binary = Path(prefix) / "bin" / "vpp"
        if binary.is_file():
            return Path(prefix), ""
        return None, f"VPP_PREFIX={prefix} has no bin/vpp"
    on_path = shutil.which("vpp")
    if on_path:
        return Path(on_path).resolve().parent.parent, ""
    return None, "VPP not found: set VPP_PREFIX to an installed VPP (or put vpp on PATH)"


@pytest.fixture(scope="session")
def vpp_prefix() -> Path:
    """The installed VPP; skips the test, saying what is missing, when there is none."""
    prefix, reason = find_vpp()
    if prefix is None:
        pytest.skip(reason)
    return prefix
