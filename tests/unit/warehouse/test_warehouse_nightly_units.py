"""The nightly side's pure parts: which day a run closes, failure alerts, reconcile rules."""

from __future__ import annotations

import json
import threading
from datetime import UTC, date, datetime
from http.server import BaseHTTPRequestHandler, HTTPServer

import pendulum
import pytest
from airflow.timetables.trigger import CronTriggerTimetable

from schemas.errors import ConfigurationError
from warehouse.alerts import notify_failure
from warehouse.load import ReconcileRules
from warehouse.nightly import resolve_day


def test_a_scheduled_run_closes_the_business_day_before_it_fires():
    timetable = CronTriggerTimetable("0 2 * * *", timezone="Asia/Shanghai")
    after = pendulum.datetime(2026, 3, 1, 12, tz="Asia/Shanghai")
    info = timetable.next_dagrun_info(last_automated_data_interval=None,
                                      restriction=_from(after))
    assert info is not None

    assert resolve_day(None, info.logical_date) == date(2026, 3, 1)


def _from(moment):
    from airflow.timetables.base import TimeRestriction

    return TimeRestriction(earliest=moment, latest=None, catchup=True)


def test_a_run_just_after_midnight_utc_still_uses_the_shanghai_calendar():
    assert resolve_day(None, datetime(2026, 3, 1, 18, 30, tzinfo=UTC)) == date(2026, 3, 1)


def test_a_requested_day_wins_and_a_malformed_one_is_refused():
    assert resolve_day("2026-02-03", datetime(2026, 3, 1, tzinfo=UTC)) == date(2026, 2, 3)
    with pytest.raises(ConfigurationError, match="YYYY-MM-DD"):
        resolve_day("03/02/2026", None)


class _Ti:
    dag_id, task_id, run_id, try_number = "nightly_sync", "load", "scheduled__x", 2


def test_a_failure_is_logged_and_posted_to_the_webhook(caplog):
    received: list[dict] = []

    class Hook(BaseHTTPRequestHandler):
        def do_POST(self):
            received.append(json.loads(self.rfile.read(int(self.headers["Content-Length"]))))
            self.send_response(204)
            self.end_headers()

        def log_message(self, *args):
            pass

    server = HTTPServer(("127.0.0.1", 0), Hook)
    thread = threading.Thread(target=server.handle_request)
    thread.start()
    try:
        notify_failure({"ti": _Ti(), "exception": RuntimeError("load broke"),
                        "params": {"business_day": "2026-03-01"}, "run_id": "scheduled__x"},
                       webhook_url=f"http://127.0.0.1:{server.server_port}/alerts")
        thread.join(timeout=10)
    finally:
        server.server_close()

    assert received == [{"dag_id": "nightly_sync", "task_id": "load", "run_id": "scheduled__x",
                         "try_number": "2", "business_day": "2026-03-01",
                         "message": "RuntimeError: load broke"}]
    assert "load broke" in caplog.text


def test_an_unreachable_webhook_is_logged_without_hiding_the_failure(caplog):
    with HTTPServer(("127.0.0.1", 0), BaseHTTPRequestHandler) as closed:
        port = closed.server_port
    notify_failure({"ti": _Ti(), "exception": RuntimeError("x")},
                   webhook_url=f"http://127.0.0.1:{port}/alerts")

    assert "not delivered" in caplog.text


def test_a_sensor_timeout_alert_says_ingest_did_not_catch_up(caplog):
    from airflow.sdk.exceptions import AirflowSensorTimeout

    notify_failure({"ti": _Ti(), "exception": AirflowSensorTimeout("Sensor has timed out")},
                   webhook_url="")

    assert "ingest did not catch up" in caplog.text


def test_negative_windows_are_refused():
    with pytest.raises(ConfigurationError, match="lookback_days"):
        ReconcileRules(lookback_days=-1)
