"""Business days: Asia/Shanghai calendar days, chosen by broker append time."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta, timezone

from schemas.errors import ConfigurationError

# The zone has had no daylight saving since 1991, so a fixed offset is exact and cheap.
SHANGHAI = timezone(timedelta(hours=8), "Asia/Shanghai")
SHANGHAI_NAME = "Asia/Shanghai"  # as PostgreSQL, Airflow and pendulum name it


def day_window(day: date) -> tuple[datetime, datetime]:
    """[start, end) of a business day in UTC."""
    start = datetime.combine(day, time(0), SHANGHAI)
    return start.astimezone(UTC), (start + timedelta(days=1)).astimezone(UTC)


def business_day_of(moment: datetime) -> date:
    return moment.astimezone(SHANGHAI).date()


def parse_day(value: str | date) -> date:
    """A business day given as YYYY-MM-DD; ConfigurationError (a run's bad parameter) if not."""
    if isinstance(value, date):
        return value
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise ConfigurationError(f"business day {value!r} is not YYYY-MM-DD") from None
