"""Lands a batch in PostgreSQL: events, redacted rejects and consumer positions in one transaction."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime

import psycopg

EVENT_COLUMNS = (
    "partner_id", "event_id", "family", "event_type", "version", "subject", "occurred_at",
    "appended_at", "append_day", "person", "key_id", "data", "warnings", "topic",
    "kafka_partition", "kafka_offset",
)
REJECT_COLUMNS = (
    "topic", "kafka_partition", "kafka_offset", "partner_id", "appended_at", "append_day",
    "event_id", "reason_code", "field_path", "message", "stage", "size_bytes", "payload_sha256",
)

_COLUMN_LIST = ", ".join(EVENT_COLUMNS)


@dataclass(frozen=True, slots=True)
class EventRow:
    """One accepted event, pseudonymised, in staging.events column order."""

    partner_id: str
    event_id: str
    family: str
    event_type: str
    version: int
    subject: str | None
    occurred_at: datetime
    appended_at: datetime
    append_day: date
    person: str | None
    key_id: str | None
    data_json: str
    warnings: tuple[str, ...]
    topic: str
    kafka_partition: int
    kafka_offset: int

    def values(self) -> tuple[object, ...]:
        return (
            self.partner_id, self.event_id, self.family, self.event_type, self.version,
            self.subject, self.occurred_at, self.appended_at, self.append_day, self.person,
            self.key_id, self.data_json, list(self.warnings), self.topic, self.kafka_partition,
            self.kafka_offset,
        )


@dataclass(frozen=True, slots=True)
class RejectRow:
    """One refused event, without its payload: the original bytes go only to the rejects topic."""

    topic: str
    kafka_partition: int
    kafka_offset: int
    partner_id: str
    appended_at: datetime
    append_day: date
    event_id: str | None
    reason_code: str
    field_path: str
    message: str
    stage: str
    size_bytes: int
    payload_sha256: str

    def values(self) -> tuple[object, ...]:
        return tuple(getattr(self, name) for name in REJECT_COLUMNS)


@dataclass(slots=True)
class Batch:
    events: list[EventRow] = field(default_factory=list)
    rejects: list[RejectRow] = field(default_factory=list)
    # (topic, partition) -> offset of the next record to read once this batch is landed
    next_offsets: dict[tuple[str, int], int] = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.events) + len(self.rejects)


@dataclass(frozen=True, slots=True)
class LandResult:
    inserted: int
    redelivered: int
    rejected: int


class Lander:
    """Writes batches through one psycopg connection, opened on first use."""

    def __init__(self, database_url: str, group_id: str) -> None:
        self._url = database_url
        self._group_id = group_id
        self._conn: psycopg.Connection | None = None

    def _connection(self) -> psycopg.Connection:
        if self._conn is None or self._conn.closed or self._conn.broken:
            self._conn = psycopg.connect(self._url, autocommit=False, connect_timeout=5,
                                         application_name=f"skillsync-consumer:{self._group_id}")
        return self._conn

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    def discard_connection(self) -> None:
        """Forget a connection after a failure; the next call opens a fresh one."""
        if self._conn is not None:
            try:
                self._conn.close()
            finally:
                self._conn = None

    def positions(self, partitions: Iterable[tuple[str, int]]) -> dict[tuple[str, int], int]:
        """The next offset to read per partition, as landed; partitions never landed are absent."""
        wanted = list(partitions)
        if not wanted:
            return {}
        conn = self._connection()
        with conn.transaction():
            rows = conn.execute(
                "SELECT topic, partition, next_offset FROM staging.consumer_offsets "
                "WHERE group_id = %s AND (topic, partition) IN "
                "(SELECT * FROM unnest(%s::text[], %s::int[]))",
                (self._group_id, [t for t, _ in wanted], [p for _, p in wanted]),
            ).fetchall()
        return {(topic, partition): offset for topic, partition, offset in rows}

    def land(self, batch: Batch) -> LandResult:
        """Commit the batch's rows and its positions atomically; a replayed batch changes nothing."""
        conn = self._connection()
        with conn.transaction(), conn.cursor() as cur:
            inserted = redelivered = 0
            if batch.events:
                cur.execute(
                    "CREATE TEMP TABLE IF NOT EXISTS incoming "
                    "(LIKE staging.events INCLUDING DEFAULTS) ON COMMIT DELETE ROWS"
                )
                with cur.copy(f"COPY incoming ({_COLUMN_LIST}) FROM STDIN") as copy:
                    for row in batch.events:
                        copy.write_row(row.values())
                # The same event id twice in one batch, or already landed, is one row.
                cur.execute(
                    f"INSERT INTO staging.events ({_COLUMN_LIST}) "
                    f"SELECT DISTINCT ON (partner_id, event_id) {_COLUMN_LIST} FROM incoming "
                    "ORDER BY partner_id, event_id, topic, kafka_partition, kafka_offset "
                    "ON CONFLICT (partner_id, event_id) DO NOTHING"
                )
                inserted = cur.rowcount
                # A partner re-sending an event is recorded for the scorecard, never landed twice.
                cur.execute(
                    "INSERT INTO staging.redeliveries "
                    "(partner_id, append_day, event_id, topic, kafka_partition, kafka_offset) "
                    "SELECT i.partner_id, i.append_day, i.event_id, i.topic, i.kafka_partition, "
                    "i.kafka_offset FROM incoming i JOIN staging.events e "
                    "USING (partner_id, event_id) "
                    "WHERE (e.topic, e.kafka_partition, e.kafka_offset) "
                    "<> (i.topic, i.kafka_partition, i.kafka_offset) "
                    "ON CONFLICT DO NOTHING"
                )
                redelivered = cur.rowcount
            if batch.rejects:
                cur.executemany(
                    f"INSERT INTO staging.rejected ({', '.join(REJECT_COLUMNS)}) "
                    f"VALUES ({', '.join(['%s'] * len(REJECT_COLUMNS))}) ON CONFLICT DO NOTHING",
                    [row.values() for row in batch.rejects],
                )
            self._save_positions(cur, batch.next_offsets)
        return LandResult(inserted=inserted, redelivered=redelivered, rejected=len(batch.rejects))

    def _save_positions(self, cur: psycopg.Cursor, next_offsets: dict[tuple[str, int], int]) -> None:
        if not next_offsets:
            return
        keys: Sequence[tuple[str, int]] = sorted(next_offsets)
        # GREATEST: a consumer that lost its partitions may still finish a batch; it must never
        # move a position backwards past what its successor has landed.
        cur.execute(
            "INSERT INTO staging.consumer_offsets (group_id, topic, partition, next_offset) "
            "SELECT %s, t, p, o FROM unnest(%s::text[], %s::int[], %s::bigint[]) AS x(t, p, o) "
            "ON CONFLICT (group_id, topic, partition) DO UPDATE SET "
            "next_offset = GREATEST(staging.consumer_offsets.next_offset, EXCLUDED.next_offset), "
            "updated_at = now()",
            (self._group_id, [k[0] for k in keys], [k[1] for k in keys],
             [next_offsets[k] for k in keys]),
        )
