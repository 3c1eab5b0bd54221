"""Load one business day from staging into the warehouse, replacing that day atomically."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

from sqlalchemy import Engine, text

# Only this statement decides what an enrollment fact is; a rerun of the day repeats it exactly.
_ENROLLMENTS = text(
    """
    INSERT INTO warehouse.fact_enrollment (
        partner_id, enrollment_id, event_id, business_day, person, key_id, occupation_code,
        level, course_id, mode, institution_code, district_code, enrolled_at)
    SELECT DISTINCT ON (e.partner_id, e.data->>'enrollment_id')
        e.partner_id, e.data->>'enrollment_id', e.event_id, e.append_day, e.person, e.key_id,
        e.data->'course'->>'occupation_code', (e.data->'course'->>'level')::smallint,
        e.data->'course'->>'course_id', e.data->'course'->>'mode',
        e.data->'institution'->>'credit_code', e.data->>'district_code',
        (e.data->>'enrolled_at')::timestamptz
    FROM staging.events e
    WHERE e.append_day = :day AND e.family = 'enrollment.created'
    ORDER BY e.partner_id, e.data->>'enrollment_id', e.occurred_at, e.event_id
    ON CONFLICT (partner_id, enrollment_id) DO NOTHING
    """
)


@dataclass(frozen=True)
class LoadResult:
    business_day: date
    rows: dict[str, int]


def load_day(engine: Engine, day: date, run_id: str) -> LoadResult:
    """Replace the day's facts in one transaction; concurrent loads of a day queue, not double."""
    with engine.begin() as conn:
        conn.execute(text("SELECT pg_advisory_xact_lock(hashtext('skillsync.load'), :d)"),
                     {"d": day.toordinal()})
        conn.execute(text("DELETE FROM warehouse.fact_enrollment WHERE business_day = :day"),
                     {"day": day})
        enrollments = conn.execute(_ENROLLMENTS, {"day": day}).rowcount
        conn.execute(
            text("INSERT INTO warehouse.load_runs (business_day, run_id, table_name, rows_loaded)"
                 " VALUES (:day, :run, 'fact_enrollment', :n) ON CONFLICT DO NOTHING"),
            {"day": day, "run": run_id, "n": enrollments},
        )
    return LoadResult(day, {"fact_enrollment": enrollments})


def day_summary(engine: Engine, day: date) -> dict[str, object]:
    """Counts read back from staging and warehouse for the printed summary."""
    with engine.connect() as conn:
        staged = dict(conn.execute(text(
            "SELECT family, count(*) FROM staging.events WHERE append_day = :day GROUP BY 1"),
            {"day": day}).all())
        rejected = dict(conn.execute(text(
            "SELECT reason_code, count(*) FROM staging.rejected WHERE append_day = :day "
            "GROUP BY 1"), {"day": day}).all())
        by_partner = dict(conn.execute(text(
            "SELECT partner_id, count(*) FROM warehouse.fact_enrollment WHERE business_day = :day"
            " GROUP BY 1 ORDER BY 1"), {"day": day}).all())
    return {
        "business_day": day.isoformat(),
        "staged_by_family": staged,
        "rejected_by_reason": rejected,
        "enrollments_by_partner": by_partner,
        "enrollments_total": sum(by_partner.values()),
    }
