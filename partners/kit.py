"""The partners' publishing kit: check events locally, publish them idempotently, read refusals."""

from __future__ import annotations

import secrets
import uuid
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from functools import partial
from typing import Any

import orjson

from adapters.kafka import EVENTS_MAX_MESSAGE_BYTES, KafkaClientSecurity
from adapters.settings import KafkaSecuritySettings, KafkaSettings, read_section
from schemas.days import SHANGHAI
from schemas.errors import Rejection
from schemas.events import totals_digest
from schemas.partners import PartnerRegistry, load_registry
from schemas.pipeline import CheckedEvent, check_event, claimed_event_id
from schemas.pseudonym import Pseudonymiser
from schemas.rejects import RejectRecord
from schemas.topics import events_topic, rejects_topic

HEADERS: list[tuple[str, bytes]] = [
    ("content-type", b"application/cloudevents+json; charset=utf-8"),
]
SEND_TIMEOUT_SECONDS = 60.0


def _client(bootstrap: str | None, security: KafkaClientSecurity | None) -> dict[str, Any]:
    """Where to connect and how to sign in: what was given, else the environment's settings."""
    bootstrap = bootstrap or kafka_settings().bootstrap_servers
    security = security or read_section(KafkaSecuritySettings)
    return {"bootstrap_servers": bootstrap.split(","), **security.kafka_security()}


def kafka_settings() -> KafkaSettings:
    """The environment's broker and sign-in: KAFKA_BOOTSTRAP_SERVERS and SKILLSYNC_KAFKA_*."""
    return read_section(KafkaSettings)


@dataclass(frozen=True, slots=True)
class Refusal:
    """Why the kit did not send an event: the answer the pipeline would have given."""

    index: int
    event_id: str | None
    code: str
    path: str
    message: str
    stage: str


@dataclass(slots=True)
class PublishReport:
    sent: int = 0
    refused: list[Refusal] = field(default_factory=list)


class Publisher:
    """Publishes one partner's events to its own topic after checking them like the pipeline.

    Nothing connects until the first send. The local check uses a throwaway pseudonym key:
    the point is the verdict, not the pseudonym. `security` is how to sign in to the broker
    (a KafkaSettings will do); without it, the environment's at the first send.
    """

    def __init__(
        self,
        partner_id: str,
        *,
        registry: PartnerRegistry | None = None,
        bootstrap: str | None = None,
        security: KafkaClientSecurity | None = None,
        producer_factory: Callable[[str | None], Any] | None = None,
    ) -> None:
        self.partner_id = partner_id
        self.topic = events_topic(partner_id)
        self._registry = registry
        self._bootstrap = bootstrap
        self._pseudonymiser = Pseudonymiser({"local": secrets.token_bytes(32)}, "local")
        self._producer_factory = producer_factory or partial(connect_producer, security=security)
        self._producer: Any = None
        self._sent_ids: dict[date, dict[str, list[str]]] = {}

    @property
    def registry(self) -> PartnerRegistry:
        if self._registry is None:
            self._registry = load_registry()
        return self._registry

    def check(self, raw: bytes, *, now: datetime | None = None) -> CheckedEvent:
        """The event as the pipeline would accept it, or the Rejection it would raise."""
        return check_event(
            raw,
            topic_partner=self.partner_id,
            registry=self.registry,
            pseudonymiser=self._pseudonymiser,
            now=now,
        )

    def publish(self, raw_events: Iterable[bytes], *, now: datetime | None = None) -> PublishReport:
        """Send every event that passes the local check; explain the others."""
        report = PublishReport()
        futures = []
        for index, raw in enumerate(raw_events):
            try:
                checked = self.check(raw, now=now)
            except Rejection as refusal:
                report.refused.append(
                    Refusal(index, claimed_event_id(raw), refusal.code, refusal.path,
                            refusal.message, refusal.stage)
                )  # fmt: skip
                continue
            key = (checked.subject or checked.event_id).encode()
            futures.append(self.send(key, raw))
            sent_on = _business_day(raw)
            self._sent_ids.setdefault(sent_on, {}).setdefault(checked.family, []).append(
                checked.event_id
            )
        self.flush()
        for future in futures:
            future.get(timeout=SEND_TIMEOUT_SECONDS)
        report.sent = len(futures)
        return report

    def totals_event(self, business_day: date, *, at: datetime | None = None) -> bytes:
        """The control.totals event for what this publisher sent for `business_day`."""
        sent = {
            family: ids
            for family, ids in sorted(self._sent_ids.get(business_day, {}).items())
            if family != "control.totals"
        }
        moment = at or datetime.combine(business_day + timedelta(days=1), datetime.min.time(),
                                        SHANGHAI) + timedelta(minutes=20)  # fmt: skip
        event = {
            "specversion": "1.0",
            "id": str(uuid.uuid4()),
            "source": f"/partners/{self.partner_id}",
            "type": "org.skillsync.control.totals.v1",
            "time": moment.isoformat(timespec="seconds"),
            "subject": f"totals-{business_day:%Y%m%d}",
            "datacontenttype": "application/json",
            "data": {
                "business_day": business_day.isoformat(),
                "counts": {family: len(ids) for family, ids in sent.items()},
                "digests": {family: totals_digest(ids) for family, ids in sent.items()},
                "event_ids": {family: sorted(ids) for family, ids in sent.items()},
            },
        }
        return orjson.dumps(event)

    def publish_totals(self, business_day: date, *, now: datetime | None = None) -> PublishReport:
        return self.publish([self.totals_event(business_day)], now=now)

    def send(self, key: bytes, value: bytes, headers: list[tuple[str, bytes]] | None = None) -> Any:
        """Send bytes as they are, unchecked (the simulator uses this to send faults on purpose)."""
        return self._producer_or_connect().send(
            self.topic, key=key, value=value, headers=headers or HEADERS
        )

    def flush(self) -> None:
        if self._producer is not None:
            self._producer.flush(timeout=SEND_TIMEOUT_SECONDS)

    def close(self) -> None:
        if self._producer is not None:
            self._producer.close(timeout=SEND_TIMEOUT_SECONDS)
            self._producer = None

    def _producer_or_connect(self) -> Any:
        if self._producer is None:
            self._producer = self._producer_factory(self._bootstrap)
        return self._producer

    def __enter__(self) -> Publisher:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


