"""`python -m portal [serve]` runs the portal; `python -m portal accounts ...` manages sign-ins."""

from __future__ import annotations

import argparse
import getpass
import logging
import sys

from adapters.settings import PortalSettings, Settings
from schemas.errors import ConfigurationError

CONFIG_EXIT = 2


def _settings() -> Settings:
    try:
        return Settings.load().check("portal", "database")
    except ConfigurationError as exc:
        # Bad configuration stops at once, naming the settings (never their values).
        print(f"portal: invalid configuration:\n{exc}", file=sys.stderr)
        raise SystemExit(CONFIG_EXIT) from None


def configure_logging(settings: PortalSettings) -> None:
    from adapters.logs import JsonFormatter

    handlers: list[logging.Handler] = [logging.StreamHandler(sys.stderr)]
    if settings.log_file is not None:
        settings.log_file.parent.mkdir(parents=True, exist_ok=True)
        handlers.append(logging.FileHandler(settings.log_file, encoding="utf-8"))
    for handler in handlers:
        handler.setFormatter(JsonFormatter())
    root = logging.getLogger()
    root.handlers[:] = handlers
    root.setLevel(settings.log_level)
    logging.getLogger("kafka").setLevel(logging.WARNING)
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access"):
        logging.getLogger(name).handlers[:] = []
        logging.getLogger(name).propagate = True


def serve(settings: PortalSettings) -> int:
    import uvicorn

    configure_logging(settings)
    logging.getLogger("skillsync.portal").info("portal listening on %s", settings.address)
    uvicorn.run("portal.web:create_app", factory=True, host=settings.host, port=settings.port,
                workers=settings.workers, log_config=None, proxy_headers=True,
                ssl_certfile=str(settings.tls_certfile) if settings.tls_certfile else None,
                ssl_keyfile=str(settings.tls_keyfile) if settings.tls_keyfile else None)
    return 0


def _password(args: argparse.Namespace) -> str:
    """From a prompt that does not echo, or the first line of standard input for scripts."""
    if args.password_stdin or not sys.stdin.isatty():
        return sys.stdin.readline().rstrip("\n")
    first = getpass.getpass("password: ")
    if getpass.getpass("again: ") != first:
        raise SystemExit("portal: the passwords differ")
    return first


def accounts_command(args: argparse.Namespace, settings: Settings) -> int:
    from portal import accounts
    from portal.db import Database

    db = Database(settings.database.libpq, pool_size=1)
    try:
        with db.portal() as conn:
            if args.action == "create":
                made = accounts.create(conn, username=args.username, kind=args.kind,
                                       password=_password(args), partner_id=args.partner,
                                       district_code=args.district)
                print(f"created {made.kind} account {made.username}")
            elif args.action == "password":
                accounts.set_password(conn, args.username, _password(args))
                print(f"password of {args.username} changed; its sessions ended")
            elif args.action in ("disable", "enable"):
                accounts.set_disabled(conn, args.username, args.action == "disable")
                print(f"{args.username} {args.action}d; its sessions ended")
            else:
                for row in accounts.listing(conn):
                    scope = row["partner_id"] or row["district_code"] or "-"
                    state = "disabled" if row["disabled"] else "active"
                    print(f"{row['username']:<24} {row['kind']:<9} {scope:<12} {state}")
    except accounts.AccountError as exc:
        print(f"portal: {exc}", file=sys.stderr)
        return 1
    finally:
        db.dispose()
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m portal", description=__doc__)
    sub = parser.add_subparsers(dest="command")
    sub.add_parser("serve", help="serve the portal (the default)")
    acc = sub.add_parser("accounts", help="create, disable, enable or list portal accounts")
    acc_sub = acc.add_subparsers(dest="action", required=True)
    create = acc_sub.add_parser("create", help="a new account; the password is prompted for")
    create.add_argument("username")
    create.add_argument("--kind", required=True, choices=("partner", "agency", "operator"))
    create.add_argument("--partner", help="the partner id of a partner account")
    create.add_argument("--district", help="the district code of an agency account")
    for name in ("password", "disable", "enable"):
        acc_sub.add_parser(name).add_argument("username")
    acc_sub.add_parser("list")
    for action in ("create", "password"):
        acc_sub.choices[action].add_argument(
            "--password-stdin", action="store_true",
            help="read the password from the first line of standard input")
    args = parser.parse_args(argv)
    sections = _settings()
    if args.command == "accounts":
        return accounts_command(args, sections)
    return serve(sections.portal)


if __name__ == "__main__":
    sys.exit(main())
