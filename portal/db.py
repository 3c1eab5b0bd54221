"""The portal's database access: each page's reads run under its reader's role and settings."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from sqlalchemy import Connection, Engine

from adapters.database import make_engine
from portal import queries as q
from warehouse.agency import portal_engine

# A page's reads stop here rather than hold a connection and a worker.
STATEMENT_TIMEOUT = "20s"


@dataclass(frozen=True)
class Scope:
    """The role (and, for a partner, the partner setting) row-level security reads."""
    role: str
    partner_id: str | None = None


class Database:
    """Engines are made on first use: constructing this does no I/O."""

    def __init__(self, url: str, airflow_url: str | None = None, pool_size: int = 10) -> None:
        self._url = url
        self._airflow_url = airflow_url
        self._pool_size = pool_size
        self._engine: Engine | None = None
        self._airflow: Engine | None = None

    @property
    def engine(self) -> Engine:
        if self._engine is None:
            self._engine = portal_engine(self._url, pool_size=self._pool_size, max_overflow=10)
        return self._engine

    @contextmanager
    def scoped(self, scope: Scope) -> Iterator[Connection]:
        """A read-only transaction as the scope's role; the role ends with the transaction."""
        with self.engine.begin() as conn:
            conn.execute(q.READ_ONLY)
            conn.execute(q.SET_SCOPE, {"role": scope.role, "partner": scope.partner_id or "",
                                       "timeout": STATEMENT_TIMEOUT})
            yield conn

    @contextmanager
    def portal(self) -> Iterator[Connection]:
        """The portal's own login: accounts and sign-in attempts, never warehouse rows."""
        with self.engine.begin() as conn:
            yield conn

    @property
    def has_airflow(self) -> bool:
        return self._airflow_url is not None

    @contextmanager
    def airflow(self) -> Iterator[Connection]:
        if self._airflow_url is None:
            raise RuntimeError("no Airflow metadata database is configured")
        if self._airflow is None:
            self._airflow = make_engine(self._airflow_url, pool_size=2, max_overflow=2)
        with self._airflow.connect() as conn:
            yield conn

    def dispose(self) -> None:
        for engine in (self._engine, self._airflow):
            if engine is not None:
                engine.dispose()
        self._engine = self._airflow = None
