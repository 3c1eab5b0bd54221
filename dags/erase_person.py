"""erase_person: honour an erasure request for one person (personal-information law).

Manual only, and never given an ID number: Airflow keeps every run's parameters in its metadata
database. The operator requests the erasure where the pseudonym keys are, with the ID number
typed at a prompt that does not echo it:

    python -m warehouse.erasure request --id-type resident_id \
        --requested-by dpo@city --reason "ticket 2026-118"

That computes the person's pseudonym under every key version and triggers this DAG with those
only (or, with `--print`, prints the parameters to paste into Trigger DAG). The task removes
the person's rows from staging and the warehouse in one transaction and records the erasure by
pseudonym. A trigger on staging.events then turns their events away, so consumer replays and
nightly reruns never bring them back.
"""

from __future__ import annotations

from datetime import timedelta

import pendulum
from airflow.sdk import Param, dag, get_current_context, task

from schemas.identity import ID_TYPES
from warehouse.alerts import notify_failure


@dag(
    dag_id="erase_person",
    description="Erase one person, named by pseudonyms, from staging and warehouse, for good.",
    schedule=None,
    start_date=pendulum.datetime(2026, 11, 1, tz="Asia/Shanghai"),
    catchup=False,
    max_active_runs=1,
    tags=["skillsync", "manual", "privacy"],
    default_args={
        "owner": "data-protection",
        "retries": 2,
        "retry_delay": timedelta(minutes=1),
        "on_failure_callback": notify_failure,
    },
    params={
        "id_type": Param("resident_id", type="string", enum=list(ID_TYPES),
                         description="identity document type (kept in the erasure record)"),
        "pseudonyms": Param(
            type="array", minItems=1,
            items={"type": "object", "required": ["key_id", "person"],
                   "additionalProperties": False,
                   "properties": {"key_id": {"type": "string", "minLength": 1},
                                  "person": {"type": "string", "pattern": "^[0-9a-f]{64}$"}}},
            description="the person's pseudonym under every key version, from "
                        "`python -m warehouse.erasure request --print`"),
        "requested_by": Param(type="string", minLength=1,
                              description="who asked, e.g. the data-protection ticket's owner"),
        "reason": Param(type="string", minLength=1,
                        description="why, e.g. the request's ticket reference"),
    },
    doc_md=__doc__,
)
def erase_person() -> None:
    @task
    def erase() -> dict[str, object]:
        """Remove the person's rows and record the erasure by pseudonym."""
        from adapters.airflow import fail_without_retry
        from warehouse.erasure import erase_configured, parse_pseudonyms

        context = get_current_context()
        params = context["params"]
        who = params["requested_by"]
        user = getattr(context.get("dag_run"), "triggering_user_name", None)
        if user and user != who:
            who = f"{who} (triggered by {user})"
        with fail_without_retry():  # a malformed request or bad configuration
            result = erase_configured(pseudonyms=parse_pseudonyms(params["pseudonyms"]),
                                      id_type=params["id_type"], requested_by=who,
                                      reason=params["reason"])
        summary = {"erasure_id": result.erasure_id, "pseudonyms": result.pseudonyms,
                   "rows_removed": result.rows_removed}
        print(summary)
        return summary

    erase()


erase_person()
