"""On the installed appliance (test_installed_appliance.py's appliance, booted under systemd): no local account
reads sysrepo's subscription SHM of the daemons — where a module's last change stays (a password hash, a key).

An appliance of its own (the fixtures are module-scoped), with this checkout's package only."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.packaging.test_installed_appliance import (PASSWORD_FILE, Appliance, appliance,  # noqa: F401
                                                      assert_sysrepo_3_7_only, current_only, sr_export)

pytestmark = [pytest.mark.slow, pytest.mark.timeout(1200)]


@pytest.fixture(scope="module")
def debs() -> dict[str, Path]:
    return current_only()


def test_subscription_shm_of_the_daemons_is_not_readable_by_other_accounts(appliance: Appliance,
                                                                          debs: dict[str, Path]) -> None:
    appliance.apt_install(debs["current"])  # on a pristine trixie, from today's archive
    assert_sysrepo_3_7_only(appliance)
    appliance.wait_units()
    password = appliance.run("cat", PASSWORD_FILE).stdout.strip()
    # a change whose data sysrepo leaves in ietf-system's sub_data SHM: a new user's password hash
    appliance.run("singbox-admin", "set-password", "shmuser", "--password-file", "-", input="shm-guard-Secret-1\n")
    hashed = sr_export(appliance, "running", "/ietf-system:system/authentication/user[name='shmuser']/password",
                       "json")
    assert '"password": "$6$' in hashed, hashed
    new_hash = hashed.split('"password": "', 1)[1].split('"', 1)[0]
    holding = appliance.run("sh", "-c", f"grep -lF -- '{new_hash}' /dev/shm/srsub_* || true").stdout.split()
    assert "/dev/shm/srsub_data_ietf-system.running" in holding, holding

    ours: Any = appliance.run("find", "/dev/shm", "-name", "srsub_*", "-user", "vpp-singbox", "-printf",
                              "%m %p\n").stdout.split("\n")
    ours = [line for line in ours if line]
    assert ours, "the daemons have no subscription SHM?"
    assert [line for line in ours if not line.startswith("660 ")] == [], ours
    denied = appliance.run("runuser", "-u", "nobody", "--", "cat", "/dev/shm/srsub_data_ietf-system.running",
                           check=False)
    assert denied.returncode != 0 and "Permission denied" in denied.stderr, denied
    with appliance.netconf(password) as nc:  # the servers still use the files they narrowed
        assert nc.server_capabilities
