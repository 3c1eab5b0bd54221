"""The ingestion loop: poll a batch, check every event, land the batch, then commit."""

from __future__ import annotations

import hashlib
import logging
import threading
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone

import orjson
import psycopg
from kafka import KafkaConsumer, KafkaProducer, TopicPartition
from kafka.consumer.subscription_state import ConsumerRebalanceListener
from kafka.coordinator.assignors.cooperative_sticky import CooperativeStickyAssignor
from kafka.errors import KafkaError
from kafka.structs import OffsetAndMetadata

from consumers import metrics
from consumers.landing import Batch, EventRow, Fenced, Lander, LandResult, RejectRow
from consumers.settings import ConsumerSettings
from schemas.errors import Rejection
from schemas.partners import PartnerRegistry
from schemas.pipeline import check_event
from schemas.pseudonym import Pseudonymiser
from schemas.topics import partner_of_topic, rejects_topic

log = logging.getLogger("skillsync.consumer")

SERVICE_VERSION = "0.1.0"
# Business days are Asia/Shanghai calendar days; the zone has had no DST since 1991.
SHANGHAI = timezone(timedelta(hours=8), "Asia/Shanghai")
TRANSIENT_ERRORS = (psycopg.OperationalError, psycopg.InterfaceError, KafkaError)


@dataclass(slots=True)
class RunStats:
    consumed: int = 0
    landed: int = 0
    redelivered: int = 0
    rejected: int = 0
    batches: int = 0
    dropped: int = 0  # batches voided because their partitions changed hands


class _Positions(ConsumerRebalanceListener):
    """Owned partitions and how far each is landed; callbacks only record what changed.

    They share the group's heartbeat path, so the loop does the slow work (reading PostgreSQL).
    """

    def __init__(self) -> None:
        # Owned partition -> next offset landed in PostgreSQL (None: nothing landed yet).
        self.landed: dict[TopicPartition, int | None] = {}
        self.to_restore: set[TopicPartition] = set()

    def on_partitions_assigned(self, assigned: list[TopicPartition]) -> None:
        self.to_restore |= set(assigned)
        log.info("partitions assigned", extra={"partitions": _names(assigned)})

    def on_partitions_revoked(self, revoked: list[TopicPartition]) -> None:
        # Batches land before the next poll, so nothing read from these is waiting to land,
        # unless a retry is under way: that batch is voided by the ownership check.
        self._release(revoked)
        log.info("partitions revoked", extra={"partitions": _names(revoked)})

    def on_partitions_lost(self, lost: list[TopicPartition]) -> None:
        self._release(lost)
        log.warning("partitions lost", extra={"partitions": _names(lost)})

    def _release(self, partitions: list[TopicPartition]) -> None:
        for tp in partitions:
            self.landed.pop(tp, None)
            self.to_restore.discard(tp)

    def owns(self, tp: TopicPartition) -> bool:
        return tp in self.landed and tp not in self.to_restore


