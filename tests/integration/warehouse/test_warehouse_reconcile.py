"""The night's reconcile-and-load on a simulated faulty week, checked against its ground truth."""

from __future__ import annotations

import threading
from collections import Counter
from datetime import date, timedelta

import psycopg
import pytest

from adapters.database import scoped_engine
from partners.faults import Faults
from tests.support.nightly import load_days, table_checksums
from warehouse.load import ReconcileRules
from warehouse.rebuild import rebuild

pytestmark = pytest.mark.integration


def _load_week(database_url: str, days: list[date], rules: ReconcileRules | None = None,
               run: str = "first") -> None:
    load_days(database_url, days, run, rules)


def _rows(database_url: str, sql: str) -> list[tuple]:
    with psycopg.connect(database_url) as conn:
        return conn.execute(sql).fetchall()


def test_a_faulty_week_reconciles_to_what_the_partners_sent(simulated_week):
    week = simulated_week()
    manifest = week.manifest
    _load_week(week.database_url, week.days)

    landed: Counter[str] = Counter()
    for by_family in manifest["landed"].values():
        landed.update(by_family)
    counts = dict(_rows(week.database_url, """
        SELECT 'enrollment.created', count(*) FROM warehouse.fact_enrollment
        UNION ALL SELECT 'completion.recorded', count(*) FROM warehouse.fact_completion
        UNION ALL SELECT 'evaluation.recorded', count(*) FROM warehouse.fact_evaluation
        UNION ALL SELECT 'certificate.issued', count(*) FROM warehouse.fact_certificate
        UNION ALL SELECT 'enrollment.withdrawn', count(*) FROM warehouse.fact_enrollment
                  WHERE status = 'withdrawn'
        UNION ALL SELECT 'certificate.revoked', count(*) FROM warehouse.fact_certificate
                  WHERE status = 'revoked'"""))
    assert counts == {family: landed[family] for family in counts}

    expected = Counter(d["kind"] for d in manifest["discrepancies"])
    found = Counter(kind for (kind,) in _rows(week.database_url, """
        SELECT kind FROM warehouse.discrepancy WHERE kind <> 'certificate_number_conflict'
        UNION ALL SELECT DISTINCT 'certificate_number_conflict' || reference
        FROM warehouse.discrepancy WHERE kind = 'certificate_number_conflict'"""))
    found["certificate_number_conflict"] = sum(
        n for k, n in found.items() if k.startswith("certificate_number_conflict"))
    assert {k: found[k] for k in expected} == dict(expected)
    assert sum(found[k] for k in ("certificate_without_passing_evaluation",
                                  "level_mismatch", "restatement_outside_lookback")) == 0

    gaps = sorted((d["partner"], d["business_day"], d["family"], d["ids"])
                  for d in manifest["discrepancies"] if d["kind"] == "control_total_gap")
    assert sorted((p, str(day), detail["family"], detail["missing"]) for p, day, detail in _rows(
        week.database_url, "SELECT partner_id, business_day, detail FROM warehouse.discrepancy"
        " WHERE kind = 'control_total_gap'")) == gaps

    conflicts = {d["certificate_number"] for d in manifest["discrepancies"]
                 if d["kind"] == "certificate_number_conflict"}
    assert {r for (r,) in _rows(week.database_url, "SELECT reference FROM warehouse.discrepancy"
                                " WHERE kind = 'certificate_number_conflict'")} == conflicts
    claims = sorted(tuple(d["certificate_numbers"]) for d in manifest["discrepancies"]
                    if d["kind"] == "double_claim")
    assert sorted((detail["first_certificate"], ref) for ref, detail in _rows(
        week.database_url, "SELECT reference, detail FROM warehouse.discrepancy"
        " WHERE kind = 'double_claim'")) == claims

    subsidy_list = [n for (n,) in _rows(week.database_url, "SELECT certificate_number"
                                        " FROM warehouse.subsidy_list ORDER BY 1")]
    assert subsidy_list == manifest["subsidy_eligible_certificates"]
    assert _rows(week.database_url, "SELECT DISTINCT amount_yuan IS NOT NULL"
                 " FROM warehouse.subsidy_list") == [(True,)]

    scorecard = _rows(week.database_url, """
        SELECT sum(rejected), sum(duplicates), sum(late), sum(missing), sum(received - valid
               - rejected - duplicates) FROM warehouse.partner_scorecard""")[0]
    assert scorecard == (len(manifest["rejected"]), len(manifest["duplicates"]),
                         len(manifest["late"]), sum(len(g[3]) for g in gaps), 0)


