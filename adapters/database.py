"""The skillsync database: its URL in the forms clients want, and engines made on demand."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy import Engine, create_engine
from sqlalchemy.engine import make_url


def make_engine(url: str, **kwargs: object) -> Engine:
    """A SQLAlchemy engine on psycopg 3 whatever driver the URL named."""
    parsed = make_url(url)
    if parsed.drivername in ("postgresql", "postgres", "postgresql+psycopg2"):
        parsed = parsed.set(drivername="postgresql+psycopg")
    return create_engine(parsed, pool_pre_ping=True, **kwargs)


@contextmanager
def scoped_engine(url: str, **kwargs: object) -> Iterator[Engine]:
    """An engine for one task's work; its pool is closed when the work ends, however it ends."""
    engine = make_engine(url, **kwargs)
    try:
        yield engine
    finally:
        engine.dispose()


def libpq_url(url: str) -> str:
    """The same URL in the plain form libpq and psycopg.connect() accept (any driver named in a
    SQLAlchemy URL, such as postgresql+psycopg, is dropped)."""
    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)
