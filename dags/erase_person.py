"""erase_person: honour an erasure request for one person (personal-information law).

Manual only. Give the person's identity document type and number (a masked field, redacted
from task logs), who asked and why. The task computes the person's pseudonym under every key
version, removes their rows from staging and the warehouse in one transaction, and records the
erasure by pseudonym only. A trigger on staging.events then turns their events away, so
consumer replays and nightly reruns never bring them back.

Airflow keeps a run's parameters (this one's ID number included) in its metadata database:
once the run has succeeded, delete it (Browse > DAG Runs, or the REST API's
DELETE /api/v2/dags/erase_person/dagRuns/{run_id}).
"""

from __future__ import annotations

from datetime import timedelta

import pendulum
from airflow.sdk import Param, dag, get_current_context, task

from schemas.identity import ID_TYPES
from warehouse.alerts import notify_failure


@dag(
    dag_id="erase_person",
    description="Erase one person from staging and warehouse, for good.",
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
                         description="identity document type"),
        "id_number": Param(type="string", format="password", minLength=5,
                           description="identity document number (never stored)"),
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
        from airflow.sdk.exceptions import AirflowFailException
        from airflow.sdk.log import mask_secret

        from warehouse.erasure import erase_configured

        context = get_current_context()
        params = context["params"]
        mask_secret(params["id_number"])
        who = params["requested_by"]
        user = getattr(context.get("dag_run"), "triggering_user_name", None)
        if user and user != who:
            who = f"{who} (triggered by {user})"
        try:
            result = erase_configured(id_type=params["id_type"], id_number=params["id_number"],
                                      requested_by=who, reason=params["reason"])
        except ValueError as exc:
            # A malformed number or bad configuration: retrying will not help.
            raise AirflowFailException(str(exc)) from exc
        summary = {"erasure_id": result.erasure_id, "pseudonyms": result.pseudonyms,
                   "rows_removed": result.rows_removed}
        print(summary)
        return summary

    erase()


erase_person()
