"""Random weeks loaded in order, backfilled and rerun equal the reference model, row for row."""

from __future__ import annotations

import random
from datetime import date

import pytest

from tests.differential import harness, model
from tests.support.landing import land_directly
from tests.support.nightly import appended_days, load_days
from warehouse.load import ReconcileRules

pytestmark = pytest.mark.integration


def _compare(week: harness.Week, database_url: str, loaded: list[date], when: str) -> None:
    want = model.expected(harness.staging_of(database_url), loaded, week.rules)
    got = harness.warehouse_of(database_url, harness.model_columns())
    found = harness.differences(want, got)
    assert not found, (
        f"{when}: the warehouse differs from the model for week {week}\n"
        f"replay: pytest tests/differential {week.replay()}\n" + "\n".join(found))


def test_a_random_week_equals_the_reference_model(week_seed, week_start, database_url,
                                                  pseudonymiser):
    week = harness.Week.draw(week_seed, week_start)
    land_directly(week.simulation().messages, database_url, week.registry, pseudonymiser)
    days = appended_days(database_url)
    rules = ReconcileRules(week.lookback_days, week.duplicate_window_days)

    for index, day in enumerate(days):
        load_days(database_url, [day], "nightly", rules)
        # Every few nights, and after the last: the warehouse so far equals the model so far.
        if index % 3 == 2 or day == days[-1]:
            _compare(week, database_url, days[:index + 1], f"after the night of {day}")

    load_days(database_url, days, "backfill", rules)
    _compare(week, database_url, days, "after a backfill of the whole week")

    again = random.Random(week.seed).sample(days, k=min(3, len(days)))
    load_days(database_url, again, "rerun", rules)
    _compare(week, database_url, days, f"after rerunning {[d.isoformat() for d in again]}")
