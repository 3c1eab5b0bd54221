"""Engines for the skillsync database, created on demand (never at import time)."""

from __future__ import annotations

from sqlalchemy import Engine, create_engine
from sqlalchemy.engine import make_url


def make_engine(url: str, **kwargs: object) -> Engine:
    """A SQLAlchemy engine on psycopg 3 whatever driver the URL named."""
    parsed = make_url(url)
    if parsed.drivername in ("postgresql", "postgres", "postgresql+psycopg2"):
        parsed = parsed.set(drivername="postgresql+psycopg")
    return create_engine(parsed, pool_pre_ping=True, **kwargs)


def libpq_url(url: str) -> str:
    """The same URL in the plain form libpq and psycopg.connect() accept."""
    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)
