"""A member that lost its partitions never commits the batch it was holding."""

from __future__ import annotations

import threading
from datetime import UTC, date, datetime

import psycopg
import pytest

from consumers.landing import Batch, EventRow, Fenced, Lander, Position
from schemas.partners import Partner, PartnerRegistry
from schemas.topics import events_topic
from tests.support.consumers import landed, service
from tests.support.events import encode, enrollment, registry_with
from tests.support.kafka import publish

pytestmark = pytest.mark.integration


def _row(pid: str, offset: int) -> EventRow:
    at = datetime(2025, 3, 10, 8, tzinfo=UTC)
    return EventRow(
        partner_id=pid, event_id=f"{pid}-evt-{offset}", family="enrollment.created",
        event_type="org.skillsync.enrollment.created.v1", version=1, subject=None,
        occurred_at=at, appended_at=at, append_day=date(2025, 3, 10), person=None, key_id=None,
        data_json="{}", warnings=(), topic=events_topic(pid), kafka_partition=0,
        kafka_offset=offset, sent_at=at)


def _batch(pid: str, offsets: range, expected: int | None) -> Batch:
    key = (events_topic(pid), 0)
    return Batch(events=[_row(pid, o) for o in offsets], expected_offsets={
        key: None if expected is None else Position(expected, None)},
                 next_offsets={key: offsets.stop})


def test_a_batch_read_from_a_position_a_successor_moved_on_never_lands(database_url):
    pid = "tfence"
    successor, zombie = Lander(database_url, "g"), Lander(database_url, "g")
    try:
        successor.land(_batch(pid, range(0, 10), expected=None))
        with pytest.raises(Fenced) as fenced:
            zombie.land(_batch(pid, range(0, 12), expected=None))
        after_first_fence = len(landed(database_url))
        successor.land(_batch(pid, range(10, 20), expected=10))
        with pytest.raises(Fenced):
            zombie.land(_batch(pid, range(10, 25), expected=10))
    finally:
        successor.close()
        zombie.close()

    assert fenced.value.partitions == ((events_topic(pid), 0),)
    assert after_first_fence == 10
    assert len(landed(database_url)) == 20
    with psycopg.connect(database_url) as conn:
        assert conn.execute("SELECT next_offset FROM staging.consumer_offsets").fetchall() == [
            (20,)]


class _StallingRegistry(PartnerRegistry):
    """The registry, except that the first lookup waits: the member stalls mid-batch."""

    def __init__(self, registry: PartnerRegistry) -> None:
        super().__init__({p.partner_id: p for p in registry})
        self.stalled = threading.Event()
        self.release = threading.Event()

    def get(self, partner_id: str) -> Partner | None:
        if not self.stalled.is_set():
            self.stalled.set()
            self.release.wait(60)
        return super().get(partner_id)


def test_a_member_evicted_mid_batch_drops_the_batch_and_its_successor_lands_everything_once(
        kafka_bootstrap, database_url, new_partners, pseudonymiser):
    partners = new_partners("training_platform")
    pid = partners["training_platform"]
    publish(kafka_bootstrap, events_topic(pid), [encode(enrollment(pid, n)) for n in range(300)])
    registry = _StallingRegistry(registry_with({pid: "training_platform"}))
    # Stalled past max_poll_interval, the member is evicted while still holding its batch.
    evicted = service(kafka_bootstrap, database_url, partners, pseudonymiser, registry=registry,
                      max_poll_interval_ms=3000)
    runner = threading.Thread(target=evicted.run, kwargs={"idle_timeout_s": 20})
    runner.start()
    try:
        assert registry.stalled.wait(30)
        successor = service(kafka_bootstrap, database_url, partners, pseudonymiser)
        taken_over = successor.run(until_caught_up=True)
    finally:
        registry.release.set()
        evicted.request_stop()
        runner.join(timeout=60)

    rows = landed(database_url)
    assert len(rows) == len(set(rows)) == 300
    assert taken_over.landed == 300
    assert evicted.stats.landed == 0
    assert evicted.stats.dropped >= 1
