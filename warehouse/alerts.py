"""Failure alerts for the nightly DAG: always logged, and POSTed to a webhook when one is set."""

from __future__ import annotations

import json
import logging
import urllib.error
import urllib.request
from collections.abc import Mapping
from typing import Any

log = logging.getLogger("skillsync.alerts")

WEBHOOK_TIMEOUT_S = 5.0


def failure_alert(context: Mapping[str, Any]) -> dict[str, str]:
    """What an operator needs from a failed task's Airflow context, and nothing personal."""
    ti = context.get("ti") or context.get("task_instance")
    exception = context.get("exception")
    message = f"{type(exception).__name__}: {exception}" if exception is not None else "failed"
    if type(exception).__name__ == "AirflowSensorTimeout":
        message = ("ingest did not catch up before the sensor timed out; the task log shows "
                   "which partitions were behind at each check")
    params = context.get("params") or {}
    return {
        "dag_id": str(getattr(ti, "dag_id", context.get("dag_id", "?"))),
        "task_id": str(getattr(ti, "task_id", "?")),
        "run_id": str(context.get("run_id", getattr(ti, "run_id", "?"))),
        "try_number": str(getattr(ti, "try_number", "?")),
        "business_day": str(params.get("business_day") or "scheduled"),
        "message": message[:2000],
    }


def notify_failure(context: Mapping[str, Any], webhook_url: str | None = None) -> None:
    """on_failure_callback: log the alert, then POST it as JSON if a webhook is configured.

    A failing webhook is logged, never raised: the callback must not hide the task's failure.
    """
    alert = failure_alert(context)
    log.error("nightly task failed: %s", json.dumps(alert, ensure_ascii=False))
    if webhook_url is None:
        from adapters.settings import Settings

        configured = Settings.load().alerts.webhook_url
        webhook_url = configured.get_secret_value() if configured else None
    if not webhook_url:
        return
    request = urllib.request.Request(
        webhook_url, data=json.dumps(alert, ensure_ascii=False).encode(), method="POST",
        headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=WEBHOOK_TIMEOUT_S) as response:
            response.read()
    except (urllib.error.URLError, TimeoutError, OSError) as exc:
        log.error("failure alert not delivered to the webhook: %s", exc)
