"""The ingestion loop: poll a batch, check every event, land the batch, then commit."""

from __future__ import annotations

import contextlib
import gc
import logging
import os
import socket
import sys
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, TypeVar
from uuid import UUID

import psycopg
from kafka import KafkaConsumer, TopicPartition
from kafka.consumer.subscription_state import ConsumerRebalanceListener
from kafka.coordinator.assignors.cooperative_sticky import CooperativeStickyAssignor
from kafka.errors import KafkaError
from kafka.structs import OffsetAndMetadata

from adapters.ingest_lag import other_incarnation, topic_id_of
from adapters.kafka import connect_admin
from adapters.settings import Settings
from consumers import metrics
from consumers.landing import (
    Batch,
    EventRow,
    Fenced,
    IdsReused,
    Lander,
    Landing,
    LandResult,
    Position,
    RejectRow,
    ReusedId,
)
from consumers.records import Appended, append_time, judge_record
from consumers.rejects import RejectsPublisher, ToReject
from consumers.watchdog import GroupMembers, Health, Watchdog
from schemas.errors import Rejection, ServiceUnavailable
from schemas.partners import PartnerRegistry
from schemas.pipeline import claimed_event_id
from schemas.pseudonym import Pseudonymiser
from schemas.topics import partner_of_topic

log = logging.getLogger("skillsync.consumer")

TRANSIENT_ERRORS = (psycopg.OperationalError, psycopg.InterfaceError, KafkaError,
                    ServiceUnavailable)
# kafka-python multiplies its reconnect backoff about fourfold per failure up to 30 s: after a
# broker restart of a few seconds the client would wait half a minute to notice, and in its
# constructor that outgrows the 30 s it allows for bootstrapping (docs/reliability.md). One
# second is the Java client's ceiling.
RECONNECT_BACKOFF_MAX_MS = 1000
# Room for a whole batch per partition in one fetch, so polls rarely wait on the wire.
MAX_PARTITION_FETCH_BYTES = 4 * 1024 * 1024

# The landing thread waits on PostgreSQL with the GIL released, then must win it back from the
# thread checking events: at CPython's default 5 ms a batch's COPY spent more time waiting for
# the GIL than working (bench/ingest_bench.py, docs/benchmarks.md).
GIL_SWITCH_INTERVAL_S = 0.0002

Polled = dict[TopicPartition, list[Any]]
Behind = dict[tuple[str, int], int]
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
    # run(until_caught_up=True) that gave up: partition -> records still not landed.
    behind: Behind = field(default_factory=dict)


class _Positions(ConsumerRebalanceListener):
    """Owned partitions and where the next batch of each continues from.

    Callbacks only record what changed: they share the group's heartbeat path, so the loop does
    the slow work (reading PostgreSQL).
    """

    def __init__(self) -> None:
        # Owned partition -> the landed position its next batch continues from, counting the
        # batch in flight as landed (None: nothing landed yet). A batch that fails to land puts
        # it back in to_restore, and PostgreSQL says again.
        self.resume_at: dict[TopicPartition, Position | None] = {}
        # Owned partition -> the incarnation of its topic being read (Kafka's topic id).
        self.topic_ids: dict[TopicPartition, UUID | None] = {}
        self.to_restore: set[TopicPartition] = set()
        # Restored partitions whose next records may already be in staging (a replay).
        self.probing: set[TopicPartition] = set()
        self.joined = False  # the group has handed this member an assignment at least once

    def on_partitions_assigned(self, assigned: list[TopicPartition]) -> None:
        self.joined = True
        self.to_restore |= set(assigned)
        for tp in assigned:
            metrics.OWNED.labels(tp.topic, str(tp.partition)).set(1)
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
            with contextlib.suppress(KeyError):
                metrics.OWNED.remove(tp.topic, str(tp.partition))
            self.resume_at.pop(tp, None)
            self.topic_ids.pop(tp, None)
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
    polled: Polled = field(default_factory=dict)  # what the batch was read from


@dataclass(slots=True)
class _InFlight:
    batch: Batch
    landing: Future[LandResult]
    started: float
    polled: Polled


