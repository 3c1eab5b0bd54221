"""Replay refused events after a fix: check their original bytes again and land those now valid."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime

import psycopg
from kafka import KafkaConsumer, TopicPartition

from adapters.settings import Settings
from consumers.landing import Batch, EventRow, Lander
from consumers.records import judge_record
from schemas.days import business_day_of
from schemas.errors import ConfigurationError, Rejection
from schemas.partners import PartnerRegistry
from schemas.pseudonym import Pseudonymiser
from schemas.rejects import RejectRecord
from schemas.topics import rejects_topic

# Where a record was appended in its partner's events topic: (topic, partition, offset).
Origin = tuple[str, int, int]
REPLAY_GROUP = "skillsync-replay"
_LAND_CHUNK = 1000


@dataclass(frozen=True)
class ReplayRequest:
    """Which refused events to try again; a dry run reports what would happen and writes nothing."""

    partner_id: str
    reason_code: str | None = None
    first_day: date | None = None
    last_day: date | None = None
    dry_run: bool = True

    def __post_init__(self) -> None:
        if self.first_day and self.last_day and self.first_day > self.last_day:
            raise ConfigurationError(
                f"first_day {self.first_day} is after last_day {self.last_day}")


@dataclass
class ReplayOutcome:
    """Counts by outcome: landed, duplicate (already in staging), erased, refused."""

    candidates: int = 0
    # Refused rows whose bytes the rejects topic no longer holds (past its retention).
    unavailable: int = 0
    outcomes: Counter[str] = field(default_factory=Counter)
    refused_by_reason: Counter[str] = field(default_factory=Counter)
    # Append days that gained events: rerun nightly_sync for them.
    days_to_reload: list[date] = field(default_factory=list)

    def as_dict(self) -> dict[str, object]:
        return {"candidates": self.candidates, "unavailable": self.unavailable,
                "outcomes": dict(self.outcomes), "refused_by_reason": dict(self.refused_by_reason),
                "days_to_reload": [d.isoformat() for d in self.days_to_reload]}


def replay_rejects(request: ReplayRequest, *, database_url: str, bootstrap_servers: str,
                   registry: PartnerRegistry, pseudonymiser: Pseudonymiser, run_id: str,
                   kafka_options: Mapping[str, object] | None = None) -> ReplayOutcome:
    """Check the chosen refused events again as the consumers would today, and land the valid.

    Each event is judged with the time the broker first appended it, exactly like the first
    time; only the registry, contract or keys may have changed. Running it twice lands nothing
    twice; refused rows record the outcome (and a still refused event its new reason).
    """
    outcome = ReplayOutcome()
    candidates = _candidates(database_url, request)
    outcome.candidates = len(candidates)
    originals = _original_bytes(bootstrap_servers, request.partner_id, set(candidates),
                                kafka_options or {})
    outcome.unavailable = len(set(candidates) - set(originals))
    accepted: list[EventRow] = []
    refused: list[tuple[Origin, Rejection]] = []
    for origin, raw in originals.items():
        appended = candidates[origin]
        judged = judge_record(raw, *origin, request.partner_id,
                              (appended, business_day_of(appended)), registry, pseudonymiser)
        if isinstance(judged, EventRow):
            # Replayed rows keep no digest: an id already in staging is a duplicate here, as it
            # was before digests were kept, never a reuse to refuse.
            accepted.append(judged._replace(payload_sha256=None))
        else:
            refused.append((origin, judged[1]))
            outcome.refused_by_reason[judged[1].code] += 1
    outcome.outcomes["refused"] = len(refused)
    if accepted and not request.dry_run:
        _land(database_url, accepted)
    verdicts = _judge(database_url, accepted)
    outcome.outcomes.update(verdicts.values())
    outcome.days_to_reload = sorted({row.append_day for row in accepted
                                     if verdicts[_origin(row)] == "landed"})
    if not request.dry_run:
        _record(database_url, run_id, verdicts, refused)
    return outcome


def _origin(row: EventRow) -> Origin:
    return row.topic, row.kafka_partition, row.kafka_offset


def _candidates(database_url: str, request: ReplayRequest) -> dict[Origin, datetime]:
    """When the broker appended each refused row of the request not yet brought in by an
    earlier replay."""
    with psycopg.connect(database_url) as conn:
        rows = conn.execute(
            "SELECT topic, kafka_partition, kafka_offset, appended_at FROM staging.rejected"
            " WHERE partner_id = %(partner)s"
            " AND (%(reason)s::text IS NULL OR reason_code = %(reason)s)"
            " AND append_day BETWEEN coalesce(%(first)s::date, '-infinity')"
            " AND coalesce(%(last)s::date, 'infinity')"
            " AND (replay_outcome IS NULL OR replay_outcome = 'refused')",
            {"partner": request.partner_id, "reason": request.reason_code,
             "first": request.first_day, "last": request.last_day}).fetchall()
    return {(t, p, o): at for t, p, o, at in rows}


def _original_bytes(bootstrap_servers: str, partner_id: str, wanted: set[Origin],
                    kafka_options: Mapping[str, object]) -> dict[Origin, bytes]:
    """The refused records' bytes, found in the partner's rejects topic by their origin headers.

    Reads the topic up to its end at the start of the call; the first copy of a record wins
    (the consumer may have published a reject twice around a crash).
    """
    if not wanted:
        return {}
    consumer = KafkaConsumer(bootstrap_servers=bootstrap_servers.split(","),
                             enable_auto_commit=False, group_id=None,
                             client_id=REPLAY_GROUP, max_partition_fetch_bytes=4 * 1024 * 1024,
                             fetch_max_bytes=8 * 1024 * 1024, **kafka_options)
    found: dict[Origin, bytes] = {}
    try:
        topic = rejects_topic(partner_id)
        partitions = [TopicPartition(topic, p)
                      for p in sorted(consumer.partitions_for_topic(topic) or ())]
        if not partitions:
            return found
        consumer.assign(partitions)
        consumer.seek_to_beginning(*partitions)
        ends = consumer.end_offsets(partitions)
        pending = {tp for tp in partitions if ends[tp] > 0}
        while pending and len(found) < len(wanted):
            for tp, records in consumer.poll(timeout_ms=1000).items():
                for record in records:
                    origin = _origin_of(record.headers)
                    if origin in wanted and origin not in found:
                        found[origin] = record.value or b""
                if consumer.position(tp) >= ends[tp]:
                    pending.discard(tp)
    finally:
        consumer.close()
    return found


def _origin_of(headers: Iterable[tuple[str, bytes]] | None) -> Origin | None:
    return RejectRecord.from_kafka(None, b"", headers).origin


def _land(database_url: str, rows: list[EventRow]) -> None:
    lander = Lander(database_url, REPLAY_GROUP)
    try:
        for start in range(0, len(rows), _LAND_CHUNK):
            # No positions: a replay continues no partition, it only adds rows idempotently.
            lander.land(Batch(events=rows[start:start + _LAND_CHUNK]))
    finally:
        lander.close()


def _judge(database_url: str, rows: list[EventRow]) -> dict[Origin, str]:
    """What became (or, before landing, would become) of each valid event.

    Staged from its own origin: landed; staged from elsewhere: duplicate; turned away for an
    erased person: erased; otherwise it is not landed yet and would land.
    """
    if not rows:
        return {}
    with psycopg.connect(database_url) as conn:
        judged = conn.execute(
            """SELECT c.topic, c.kafka_partition, c.kafka_offset, CASE
                 WHEN (e.topic, e.kafka_partition, e.kafka_offset)
                      = (c.topic, c.kafka_partition, c.kafka_offset) THEN 'landed'
                 WHEN e.event_id IS NOT NULL THEN 'duplicate'
                 WHEN EXISTS (SELECT 1 FROM staging.erased_persons x WHERE x.person = c.person)
                   OR EXISTS (SELECT 1 FROM staging.erased_events x
                              WHERE x.partner_id = c.partner_id AND x.event_id = c.event_id)
                   THEN 'erased'
                 ELSE 'landed' END
               FROM unnest(%s::text[], %s::text[], %s::text[], %s::text[], %s::int[],
                           %s::bigint[]) AS c(partner_id, event_id, person, topic,
                                             kafka_partition, kafka_offset)
               LEFT JOIN staging.events e USING (partner_id, event_id)""",
            ([r.partner_id for r in rows], [r.event_id for r in rows], [r.person for r in rows],
             [r.topic for r in rows], [r.kafka_partition for r in rows],
             [r.kafka_offset for r in rows])).fetchall()
    return {(t, p, o): verdict for t, p, o, verdict in judged}


def _record(database_url: str, run_id: str, judged: Mapping[Origin, str],
            refused: list[tuple[Origin, Rejection]]) -> None:
    with psycopg.connect(database_url) as conn, conn.transaction(), conn.cursor() as cur:
        if judged:
            cur.executemany(
                "UPDATE staging.rejected SET replay_outcome = %s, replayed_at = now(),"
                " replay_run = %s, original_reason_code = coalesce(original_reason_code,"
                " reason_code) WHERE (topic, kafka_partition, kafka_offset) = (%s, %s, %s)",
                [(verdict, run_id, *origin) for origin, verdict in judged.items()])
        if refused:
            cur.executemany(
                "UPDATE staging.rejected SET replay_outcome = 'refused', replayed_at = now(),"
                " replay_run = %s, original_reason_code = coalesce(original_reason_code,"
                " reason_code), reason_code = %s, field_path = %s, message = %s, stage = %s"
                " WHERE (topic, kafka_partition, kafka_offset) = (%s, %s, %s)",
                [(run_id, r.code, r.path, r.message, r.stage, *origin)
                 for origin, r in refused])


def replay_configured(request: ReplayRequest, run_id: str,
                      settings: Settings | None = None) -> ReplayOutcome:
    """Replay with the consumers' own settings: their registry, keys, database and broker."""
    s = settings or Settings.load()
    return replay_rejects(
        request, database_url=s.database.libpq, bootstrap_servers=s.kafka.bootstrap_servers,
        registry=s.registry.load(), pseudonymiser=s.keys.load(), run_id=run_id,
        kafka_options=s.kafka.kafka_security())
