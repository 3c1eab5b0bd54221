"""nightly_sync: wait for ingest, validate with Great Expectations, load the warehouse, summarise."""

from __future__ import annotations

from datetime import timedelta

import pendulum
from airflow.sdk import Asset, Param, PokeReturnValue, dag, get_current_context, task

WAREHOUSE_DAY = Asset("skillsync://warehouse/business_day")


def _business_day() -> str:
    from warehouse.nightly import resolve_day

    context = get_current_context()
    requested = context["params"].get("business_day")
    return resolve_day(requested, context.get("data_interval_start")).isoformat()


@dag(
    dag_id="nightly_sync",
    description="Turn a business day's landed events into warehouse facts.",
    schedule="0 2 * * *",
    start_date=pendulum.datetime(2026, 1, 1, tz="Asia/Shanghai"),
    catchup=False,
    max_active_runs=1,
    tags=["skillsync", "nightly"],
    default_args={
        "owner": "data-engineering",
        "retries": 2,
        "retry_delay": timedelta(minutes=2),
        "retry_exponential_backoff": True,
    },
    params={
        "business_day": Param(None, type=["null", "string"], format="date",
                              description="YYYY-MM-DD; empty: the day the run's interval starts"),
    },
    doc_md=__doc__,
)
def nightly_sync() -> None:
    @task.sensor(poke_interval=30, timeout=6 * 3600, mode="reschedule")
    def wait_for_ingest() -> PokeReturnValue:
        """Done once the consumers landed every record appended before the day's cutoff."""
        from warehouse.days import parse_day
        from warehouse.nightly import check_ingest

        day = _business_day()
        progress = check_ingest(parse_day(day))
        print(f"ingest for {day}: {progress.describe()}")
        return PokeReturnValue(is_done=progress.caught_up, xcom_value=day)

    @task
    def validate(day: str) -> dict[str, object]:
        """Great Expectations on the day's staging rows; a blocking failure stops the load."""
        from quality.validate import BlockingExpectationFailed, validate_day
        from warehouse.db import make_engine
        from warehouse.days import parse_day
        from warehouse.settings import NightlySettings

        url = make_engine(NightlySettings().database_url.get_secret_value()).url
        result = validate_day(url.render_as_string(hide_password=False), parse_day(day))
        print(f"data docs: {result.docs_index}")
        if not result.passed:
            raise BlockingExpectationFailed(f"{day}: {result.failure_message()}")
        return {"day": day, "checks": len(result.results)}

    @task(outlets=[WAREHOUSE_DAY])
    def load(validated: dict[str, object]) -> dict[str, object]:
        """Replace the day's warehouse facts in one transaction."""
        from warehouse.nightly import load as load_day
        from warehouse.days import parse_day

        context = get_current_context()
        result = load_day(parse_day(str(validated["day"])), context["run_id"])
        return {"day": validated["day"], "rows": result.rows}

    @task
    def summarise(loaded: dict[str, object]) -> dict[str, object]:
        """Counts read back from the warehouse, printed for the operator."""
        import json

        from warehouse.days import parse_day
        from warehouse.nightly import summarise as day_summary

        summary = day_summary(parse_day(str(loaded["day"])))
        print(json.dumps(summary, ensure_ascii=False, indent=2))
        return summary

    summarise(load(validate(wait_for_ingest())))


nightly_sync()