class IngestService:
    """One member of the ingestion group. Construction does no I/O; `run` does it all.

    Batch N lands on a worker thread while batch N+1 is polled and checked; N+1 lands only
    after N committed, so positions never move past a batch that failed.
    """

    def __init__(self, settings: Settings, *, registry: PartnerRegistry,
                 pseudonymiser: Pseudonymiser,
                 on_stuck: Callable[[str], None] = lambda reason: None) -> None:
        """settings: its kafka, database and ingest sections are read here.

        on_stuck: called from the watchdog's thread when a Kafka call never returns (the loop
        cannot act then); the command line exits the process for its supervisor."""
        self._kafka = kafka = settings.kafka
        self._ingest = ingest = settings.ingest
        self._registry = registry
        self._pseudonymiser = pseudonymiser
        self._lander = Lander(settings.database.libpq, ingest.group_id)
        self._stop = threading.Event()
        self._positions = _Positions()
        self._consumer: KafkaConsumer | None = None
        self._rejects = RejectsPublisher(settings.kafka, f"skillsync-rejects-{ingest.group_id}",
                                         reconnect_backoff_max_ms=RECONNECT_BACKOFF_MAX_MS)
        self._landing_thread: ThreadPoolExecutor | None = None
        self._in_flight: _InFlight | None = None
        self._idle_since = time.monotonic()
        self.stats = RunStats()
        self.health = Health()
        self._group_members = GroupMembers(
            lambda: connect_admin(kafka.bootstrap_servers, timeout=10,
                                  **kafka.kafka_security()))
        self._watchdog = Watchdog(group_id=ingest.group_id, stall_s=ingest.stall_timeout_s,
                                  check_every_s=ingest.membership_check_s,
                                  describe_group=self._group_members, on_stuck=on_stuck,
                                  health=self.health)

    def request_stop(self) -> None:
        """Finish the batch in hand, then leave (safe from a signal handler)."""
        self._stop.set()

    # -- lifecycle -------------------------------------------------------------------------

    def _open(self) -> KafkaConsumer:
        # The client bootstraps in its constructor and gives up after 30 s: a broker that is
        # away then is waited for like any later outage, never a crash.
        consumer = self._with_retry(self._new_consumer, what="kafka")
        consumer.subscribe(pattern=self._ingest.topic_pattern, listener=self._positions)
        self._consumer = consumer
        self._landing_thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="lander")
        return consumer

    def _new_consumer(self) -> KafkaConsumer:
        s = self._ingest
        return KafkaConsumer(
            bootstrap_servers=self._kafka.servers,
            group_id=s.group_id,
            # Host and pid name the process in the group's member list (`consumers status`).
            client_id=f"skillsync-consumer-{socket.gethostname()}-{os.getpid()}",
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
            reconnect_backoff_max_ms=RECONNECT_BACKOFF_MAX_MS,
            **self._kafka.kafka_security(),
        )

    def close(self) -> None:
        self._watchdog.stop()
        if self._landing_thread is not None:
            # Whatever is landing finishes (or fails) first: the connection is closed below.
            self._landing_thread.shutdown(wait=True)
            self._landing_thread = None
        self._in_flight = None
        if self._consumer is not None:
            consumer, self._consumer = self._consumer, None
            if self.health.wedged:
                # A wedged client may never finish leaving: give it a moment, no more.
                closing = threading.Thread(target=consumer.close, kwargs={"autocommit": False},
                                           daemon=True)
                closing.start()
                closing.join(timeout=10)
            else:
                consumer.close(autocommit=False)
        self._group_members.close()
        metrics.IN_GROUP.set(0)
        self._rejects.close()
        self._lander.close()

    def run(self, *, until_caught_up: bool = False, idle_timeout_s: float | None = None,
            catch_up_patience_s: float | None = None) -> RunStats:
        """Consume until asked to stop (or, for batch use, until every partition is caught up).

        until_caught_up: return once every partition of the subscribed topics is landed to its
        end, whichever member holds it. A partition still behind whose landed position has not
        moved for catch_up_patience_s (default: twice the session timeout, so a dead member's
        partitions come to a live one) ends the run with it named in `stats.behind`.
        """
        try:
            consumer = self._open()
        except _Stopping:
            self.close()
            return self.stats
        self._idle_since = time.monotonic()
        patience = catch_up_patience_s
        if patience is None:
            patience = 2 * self._ingest.session_timeout_ms / 1000 + 15
        catch_up = _CatchUp(patience) if until_caught_up else None
        self._watchdog.start(consumer)
        try:
            while not self._stop.is_set():
                self._watchdog.check()
                # One turn must end: a client stuck inside any call is seen by the watchdog.
                with self._watchdog.kafka_call("the service loop"):
                    if self._turn(consumer, catch_up, idle_timeout_s):
                        break
            # The batch in hand lands before leaving.
            self._settle(consumer)
        except _Stopping:
            pass
        finally:
            self.close()
        return self.stats

    def _turn(self, consumer: KafkaConsumer, catch_up: _CatchUp | None,
              idle_timeout_s: float | None) -> bool:
        """One poll and what follows it; True when the run is over."""
        # With a batch landing, take only what is already fetched: if nothing is, the wait
        # is better spent finishing that batch.
        landing = self._in_flight is not None
        # A poll can raise when the broker is away at the moment it looks for the group's
        # coordinator; the broker coming back is waited for like any unavailable service.
        polled = self._with_retry(lambda: consumer.poll(timeout_ms=0 if landing else 500),
                                  what="kafka")
        self._notice_recreated_topics(consumer)
        if self._positions.to_restore:
            # Positions read from PostgreSQL must include the batch in flight.
            self._settle(consumer)
            polled = self._restore_positions(consumer, polled)
        if polled:
            self._process(consumer, polled)
            self._idle_since = time.monotonic()
            self._watchdog.progressed()
            return False
        self._settle(consumer)
        # Nothing fetched: a position may still have moved past transaction markers or
        # aborted records; PostgreSQL must say so too, or lag would never clear.
        self._land_read_positions(consumer)
        if catch_up is not None and not landing:
            behind = self._behind(consumer)
            if behind is not None and catch_up.done(behind):
                self.stats.behind = behind
                return True
        return idle_timeout_s is not None and time.monotonic() - self._idle_since > idle_timeout_s

    # -- positions -------------------------------------------------------------------------

    def _restore_positions(self, consumer: KafkaConsumer, polled: Polled) -> Polled:
        """Resume each newly assigned partition where PostgreSQL says it was landed.

        PostgreSQL, not the group, is the authority: its positions commit with the rows. Records
        already fetched for these partitions are dropped and read again from that position. A
        position landed from an earlier incarnation of a re-created topic says nothing about
        the new one: that is read from its start.
        """
        wanted = set(self._positions.to_restore) & consumer.assignment()
        stored = self._with_retry(
            lambda: self._lander.positions((tp.topic, tp.partition) for tp in wanted),
            what="postgres", consumer=consumer)
        # A rebalance while PostgreSQL was away may have taken some of them back.
        fresh = wanted & self._positions.to_restore & consumer.assignment()
        for tp in fresh:
            landed = stored.get((tp.topic, tp.partition))
            topic_id = topic_id_of(consumer, tp.topic)
            if landed is None:
                consumer.seek_to_beginning(tp)
            elif other_incarnation(landed.topic_id, topic_id):
                log.warning("topic re-created: reading its new incarnation from the start",
                            extra={"partition": f"{tp.topic}[{tp.partition}]",
                                   "landed_topic_id": str(landed.topic_id),
                                   "topic_id": str(topic_id),
                                   "landed_next_offset": landed.next_offset})
                metrics.TOPIC_RECREATED.labels(tp.topic).inc()
                consumer.seek_to_beginning(tp)
            else:
                consumer.seek(tp, landed.next_offset)
            self._positions.resume_at[tp] = landed
            self._positions.topic_ids[tp] = topic_id
        self._positions.to_restore -= fresh
        self._positions.probing |= fresh
        return {tp: records for tp, records in polled.items() if tp not in fresh}

    def _notice_recreated_topics(self, consumer: KafkaConsumer) -> None:
        """Owned partitions whose topic was deleted and re-created under this member.

        The broker answers a fetch at the old position from the new incarnation, which would
        skip its first records: such partitions are restored (and so read from the start).
        """
        for tp, reading in self._positions.topic_ids.items():
            if tp not in self._positions.to_restore and other_incarnation(
                    reading, topic_id_of(consumer, tp.topic)):
                self._positions.to_restore.add(tp)

    def _land_read_positions(self, consumer: KafkaConsumer) -> None:
        """Land owned positions that moved with no record to land (markers, aborted records).

        A transactional producer's commit marker takes an offset: after the last record the
        reader's position is one further, and only a landed position that says so lets lag
        reach zero for `consumers status` and the nightly sensor.
        """
        batch = Batch()
        for tp, landed in self._positions.resume_at.items():
            if not self._positions.owns(tp):
                continue
            try:
                position = consumer.position(tp, timeout_ms=0)
            except KafkaError:
                continue
            if position is not None and position > (landed.next_offset if landed else 0):
                key = (tp.topic, tp.partition)
                batch.expected_offsets[key] = landed
                batch.next_offsets[key] = position
                batch.topic_ids[key] = self._positions.topic_ids.get(tp)
        if batch.next_offsets:
            self._submit(consumer, _Prepared(batch))
            self._settle(consumer)

    def _behind(self, consumer: KafkaConsumer) -> Behind | None:
        """Records not yet landed per partition of the subscribed topics; None: cannot tell yet.

        Owned partitions count from this reader's position; the others (held by another
        member, or by a dead one until its session expires) from their landed position.
        """
        if not self._positions.joined or self._positions.to_restore:
            return None
        assigned = consumer.assignment()
        partitions = [TopicPartition(topic, partition)
                      for topic in sorted(consumer.subscription() or ())
                      for partition in sorted(consumer.partitions_for_topic(topic) or ())]
        try:
            with self._watchdog.kafka_call("end_offsets"):
                ends = consumer.end_offsets(partitions)
                reading = {tp: consumer.position(tp) for tp in partitions if tp in assigned}
        except KafkaError as exc:
            if not exc.retriable:
                raise
            return None  # the broker is away: asked again on a later turn
        others = [tp for tp in partitions if tp not in assigned]
        landed = self._with_retry(
            lambda: self._lander.positions((tp.topic, tp.partition) for tp in others),
            what="postgres", consumer=consumer) if others else {}
        behind: Behind = {}
        for tp in partitions:
            if tp in assigned:
                read_to = reading[tp]
                metrics.LAG.labels(tp.topic, str(tp.partition)).set(
                    max(0, ends[tp] - (read_to or 0)))
            else:
                at = landed.get((tp.topic, tp.partition))
                other = at is None or other_incarnation(at.topic_id,
                                                         topic_id_of(consumer, tp.topic))
                read_to = 0 if other or at is None else at.next_offset
            if ends[tp] > (read_to or 0):
                behind[(tp.topic, tp.partition)] = ends[tp] - (read_to or 0)
        return behind

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
        prepared.polled = polled
        skip = self._already_landed(consumer, polled)
        append_times: dict[int, Appended] = {}
        registry, pseudonymiser = self._registry, self._pseudonymiser
        for tp, records in polled.items():
            partner = partner_of_topic(tp.topic)
            metrics.CONSUMED.labels(partner).inc(len(records))
            topic_id = self._positions.topic_ids.get(tp)
            for record in records:
                if skip and (tp.topic, tp.partition, record.offset) in skip:
                    continue
                appended = append_times.get(record.timestamp)
                if appended is None:
                    appended = append_times[record.timestamp] = append_time(record.timestamp)
                outcome = judge_record(record.value or b"", record.topic, record.partition,
                                       record.offset, partner, appended, registry,
                                       pseudonymiser, topic_id)
                if isinstance(outcome, EventRow):
                    batch.events.append(outcome)
                else:
                    batch.rejects.append(outcome[0])
                    prepared.to_reject.append((record, outcome[1], partner))
            key = (tp.topic, tp.partition)
            batch.expected_offsets[key] = self._positions.resume_at.get(tp)
            batch.topic_ids[key] = topic_id
            # The reader's position, not last record + 1: a transaction's commit marker (or an
            # aborted transaction) after the last record takes offsets too.
            batch.next_offsets[key] = max(records[-1].offset + 1, _position(consumer, tp))
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
            topic_id = self._positions.topic_ids.get(tp)
            for record in polled[tp]:
                event_id = claimed_event_id(record.value)
                if event_id is not None:
                    candidates.append((partner, event_id, tp.topic, tp.partition, record.offset,
                                       topic_id))
        found = self._with_retry(lambda: self._lander.already_landed(candidates),
                                 what="postgres", consumer=consumer)
        probed_with_hits = {(landing[2], landing[3]) for landing in found}
        for tp in probed:
            if (tp.topic, tp.partition) not in probed_with_hits:
                self._positions.probing.discard(tp)
        return {(landing[2], landing[3], landing[4]) for landing in found}

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
                    self._rejects.publish(prepared.to_reject)

                self._with_retry(publish, what="kafka", consumer=consumer)
        except _Void as void:
            self._void(batch, void.reason)
            return
        assert self._landing_thread is not None
        landing = self._landing_thread.submit(self._lander.land, batch)
        self._in_flight = _InFlight(batch, landing, prepared.started, prepared.polled)
        for key, offset in batch.next_offsets.items():
            self._positions.resume_at[TopicPartition(*key)] = Position(offset,
                                                                       batch.topic_ids.get(key))

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
        # Events refused while landing (their id landed before with other bytes): they reach
        # the rejects topic before the batch, now without them, commits.
        refused_late: ToReject = []

        def land() -> LandResult:
            nonlocal first_attempt
            while True:
                try:
                    if refused_late:
                        self._owned(batch)
                        self._rejects.publish(refused_late)
                        refused_late.clear()
                    if first_attempt is not None:
                        attempt, first_attempt = first_attempt, None
                        return attempt.result()
                    self._owned(batch)
                    return self._lander.land(batch)
                except Fenced as fenced:
                    raise _Void("fenced") from fenced
                except IdsReused as reused:
                    refused_late.extend(self._refuse_reused(batch, reused.reused,
                                                            in_flight.polled))

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

    def _refuse_reused(self, batch: Batch, reused: tuple[ReusedId, ...],
                       polled: Polled) -> ToReject:
        """Move events whose id landed with other bytes from the batch to its refusals."""
        where = {(r.topic, r.kafka_partition, r.kafka_offset): r for r in reused}
        records = {(tp.topic, tp.partition, record.offset): record
                   for tp, found in polled.items() for record in found
                   if (tp.topic, tp.partition, record.offset) in where}
        kept: list[EventRow] = []
        refused: ToReject = []
        for row in batch.events:
            origin = (row.topic, row.kafka_partition, row.kafka_offset)
            if origin not in where:
                kept.append(row)
                continue
            clash = where[origin]
            rejection = Rejection(
                "envelope.id_reused", "$.id",
                f"event id {row.event_id[:64]!r} landed before with other content "
                f"(landed sha256 {clash.landed_sha256.hex()}, this message's sha256 "
                f"{clash.sha256.hex()}): re-send the same bytes, or give a new event a new id")
            record = records[origin]
            batch.rejects.append(RejectRow(
                topic=row.topic, kafka_partition=row.kafka_partition,
                kafka_offset=row.kafka_offset, partner_id=row.partner_id,
                appended_at=row.appended_at, append_day=row.append_day, event_id=row.event_id,
                reason_code=rejection.code, field_path=rejection.path,
                message=rejection.message, stage=rejection.stage,
                size_bytes=len(record.value or b""), payload_sha256=clash.sha256.hex(),
                topic_id=row.topic_id))
            refused.append((record, rejection, row.partner_id))
        batch.events = kept
        log.warning("event ids reused with other content refused",
                    extra={"records": len(refused)})
        return refused

    def _owned(self, batch: Batch) -> None:
        for topic, partition in batch.next_offsets:
            if not self._positions.owns(TopicPartition(topic, partition)):
                raise _Void("partition_released")

    def _with_retry(self, action: Callable[[], T], *, what: str,
                    consumer: KafkaConsumer | None = None) -> T:
        """Run action until it succeeds: an unavailable service is waited for, never rejected."""
        delay = self._ingest.backoff_initial_s
        while True:
            try:
                return action()
            except TRANSIENT_ERRORS as exc:
                metrics.TRANSIENT_FAILURES.labels(what).inc()
                if what == "postgres":
                    self._lander.discard_connection()
                log.warning("service unavailable, retrying", extra={
                    "service": what, "error": type(exc).__name__, "retry_in_s": delay})
                self._watchdog.waiting()
                if self._stop.wait(delay):
                    # Leaving without committing loses nothing: the batch is read again.
                    raise _Stopping from exc
                if consumer is not None:
                    _keep_membership(consumer)
                delay = min(delay * 2, self._ingest.backoff_max_s)

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


def _position(consumer: KafkaConsumer, tp: TopicPartition) -> int:
    try:
        return consumer.position(tp, timeout_ms=0) or 0
    except (KafkaError, AssertionError):
        return 0


class _CatchUp:
    """When `run --until-caught-up` is done: nothing behind, or nothing moving for a while."""

    def __init__(self, patience_s: float) -> None:
        self._patience_s = patience_s
        self._last: Behind | None = None
        self._moved_at = time.monotonic()

    def done(self, behind: Behind) -> bool:
        if not behind:
            return True
        if self._last is None or any(behind.get(k, 0) < n for k, n in self._last.items()) or (
                len(behind) < len(self._last)):
            self._moved_at = time.monotonic()
        self._last = behind
        return time.monotonic() - self._moved_at > self._patience_s


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
    except KafkaError as exc:
        # The broker may be away as well: the wait this serves goes on either way.
        if not exc.retriable:
            raise
    finally:
        consumer.resume(*consumer.paused())


def _log_commit_failure(offsets: object, response: object) -> None:
    # Group offsets only feed lag tools; PostgreSQL holds the positions that matter.
    if isinstance(response, Exception):
        log.warning("group offset commit failed", extra={"error": type(response).__name__})
