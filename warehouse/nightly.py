"""The nightly run's steps as plain functions; the DAG file only wires them to tasks."""

from __future__ import annotations

from datetime import date, datetime, timedelta
from typing import TYPE_CHECKING

from warehouse.days import SHANGHAI, day_window, parse_day
from warehouse.db import libpq_url, scoped_engine
from warehouse.freshness import IngestProgress, ingest_progress
from warehouse.load import LoadResult, ReconcileRules, day_summary, load_day
from warehouse.settings import NightlySettings

if TYPE_CHECKING:
    from quality.validate import DayValidation


def resolve_day(requested: str | None, logical_date: datetime | None) -> date:
    """The business day a run is for: the one asked for, else the day before the run's date.

    A cron-triggered run's logical date is the moment it fires (02:00 on D+1 for day D), and
    a manual run's is when it was triggered: either way the day to close is the previous one.
    """
    if requested:
        return parse_day(requested)
    if logical_date is None:
        raise ValueError("a run needs a business_day param or a logical date")
    return logical_date.astimezone(SHANGHAI).date() - timedelta(days=1)


def check_ingest(day: date, settings: NightlySettings | None = None) -> IngestProgress:
    s = settings or NightlySettings()
    return ingest_progress(
        bootstrap_servers=s.kafka_bootstrap_servers,
        database_url=libpq_url(s.database_url.get_secret_value()),
        group_id=s.consumer_group, topic_pattern=s.topic_pattern, cutoff=day_window(day)[1],
        security=s)


def validate(day: date, run_id: str, settings: NightlySettings | None = None) -> DayValidation:
    """Run the suite in PostgreSQL, keep results and quarantine, and judge the day.

    Raises BlockingExpectationFailed, naming each failed expectation and its counts.
    """
    from quality.validate import BlockingExpectationFailed, record_validation, validate_day

    s = settings or NightlySettings()
    with scoped_engine(s.database_url.get_secret_value()) as engine:
        url = engine.url.render_as_string(hide_password=False)
        result = validate_day(url, day, gx_root=s.gx_dir, severities=s.expectation_severity)
        record_validation(engine, result, run_id)
    if not result.passed:
        raise BlockingExpectationFailed(f"{day}: {result.failure_message()}")
    return result


def load(day: date, run_id: str, settings: NightlySettings | None = None) -> LoadResult:
    s = settings or NightlySettings()
    rules = ReconcileRules(lookback_days=s.lookback_days,
                           duplicate_window_days=s.duplicate_window_days)
    with scoped_engine(s.database_url.get_secret_value()) as engine:
        return load_day(engine, day, run_id, rules)


def summarise(day: date, settings: NightlySettings | None = None) -> dict[str, object]:
    s = settings or NightlySettings()
    with scoped_engine(s.database_url.get_secret_value()) as engine:
        return day_summary(engine, day)