class IngestService:
    """One member of the ingestion group. Construction does no I/O; `run` does it all."""

    def __init__(self, settings: ConsumerSettings, *, registry: PartnerRegistry,
                 pseudonymiser: Pseudonymiser) -> None:
        self._settings = settings
        self._registry = registry
        self._pseudonymiser = pseudonymiser
        self._lander = Lander(settings.database_url.get_secret_value(), settings.group_id)
        self._stop = threading.Event()
        self._positions = _Positions()
        self._consumer: KafkaConsumer | None = None
        self._producer: KafkaProducer | None = None
        self._rejects_topics_ready: set[str] = set()
        self.stats = RunStats()

    def request_stop(self) -> None:
        """Finish the batch in hand, then leave (safe from a signal handler)."""
        self._stop.set()

    # -- lifecycle -------------------------------------------------------------------------

    def _open(self) -> KafkaConsumer:
        s = self._settings
        consumer = KafkaConsumer(
            bootstrap_servers=s.bootstrap_servers.split(","),
            group_id=s.group_id,
            client_id=f"skillsync-consumer-{s.group_id}",
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            isolation_level="read_committed",
            max_poll_records=s.batch_size,
            fetch_max_wait_ms=s.linger_ms,
            # Room for a whole batch per partition in one fetch, so polls rarely wait on the wire.
            max_partition_fetch_bytes=4 * 1024 * 1024,
            metadata_max_age_ms=s.metadata_max_age_ms,
            max_poll_interval_ms=s.max_poll_interval_ms,
            session_timeout_ms=s.session_timeout_ms,
            heartbeat_interval_ms=min(3000, s.session_timeout_ms // 3),
            partition_assignment_strategy=(CooperativeStickyAssignor,),
            **s.kafka_security(),
        )
        consumer.subscribe(pattern=s.topic_pattern, listener=self._positions)
        self._consumer = consumer
        return consumer

    def _rejects_producer(self) -> KafkaProducer:
        if self._producer is None:
            s = self._settings
            self._producer = KafkaProducer(
                bootstrap_servers=s.bootstrap_servers.split(","),
                client_id=f"skillsync-rejects-{s.group_id}",
                acks="all", enable_idempotence=True, linger_ms=5,
                max_request_size=2 * 1024 * 1024,
                **s.kafka_security(),
            )
        return self._producer

    def close(self) -> None:
        if self._consumer is not None:
            self._consumer.close(autocommit=False)
            self._consumer = None
        if self._producer is not None:
            self._producer.close(timeout=10)
            self._producer = None
        self._lander.close()

    def run(self, *, until_caught_up: bool = False,
            idle_timeout_s: float | None = None) -> RunStats:
        """Consume until asked to stop (or, for batch use, until every partition is caught up)."""
        consumer = self._open()
        idle_since = time.monotonic()
        try:
            while not self._stop.is_set():
                polled = consumer.poll(timeout_ms=500)
                if self._positions.to_restore:
                    polled = self._restore_positions(consumer, polled)
                if polled:
                    try:
                        self._process(consumer, polled)
                    except _Stopping:
                        break
                    idle_since = time.monotonic()
                    continue
                if until_caught_up and self._caught_up(consumer):
                    break
                if idle_timeout_s is not None and time.monotonic() - idle_since > idle_timeout_s:
                    break
        finally:
            self.close()
        return self.stats

    # -- positions -------------------------------------------------------------------------

    def _restore_positions(self, consumer: KafkaConsumer,
                           polled: dict[TopicPartition, list]) -> dict[TopicPartition, list]:
        """Resume each newly assigned partition where PostgreSQL says it was landed.

        PostgreSQL, not the group, is the authority: its positions commit with the rows. Records
        already fetched for these partitions are dropped and read again from that position.
        """
        wanted = set(self._positions.to_restore) & consumer.assignment()
        stored = self._with_retry(
            lambda: self._lander.positions((tp.topic, tp.partition) for tp in wanted),
            what="postgres", consumer=consumer)
        # A rebalance while PostgreSQL was away may have taken some of them back.
        fresh = wanted & self._positions.to_restore & consumer.assignment()
        for tp in fresh:
            offset = stored.get((tp.topic, tp.partition))
            if offset is None:
                consumer.seek_to_beginning(tp)
            else:
                consumer.seek(tp, offset)
            self._positions.landed[tp] = offset
        self._positions.to_restore -= fresh
        return {tp: records for tp, records in polled.items() if tp not in fresh}

    def _caught_up(self, consumer: KafkaConsumer) -> bool:
        assigned = consumer.assignment()
        if not assigned or self._positions.to_restore:
            return False
        ends = consumer.end_offsets(list(assigned))
        behind = 0
        for tp in assigned:
            lag = max(0, ends[tp] - consumer.position(tp))
            metrics.LAG.labels(tp.topic, str(tp.partition)).set(lag)
            behind += lag
        return behind == 0

    # -- one batch -------------------------------------------------------------------------

    def _process(self, consumer: KafkaConsumer, polled: dict[TopicPartition, list]) -> None:
        started = time.perf_counter()
        batch = Batch()
        to_reject: list[tuple[object, Rejection, str]] = []
        for tp, records in polled.items():
            partner = partner_of_topic(tp.topic)
            metrics.CONSUMED.labels(partner).inc(len(records))
            for record in records:
                outcome = self._check(record, partner)
                if isinstance(outcome, EventRow):
                    batch.events.append(outcome)
                else:
                    batch.rejects.append(outcome[0])
                    to_reject.append((record, outcome[1], partner))
            key = (tp.topic, tp.partition)
            batch.expected_offsets[key] = self._positions.landed.get(tp)
            batch.next_offsets[key] = records[-1].offset + 1
        self.stats.consumed += len(batch)
        try:
            result = self._land(consumer, batch, to_reject)
        except _Void as void:
            self._void(batch, void.reason)
            return
        for (topic, partition), offset in batch.next_offsets.items():
            tp = TopicPartition(topic, partition)
            self._positions.landed[tp] = offset
            highwater = consumer.highwater(tp)
            if highwater is not None:
                metrics.LAG.labels(topic, str(partition)).set(max(0, highwater - offset))
        self._count(batch, result)
        # Group offsets only serve the standard lag tools; PostgreSQL holds the real positions.
        consumer.commit_async(offsets={
            TopicPartition(topic, partition): OffsetAndMetadata(offset, "", -1)
            for (topic, partition), offset in batch.next_offsets.items()
        }, callback=_log_commit_failure)
        metrics.BATCH_SECONDS.observe(time.perf_counter() - started)

    def _void(self, batch: Batch, reason: str) -> None:
        """Forget a batch: partitions still owned are read again from their landed position."""
        self.stats.dropped += 1
        metrics.DROPPED.labels(reason).inc()
        for topic, partition in batch.next_offsets:
            tp = TopicPartition(topic, partition)
            if tp in self._positions.landed:
                self._positions.to_restore.add(tp)
        log.warning("batch dropped", extra={"reason": reason, "records": len(batch),
                                            "partitions": sorted(batch.next_offsets)})

    def _check(self, record, partner: str) -> EventRow | tuple[RejectRow, Rejection]:
        appended = datetime.fromtimestamp(record.timestamp / 1000, UTC)
        raw: bytes = record.value or b""
        try:
            # The broker's append time is "now": a replay next month decides exactly as today.
            event = check_event(raw, topic_partner=partner, registry=self._registry,
                                pseudonymiser=self._pseudonymiser, now=appended)
        except Rejection as rejection:
            row = RejectRow(
                topic=record.topic, kafka_partition=record.partition,
                kafka_offset=record.offset, partner_id=partner, appended_at=appended,
                append_day=appended.astimezone(SHANGHAI).date(), event_id=_event_id_of(raw),
                reason_code=rejection.code, field_path=rejection.path,
                message=rejection.message, stage=rejection.stage, size_bytes=len(raw),
                payload_sha256=hashlib.sha256(raw).hexdigest(),
            )
            return row, rejection
        return EventRow(
            partner_id=event.partner_id, event_id=event.event_id, family=event.family,
            event_type=event.type, version=event.version, subject=event.subject,
            occurred_at=event.occurred_at, appended_at=appended,
            append_day=appended.astimezone(SHANGHAI).date(), person=event.person,
            key_id=event.key_id, data_json=orjson.dumps(event.data).decode(),
            warnings=tuple(event.warnings), topic=record.topic,
            kafka_partition=record.partition, kafka_offset=record.offset,
        )

    def _land(self, consumer: KafkaConsumer, batch: Batch,
              to_reject: list[tuple[object, Rejection, str]]) -> LandResult:
        """Publish the batch's rejects, then land it, unless its partitions changed hands.

        Ownership is checked before each attempt (a retry may have polled through a
        rebalance); the compare-and-set on positions in PostgreSQL is the final fence.
        """
        # Rejects reach their topic before the batch commits: a crash in between re-sends them
        # (the headers' original offset identifies a repeat) but never loses one.
        if to_reject:
            def publish() -> None:
                self._owned(batch)
                self._publish_rejects(to_reject)

            self._with_retry(publish, what="kafka", consumer=consumer)

        def land() -> LandResult:
            self._owned(batch)
            try:
                return self._lander.land(batch)
            except Fenced as fenced:
                raise _Void("fenced") from fenced

        return self._with_retry(land, what="postgres", consumer=consumer)

    def _owned(self, batch: Batch) -> None:
        for topic, partition in batch.next_offsets:
            if not self._positions.owns(TopicPartition(topic, partition)):
                raise _Void("partition_released")

    def _publish_rejects(self, to_reject: list[tuple[object, Rejection, str]]) -> None:
        producer = self._rejects_producer()
        self._ensure_rejects_topics({partner for _, _, partner in to_reject})
        futures = []
        for record, rejection, partner in to_reject:
            headers = list(getattr(record, "headers", None) or [])
            headers += [
                ("skillsync.original_topic", record.topic.encode()),  # type: ignore[attr-defined]
                ("skillsync.original_partition", str(record.partition).encode()),  # type: ignore[attr-defined]
                ("skillsync.original_offset", str(record.offset).encode()),  # type: ignore[attr-defined]
                ("skillsync.original_timestamp", str(record.timestamp).encode()),  # type: ignore[attr-defined]
                ("skillsync.reason_code", rejection.code.encode()),
                ("skillsync.field_path", rejection.path.encode()),
                ("skillsync.message", rejection.message.encode()),
                ("skillsync.stage", rejection.stage.encode()),
                ("skillsync.service_version", SERVICE_VERSION.encode()),
            ]
            futures.append(producer.send(
                rejects_topic(partner), value=record.value,  # type: ignore[attr-defined]
                key=record.key, headers=headers))  # type: ignore[attr-defined]
        producer.flush(timeout=30)
        for future in futures:
            future.get(timeout=30)

    def _ensure_rejects_topics(self, partners: set[str]) -> None:
        missing = {rejects_topic(p) for p in partners} - self._rejects_topics_ready
        if missing:
            from infra.kafka.topics import ensure_topics

            ensure_topics(self._settings.bootstrap_servers, missing)
            self._rejects_topics_ready |= missing

    def _with_retry(self, action, *, what: str, consumer: KafkaConsumer | None = None):
        """Run action until it succeeds: an unavailable service is waited for, never rejected."""
        delay = self._settings.backoff_initial_s
        while True:
            try:
                return action()
            except TRANSIENT_ERRORS as exc:
                metrics.TRANSIENT_FAILURES.labels(what).inc()
                if what == "postgres":
                    self._lander.discard_connection()
                log.warning("service unavailable, retrying", extra={
                    "service": what, "error": type(exc).__name__, "retry_in_s": delay})
                if self._stop.wait(delay):
                    # Leaving without committing loses nothing: the batch is read again.
                    raise _Stopping from exc
                if consumer is not None:
                    _keep_membership(consumer)
                delay = min(delay * 2, self._settings.backoff_max_s)

    def _count(self, batch: Batch, result: LandResult) -> None:
        self.stats.batches += 1
        self.stats.landed += result.inserted
        self.stats.redelivered += result.redelivered
        self.stats.rejected += result.rejected
        landed_by_partner: dict[str, int] = {}
        for row in batch.events:
            landed_by_partner[row.partner_id] = landed_by_partner.get(row.partner_id, 0) + 1
        for partner, count in landed_by_partner.items():
            metrics.LANDED.labels(partner).inc(count)
        for partner, count in result.redelivered_by_partner.items():
            metrics.REDELIVERED.labels(partner).inc(count)
        for reject in batch.rejects:
            metrics.REJECTED.labels(reject.partner_id, reject.reason_code).inc()


class _Stopping(Exception):
    """Raised inside a retry wait when shutdown was requested."""


class _Void(Exception):
    """The batch in hand must not land: its partitions are no longer this member's."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def _names(partitions: object) -> list[str]:
    return sorted(f"{tp.topic}[{tp.partition}]" for tp in partitions)  # type: ignore[attr-defined]


def _keep_membership(consumer: KafkaConsumer) -> None:
    """Poll with every partition paused so a long outage does not cost the group membership.

    Anything a newly assigned partition returns is put back: nothing read here is processed.
    """
    consumer.pause(*consumer.assignment())
    try:
        for tp, records in consumer.poll(timeout_ms=0).items():
            consumer.seek(tp, records[0].offset)
    finally:
        consumer.resume(*consumer.paused())


def _event_id_of(raw: bytes) -> str | None:
    """Best-effort id of a refused event, so a partner can find it; None when unreadable."""
    try:
        value = orjson.loads(raw)
    except orjson.JSONDecodeError:
        return None
    event_id = value.get("id") if isinstance(value, dict) else None
    return event_id[:200] if isinstance(event_id, str) else None


def _log_commit_failure(offsets: object, response: object) -> None:
    # Group offsets only feed lag tools; PostgreSQL holds the positions that matter.
    if isinstance(response, Exception):
        log.warning("group offset commit failed", extra={"error": type(response).__name__})
