"""`python -m singbox_agent.mgmt bootstrap-admin --user NAME --password-file FILE`.

Works on the sysrepo instance the environment selects (SYSREPO_REPOSITORY_PATH / SYSREPO_SHM_PREFIX).
The password is read from a file so it never appears in a process listing; a trailing newline is ignored.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import sysrepo

from singbox_agent.logs import configure_logging
from singbox_agent.mgmt.bootstrap import bootstrap_admin
from singbox_agent.mgmt.users import hash_password


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m singbox_agent.mgmt", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    boot = sub.add_parser("bootstrap-admin", help="create/update the admin user and its NACM rights")
    boot.add_argument("--user", required=True)
    boot.add_argument("--password-file", required=True, type=Path)
    hp = sub.add_parser("hash-password", help="print a crypt hash of the password in FILE (for ietf-system)")
    hp.add_argument("--password-file", required=True, type=Path)
    args = parser.parse_args(argv)
    configure_logging()

    password = args.password_file.read_text().rstrip("\r\n")
    if not password:
        print(f"{args.password_file}: empty password", file=sys.stderr)
        return 2
    if args.command == "hash-password":
        print(hash_password(password))
        return 0
    with sysrepo.SysrepoConnection() as conn:
        bootstrap_admin(conn, args.user, password)
    return 0


if __name__ == "__main__":
    sys.exit(main())
