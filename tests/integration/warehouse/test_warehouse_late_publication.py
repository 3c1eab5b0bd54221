"""A partner's whole day that reaches the broker a day late still reconciles against its totals."""

from __future__ import annotations

from collections import Counter
from datetime import date, timedelta

import psycopg
import pytest
from pydantic import SecretStr

from adapters.settings import DatabaseSettings, Settings
from partners.faults import Faults
from partners.simulate import simulate
from schemas.topics import events_topic
from tests.integration.warehouse.conftest import ROLES
from tests.support.kafka import publish
from tests.support.nightly import SENDER_CLOCK, at_noon_ms, ingest, registry_of
from warehouse.nightly import load

pytestmark = pytest.mark.integration


def test_yesterdays_events_published_today_meet_their_control_totals(
        kafka_bootstrap, database_url, new_partners, pseudonymiser, seeded):
    made = new_partners(*[f"{role}#{i}" for i, role in enumerate(ROLES)],
                        topic_overrides=SENDER_CLOCK)
    partners = {pid: label.split("#")[0] for label, pid in made.items()}
    today = seeded.today
    simulation = simulate(today - timedelta(days=1), 800, seeded.rng.getrandbits(32),
                          Faults(missing=2), registry=registry_of(partners))
    # Every event of yesterday, and yesterday's totals, published together today: they all
    # arrive on today's append day.
    for pid in partners:
        publish(kafka_bootstrap, events_topic(pid),
                [m.value for m in simulation.messages if m.topic == events_topic(pid)],
                timestamp_ms=at_noon_ms(today))
    ingest(kafka_bootstrap, database_url, partners, registry_of(partners), pseudonymiser,
           group=f"late-{min(partners)}")

    load(today, "late-publication",
         Settings(database=DatabaseSettings(url=SecretStr(database_url))))

    with psycopg.connect(database_url) as conn:
        assert conn.execute("SELECT DISTINCT append_day FROM staging.events").fetchall() == [
            (today,)]
        gaps = conn.execute(
            "SELECT partner_id, business_day, detail->'missing', detail->'extra' "
            "FROM warehouse.discrepancy WHERE kind = 'control_total_gap'").fetchall()
    expected = [d for d in simulation.manifest["discrepancies"]
                if d["kind"] == "control_total_gap"]
    assert len(expected) == 2
    assert sorted((p, d, missing, extra) for p, d, missing, extra in gaps) == sorted(
        (d["partner"], date.fromisoformat(d["business_day"]), d["ids"], []) for d in expected)
    assert Counter(p for p, *_ in gaps) == Counter(d["partner"] for d in expected)
