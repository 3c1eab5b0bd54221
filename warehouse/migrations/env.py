"""Alembic environment: runs migrations online against the configured URL."""

from __future__ import annotations

from alembic import context

from adapters.database import make_engine

config = context.config


def run_migrations_online() -> None:
    engine = make_engine(config.get_main_option("sqlalchemy.url") or "")
    with engine.connect() as connection:
        # Two starters migrating at once (tests, consumers, the DAG) must not race.
        connection.exec_driver_sql("SELECT pg_advisory_lock(727274)")
        context.configure(connection=connection, version_table_schema="public")
        with context.begin_transaction():
            context.run_migrations()
        connection.commit()
        connection.exec_driver_sql("SELECT pg_advisory_unlock(727274)")
    engine.dispose()


run_migrations_online()
