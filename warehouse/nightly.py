"""The nightly run's steps as plain functions; the DAG file only wires them to tasks."""

from __future__ import annotations

from datetime import date, datetime

from warehouse.days import SHANGHAI, day_window, parse_day

from warehouse.db import libpq_url, make_engine
from warehouse.freshness import IngestProgress, ingest_progress
from warehouse.load import LoadResult, day_summary, load_day
from warehouse.settings import NightlySettings



def resolve_day(requested: str | None, data_interval_start: datetime | None) -> date:
    """The business day a run is for: the one asked for, else the day its interval starts in."""
    if requested:
        return parse_day(requested)
    if data_interval_start is None:
        raise ValueError("a run needs a business_day param or a data interval")
    return data_interval_start.astimezone(SHANGHAI).date()


def check_ingest(day: date, settings: NightlySettings | None = None) -> IngestProgress:
    s = settings or NightlySettings()
    return ingest_progress(
        bootstrap_servers=s.kafka_bootstrap_servers,
        database_url=libpq_url(s.database_url.get_secret_value()),
        group_id=s.consumer_group, topic_pattern=s.topic_pattern, cutoff=day_window(day)[1])


def load(day: date, run_id: str, settings: NightlySettings | None = None) -> LoadResult:
    s = settings or NightlySettings()
    engine = make_engine(s.database_url.get_secret_value())
    try:
        return load_day(engine, day, run_id)
    finally:
        engine.dispose()


def summarise(day: date, settings: NightlySettings | None = None) -> dict[str, object]:
    s = settings or NightlySettings()
    engine = make_engine(s.database_url.get_secret_value())
    try:
        return day_summary(engine, day)
    finally:
        engine.dispose()
