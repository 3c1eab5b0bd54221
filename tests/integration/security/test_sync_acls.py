"""Each subscriber reads its own sync feed, as its own SCRAM user, and nobody else's."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from kafka.errors import KafkaError

from adapters.kafka import ensure_topics
from infra.kafka import security
from infra.kafka import service as kafka_service
from infra.local import LocalServices
from partners.follow import Follower, Mirror
from schemas.topics import events_topic, sync_topic
from tests.integration.security.conftest import free_port
from tests.integration.security.test_kafka_acls import REFUSED_WITHIN_MS, _marker, _read
from tests.support.feed import feed_registry
from tests.support.seed import Seeded, derived_seed
from warehouse.relay import Change, message_headers

pytestmark = pytest.mark.integration

ROLES = {"west": ("district_bureau", "330106"), "east": ("district_bureau", "330108"),
         "office": ("subsidy_office", "330100"), "platform": ("training_platform", "330106")}


def _produce(options: dict, topic: str, value: bytes) -> None:
    """One keyed record (a compacted topic takes no other)."""
    from kafka import KafkaProducer

    producer = KafkaProducer(acks="all", enable_idempotence=True,
                             bootstrap_timeout_ms=REFUSED_WITHIN_MS, **options)
    try:
        producer.send(topic, value, key=value).get(timeout=15)
    finally:
        producer.close(timeout=5)


class Feeds:
    def __init__(self, cfg: LocalServices, ids: dict[str, str]) -> None:
        self.cfg, self.ids = cfg, ids

    def topic(self, name: str) -> str:
        return sync_topic(self.ids[name])

    def reader(self, name: str) -> dict:
        principal = security.subscriber_principal(self.ids[name])
        return security.scram_options(self.cfg, principal,
                                      security.load_passwords(self.cfg)[principal])

    def relay(self) -> dict:
        return security.scram_options(
            self.cfg, security.PIPELINE_PRINCIPAL,
            security.load_passwords(self.cfg)[security.PIPELINE_PRINCIPAL])

    def admin(self) -> dict:
        return {"bootstrap_servers": security.admin_bootstrap(self.cfg),
                **security.admin_options(self.cfg)}


@pytest.fixture(scope="module")
def feeds(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Feeds]:
    state: Path = tmp_path_factory.mktemp("secured-feeds")
    cfg = LocalServices(state_dir=state, kafka_port=free_port(),
                        kafka_controller_port=free_port(), kafka_tls_port=free_port(),
                        kafka_internal_port=free_port(), kafka_security=True,
                        kafka_heap_mb=384, kafka_partitions=1)
    draws = Seeded(derived_seed(__name__))
    ids = {name: draws.partner_id("f") for name in ROLES}
    registry = feed_registry({ids[name]: role for name, role in ROLES.items()})
    kafka_service.start(cfg)
    try:
        ensure_topics(security.admin_bootstrap(cfg), [sync_topic(i) for i in ids.values()],
                      partitions=1, **security.admin_options(cfg))
        security.provision(cfg, registry)
        yield Feeds(cfg, ids)
    finally:
        kafka_service.stop(cfg)


def test_the_relay_publishes_and_a_subscriber_mirrors_its_feed_with_its_own_credentials(
        feeds, tmp_path) -> None:
    from kafka import KafkaProducer

    change = Change(1, "upsert", "notice", "notice test e1 r1", (
        '{"kind": "repeated_record", "severity": "warning", "business_day": "2026-11-02",'
        ' "reference": "r1", "event_id": "e1", "detail": {}, "counterparts": []}'),
        datetime(2026, 11, 3, tzinfo=UTC))
    producer = KafkaProducer(acks="all", enable_idempotence=True, **feeds.relay())
    producer.send(feeds.topic("platform"), partition=0, key=change.record_key.encode(),
                  value=change.payload.encode() if change.payload else None,
                  headers=message_headers(feeds.ids["platform"], change)).get(timeout=30)
    producer.close()
    mirror = Mirror(f"sqlite:///{tmp_path / 'mirror.sqlite'}")

    stats = Follower(feeds.ids["platform"], mirror,
                     client_options=feeds.reader("platform")).run(once=True)

    assert stats.upserts == 1
    assert mirror.rows()["notice test e1 r1"][0] == "notice"
    mirror.close()


@pytest.mark.parametrize(("reader", "owner"), [
    ("west", "east"),  # one district cannot read another's feed
    ("platform", "office"),  # a partner cannot read the subsidy office's
    ("office", "west"),
])
def test_a_subscriber_cannot_read_another_subscribers_feed(
        feeds, caplog: pytest.LogCaptureFixture, reader: str, owner: str) -> None:
    topic, value = feeds.topic(owner), _marker()
    _produce(feeds.admin(), topic, value)
    caplog.set_level(logging.WARNING, logger="kafka")

    assert _read(feeds.reader(reader), topic) == []
    assert f"Topic {topic} is not authorized" in caplog.text
    assert value in _read(feeds.reader(owner), topic)


@pytest.mark.parametrize("topic_of", [sync_topic, events_topic])
def test_a_subscriber_user_writes_nothing_not_even_its_own_feed(feeds, topic_of) -> None:
    topic, value = topic_of(feeds.ids["west"]), _marker()
    if topic_of is events_topic:
        ensure_topics(security.admin_bootstrap(feeds.cfg), [topic], partitions=1,
                      **security.admin_options(feeds.cfg))
    # Refused before any record is sent: not even an idempotent producer id is granted.
    with pytest.raises(KafkaError):
        _produce(feeds.reader("west"), topic, value)
    assert value not in _read(feeds.admin(), topic)
