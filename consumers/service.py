"""The ingestion loop: poll a batch, check every event, land the batch, then commit."""

from __future__ import annotations

import gc
import hashlib
import logging
import sys
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta, timezone
from typing import Any, TypeVar

import psycopg
from kafka import KafkaConsumer, KafkaProducer, TopicPartition
from kafka.consumer.subscription_state import ConsumerRebalanceListener
from kafka.coordinator.assignors.cooperative_sticky import CooperativeStickyAssignor
from kafka.errors import KafkaError
from kafka.structs import OffsetAndMetadata

from consumers import metrics
from consumers.landing import (
    Batch,
    EventRow,
    Fenced,
    Lander,
    Landing,
    LandResult,
    RejectRow,
    event_row,
)
from consumers.settings import ConsumerSettings
from infra.kafka.topics import REJECTS_MAX_MESSAGE_BYTES, ensure_topics
from schemas.errors import Rejection
from schemas.partners import PartnerRegistry
from schemas.pipeline import check_event, claimed_event_id
from schemas.pseudonym import Pseudonymiser
from schemas.topics import partner_of_topic, rejects_topic

log = logging.getLogger("skillsync.consumer")

SERVICE_VERSION = "0.1.0"
# Business days are Asia/Shanghai calendar days; the zone has had no DST since 1991.
SHANGHAI = timezone(timedelta(hours=8), "Asia/Shanghai")
TRANSIENT_ERRORS = (psycopg.OperationalError, psycopg.InterfaceError, KafkaError)
# Room for a whole batch per partition in one fetch, so polls rarely wait on the wire.
MAX_PARTITION_FETCH_BYTES = 4 * 1024 * 1024

# The landing thread waits on PostgreSQL with the GIL released, then must win it back from the
# thread checking events: at CPython's default 5 ms a batch's COPY spent more time waiting for
# the GIL than working (bench/ingest_bench.py, docs/benchmarks.md).
GIL_SWITCH_INTERVAL_S = 0.0002

Polled = dict[TopicPartition, list[Any]]
ToReject = list[tuple[Any, Rejection, str]]
T = TypeVar("T")


def tune_interpreter() -> None:
    """Interpreter settings for a process whose whole life is the service: call once, at start."""
    sys.setswitchinterval(GIL_SWITCH_INTERVAL_S)
    # What start-up loaded (modules, registry, reference data) lives as long as the process:
    # the collector need not scan it again at every full collection.
    gc.collect()
    gc.freeze()


@dataclass(slots=True)
class RunStats:
    consumed: int = 0
    landed: int = 0
    redelivered: int = 0
    rejected: int = 0
    batches: int = 0
    dropped: int = 0  # batches voided because their partitions changed hands
    already_landed: int = 0  # records of a replay found landed from the very same offset


class _Positions(ConsumerRebalanceListener):
    """Owned partitions and where the next batch of each continues from.

    Callbacks only record what changed: they share the group's heartbeat path, so the loop does
    the slow work (reading PostgreSQL).
    """

    def __init__(self) -> None:
        # Owned partition -> the offset its next batch starts at, counting the batch in flight
        # as landed (None: nothing landed yet). A batch that fails to land puts it back in
        # to_restore, and PostgreSQL says again.
        self.resume_at: dict[TopicPartition, int | None] = {}
        self.to_restore: set[TopicPartition] = set()
        # Restored partitions whose next records may already be in staging (a replay).
        self.probing: set[TopicPartition] = set()

    def on_partitions_assigned(self, assigned: list[TopicPartition]) -> None:
        self.to_restore |= set(assigned)
        log.info("partitions assigned", extra={"partitions": _names(assigned)})

    def on_partitions_revoked(self, revoked: list[TopicPartition]) -> None:
        # A batch of these may still be landing: if it commits after a successor restored the
        # position, the successor's first batch is fenced and re-read, never landed twice.
        self._release(revoked)
        log.info("partitions revoked", extra={"partitions": _names(revoked)})

    def on_partitions_lost(self, lost: list[TopicPartition]) -> None:
        self._release(lost)
        log.warning("partitions lost", extra={"partitions": _names(lost)})

    def _release(self, partitions: list[TopicPartition]) -> None:
        for tp in partitions:
            self.resume_at.pop(tp, None)
            self.to_restore.discard(tp)
            self.probing.discard(tp)

    def owns(self, tp: TopicPartition) -> bool:
        return tp in self.resume_at and tp not in self.to_restore


