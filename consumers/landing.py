"""Lands a batch in PostgreSQL: events, redacted rejects and positions in one transaction."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any, NamedTuple

import orjson
import psycopg
from psycopg.adapt import Dumper
from psycopg.pq import Format

from schemas.pipeline import CheckedEvent

EVENT_COLUMNS = (
    "partner_id", "event_id", "family", "event_type", "version", "subject", "occurred_at",
    "appended_at", "append_day", "person", "key_id", "data", "warnings", "topic",
    "kafka_partition", "kafka_offset", "sent_at",
)
# PostgreSQL types of EVENT_COLUMNS, for binary COPY (no text for the server to parse but JSON).
EVENT_TYPES = (
    "text", "text", "text", "text", "int2", "text", "timestamptz", "timestamptz", "date", "text",
    "text", "jsonb", "text[]", "text", "int4", "int8", "timestamptz",
)
REJECT_COLUMNS = (
    "topic", "kafka_partition", "kafka_offset", "partner_id", "appended_at", "append_day",
    "event_id", "reason_code", "field_path", "message", "stage", "size_bytes", "payload_sha256",
)

_COLUMN_LIST = ", ".join(EVENT_COLUMNS)
# Batches merged rather than copied straight in after a copy found some of its events landed:
# a failed copy is work thrown away, and where partners re-send, the next batches likely do too.
MERGES_AFTER_CONFLICT = 16


class EventRow(NamedTuple):
    """One accepted event, pseudonymised, in staging.events column order (COPY writes it as is)."""

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
    warnings: Sequence[str]
    topic: str
    kafka_partition: int
    kafka_offset: int
    sent_at: datetime


def event_row(event: CheckedEvent, topic: str, partition: int, offset: int,
              appended_at: datetime, append_day: date) -> EventRow:
    """The staging row of an accepted event read from a topic, partition and offset."""
    # Positional: this runs for every event, and keywords cost a third of it.
    return EventRow(
        event.partner_id, event.event_id, event.family, event.type, event.version,
        event.subject, event.occurred_at, appended_at, append_day, event.person,
        event.key_id, orjson.dumps(event.data).decode(), event.warnings, topic, partition,
        offset, event.sent_at,
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


Partition = tuple[str, int]
# Where an event was landed from: (partner, event id, topic, partition, offset).
Landing = tuple[str, str, str, int, int]


@dataclass(slots=True)
class Batch:
    events: list[EventRow] = field(default_factory=list)
    rejects: list[RejectRow] = field(default_factory=list)
    # The landed position this batch continues from (None: nothing landed yet) ...
    expected_offsets: dict[Partition, int | None] = field(default_factory=dict)
    # ... and the offset of the next record to read once this batch is landed.
    next_offsets: dict[Partition, int] = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.events) + len(self.rejects)


@dataclass(frozen=True, slots=True)
class LandResult:
    inserted: int
    rejected: int
    redelivered_by_partner: dict[str, int] = field(default_factory=dict)

    @property
    def redelivered(self) -> int:
        return sum(self.redelivered_by_partner.values())


class Fenced(Exception):
    """Another member landed these partitions since this batch was read: the batch is void."""

    def __init__(self, partitions: Sequence[Partition]) -> None:
        super().__init__(f"positions moved on for {list(partitions)}")
        self.partitions = tuple(partitions)


class _JsonTextBinaryDumper(Dumper):
    """jsonb in binary COPY from JSON text the service already serialised, not a Python object."""

    format = Format.BINARY
    oid = psycopg.adapters.types["jsonb"].oid

    def dump(self, obj: str | bytes) -> bytes:
        # Binary jsonb is a version byte, then the JSON text.
        return b"\x01" + (obj.encode() if isinstance(obj, str) else obj)


class Lander:
    """Writes batches through one psycopg connection, opened on first use.

    Not thread-safe: one thread at a time may call it.
    """

    def __init__(self, database_url: str, group_id: str) -> None:
        self._url = database_url
        self._group_id = group_id
        self._conn: psycopg.Connection | None = None
        self._merges_due = 0

    def _connection(self) -> psycopg.Connection:
        if self._conn is None or self._conn.closed or self._conn.broken:
            conn = psycopg.connect(self._url, autocommit=False, connect_timeout=5,
                                   application_name=f"skillsync-consumer:{self._group_id}")
            # Only by type oid: used by COPY after set_types, never for query parameters.
            conn.adapters.register_dumper(None, _JsonTextBinaryDumper)
            with conn.transaction():
                # Once per session rather than once per batch: a batch is then one round trip
                # fewer and no catalog lookup.
                conn.execute("CREATE TEMP TABLE IF NOT EXISTS incoming "
                             "(LIKE staging.events INCLUDING DEFAULTS) ON COMMIT DELETE ROWS")
            self._conn = conn
        return self._conn

    def discard_connection(self) -> None:
        """Forget a connection after a failure; the next call opens a fresh one."""
        if self._conn is not None:
            try:
                self._conn.close()
            finally:
                self._conn = None

    close = discard_connection

    def positions(self, partitions: Iterable[Partition]) -> dict[Partition, int]:
        """The next offset to read per partition, as landed; partitions never landed are absent."""
        wanted = list(partitions)
        if not wanted:
            return {}
        rows = self._fetch_all(
            "SELECT topic, partition, next_offset FROM staging.consumer_offsets "
            "WHERE group_id = %s AND (topic, partition) IN "
            "(SELECT * FROM unnest(%s::text[], %s::int[]))",
            (self._group_id, [t for t, _ in wanted], [p for _, p in wanted]),
        )
        return {(topic, partition): offset for topic, partition, offset in rows}

    def already_landed(self, candidates: Sequence[Landing]) -> set[Landing]:
        """Those candidates landed in staging from exactly that topic, partition and offset.

        One lookup by primary key per candidate, whatever the size of staging.
        """
        if not candidates:
            return set()
        rows = self._fetch_all(
            "SELECT e.partner_id, e.event_id, e.topic, e.kafka_partition, e.kafka_offset "
            "FROM unnest(%s::text[], %s::text[]) AS c(partner_id, event_id) "
            "JOIN staging.events e USING (partner_id, event_id)",
            ([c[0] for c in candidates], [c[1] for c in candidates]),
        )
        return set(rows) & set(candidates)

    def _fetch_all(self, query: str, params: tuple[object, ...]) -> list[tuple[Any, ...]]:
        """A read in a transaction of its own: the connection is never left idle in one."""
        conn = self._connection()
        with conn.transaction():
            return conn.execute(query, params).fetchall()

    def land(self, batch: Batch) -> LandResult:
        """Commit the batch's rows and its positions atomically; a replayed batch changes nothing.

        Raises Fenced, committing nothing, when a partition's landed position is no longer the
        one the batch continues from: its reader lost the partition and a successor moved on.
        """
        conn = self._connection()
        if batch.events and self._expect_new(batch.events):
            try:
                return self._land(conn, batch, copy_new=True)
            except psycopg.errors.UniqueViolation:
                # Where one was landed before, the next batches likely hold some too.
                self._merges_due = MERGES_AFTER_CONFLICT
        return self._land(conn, batch, copy_new=False)

    def _land(self, conn: psycopg.Connection, batch: Batch, *, copy_new: bool) -> LandResult:
        """One transaction; copy_new copies the events straight into staging.events.

        A straight copy is half the server's work of a merge through the temporary table, but
        fails as a whole (UniqueViolation, nothing committed) if any of the events is there.
        """
        with conn.transaction(), conn.cursor() as cur:
            # Positions first: their row locks make a concurrent lander of the same partition
            # wait here, then fail the compare, before either copies any rows.
            self._advance_positions(cur, batch)
            inserted = 0
            redelivered: dict[str, int] = {}
            if copy_new:
                self._copy(cur, "staging.events", batch.events)
                inserted = len(batch.events)
            elif batch.events:
                inserted, redelivered = self._merge(cur, batch.events)
            if batch.rejects:
                cur.executemany(
                    f"INSERT INTO staging.rejected ({', '.join(REJECT_COLUMNS)}) "
                    f"VALUES ({', '.join(['%s'] * len(REJECT_COLUMNS))}) ON CONFLICT DO NOTHING",
                    [row.values() for row in batch.rejects],
                )
        return LandResult(inserted=inserted, rejected=len(batch.rejects),
                          redelivered_by_partner=redelivered)

    def _expect_new(self, events: Sequence[EventRow]) -> bool:
        """Whether to copy straight into staging.events: no key twice, no conflict lately."""
        if self._merges_due:
            self._merges_due -= 1
            return False
        return len({(row.partner_id, row.event_id) for row in events}) == len(events)

    @staticmethod
    def _copy(cur: psycopg.Cursor, table: str, events: Sequence[EventRow]) -> None:
        with cur.copy(f"COPY {table} ({_COLUMN_LIST}) FROM STDIN (FORMAT BINARY)") as copy:
            copy.set_types(EVENT_TYPES)
            for row in events:
                # The binary array dumper takes lists only; warnings are rare.
                copy.write_row(row._replace(warnings=list(row.warnings)) if row.warnings else row)

    def _merge(self, cur: psycopg.Cursor,
               events: Sequence[EventRow]) -> tuple[int, dict[str, int]]:
        """Insert what is not landed yet; (rows inserted, redeliveries recorded by partner)."""
        self._copy(cur, "incoming", events)
        # The same event id twice in one batch is one row: the first read wins.
        cur.execute(
            f"INSERT INTO staging.events ({_COLUMN_LIST}) "
            f"SELECT DISTINCT ON (partner_id, event_id) {_COLUMN_LIST} FROM incoming "
            "ORDER BY partner_id, event_id, topic, kafka_partition, kafka_offset "
            "ON CONFLICT (partner_id, event_id) DO NOTHING"
        )
        inserted = cur.rowcount
        redelivered: dict[str, int] = {}
        if inserted < len(events):
            # A partner re-sending an event is recorded for the scorecard, never landed twice.
            cur.execute(
                "INSERT INTO staging.redeliveries "
                "(partner_id, append_day, event_id, topic, kafka_partition, kafka_offset) "
                "SELECT i.partner_id, i.append_day, i.event_id, i.topic, i.kafka_partition, "
                "i.kafka_offset FROM incoming i JOIN staging.events e "
                "USING (partner_id, event_id) "
                "WHERE (e.topic, e.kafka_partition, e.kafka_offset) "
                "<> (i.topic, i.kafka_partition, i.kafka_offset) "
                "ON CONFLICT DO NOTHING RETURNING partner_id"
            )
            for (partner,) in cur.fetchall():
                redelivered[partner] = redelivered.get(partner, 0) + 1
        return inserted, redelivered

    def _advance_positions(self, cur: psycopg.Cursor, batch: Batch) -> None:
        """Move each position from where the batch expects it to its end (compare and set)."""
        moved: list[Partition] = []
        known = sorted(k for k, v in batch.expected_offsets.items() if v is not None)
        if known:
            cur.execute(
                "UPDATE staging.consumer_offsets o SET next_offset = w.n, updated_at = now() "
                "FROM unnest(%s::text[], %s::int[], %s::bigint[], %s::bigint[]) AS w(t, p, e, n) "
                "WHERE o.group_id = %s AND o.topic = w.t AND o.partition = w.p "
                "AND o.next_offset = w.e RETURNING o.topic, o.partition",
                ([t for t, _ in known], [p for _, p in known],
                 [batch.expected_offsets[k] for k in known], [batch.next_offsets[k] for k in known],
                 self._group_id),
            )
            moved += cur.fetchall()
        first = sorted(k for k, v in batch.expected_offsets.items() if v is None)
        if first:
            cur.execute(
                "INSERT INTO staging.consumer_offsets (group_id, topic, partition, next_offset) "
                "SELECT %s, t, p, n FROM unnest(%s::text[], %s::int[], %s::bigint[]) AS w(t, p, n) "
                "ON CONFLICT (group_id, topic, partition) DO NOTHING RETURNING topic, partition",
                (self._group_id, [t for t, _ in first], [p for _, p in first],
                 [batch.next_offsets[k] for k in first]),
            )
            moved += cur.fetchall()
        if len(moved) < len(batch.expected_offsets):
            raise Fenced(sorted(set(batch.expected_offsets) - {(t, p) for t, p in moved}))
