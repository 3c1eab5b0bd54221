"""Relay and follower on the real broker: every mirror equals its subscriber's view."""

from __future__ import annotations

import threading
import time

import psycopg
import pytest
from kafka import KafkaProducer

from adapters.database import scoped_engine
from partners.follow import Follower, Mirror, UnknownContract
from quality.sync_check import check_sync, render
from schemas.topics import sync_topic
from tests.support.feed import follow_once, relay_settings, topic_records
from tests.support.landing import land_directly
from tests.support.nightly import load_days
from warehouse.erasure import erase_person
from warehouse.feed_views import subscriber_view
from warehouse.outbox import subscriptions
from warehouse.relay import Relay

pytestmark = pytest.mark.integration


def _views(database_url: str) -> dict[str, dict]:
    with scoped_engine(database_url) as engine, engine.begin() as conn:
        return {s.subscriber: subscriber_view(conn, s) for s in subscriptions()}


def _relay(database_url: str, bootstrap: str, **overrides):
    return Relay(relay_settings(database_url, bootstrap, **overrides)).run(until_caught_up=True)


def test_every_mirror_equals_its_subscribers_view_after_a_week_replay_backfill_and_erasure(
        feed_city, kafka_bootstrap, tmp_path, pseudonymiser):
    city = feed_city()
    load_days(city.database_url, city.days[:3], "night")
    _relay(city.database_url, kafka_bootstrap)
    for subscriber in city.subscribers:
        follow_once(kafka_bootstrap, subscriber, tmp_path / f"{subscriber}.sqlite")

    # The rest of the week; the partners' topics replayed into staging (every event lands
    # again); a backfill of the week; a rerun; an erasure. Mirrors resume from their positions.
    load_days(city.database_url, city.days[3:], "night")
    land_directly(city.simulation.messages, city.database_url, city.registry, pseudonymiser,
                  group_id="replay")
    load_days(city.database_url, city.days, "backfill")
    load_days(city.database_url, city.days[-2:], "rerun")
    with psycopg.connect(city.database_url) as conn:
        row = conn.execute("SELECT person FROM ops.feed_published WHERE person IS NOT"
                           " NULL GROUP BY 1 ORDER BY count(*) DESC, 1 LIMIT 1").fetchone()
    assert row
    with scoped_engine(city.database_url) as engine:
        erase_person(engine, pseudonyms={"t1": row[0]}, id_type="resident_id",
                     requested_by="dpo@test", reason="ticket T-2")
    stats = _relay(city.database_url, kafka_bootstrap)
    views = _views(city.database_url)
    for subscriber in city.subscribers:
        followed, rows = follow_once(kafka_bootstrap, subscriber,
                                     tmp_path / f"{subscriber}.sqlite")
        assert followed.caught_up and followed.repeats == 0
        assert rows == views[subscriber], subscriber
        assert row[0] not in repr(rows)
    assert sum(stats.published.values()) > 0


def test_the_topic_holds_every_change_once_in_version_order(feed_city, kafka_bootstrap):
    city = feed_city(events=500, days=3)
    load_days(city.database_url, city.days, "night")
    _relay(city.database_url, kafka_bootstrap)

    with psycopg.connect(city.database_url) as conn:
        written: dict[str, list[int]] = dict(conn.execute(
            "SELECT subscriber, array_agg(version ORDER BY version)"
            " FROM ops.feed_outbox GROUP BY 1").fetchall())
    for subscriber, versions in written.items():
        records = topic_records(kafka_bootstrap, sync_topic(subscriber))
        on_topic = [int(dict(r.headers)["ce_changeversion"]) for r in records]
        assert on_topic == versions, subscriber
        assert all(r.key for r in records)
        assert all((r.value is None) == (dict(r.headers)["ce_type"].endswith(b".deleted.v1"))
                   for r in records)
    findings = check_sync(city.database_url, {"bootstrap_servers": kafka_bootstrap})
    assert findings and all(f.ok and f.counts["lag"] == 0 for f in findings), render(findings)


def test_a_relay_that_died_before_recording_its_progress_sends_nothing_twice(
        feed_city, kafka_bootstrap):
    city = feed_city(events=400, days=2)
    load_days(city.database_url, city.days, "night")
    _relay(city.database_url, kafka_bootstrap)
    with psycopg.connect(city.database_url) as conn:
        # As if the broker had acknowledged everything and the relay died before recording it.
        conn.execute("UPDATE ops.feed_relay SET relayed_version = 0")
        written: dict[str, int] = dict(conn.execute(
            "SELECT subscriber, count(*) FROM ops.feed_outbox GROUP BY 1").fetchall())

    stats = _relay(city.database_url, kafka_bootstrap)

    assert stats.published == {}
    assert stats.resumed_from_topic == {s: n for s, n in written.items()}
    for subscriber, n in written.items():
        assert len(topic_records(kafka_bootstrap, sync_topic(subscriber))) == n


def test_changes_relayed_longer_ago_than_the_retention_leave_the_outbox(
        feed_city, kafka_bootstrap):
    city = feed_city(events=300, days=2)
    load_days(city.database_url, city.days[:1], "night")
    _relay(city.database_url, kafka_bootstrap)
    with psycopg.connect(city.database_url) as conn:
        conn.execute("UPDATE ops.feed_outbox SET created_at = created_at - interval '8 days'")
        first = conn.execute("SELECT count(*) FROM ops.feed_outbox").fetchone()
    load_days(city.database_url, city.days[1:], "night")

    _relay(city.database_url, kafka_bootstrap, retain_days=7)

    with psycopg.connect(city.database_url) as conn:
        left = conn.execute("SELECT count(*) FILTER (WHERE created_at < now() - interval"
                            " '7 days'), count(*) FROM ops.feed_outbox").fetchone()
    assert first and first[0] > 0
    assert left and left[0] == 0 and left[1] > 0


