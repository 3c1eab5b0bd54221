"""nightly_sync: close yesterday's business day in the warehouse.

Runs at 02:00 Asia/Shanghai for the previous business day (Asia/Shanghai calendar day, chosen
by broker append time). Steps: wait until the consumers landed everything the broker appended
before the day's cutoff; validate the day's staging rows with Great Expectations inside
PostgreSQL (blocking failures stop the run, failing rows are quarantined); reconcile and load
the warehouse and, in the same transaction, each subscriber's changes (the sync feed's
outbox), restating the late days the day reopens; wait until the relay has published those
changes to every subscriber's feed; print a summary; write the day's report (HTML with charts
and JSON, under SKILLSYNC_REPORT_DIR/<day>/); emit the warehouse asset. Reruns and backfills
of a day leave identical rows and send no change.

Manual runs: set `business_day` (YYYY-MM-DD) to (re)load one day; leave it empty for the
previous day. Backfill: `airflow backfill create --dag-id nightly_sync --from-date ...
--to-date ...` (runs go in order, one at a time).
"""

from __future__ import annotations

import os
from datetime import timedelta

import pendulum
from airflow.sdk import Asset, Param, PokeReturnValue, dag, get_current_context, task
from airflow.timetables.trigger import CronTriggerTimetable

from warehouse.alerts import notify_failure

WAREHOUSE_DAY = Asset("skillsync://warehouse/business_day")


def _business_day() -> str:
    from warehouse.nightly import resolve_day

    context = get_current_context()
    requested = context["params"].get("business_day")
    return resolve_day(requested, context.get("logical_date")).isoformat()


@dag(
    dag_id="nightly_sync",
    description="Turn a business day's landed events into reconciled warehouse facts.",
    schedule=CronTriggerTimetable("0 2 * * *", timezone="Asia/Shanghai"),
    start_date=pendulum.datetime(2026, 11, 1, tz="Asia/Shanghai"),
    catchup=True,
    # Days restate each other's look-back window: they load one at a time, oldest first.
    max_active_runs=1,
    # Paused unless this deployment should run nights (`make airflow` applies the same setting
    # to a DAG Airflow already knows).
    is_paused_upon_creation=os.environ.get("SKILLSYNC_NIGHTLY_SYNC_ACTIVE", "").lower()
    not in ("1", "true", "yes", "on"),
    owner_links={"data-engineering": "https://skillsync.example/runbooks/nightly_sync"},
    tags=["skillsync", "nightly", "warehouse"],
    default_args={
        "owner": "data-engineering",
        "retries": 3,
        "retry_delay": timedelta(minutes=2),
        "retry_exponential_backoff": True,
        "max_retry_delay": timedelta(minutes=30),
        "on_failure_callback": notify_failure,
    },
    params={
        "business_day": Param(None, type=["null", "string"], format="date",
                              description="YYYY-MM-DD; empty: the day before the run's date"),
    },
    doc_md=__doc__,
)
def nightly_sync() -> None:
    @task.sensor(poke_interval=60, timeout=6 * 3600, mode="reschedule")
    def wait_for_ingest() -> PokeReturnValue:
        """Done once the consumers landed every record the broker appended before the day's
        cutoff; after 6 hours it fails and the alert says ingest did not catch up."""
        from schemas.days import parse_day
        from warehouse.nightly import check_ingest

        day = _business_day()
        progress = check_ingest(parse_day(day))
        print(f"ingest for {day}: {progress.describe()}")
        return PokeReturnValue(is_done=progress.caught_up, xcom_value=day)

    @task
    def validate(day: str) -> dict[str, object]:
        """Great Expectations on the day's staging rows, pushed down to PostgreSQL. Results go
        to ops.validation_results and Data Docs, failing rows to ops.quarantine; a
        blocking failure stops the load naming the expectation and its counts."""
        from adapters.airflow import fail_without_retry
        from quality.validate import validate_and_record
        from schemas.days import parse_day

        # The data will not change by retrying: fail now, with the expectation named.
        with fail_without_retry():
            result = validate_and_record(parse_day(day), get_current_context()["run_id"])
        print(f"data docs: {result.docs_index}")
        return {"day": day, "checks": len(result.results),
                "warnings": [r.name for r in result.results if not r.success]}

    @task(outlets=[WAREHOUSE_DAY])
    def load(validated: dict[str, object]) -> dict[str, object]:
        """Reconcile and load the day in one transaction: the records of everyone its events
        touch and the partner figures of the days it reopens; concurrent loads queue on a
        lock. A night that would leave a staged event unaccounted for commits nothing."""
        from adapters.airflow import fail_without_retry
        from schemas.days import parse_day
        from warehouse.nightly import load as load_day

        # The same staging rows give the same facts: a retry would drop the same events.
        with fail_without_retry():
            result = load_day(parse_day(str(validated["day"])),
                              get_current_context()["run_id"])
        return {"day": validated["day"], "rows": result.rows,
                "restated_days": [d.isoformat() for d in result.restated_days],
                "restated_persons": result.restated_persons}

    @task.sensor(poke_interval=30, timeout=2 * 3600, mode="reschedule")
    def wait_for_feed(loaded: dict[str, object]) -> PokeReturnValue:
        """Done once the relay (python -m warehouse.relay) has published every change the
        load wrote to the subscribers' feeds; after 2 hours it fails and the alert says the
        feed is behind, by subscriber."""
        from warehouse.nightly import check_feed

        state = check_feed()
        print(f"sync feed: {state.describe()}")
        return PokeReturnValue(is_done=state.caught_up, xcom_value=loaded)

    @task
    def summarise(loaded: dict[str, object]) -> dict[str, object]:
        """Counts read back from the warehouse, printed for the operator."""
        import json

        from schemas.days import parse_day
        from warehouse.nightly import summarise as day_summary

        summary = day_summary(parse_day(str(loaded["day"])))
        print(json.dumps(summary, ensure_ascii=False, indent=2))
        return summary

    @task
    def report(summary: dict[str, object]) -> str:
        """The day's report: an HTML page with charts and the same figures as JSON."""
        from schemas.days import parse_day
        from warehouse.report import write_day_report

        files = write_day_report(parse_day(str(summary["business_day"])))
        print(f"report: {files.html} (figures: {files.json})")
        return str(files.html)

    report(summarise(wait_for_feed(load(validate(wait_for_ingest())))))  # type: ignore[arg-type]


nightly_sync()