def test_late_events_restate_the_day_they_happened_within_the_look_back(simulated_week):
    week = simulated_week(events=600, faults=Faults(late_rate=0.2))
    late = {e["id"]: (e["occurred_day"], e["published_day"]) for e in week.manifest["late"]}
    assert late, "the simulation should hold late events"
    _load_week(week.database_url, week.days, ReconcileRules(lookback_days=1))

    fact_days = dict(_rows(week.database_url, """
        SELECT event_id, business_day::text FROM warehouse.fact_enrollment
        UNION ALL SELECT event_id, business_day::text FROM warehouse.fact_completion
        UNION ALL SELECT event_id, business_day::text FROM warehouse.fact_evaluation
        UNION ALL SELECT event_id, business_day::text FROM warehouse.fact_certificate"""))

    def expected_day(occurred: str, published: str) -> str:
        reopened = date.fromisoformat(published) - date.fromisoformat(occurred) <= timedelta(1)
        return occurred if reopened else published

    checked = {i: expected_day(*late[i]) for i in late if i in fact_days}
    assert checked and {i: fact_days[i] for i in checked} == checked
    assert any(d == late[i][0] for i, d in checked.items())
    assert any(d == late[i][1] for i, d in checked.items())


def test_rerunning_a_backfilled_week_leaves_identical_rows(simulated_week):
    week = simulated_week(events=800)
    _load_week(week.database_url, week.days)
    first = table_checksums(week.database_url)

    _load_week(week.database_url, week.days, run="backfill")
    after_backfill = table_checksums(week.database_url)
    middle = week.days[len(week.days) // 2]
    _load_week(week.database_url, [middle, middle, middle], run="again")

    assert after_backfill == first
    assert table_checksums(week.database_url) == first
    assert _rows(week.database_url, "SELECT count(*) FROM warehouse.fact_enrollment")[0][0] > 0


def test_two_concurrent_loads_of_one_day_load_it_once(simulated_week):
    week = simulated_week(events=400, days=2)
    _load_week(week.database_url, week.days[:-1])
    day = week.days[-1]
    _load_week(week.database_url, [day], run="alone")
    alone = table_checksums(week.database_url)
    errors: list[BaseException] = []

    def run(name: str) -> None:
        try:
            _load_week(week.database_url, [day], run=name)
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(f"racer{i}",)) for i in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert errors == []
    assert table_checksums(week.database_url) == alone
    assert _rows(week.database_url, "SELECT count(DISTINCT run_id) FROM ops.load_runs"
                 f" WHERE business_day = '{day}'")[0][0] == 3


def test_a_rebuild_after_the_facts_were_emptied_restores_every_row(simulated_week):
    week = simulated_week(events=600)
    _load_week(week.database_url, week.days)
    loaded = table_checksums(week.database_url)
    with psycopg.connect(week.database_url) as conn:
        # What a migration that changes the night's rules does before the rebuild.
        conn.execute("TRUNCATE warehouse.fact_enrollment, warehouse.fact_completion,"
                     " warehouse.fact_evaluation, warehouse.fact_certificate,"
                     " warehouse.fact_subsidy_eligibility, warehouse.discrepancy,"
                     " warehouse.partner_scorecard, warehouse.fact_control_totals")

    with scoped_engine(week.database_url) as engine:
        rebuilt = rebuild(engine, "rebuild", ReconcileRules())

    assert [r.business_day for r in rebuilt] == week.days
    assert table_checksums(week.database_url) == loaded
