"""The admin command (`singbox-admin` on an appliance, `python -m singbox_agent.mgmt` in development).

  init-admin --user NAME --password-file FILE   first login: when no user exists yet, create NAME with a random
                                                password written to FILE (0600; "-": stdout) and full NACM
                                                rights (the package's postinst)
  set-password USER [--password-file FILE]      set (or create) USER's password; asked twice on a terminal, else
                                                read from stdin or FILE
  bootstrap-admin --user NAME --password-file FILE
                                                create/update NAME with that password and full NACM rights
  hash-password --password-file FILE            print a crypt hash (for ietf-system's password leaf)

Works on the sysrepo instance the environment selects (SYSREPO_REPOSITORY_PATH / SYSREPO_SHM_PREFIX), the system's
by default. Passwords never appear on the command line (process listings); a trailing newline is ignored.
On an appliance the `singbox-admin` wrapper runs this as the daemons' user (see singbox-admin(8) for why).
"""

from __future__ import annotations

import argparse
import getpass
import os
import sys
from pathlib import Path

import sysrepo

from singbox_agent.logs import configure_logging
from singbox_agent.mgmt.bootstrap import bootstrap_admin, initial_admin, set_password
from singbox_agent.mgmt.users import RESERVED_PREFIX, hash_password


class PasswordError(ValueError):
    pass


def read_password(password_file: Path | None, *, interactive: bool) -> str:
    """From FILE ("-": stdin), else from the terminal (asked twice), else from stdin."""
    if password_file is None and interactive:
        first = getpass.getpass("New password: ")
        if first != getpass.getpass("Again: "):
            raise PasswordError("the passwords differ")
        password = first
    elif password_file is None or str(password_file) == "-":
        password = sys.stdin.readline().rstrip("\r\n")
    else:
        password = password_file.read_text().rstrip("\r\n")
    if not password:
        raise PasswordError("empty password")
    return password


def write_private(path: Path, text: str) -> None:
    """`text` into a new file only its owner reads (a stale one from an earlier installation is replaced)."""
    path.unlink(missing_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(text)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="singbox-admin", description=__doc__.splitlines()[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter,
                                     epilog="\n".join(__doc__.splitlines()[2:]))
    sub = parser.add_subparsers(dest="command", required=True)
    init = sub.add_parser("init-admin", help="first login: an admin with a random password, if no user exists")
    init.add_argument("--user", default="admin")
    init.add_argument("--password-file", required=True, type=Path,
                      help="where the password is written (created 0600; '-': standard output)")
    setpw = sub.add_parser("set-password", help="set or create a user's password")
    setpw.add_argument("user")
    setpw.add_argument("--password-file", type=Path, help="read the password from FILE ('-': stdin)")
    boot = sub.add_parser("bootstrap-admin", help="create/update the admin user and its NACM rights")
    boot.add_argument("--user", required=True)
    boot.add_argument("--password-file", required=True, type=Path)
    hp = sub.add_parser("hash-password", help="print a crypt hash of the password in FILE (for ietf-system)")
    hp.add_argument("--password-file", required=True, type=Path)
    args = parser.parse_args(argv)
    configure_logging()

    user = getattr(args, "user", None)
    if user is not None and (not user or user.startswith(RESERVED_PREFIX)):
        print(f"singbox-admin: {user!r} cannot be a user name", file=sys.stderr)
        return 2
    if args.command == "init-admin":
        with sysrepo.SysrepoConnection() as conn:
            created = initial_admin(conn, args.user)
        if created is not None:
            if str(args.password_file) == "-":
                print(created)
            else:
                write_private(args.password_file, created + "\n")
                print(f"initial password of user {args.user!r} is in {args.password_file} (mode 0600); "
                      f"change it with: singbox-admin set-password {args.user}", file=sys.stderr)
        return 0
    try:
        password = read_password(args.password_file, interactive=args.password_file is None and sys.stdin.isatty())
    except (PasswordError, OSError) as exc:
        print(f"singbox-admin: {exc}", file=sys.stderr)
        return 2
    if args.command == "hash-password":
        print(hash_password(password))
        return 0
    with sysrepo.SysrepoConnection() as conn:
        if args.command == "set-password":
            new_user = set_password(conn, args.user, password)
            print(f"user {args.user!r} {'created' if new_user else 'updated'}")
        else:
            bootstrap_admin(conn, args.user, password)
    return 0


if __name__ == "__main__":
    sys.exit(main())
