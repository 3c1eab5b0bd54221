"""The nightly run's steps as plain functions; the DAG file only wires them to tasks."""

from __future__ import annotations

from datetime import date, datetime, timedelta

from adapters.database import scoped_engine
from adapters.settings import Settings
from schemas.days import SHANGHAI, day_window, parse_day
from schemas.errors import ConfigurationError
from warehouse.figures import day_figures
from warehouse.freshness import IngestProgress, ingest_progress
from warehouse.load import LoadResult, ReconcileRules, load_day
from warehouse.relay import FeedState, wait_for_relay


def resolve_day(requested: str | None, logical_date: datetime | None) -> date:
    """The business day a run is for: the one asked for, else the day before the run's date.

    A cron-triggered run's logical date is the moment it fires (02:00 on D+1 for day D), and
    a manual run's is when it was triggered: either way the day to close is the previous one.
    """
    if requested:
        return parse_day(requested)
    if logical_date is None:
        raise ConfigurationError("a run needs a business_day param or a logical date")
    return logical_date.astimezone(SHANGHAI).date() - timedelta(days=1)


def check_ingest(day: date, settings: Settings | None = None) -> IngestProgress:
    """Whether ingestion landed everything the broker appended before the day's cutoff."""
    return ingest_progress(settings or Settings.load(), day_window(day)[1])


def check_feed(settings: Settings | None = None) -> FeedState:
    """Whether the relay has published every change the loads wrote to the subscribers' feeds
    (waiting a little for it first)."""
    return wait_for_relay(settings or Settings.load())


def rules_of(settings: Settings) -> ReconcileRules:
    nightly = settings.nightly
    return ReconcileRules(lookback_days=nightly.lookback_days,
                          duplicate_window_days=nightly.duplicate_window_days)


def load(day: date, run_id: str, settings: Settings | None = None) -> LoadResult:
    s = settings or Settings.load()
    with scoped_engine(s.database.sqlalchemy) as engine:
        return load_day(engine, day, run_id, rules_of(s), s.registry.load())


def summarise(day: date, settings: Settings | None = None) -> dict[str, object]:
    """The day's headline figures and each partner's accounting identity, as the report has
    them (one reader of a day's figures)."""
    s = settings or Settings.load()
    with scoped_engine(s.database.sqlalchemy) as engine:
        figures = day_figures(engine, day, trend_days=1)
    return {"business_day": figures["business_day"], "loaded": figures["loaded"],
            "headline": figures["headline"], "accounting": figures["accounting"]}
