"""Portal accounts: who may sign in, what each one sees, and how sign-in guesses are slowed."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal, cast

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import Connection

from portal import queries as q
from warehouse.agency import agency_role

Kind = Literal["partner", "agency", "operator"]
KINDS: tuple[Kind, ...] = ("partner", "agency", "operator")
USERNAME = re.compile(r"[a-z0-9][a-z0-9._-]{1,62}")
MIN_PASSWORD = 12

_hasher = PasswordHasher()
# Verified when the account does not exist, so a wrong name costs as long as a wrong password.
_UNKNOWN = _hasher.hash("no such account")


class AccountError(ValueError):
    """An account request that cannot be carried out; the message says why."""


@dataclass(frozen=True)
class Account:
    username: str
    kind: Kind
    partner_id: str | None
    district_code: str | None
    session_epoch: int = 0

    @property
    def role(self) -> str:
        """The database role this account's requests run under."""
        if self.kind == "partner":
            return "skillsync_partner"
        if self.kind == "agency":
            assert self.district_code is not None
            return agency_role(self.district_code)
        return "skillsync_operator"

    @property
    def home(self) -> str:
        if self.kind == "partner":
            return f"/partner/{self.partner_id}"
        if self.kind == "agency":
            return f"/agency/{self.district_code}"
        return "/operator"


@dataclass(frozen=True)
class SignIn:
    account: Account | None
    throttled: bool = False


def _account(row: object) -> Account:
    return Account(row.username, row.kind, row.partner_id,  # type: ignore[attr-defined]
                   row.district_code, row.session_epoch)  # type: ignore[attr-defined]


def load(conn: Connection, username: str) -> tuple[Account, str, bool] | None:
    """(account, password hash, disabled) or None."""
    row = conn.execute(q.ACCOUNT, {"username": username}).first()
    return None if row is None else (_account(row), row.password_hash, row.disabled)


def active(conn: Connection, username: str, epoch: int) -> Account | None:
    """The account a session names, if it may still use the portal with that session."""
    found = load(conn, username)
    if found is None or found[2] or found[0].session_epoch != epoch:
        return None
    return found[0]


def check_password(password: str) -> None:
    if len(password) < MIN_PASSWORD:
        raise AccountError(f"a password needs at least {MIN_PASSWORD} characters")


def create(conn: Connection, *, username: str, kind: str, password: str,
           partner_id: str | None = None, district_code: str | None = None) -> Account:
    if not USERNAME.fullmatch(username):
        raise AccountError("a user name is 2-63 lower-case letters, digits, '.', '_' or '-'")
    if kind not in KINDS:
        raise AccountError(f"kind must be one of {', '.join(KINDS)}")
    if (kind == "partner") != (partner_id is not None):
        raise AccountError("a partner account, and only one, names its partner (--partner)")
    if (kind == "agency") != (district_code is not None):
        raise AccountError("an agency account, and only one, names its district (--district)")
    if district_code is not None:
        agency_role(district_code)  # six digits, or ValueError
        if not conn.exec_driver_sql(
                "SELECT 1 FROM pg_roles WHERE rolname = %(role)s",
                {"role": agency_role(district_code)}).first():
            raise AccountError(f"district {district_code} has no agency role")
    check_password(password)
    if load(conn, username) is not None:
        raise AccountError(f"account {username} exists")
    conn.execute(q.CREATE_ACCOUNT, {"username": username, "kind": kind,
                                    "partner_id": partner_id, "district_code": district_code,
                                    "password_hash": _hasher.hash(password)})
    return Account(username, cast(Kind, kind), partner_id, district_code)


def set_password(conn: Connection, username: str, password: str) -> None:
    check_password(password)
    if conn.execute(q.SET_PASSWORD, {"username": username,
                                     "password_hash": _hasher.hash(password)}).rowcount != 1:
        raise AccountError(f"no account {username}")


def set_disabled(conn: Connection, username: str, disabled: bool) -> None:
    """Disable (or enable) an account; either way its open sessions end."""
    if conn.execute(q.SET_DISABLED, {"username": username,
                                     "disabled": disabled}).rowcount != 1:
        raise AccountError(f"no account {username}")


def listing(conn: Connection) -> list[dict[str, object]]:
    return [dict(row) for row in conn.execute(q.ACCOUNTS).mappings()]


def sign_in(conn: Connection, username: str, password: str, client: str, *,
            allowed_failures: int, window_s: int) -> SignIn:
    """Check a password, unless this name or client failed too often within the window.

    Failures are kept in PostgreSQL, so every portal process counts the same attempts.
    """
    counts = conn.execute(q.RECENT_FAILURES, {"username": username, "client": client,
                                              "window": window_s}).one()
    if counts.by_user >= allowed_failures or counts.by_client >= allowed_failures:
        return SignIn(None, throttled=True)
    found = load(conn, username) if USERNAME.fullmatch(username) else None
    try:
        _hasher.verify(found[1] if found else _UNKNOWN, password)
        verified = found is not None and not found[2]
    except (VerificationError, InvalidHashError):
        verified = False
    conn.execute(q.FORGET_FAILURES, {"keep": window_s * 4, "username": username,
                                     "succeeded": verified})
    if not verified:
        conn.execute(q.RECORD_FAILURE, {"username": username[:64], "client": client})
        return SignIn(None)
    assert found is not None
    return SignIn(found[0])
