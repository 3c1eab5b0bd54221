"""The outbox: written with the facts, its replay equals each subscriber's view under its role."""

from __future__ import annotations

import psycopg
import pytest
from sqlalchemy import text

from adapters.database import scoped_engine
from tests.support.feed import outbox_versions, replayed_outbox
from tests.support.nightly import load_days
from warehouse.feed_views import slice_role, subscriber_view
from warehouse.outbox import subscriptions

pytestmark = pytest.mark.integration

# The table each slice's kinds are read from: one record per row the slice's role can see.
SLICE_TABLES = {
    "district": {"certificate": "fact_certificate", "evaluation": "fact_evaluation",
                 "completion": "fact_completion", "subsidy_decision": "fact_subsidy_eligibility"},
    "subsidies": {"subsidy_decision": "fact_subsidy_eligibility"},
    "notices": {"notice": "discrepancy"},
    "enrollment_outcomes": {"enrollment_outcome": "fact_enrollment"},
    "certificate_outcomes": {"certificate_outcome": "fact_certificate"},
}


def _views(database_url: str) -> dict[str, dict]:
    with scoped_engine(database_url) as engine, engine.begin() as conn:
        return {s.subscriber: subscriber_view(conn, s) for s in subscriptions()}


def _visible_rows(database_url: str, role: str, table: str, partner_id: str) -> int:
    with psycopg.connect(database_url) as conn:
        conn.execute("SELECT set_config('skillsync.partner_id', %s, true)", (partner_id,))
        conn.execute(f'SET ROLE "{role}"')
        row = conn.execute(f"SELECT count(*) FROM warehouse.{table}").fetchone()
        conn.rollback()
    return int(row[0]) if row else 0


def test_each_subscribers_outbox_replayed_equals_its_view_under_its_own_role(feed_city):
    city = feed_city()
    load_days(city.database_url, city.days, "night")

    views = _views(city.database_url)
    kinds = set()
    for subscriber in city.subscribers:
        replayed = replayed_outbox(city.database_url, subscriber)
        assert replayed == views[subscriber], subscriber
        kinds |= {kind for kind, _ in replayed.values()}
    # Every kind of record flowed somewhere: the week exercised every view.
    assert kinds == {"certificate", "evaluation", "completion", "subsidy_decision", "notice",
                     "enrollment_outcome", "certificate_outcome"}


def test_a_subscriber_receives_every_row_its_role_may_read_and_no_other(feed_city):
    city = feed_city(events=600, days=3)
    load_days(city.database_url, city.days, "night")

    checked = 0
    for sub in subscriptions():
        replayed = replayed_outbox(city.database_url, sub.subscriber)
        for slice_ in sub.slices:
            role = slice_role(sub, slice_)
            for kind, table in SLICE_TABLES[slice_].items():
                sent = sum(1 for k, _ in replayed.values() if k == kind)
                assert sent == _visible_rows(city.database_url, role, table,
                                                     sub.subscriber), (
                    sub.subscriber, slice_, kind)
                checked += sent
    assert checked > 0


def test_versions_only_grow_and_a_rerun_or_backfill_that_changes_nothing_sends_nothing(feed_city):
    city = feed_city(events=600, days=4)
    load_days(city.database_url, city.days, "night")
    before = outbox_versions(city.database_url)
    assert before and all(v == sorted(set(v)) and v[0] == 1 for v in before.values())

    load_days(city.database_url, city.days, "backfill")
    load_days(city.database_url, city.days[-2:], "rerun")

    assert outbox_versions(city.database_url) == before


def test_a_new_subscriber_is_sent_its_whole_view_once(feed_city, tmp_path, monkeypatch):
    from schemas.partners import PartnerRegistry
    from tests.support.feed import write_registry

    city = feed_city(events=600, days=3)
    office = next(p for p in city.registry if p.role == "subsidy_office")
    without = PartnerRegistry({p.partner_id: p for p in city.registry if p is not office})
    monkeypatch.setenv("SKILLSYNC_PARTNERS_REGISTRY",
                       str(write_registry(without, tmp_path / "without.toml")))
    load_days(city.database_url, city.days, "night")
    assert replayed_outbox(city.database_url, office.partner_id) == {}

    monkeypatch.setenv("SKILLSYNC_PARTNERS_REGISTRY", str(city.registry_file))
    load_days(city.database_url, city.days[-1:], "with-office")

    replayed = replayed_outbox(city.database_url, office.partner_id)
    assert replayed and replayed == _views(city.database_url)[office.partner_id]
    with psycopg.connect(city.database_url) as conn:
        # Everyone else only got what that night changed for them.
        row = conn.execute("SELECT count(*) FROM ops.feed_outbox WHERE run_id LIKE "
                           "'with-office%%' AND subscriber <> %s", (office.partner_id,)).fetchone()
    assert row == (0,)


def test_the_outbox_commits_with_the_facts_or_not_at_all(feed_city):
    from warehouse.load import load_day

    city = feed_city(events=300, days=2)
    with scoped_engine(city.database_url) as engine:
        # A night that fails after its changes were written commits neither them nor facts.
        with engine.begin() as conn:
            conn.execute(text("""CREATE OR REPLACE FUNCTION warehouse.fail_accounting()
                RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN
                  RAISE EXCEPTION 'accounting refused'; END $$"""))
            conn.execute(text("CREATE TRIGGER refuse BEFORE INSERT ON ops.accounting"
                              " FOR EACH STATEMENT EXECUTE FUNCTION warehouse.fail_accounting()"))
        with pytest.raises(Exception, match="accounting refused"):
            load_day(engine, city.days[0], "doomed")
        with engine.connect() as conn:
            assert conn.execute(text("SELECT count(*) FROM ops.feed_outbox")).scalar() == 0
            assert conn.execute(text("SELECT count(*) FROM warehouse.fact_enrollment")
                                ).scalar() == 0


def test_the_nightly_report_shows_each_feeds_last_version_lag_and_the_days_changes(
        feed_city, tmp_path):
    from warehouse.report import day_figures, write_report

    city = feed_city(events=400, days=2)
    load_days(city.database_url, city.days, "night")
    day = city.days[-1]
    with psycopg.connect(city.database_url) as conn:
        expected = {(s, f"{k} {op}s"): n for s, k, op, n in conn.execute(
            "SELECT subscriber, kind, operation, count(*) FROM ops.feed_outbox"
            " WHERE run_id = %s GROUP BY 1, 2, 3", (f"night-{day}",))}
        last: dict[str, int] = dict(conn.execute(
            "SELECT subscriber, max(version) FROM ops.feed_outbox GROUP BY 1").fetchall())
    with scoped_engine(city.database_url) as engine:
        figures = day_figures(engine, day)

    feeds = {f["subscriber"]: f for f in figures["feeds"]}
    assert set(feeds) == set(city.subscribers)
    assert {s: f["last_version"] for s, f in feeds.items() if f["last_version"]} == last
    # Nothing relayed yet: every change is still to publish.
    assert all(f["lag"] == f["last_version"] for f in feeds.values())
    assert {(s, k): n for s, f in feeds.items() for k, n in f["changes"].items()} == expected
    page = write_report(figures, tmp_path).html.read_text(encoding="utf-8")
    assert '<section id="feeds">' in page and city.subscribers[0] in page