@dataclass(slots=True)
class _Prepared:
    """A checked batch, with the refused records to publish before it lands."""

    batch: Batch
    to_reject: ToReject = field(default_factory=list)
    started: float = field(default_factory=time.perf_counter)


@dataclass(slots=True)
class _InFlight:
    batch: Batch
    landing: Future[LandResult]
    started: float


class IngestService:
    """One member of the ingestion group. Construction does no I/O; `run` does it all.

    Batch N lands on a worker thread while batch N+1 is polled and checked; N+1 lands only
    after N committed, so positions never move past a batch that failed.
    """

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
        self._landing_thread: ThreadPoolExecutor | None = None
        self._in_flight: _InFlight | None = None
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
            max_partition_fetch_bytes=MAX_PARTITION_FETCH_BYTES,
            metadata_max_age_ms=s.metadata_max_age_ms,
            max_poll_interval_ms=s.max_poll_interval_ms,
            session_timeout_ms=s.session_timeout_ms,
            heartbeat_interval_ms=min(3000, s.session_timeout_ms // 3),
            partition_assignment_strategy=(CooperativeStickyAssignor,),
            **s.kafka_security(),
        )
        consumer.subscribe(pattern=s.topic_pattern, listener=self._positions)
        self._consumer = consumer
        self._landing_thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="lander")
        return consumer

    def _rejects_producer(self) -> KafkaProducer:
        if self._producer is None:
            s = self._settings
            self._producer = KafkaProducer(
                bootstrap_servers=s.bootstrap_servers.split(","),
                client_id=f"skillsync-rejects-{s.group_id}",
                acks="all", enable_idempotence=True, linger_ms=5,
                max_request_size=REJECTS_MAX_MESSAGE_BYTES,
                **s.kafka_security(),
            )
        return self._producer

    def close(self) -> None:
        if self._landing_thread is not None:
            # Whatever is landing finishes (or fails) first: the connection is closed below.
            self._landing_thread.shutdown(wait=True)
            self._landing_thread = None
        self._in_flight = None
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
                # With a batch landing, take only what is already fetched: if nothing is, the
                # wait is better spent finishing that batch.
                landing = self._in_flight is not None
                polled = consumer.poll(timeout_ms=0 if landing else 500)
                if self._positions.to_restore:
                    # Positions read from PostgreSQL must include the batch in flight.
                    self._settle(consumer)
                    polled = self._restore_positions(consumer, polled)
                if polled:
                    self._process(consumer, polled)
                    idle_since = time.monotonic()
                    continue
                self._settle(consumer)
                if until_caught_up and self._caught_up(consumer, fetched_only=landing):
                    break
                if idle_timeout_s is not None and time.monotonic() - idle_since > idle_timeout_s:
                    break
            # The batch in hand lands before leaving.
            self._settle(consumer)
        except _Stopping:
            pass
        finally:
            self.close()
        return self.stats

    # -- positions -------------------------------------------------------------------------

    def _restore_positions(self, consumer: KafkaConsumer, polled: Polled) -> Polled:
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
            self._positions.resume_at[tp] = offset
        self._positions.to_restore -= fresh
        self._positions.probing |= fresh
        return {tp: records for tp, records in polled.items() if tp not in fresh}

    def _caught_up(self, consumer: KafkaConsumer, *, fetched_only: bool = False) -> bool:
        """Whether every assigned partition is read to its end.

        fetched_only: decide "no" without asking the broker while the last fetch of any
        partition ended beyond the position (a poll that did not wait proves nothing).
        """
        assigned = consumer.assignment()
        if not assigned or self._positions.to_restore:
            return False
        if fetched_only and any(consumer.highwater(tp) is None
                                or consumer.position(tp) < consumer.highwater(tp)
                                for tp in assigned):
            return False
        ends = consumer.end_offsets(list(assigned))
        behind = 0
        for tp in assigned:
            lag = max(0, ends[tp] - consumer.position(tp))
            metrics.LAG.labels(tp.topic, str(tp.partition)).set(lag)
            behind += lag
        return behind == 0

    # -- one batch -------------------------------------------------------------------------

    def _process(self, consumer: KafkaConsumer, polled: Polled) -> None:
        if self._positions.probing.intersection(polled):
            # The lookup shares the connection the batch in flight lands through.
            self._settle(consumer)
        prepared = self._prepare(consumer, polled)
        self._settle(consumer)
        self._submit(consumer, prepared)

    def _prepare(self, consumer: KafkaConsumer, polled: Polled) -> _Prepared:
        """Check every record, except those a replay finds landed from the same offset."""
        prepared = _Prepared(Batch())
        batch = prepared.batch
        skip = self._already_landed(consumer, polled)
        append_times: dict[int, tuple[datetime, date]] = {}
        for tp, records in polled.items():
            partner = partner_of_topic(tp.topic)
            metrics.CONSUMED.labels(partner).inc(len(records))
            for record in records:
                if skip and (tp.topic, tp.partition, record.offset) in skip:
                    continue
                appended = append_times.get(record.timestamp)
                if appended is None:
                    appended = append_times[record.timestamp] = _append_time(record.timestamp)
                outcome = self._check(record, partner, appended)
                if isinstance(outcome, EventRow):
                    batch.events.append(outcome)
                else:
                    batch.rejects.append(outcome[0])
                    prepared.to_reject.append((record, outcome[1], partner))
            key = (tp.topic, tp.partition)
            batch.expected_offsets[key] = self._positions.resume_at.get(tp)
            batch.next_offsets[key] = records[-1].offset + 1
        consumed = sum(len(records) for records in polled.values())
        self.stats.consumed += consumed
        self.stats.already_landed += consumed - len(batch)
        return prepared

    def _already_landed(self, consumer: KafkaConsumer,
                        polled: Polled) -> set[tuple[str, int, int]]:
        """Records of partitions being probed whose event landed from this very offset.

        Checking them again could change nothing in staging. A partition stops being probed at
        its first batch with no such record, so a first ingest pays one lookup per partition.
        """
        probed = self._positions.probing.intersection(polled)
        if not probed:
            return set()
        candidates: list[Landing] = []
        for tp in probed:
            partner = partner_of_topic(tp.topic)
            for record in polled[tp]:
                event_id = claimed_event_id(record.value)
                if event_id is not None:
                    candidates.append((partner, event_id, tp.topic, tp.partition, record.offset))
        found = self._with_retry(lambda: self._lander.already_landed(candidates),
                                 what="postgres", consumer=consumer)
        probed_with_hits = {(topic, partition) for _, _, topic, partition, _ in found}
        for tp in probed:
            if (tp.topic, tp.partition) not in probed_with_hits:
                self._positions.probing.discard(tp)
        return {(topic, partition, offset) for _, _, topic, partition, offset in found}

    def _submit(self, consumer: KafkaConsumer, prepared: _Prepared) -> None:
        """Publish the batch's rejects, then hand the batch to the landing thread."""
        batch = prepared.batch
        try:
            self._owned(batch)
            if prepared.to_reject:
                # Rejects reach their topic before the batch commits: a crash in between
                # re-sends them (the headers' original offset identifies a repeat) but never
                # loses one.
                def publish() -> None:
                    self._owned(batch)
                    self._publish_rejects(prepared.to_reject)

                self._with_retry(publish, what="kafka", consumer=consumer)
        except _Void as void:
            self._void(batch, void.reason)
            return
        assert self._landing_thread is not None
        landing = self._landing_thread.submit(self._lander.land, batch)
        self._in_flight = _InFlight(batch, landing, prepared.started)
        for (topic, partition), offset in batch.next_offsets.items():
            self._positions.resume_at[TopicPartition(topic, partition)] = offset

    def _settle(self, consumer: KafkaConsumer) -> None:
        """Wait for the batch in flight; retry it here if it failed, unless it lost its place.

        Ownership is checked before each retry (a retry may have polled through a rebalance);
        the compare-and-set on positions in PostgreSQL is the final fence.
        """
        in_flight, self._in_flight = self._in_flight, None
        if in_flight is None:
            return
        batch = in_flight.batch
        first_attempt: Future[LandResult] | None = in_flight.landing

        def land() -> LandResult:
            nonlocal first_attempt
            try:
                if first_attempt is not None:
                    attempt, first_attempt = first_attempt, None
                    return attempt.result()
                self._owned(batch)
                return self._lander.land(batch)
            except Fenced as fenced:
                raise _Void("fenced") from fenced

        try:
            result = self._with_retry(land, what="postgres", consumer=consumer)
        except _Void as void:
            self._void(batch, void.reason)
            return
        self._landed(consumer, batch, result)
        metrics.BATCH_SECONDS.observe(time.perf_counter() - in_flight.started)

    def _landed(self, consumer: KafkaConsumer, batch: Batch, result: LandResult) -> None:
        owned: dict[TopicPartition, OffsetAndMetadata] = {}
        for (topic, partition), offset in batch.next_offsets.items():
            tp = TopicPartition(topic, partition)
            if not self._positions.owns(tp):
                continue  # revoked while landing: its new owner reports on it
            owned[tp] = OffsetAndMetadata(offset, "", -1)
            highwater = consumer.highwater(tp)
            if highwater is not None:
                metrics.LAG.labels(topic, str(partition)).set(max(0, highwater - offset))
        self._count(batch, result)
        # Group offsets only serve the standard lag tools; PostgreSQL holds the real positions.
        if owned:
            consumer.commit_async(offsets=owned, callback=_log_commit_failure)

    def _void(self, batch: Batch, reason: str) -> None:
        """Forget a batch: partitions still owned are read again from their landed position."""
        self.stats.dropped += 1
        metrics.DROPPED.labels(reason).inc()
        for topic, partition in batch.next_offsets:
            tp = TopicPartition(topic, partition)
            if tp in self._positions.resume_at:
                self._positions.to_restore.add(tp)
        log.warning("batch dropped", extra={"reason": reason, "records": len(batch),
                                            "partitions": sorted(batch.next_offsets)})

    def _check(self, record: Any, partner: str,
               appended: tuple[datetime, date]) -> EventRow | tuple[RejectRow, Rejection]:
        appended_at, append_day = appended
        raw: bytes = record.value or b""
        try:
            # The broker's append time is "now": a replay next month decides exactly as today.
            event = check_event(raw, topic_partner=partner, registry=self._registry,
                                pseudonymiser=self._pseudonymiser, now=appended_at)
        except Rejection as rejection:
            row = RejectRow(
                topic=record.topic, kafka_partition=record.partition,
                kafka_offset=record.offset, partner_id=partner, appended_at=appended_at,
                append_day=append_day, event_id=claimed_event_id(raw),
                reason_code=rejection.code, field_path=rejection.path,
                message=rejection.message, stage=rejection.stage, size_bytes=len(raw),
                payload_sha256=hashlib.sha256(raw).hexdigest(),
            )
            return row, rejection
        return event_row(event, record.topic, record.partition, record.offset, appended_at,
                         append_day)

    def _owned(self, batch: Batch) -> None:
        for topic, partition in batch.next_offsets:
            if not self._positions.owns(TopicPartition(topic, partition)):
                raise _Void("partition_released")

    def _publish_rejects(self, to_reject: ToReject) -> None:
        producer = self._rejects_producer()
        self._ensure_rejects_topics({partner for _, _, partner in to_reject})
        futures = []
        for record, rejection, partner in to_reject:
            # Kafka lets a record carry neither key nor value, and headers without values;
            # this client can send neither, so those nulls go back as empty bytes.
            headers = [(name, value or b"") for name, value in record.headers or []]
            headers += [
                ("skillsync.original_topic", record.topic.encode()),
                ("skillsync.original_partition", str(record.partition).encode()),
                ("skillsync.original_offset", str(record.offset).encode()),
                ("skillsync.original_timestamp", str(record.timestamp).encode()),
                ("skillsync.reason_code", rejection.code.encode()),
                ("skillsync.field_path", rejection.path.encode()),
                ("skillsync.message", rejection.message.encode()),
                ("skillsync.stage", rejection.stage.encode()),
                ("skillsync.service_version", SERVICE_VERSION.encode()),
            ]
            value = b"" if record.value is None and record.key is None else record.value
            futures.append(producer.send(
                rejects_topic(partner), value=value, key=record.key, headers=headers))
        producer.flush(timeout=30)
        for future in futures:
            future.get(timeout=30)

    def _ensure_rejects_topics(self, partners: set[str]) -> None:
        missing = {rejects_topic(p) for p in partners} - self._rejects_topics_ready
        if missing:
            ensure_topics(self._settings.bootstrap_servers, missing,
                          **self._settings.kafka_security())
            self._rejects_topics_ready |= missing

    def _with_retry(self, action: Callable[[], T], *, what: str,
                    consumer: KafkaConsumer | None = None) -> T:
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


def _append_time(timestamp_ms: int) -> tuple[datetime, date]:
    appended = datetime.fromtimestamp(timestamp_ms / 1000, UTC)
    return appended, appended.astimezone(SHANGHAI).date()


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


def _log_commit_failure(offsets: object, response: object) -> None:
    # Group offsets only feed lag tools; PostgreSQL holds the positions that matter.
    if isinstance(response, Exception):
        log.warning("group offset commit failed", extra={"error": type(response).__name__})