def test_the_relay_prunes_when_it_has_caught_up_not_at_every_idle_wake_up(
        feed_city, kafka_bootstrap):
    """Pruning at every wake-up once cost a night 543 s of database time: each prune reads
    the outbox while the load writes it."""
    city = feed_city(events=300, days=2)
    load_days(city.database_url, city.days[:1], "night")
    relay = Relay(relay_settings(city.database_url, kafka_bootstrap, idle_wait_s=0.05))
    thread = threading.Thread(target=relay.run, daemon=True)
    thread.start()
    try:
        for night in (1, 2):
            if night > 1:
                # One more change, as a load writes it: a seed's second day may change nothing.
                _append_change(city.database_url)
            deadline = time.monotonic() + 120
            while relay.stats.prunes < night and time.monotonic() < deadline:
                time.sleep(0.05)
            time.sleep(1)  # about twenty idle wake-ups, none of which may prune
            assert relay.stats.prunes == night, relay.stats
    finally:
        relay.stop.set()
        thread.join(timeout=60)
    assert not thread.is_alive() and relay.stats.failures == 0


def _append_change(database_url: str) -> None:
    with psycopg.connect(database_url) as conn:
        row = conn.execute(
            "UPDATE ops.feed_subscriber SET last_version = last_version + 1 WHERE subscriber ="
            " (SELECT subscriber FROM ops.feed_subscriber ORDER BY last_version DESC,"
            " subscriber LIMIT 1) RETURNING subscriber, last_version").fetchone()
        assert row, "the first night registered no subscriber"
        conn.execute(
            "INSERT INTO ops.feed_outbox (subscriber, version, operation, kind, record_key,"
            " run_id) VALUES (%s, %s, 'delete', 'notice', 'notice appended', 'test')", row)


def _subscriber_with_changes(city) -> str:
    with psycopg.connect(city.database_url) as conn:
        row = conn.execute("SELECT subscriber FROM ops.feed_subscriber"
                           " ORDER BY last_version DESC, subscriber LIMIT 1").fetchone()
    assert row
    return str(row[0])


def test_a_repeated_change_is_dropped_by_its_version(feed_city, kafka_bootstrap, tmp_path):
    city = feed_city(events=400, days=2)
    load_days(city.database_url, city.days, "night")
    _relay(city.database_url, kafka_bootstrap)
    subscriber = _subscriber_with_changes(city)
    topic = sync_topic(subscriber)
    first = topic_records(kafka_bootstrap, topic)[0]
    # The first change again, after every other: as a retry from another producer would.
    producer = KafkaProducer(bootstrap_servers=kafka_bootstrap, acks="all")
    producer.send(topic, key=first.key, value=first.value, headers=first.headers, partition=0)
    producer.close()

    stats, rows = follow_once(kafka_bootstrap, subscriber, tmp_path / "m.sqlite")

    assert stats.repeats == 1
    assert rows == _views(city.database_url)[subscriber]
    [finding] = check_sync(city.database_url, {"bootstrap_servers": kafka_bootstrap},
                           [subscriber])
    repeat_at = len(topic_records(kafka_bootstrap, topic)) - 1
    assert finding.duplicated == (f"version 1 again at offset {repeat_at}",)
    assert not finding.lost


def test_a_change_of_an_unknown_contract_version_is_refused_and_not_applied(
        feed_city, kafka_bootstrap, tmp_path):
    city = feed_city(events=400, days=2)
    load_days(city.database_url, city.days, "night")
    _relay(city.database_url, kafka_bootstrap)
    subscriber = _subscriber_with_changes(city)
    topic = sync_topic(subscriber)
    last = topic_records(kafka_bootstrap, topic)[-1]
    headers = dict(last.headers)
    version = int(headers["ce_changeversion"]) + 1
    future = {**headers, "ce_changeversion": str(version).encode(),
              "ce_id": str(version).encode(), "ce_subject": b"from the future",
              "ce_type": headers["ce_type"].replace(b".v1", b".v2")}
    producer = KafkaProducer(bootstrap_servers=kafka_bootstrap, acks="all")
    producer.send(topic, key=b"from the future", value=last.value or b"{}",
                  headers=list(future.items()), partition=0)
    producer.close()
    mirror = Mirror(f"sqlite:///{tmp_path / 'm.sqlite'}")

    with pytest.raises(UnknownContract, match=r"\.v2.*does not know.*nothing from this change"):
        Follower(subscriber, mirror,
                 client_options={"bootstrap_servers": kafka_bootstrap}).run(once=True)

    rows = mirror.rows()
    assert "from the future" not in rows
    assert rows == _views(city.database_url)[subscriber]
    position = mirror.position(topic)
    assert position is not None and position.version == version - 1
    # Run again, it stops at the same change: still nothing of it applied.
    with pytest.raises(UnknownContract):
        Follower(subscriber, mirror,
                 client_options={"bootstrap_servers": kafka_bootstrap}).run(once=True)
    assert mirror.position(topic) == position
    mirror.close()


def test_following_a_feed_whose_topic_the_relay_has_not_made_yet_catches_up_at_once(
        kafka_bootstrap, seeded, tmp_path):
    """Once a mirror asked for the end of a subscriber's topic before the relay had published
    its first change, and the follower died of a timeout after 30 s."""
    subscriber = seeded.partner_id()

    stats, rows = follow_once(kafka_bootstrap, subscriber, tmp_path / "m.sqlite")

    assert stats.caught_up and stats.version == 0
    assert rows == {}
