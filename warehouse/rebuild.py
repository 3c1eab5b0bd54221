"""Reload every day the warehouse has loaded, in order: after a change of the night's rules."""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from datetime import date

from sqlalchemy import Engine, text

from adapters.database import scoped_engine
from adapters.settings import Settings
from warehouse.load import LoadResult, ReconcileRules, load_day


def loaded_days(engine: Engine) -> list[date]:
    with engine.connect() as conn:
        return list(conn.execute(text(
            "SELECT DISTINCT business_day FROM ops.load_runs ORDER BY 1")).scalars())


def rebuild(engine: Engine, run_id: str, rules: ReconcileRules,
            days: Sequence[date] | None = None) -> list[LoadResult]:
    """Load each day again, oldest first; every person's records are restated by the nights
    that name them, so the warehouse ends as if the current rules had always been in force."""
    return [load_day(engine, day, run_id, rules) for day in days or loaded_days(engine)]


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m warehouse.rebuild",
        description="Reload every loaded business day in order, with the current rules "
                    "(after a migration that changes what the night computes).")
    parser.add_argument("--run-id", default="rebuild")
    args = parser.parse_args(argv)
    settings = Settings.load()
    rules = ReconcileRules(settings.nightly.lookback_days,
                           settings.nightly.duplicate_window_days)
    with scoped_engine(settings.database.sqlalchemy) as engine:
        for result in rebuild(engine, args.run_id, rules):
            print(f"{result.business_day}: {result.restated_persons} people restated,"
                  f" {sum(result.rows.values())} rows")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
