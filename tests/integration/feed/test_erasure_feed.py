"""An erasure reaches every mirror: deletes to each subscriber sent the person's records."""

from __future__ import annotations

import time

import psycopg
import pytest

from adapters.database import scoped_engine
from schemas.topics import sync_topic
from tests.support.feed import follow_once, relay_settings, topic_records
from tests.support.nightly import load_days
from warehouse.erasure import erase_person
from warehouse.feed_views import subscriber_view
from warehouse.outbox import subscriptions
from warehouse.relay import Relay

pytestmark = pytest.mark.integration

# Compaction within the test: a segment per write, cleaned as soon as the cleaner looks.
QUICK_COMPACTION = {"segment.ms": "100", "min.cleanable.dirty.ratio": "0.01",
                    "delete.retention.ms": "100", "min.compaction.lag.ms": "0"}


def _two_people(database_url: str) -> tuple[str, list[str], str]:
    """A person whose records several subscribers were sent, those subscribers, and another
    person whose records went to each of them too (erasing whom writes to all their topics)."""
    with psycopg.connect(database_url) as conn:
        row = conn.execute("""
            WITH sent AS (
                SELECT person, array_agg(DISTINCT subscriber ORDER BY subscriber) AS subs
                FROM ops.feed_published WHERE person IS NOT NULL GROUP BY 1)
            SELECT a.person, a.subs, b.person FROM sent a
            JOIN sent b ON b.person <> a.person AND b.subs @> a.subs
            WHERE cardinality(a.subs) >= 3
            ORDER BY cardinality(a.subs) DESC, a.person, b.person LIMIT 1""").fetchone()
    assert row, "no two people sent to the same three subscribers: a bigger city is needed"
    return row[0], list(row[1]), row[2]


def _erase(database_url: str, person: str) -> int:
    with scoped_engine(database_url) as engine:
        return erase_person(engine, pseudonyms={"t1": person}, id_type="resident_id",
                            requested_by="dpo@test", reason="ticket T-1").erasure_id


def test_an_erased_person_is_deleted_from_every_mirror_and_compacted_off_the_topics(
        feed_city, kafka_bootstrap, tmp_path):
    city = feed_city(events=800, days=4)
    load_days(city.database_url, city.days, "night")
    settings = relay_settings(city.database_url, kafka_bootstrap, topic_config=QUICK_COMPACTION)
    Relay(settings).run(until_caught_up=True)
    for subscriber in city.subscribers:
        follow_once(kafka_bootstrap, subscriber, tmp_path / f"{subscriber}.sqlite")
    erased, receivers, other = _two_people(city.database_url)

    erasure = _erase(city.database_url, erased)

    with psycopg.connect(city.database_url) as conn:
        deleted_for = [s for (s,) in conn.execute(
            "SELECT DISTINCT subscriber FROM ops.feed_outbox WHERE operation = 'delete'"
            " AND run_id = %s ORDER BY 1", (f"erasure-{erasure}",))]
        left = conn.execute("SELECT count(*) FROM ops.feed_outbox o"
                            " WHERE CAST(o.payload AS text) LIKE %s",
                            (f"%{erased}%",)).fetchone()
    assert deleted_for == receivers
    assert left == (0,)
    Relay(settings).run(until_caught_up=True)
    time.sleep(0.3)
    # A later change rolls the segment holding the deletes, so the cleaner may compact it.
    _erase(city.database_url, other)
    Relay(settings).run(until_caught_up=True)

    with scoped_engine(city.database_url) as engine, engine.begin() as sa_conn:
        views = {s.subscriber: subscriber_view(sa_conn, s) for s in subscriptions()}
    for subscriber in city.subscribers:
        _, rows = follow_once(kafka_bootstrap, subscriber, tmp_path / f"{subscriber}.sqlite")
        assert rows == views[subscriber]
        assert erased not in repr(rows)

    def compacted() -> bool:
        return not any(r.value and erased.encode() in r.value
                       for s in receivers for r in topic_records(kafka_bootstrap, sync_topic(s)))

    deadline = time.monotonic() + 120
    while not compacted():
        assert time.monotonic() < deadline, "the erased person's records were never compacted"
        time.sleep(2)
    for subscriber in receivers:
        # A mirror built anew from the compacted topic never held the person.
        _, rows = follow_once(kafka_bootstrap, subscriber, tmp_path / f"new-{subscriber}.sqlite")
        assert rows == views[subscriber]
        assert erased not in repr(rows)