def connect_producer(bootstrap: str | None = None, *,
                     security: KafkaClientSecurity | None = None) -> Any:
    """An idempotent producer: retries never write an event twice, and every send is durable."""
    from kafka import KafkaProducer

    return KafkaProducer(
        **_client(bootstrap, security),
        enable_idempotence=True,
        acks="all",
        linger_ms=20,
        max_request_size=EVENTS_MAX_MESSAGE_BYTES,
        compression_type="zstd",
    )


class SendFailed(RuntimeError):
    """The broker did not acknowledge some messages: retry the run (sends are idempotent)."""


def send_all(messages: Iterable[Any], producer: Any) -> int:
    """Send (topic, key, value, headers) messages in order and wait until all are acknowledged."""
    failures: list[BaseException] = []
    sent = 0
    for message in messages:
        future = producer.send(
            message.topic, key=message.key, value=message.value, headers=list(message.headers)
        )
        future.add_errback(failures.append)
        sent += 1
    producer.flush(timeout=SEND_TIMEOUT_SECONDS)
    if failures:
        raise SendFailed(f"{len(failures)} of {sent} messages were not acknowledged: {failures[0]}")
    return sent


def read_rejects(
    partner_id: str,
    *,
    bootstrap: str | None = None,
    security: KafkaClientSecurity | None = None,
    idle_seconds: float = 5.0,
) -> Iterator[RejectRecord]:
    """Every record on the partner's rejects topic, oldest first, until none arrives for a while."""
    from kafka import KafkaConsumer

    consumer = KafkaConsumer(
        rejects_topic(partner_id),
        **_client(bootstrap, security),
        group_id=None,
        auto_offset_reset="earliest",
        enable_auto_commit=False,
        consumer_timeout_ms=int(idle_seconds * 1000),
    )
    try:
        for record in consumer:
            yield RejectRecord.from_kafka(record.key, record.value, record.headers or [])
    finally:
        consumer.close()


def _business_day(raw: bytes) -> date:
    """The Asia/Shanghai day of the event's `time`: the day whose totals count it."""
    moment = datetime.fromisoformat(orjson.loads(raw)["time"])
    return moment.astimezone(SHANGHAI).date()
