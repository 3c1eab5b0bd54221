"""replay_rejects: re-check a partner's refused events after a fix and land those now valid.

Manual only. After a registry change or a contract fix, trigger it with the partner, and
optionally a reason code and a range of append days (Asia/Shanghai). Each refused event's
original bytes are read back from `skills.rejects.<partner>` and checked again exactly as the
consumers check them today, with the time the broker first appended them. Valid ones land in
staging idempotently; staging.rejected records each outcome (landed, duplicate, erased, or
refused with its new reason). Start with the default dry run, read its counts, then trigger
again with dry_run off; afterwards rerun nightly_sync for the days it lists.
"""

from __future__ import annotations

from datetime import timedelta

import pendulum
from airflow.sdk import Param, dag, get_current_context, task

from warehouse.alerts import notify_failure


@dag(
    dag_id="replay_rejects",
    description="Re-check refused events after a fix and land those now valid.",
    schedule=None,
    start_date=pendulum.datetime(2026, 11, 1, tz="Asia/Shanghai"),
    catchup=False,
    # Two replays of one partner would judge the same rows at once.
    max_active_runs=1,
    tags=["skillsync", "manual", "staging"],
    default_args={
        "owner": "data-engineering",
        "retries": 2,
        "retry_delay": timedelta(minutes=2),
        "retry_exponential_backoff": True,
        "on_failure_callback": notify_failure,
    },
    params={
        "partner": Param(type="string", pattern="^[a-z0-9_-]+$",
                         description="partner id whose refused events to replay"),
        "reason_code": Param(None, type=["null", "string"],
                             description="only events refused for this reason, e.g. "
                                         "authorise.type_not_allowed; empty: any reason"),
        "first_day": Param(None, type=["null", "string"], format="date",
                           description="first append day (YYYY-MM-DD); empty: no lower bound"),
        "last_day": Param(None, type=["null", "string"], format="date",
                          description="last append day (YYYY-MM-DD); empty: no upper bound"),
        "dry_run": Param(True, type="boolean",
                         description="only report what would happen; write nothing"),
    },
    doc_md=__doc__,
)
def replay_rejects() -> None:
    @task
    def replay() -> dict[str, object]:
        """Check the chosen refused events again, land the valid ones, record every outcome."""
        import json

        from adapters.airflow import fail_without_retry, run_module

        context = get_current_context()
        params = context["params"]
        # Replay is the ingestion side's job: the DAG runs its command, never its code.
        args = ["replay", "--partner", params["partner"], "--run-id", context["run_id"]]
        for name in ("reason_code", "first_day", "last_day"):
            if params.get(name):
                args += [f"--{name.replace('_', '-')}", str(params[name])]
        if not params["dry_run"]:
            args.append("--apply")
        with fail_without_retry():  # bad params or configuration
            summary: dict[str, object] = json.loads(run_module("consumers", args))
        print(summary)
        return summary

    replay()


replay_rejects()
