"""The fast paths of landing keep the slow paths' answers: straight copies, replays, pipelining."""

from __future__ import annotations

from datetime import UTC, date, datetime

import psycopg
import pytest

from consumers.landing import Batch, EventRow, Fenced, Lander, LandResult
from schemas.topics import events_topic
from tests.support.consumers import landed, service
from tests.support.events import encode, enrollment, poison
from tests.support.kafka import publish

pytestmark = pytest.mark.integration


def _row(pid: str, n: int, offset: int) -> EventRow:
    at = datetime(2025, 3, 10, 8, tzinfo=UTC)
    return EventRow(
        partner_id=pid, event_id=f"{pid}-evt-{n}", family="enrollment.created",
        event_type="org.skillsync.enrollment.created.v1", version=1, subject=None,
        occurred_at=at, appended_at=at, append_day=date(2025, 3, 10), person=None, key_id=None,
        data_json='{"note": "tab\\there"}', warnings=("division.retired",),
        topic=events_topic(pid), kafka_partition=0, kafka_offset=offset, sent_at=at)


def _batch(rows: list[EventRow], expected: int | None) -> Batch:
    key = (rows[0].topic, 0)
    return Batch(events=rows, expected_offsets={key: expected},
                 next_offsets={key: rows[-1].kafka_offset + 1})


def test_a_batch_meeting_events_landed_before_lands_the_rest_and_records_the_redeliveries(
        database_url):
    pid = "tpaths"
    lander = Lander(database_url, "g")
    try:
        first = lander.land(_batch([_row(pid, n, n) for n in range(10)], expected=None))
        # Events 5..9 sent again at new offsets, then five new ones.
        second = lander.land(_batch([_row(pid, n, n + 5) for n in range(5, 15)], expected=10))
    finally:
        lander.close()

    assert first == LandResult(inserted=10, rejected=0)
    assert second.inserted == 5 and second.redelivered_by_partner == {pid: 5}
    with psycopg.connect(database_url) as conn:
        stored = conn.execute(
            "SELECT data, warnings FROM staging.events WHERE event_id = %s",
            (f"{pid}-evt-0",)).fetchone()
        assert conn.execute("SELECT count(*) FROM staging.events").fetchone() == (15,)
        assert conn.execute("SELECT count(*) FROM staging.redeliveries").fetchone() == (5,)
    assert stored == ({"note": "tab\there"}, ["division.retired"])


def test_only_an_event_landed_from_the_very_same_offset_counts_as_already_landed(database_url):
    pid = "tpaths"
    topic = events_topic(pid)
    lander = Lander(database_url, "g")
    try:
        lander.land(_batch([_row(pid, n, n) for n in range(5)], expected=None))
        found = lander.already_landed([
            (pid, f"{pid}-evt-0", topic, 0, 0),  # landed from there
            (pid, f"{pid}-evt-1", topic, 0, 99),  # the same event sent again
            (pid, f"{pid}-evt-7", topic, 0, 7),  # never landed
            ("tother", f"{pid}-evt-2", topic, 0, 2),  # another partner's id space
        ])
    finally:
        lander.close()

    assert found == {(pid, f"{pid}-evt-0", topic, 0, 0)}


def test_a_replay_skips_what_it_landed_before_and_checks_everything_new(
        kafka_bootstrap, database_url, new_partners, pseudonymiser):
    partners = new_partners("training_platform")
    pid = partners["training_platform"]
    events = [encode(enrollment(pid, n)) for n in range(300)]
    # First in its partition, so the replay's lookup meets it too.
    not_utf8 = b'{"specversion": "1.0", "id": "\xff\xfe"}'
    publish(kafka_bootstrap, events_topic(pid), [not_utf8, *events])
    first = service(kafka_bootstrap, database_url, partners, pseudonymiser).run(
        until_caught_up=True)
    refused = poison(pid)
    # Later: ten events sent again, twenty new ones and the poison.
    publish(kafka_bootstrap, events_topic(pid), events[:10] + [
        encode(enrollment(pid, n)) for n in range(300, 320)] + list(refused.values()))

    replay = service(kafka_bootstrap, database_url, partners, pseudonymiser,
                     group_id=f"replay-{pid}").run(until_caught_up=True)

    assert first.landed == 300 and first.rejected == 1
    assert replay.already_landed == 300
    assert replay.landed == 20 and replay.redelivered == 10
    assert replay.rejected == len(refused) + 1
    rows = landed(database_url)
    assert len(rows) == len(set(rows)) == 320


def test_a_batch_that_loses_its_place_holds_back_the_batches_read_after_it(
        kafka_bootstrap, database_url, new_partners, pseudonymiser):
    partners = new_partners("training_platform")
    pid = partners["training_platform"]
    published = publish(kafka_bootstrap, events_topic(pid),
                        [encode(enrollment(pid, n)) for n in range(2000)])
    consumer = service(kafka_bootstrap, database_url, partners, pseudonymiser, batch_size=100)
    land = consumer._lander.land
    calls = 0

    def fenced_once(batch: Batch) -> LandResult:
        # The second batch finds its positions moved on, as if a successor had landed them.
        nonlocal calls
        calls += 1
        if calls == 2:
            raise Fenced(sorted(batch.expected_offsets))
        return land(batch)

    consumer._lander.land = fenced_once  # type: ignore[method-assign]
    stats = consumer.run(until_caught_up=True)

    assert stats.dropped >= 1
    rows = landed(database_url)
    assert sorted(e for _, e in rows) == [f"{pid}-evt-{n:07d}" for n in range(published)]
    with psycopg.connect(database_url) as conn:
        positions = conn.execute(
            "SELECT sum(next_offset) FROM staging.consumer_offsets").fetchone()
    assert positions == (published,)
