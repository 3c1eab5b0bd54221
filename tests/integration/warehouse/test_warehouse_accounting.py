"""Every staged event is reflected in the warehouse or named, whatever day its change arrives."""

from __future__ import annotations

import copy
from datetime import date, datetime, time, timedelta
from typing import Any

import orjson
import psycopg
import pytest

from partners.simulate import OutgoingMessage
from quality.verify import judge, observe
from schemas.days import SHANGHAI
from schemas.examples import example_events
from schemas.topics import events_topic
from tests.support.landing import land_directly
from tests.support.nightly import load_days, registry_of
from warehouse.accounting import UnaccountedEvents
from warehouse.load import ReconcileRules

pytestmark = pytest.mark.integration

TYPE = "org.skillsync.{}.v1"


def _event(partner: str, family: str, event_id: str, sent: datetime,
           **data: Any) -> dict[str, Any]:
    event = copy.deepcopy(example_events()[TYPE.format(family)])
    event.update(id=event_id, source=f"/partners/{partner}", time=sent.isoformat())
    event["data"].update(data)
    return event


def _message(partner: str, event: dict[str, Any], appended: datetime) -> OutgoingMessage:
    return OutgoingMessage(events_topic(partner), b"", orjson.dumps(event), (),
                           int(appended.timestamp() * 1000))


def _at(day: date, hour: int) -> datetime:
    return datetime.combine(day, time(hour), SHANGHAI)


def _rows(url: str, sql: str, *params: object) -> list[tuple[Any, ...]]:
    with psycopg.connect(url) as conn:
        return conn.execute(sql, params).fetchall()


@pytest.fixture
def late_enrollment_withdrawn_after_its_look_back(database_url, pseudonymiser, seeded):
    """The case that once vanished: an enrollment that happened on day D but reached the
    broker on D+3 (filed on D, the look-back being 3 days), withdrawn on D+4."""
    partner = seeded.partner_id()
    day = seeded.today - timedelta(days=10)
    enrolled = _event(partner, "enrollment.created", "enrol-1", _at(day + timedelta(3), 9),
                      enrollment_id="E-1", enrolled_at=_at(day, 9).isoformat())
    withdrawn = _event(partner, "enrollment.withdrawn", "withdraw-1", _at(day + timedelta(4), 9),
                       enrollment_id="E-1", withdrawn_at=_at(day + timedelta(4), 8).isoformat())
    land_directly([_message(partner, enrolled, _at(day + timedelta(3), 9)),
                   _message(partner, withdrawn, _at(day + timedelta(4), 9))],
                  database_url, registry_of({partner: "training_platform"}), pseudonymiser)
    return partner, day


def test_a_withdrawal_arriving_after_its_enrollments_look_back_is_applied(
        database_url, late_enrollment_withdrawn_after_its_look_back):
    partner, day = late_enrollment_withdrawn_after_its_look_back
    load_days(database_url, [day + timedelta(3), day + timedelta(4)], "nightly",
              ReconcileRules(lookback_days=3))

    assert _rows(database_url, "SELECT business_day, status, withdrawal_event_id, withdrawn_day"
                 " FROM warehouse.fact_enrollment WHERE partner_id = %s", partner) == [
        (day, "withdrawn", "withdraw-1", day + timedelta(4))]
    assert _rows(database_url, "SELECT business_day, partner_id, family, staged, reflected,"
                 " unaccounted FROM ops.accounting ORDER BY 1, 3") == [
        (day + timedelta(3), partner, "enrollment.created", 1, 1, 0),
        (day + timedelta(4), partner, "enrollment.withdrawn", 1, 1, 0)]


def test_a_load_that_would_drop_an_event_silently_commits_nothing(
        database_url, late_enrollment_withdrawn_after_its_look_back):
    partner, day = late_enrollment_withdrawn_after_its_look_back
    load_days(database_url, [day + timedelta(3)], "nightly")
    # A faulty statement that loses withdrawn enrollments, standing in for any bug that would.
    with psycopg.connect(database_url) as conn:
        conn.execute("CREATE RULE lose_withdrawn AS ON INSERT TO warehouse.fact_enrollment"
                     " WHERE NEW.status = 'withdrawn' DO INSTEAD NOTHING")

    with pytest.raises(UnaccountedEvents, match=f"{partner}/withdraw-1"):
        load_days(database_url, [day + timedelta(4)], "nightly")

    # The night before stays as it was: the enrollment, active, and no record of the failed run.
    assert _rows(database_url, "SELECT status FROM warehouse.fact_enrollment") == [("active",)]
    assert _rows(database_url, "SELECT DISTINCT business_day FROM ops.load_runs") == [
        (day + timedelta(3),)]


def test_verify_names_an_event_the_warehouse_dropped_silently(
        database_url, late_enrollment_withdrawn_after_its_look_back):
    partner, day = late_enrollment_withdrawn_after_its_look_back
    load_days(database_url, [day + timedelta(3), day + timedelta(4)], "nightly")
    assert observe(database_url, [partner]).outcomes == {
        (partner, "enrol-1"): "reflected", (partner, "withdraw-1"): "reflected"}

    # Something outside the load (a hand edit, a bug elsewhere) forgets the withdrawal.
    with psycopg.connect(database_url) as conn:
        conn.execute("UPDATE warehouse.fact_enrollment SET status = 'active',"
                     " withdrawal_event_id = NULL, withdrawn_day = NULL")

    report = judge([], {}, observe(database_url, [partner]))
    assert report.finding("warehouse").lost == (f"('{partner}', 'withdraw-1')",)
    assert not report.ok


def test_a_first_night_plans_its_own_checks_on_statistics_of_what_it_wrote(
        database_url, late_enrollment_withdrawn_after_its_look_back):
    # The accounting and the feed read the facts the night wrote, in its transaction, where
    # autovacuum cannot see them; on a never-analysed table the planner's defaults once made
    # a first big night's accounting run for half an hour.
    _, day = late_enrollment_withdrawn_after_its_look_back
    load_days(database_url, [day + timedelta(3)], "nightly")

    assert _rows(database_url, "SELECT relname, reltuples FROM pg_class WHERE relname ="
                 " ANY(%s) ORDER BY 1", ["fact_enrollment", "partner_scorecard"]) == [
        ("fact_enrollment", 1.0), ("partner_scorecard", 1.0)]
