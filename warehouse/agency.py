"""Warehouse reads on behalf of a district agency: its role for one transaction, reset on reuse."""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from sqlalchemy import Connection, Engine, event, text

from adapters.database import make_engine

_DISTRICT_CODE = re.compile(r"\d{6}")


def agency_role(district_code: str) -> str:
    """The PostgreSQL role of a district agency, e.g. agency_330106."""
    if not _DISTRICT_CODE.fullmatch(district_code):
        raise ValueError(f"district code {district_code!r} is not six digits")
    return f"agency_{district_code}"


def portal_engine(url: str, **kwargs: Any) -> Engine:
    """A pooled engine whose connections never carry a role from one borrower to the next.

    `as_agency` sets the role for its transaction only; the reset on check-in and check-out also
    undoes a session-wide SET ROLE that some other code ran on the connection.
    """
    engine = make_engine(url, **kwargs)
    event.listen(engine, "checkout", _reset_role)
    event.listen(engine, "checkin", _reset_role)
    return engine


def _reset_role(dbapi_connection: Any, *_: object) -> None:
    if dbapi_connection is None:
        return
    dbapi_connection.rollback()
    with dbapi_connection.cursor() as cursor:
        cursor.execute("RESET ROLE")
    dbapi_connection.commit()


@contextmanager
def as_agency(engine: Engine, district_code: str) -> Iterator[Connection]:
    """A transaction run as the district's agency role; committed on success."""
    role = agency_role(district_code)
    with engine.begin() as conn:
        # Local to the transaction: commit or rollback ends it, whatever the pool does next.
        conn.execute(text("SELECT set_config('role', :role, true)"), {"role": role})
        yield conn
