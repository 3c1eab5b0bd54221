"""Follow a subscriber's sync feed into a local mirror (a SQLite file, or PostgreSQL by URL).

The mirror keeps its own position (the topic offset to read next and the last change version
applied) in the same transaction as the records a batch changed, so after any stop it resumes
where it is, and a new mirror reads the compacted topic from the start: a snapshot of the
subscriber's view, then every change after it. A change whose version is not above the last
one applied is a repeat and is dropped. A change of a contract version this kit does not know
stops the follower before it is applied, with the mirror consistent up to the change before.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, NamedTuple

import msgspec
from sqlalchemy import Engine, create_engine, event, text
from sqlalchemy.engine import make_url

from schemas.sync import SYNC_TYPES, VERSION_HEADER, data_decoder
from schemas.topics import sync_topic

log = logging.getLogger("skillsync.follow")

# Tombstones stay on the topic this long (adapters.kafka.SYNC_TOPIC_CONFIG): a mirror away longer
# may have missed a delete, so it is built again from the snapshot.
TOMBSTONE_DAYS = 30
_SCHEMA = (
    """CREATE TABLE IF NOT EXISTS mirror_record (
        record_key TEXT PRIMARY KEY, kind TEXT NOT NULL, version BIGINT NOT NULL,
        payload TEXT NOT NULL)""",
    """CREATE TABLE IF NOT EXISTS mirror_position (
        topic TEXT NOT NULL, kafka_partition INTEGER NOT NULL, next_offset BIGINT NOT NULL,
        version BIGINT NOT NULL, synced_at TEXT NOT NULL,
        PRIMARY KEY (topic, kafka_partition))""",
    "CREATE INDEX IF NOT EXISTS mirror_record_kind ON mirror_record (kind)",
)


class UnknownContract(RuntimeError):
    """A change this kit cannot read (unknown type or version, or data off its schema): the
    follower stops before it, having applied nothing of it. Upgrade the kit, then resume."""


# A mirror_record row: record key, kind, change version, data (the upsert's JSON text).
Row = tuple[str, str, int, str]


class _Contract(NamedTuple):
    name: str
    kind: str
    decode: Callable[[bytes], Any] | None  # validates an upsert's data; None: a delete


# Keyed by the type header's bytes, so reading a change decodes no header but its subject.
_CONTRACTS: dict[bytes, _Contract] = {
    name.encode(): _Contract(name, t.kind, None if t.operation == "deleted" else
                             data_decoder(name))
    for name, t in SYNC_TYPES.items()}
# Where the relay puts the three attributes a change is applied by (warehouse.relay
# .message_headers): read there first, with any other order read through a dict.
_TYPE_AT, _SUBJECT_AT, _VERSION_AT = 3, 5, 6


@dataclass
class FollowStats:
    upserts: int = 0
    deletes: int = 0
    repeats: int = 0
    version: int = 0
    rebuilt: bool = False
    caught_up: bool = False


@dataclass
class Batch:
    """What a fetched batch does to a mirror: each changed record's final state (its row, or
    None when deleted), and the mirror's position after the last change read. A change that
    breaks its contract ends the batch before it, and is `refused`."""

    final: dict[str, Row | None]
    next_offset: int
    version: int
    refused: UnknownContract | None = None


@dataclass(frozen=True, slots=True)
class Position:
    next_offset: int
    version: int
    synced_at: datetime


def default_mirror_url(subscriber: str) -> str:
    return f"sqlite:///skillsync-mirror-{subscriber}.sqlite"


def read_batch(records: Sequence[Any], after_version: int,
               stats: FollowStats | None = None) -> Batch:
    """The changes of consecutive binary-mode CloudEvent records (each with .offset, .headers
    and .value), checked against their contracts; versions up to `after_version` are repeats."""
    # This loop runs for every change a mirror applies, and SQLite's insert of what it reads
    # costs about as much as the loop does: so one pass, writing each row as it is stored.
    stats = stats if stats is not None else FollowStats()
    final: dict[str, Row | None] = {}
    version, next_offset, refused = after_version, records[0].offset if records else 0, None
    for record in records:
        headers, value = record.headers or (), record.value
        try:
            (type_name, type_raw), (subject_name, subject_raw), (version_name, version_raw) = (
                headers[_TYPE_AT], headers[_SUBJECT_AT], headers[_VERSION_AT])
            if (type_name, subject_name, version_name) != ("ce_type", "ce_subject",
                                                           VERSION_HEADER):
                raise LookupError
        except (LookupError, TypeError, ValueError):
            attributes = dict(headers)
            type_raw = attributes.get("ce_type")
            subject_raw, version_raw = attributes.get("ce_subject"), attributes.get(VERSION_HEADER)
        try:
            contract = _contract_kept(record.offset, type_raw, subject_raw, version_raw, value)
        except UnknownContract as exc:
            refused = exc
            break
        next_offset = record.offset + 1
        change_version = int(version_raw)
        if change_version <= version:
            stats.repeats += 1
            continue
        version = change_version
        subject = subject_raw.decode("utf-8", "replace")
        if value is None:
            final[subject] = None
            stats.deletes += 1
        else:
            final[subject] = (subject, contract.kind, change_version,
                              value.decode("utf-8", "replace"))
            stats.upserts += 1
    return Batch(final, next_offset, version, refused)


def _contract_kept(offset: int, type_raw: bytes | None, subject_raw: bytes | None,
                   version_raw: bytes | None, value: bytes | None) -> _Contract:
    """The contract of a change that keeps to it; UnknownContract saying why if it does not."""
    contract = _CONTRACTS.get(type_raw) if type_raw is not None else None
    if contract is None:
        shown = type_raw.decode("utf-8", "replace") if type_raw is not None else ""
        raise UnknownContract(
            f"{_where(offset, version_raw)} has type {shown!r}, a contract this kit does not "
            "know; upgrade the kit (python -m partners) and follow again: nothing from this "
            "change on was applied")
    if version_raw is None or subject_raw is None or not version_raw.isdigit():
        raise UnknownContract(f"{_where(offset, version_raw)} lacks a change version or subject")
    if contract.decode is None:
        if value is not None:
            raise UnknownContract(f"{_where(offset, version_raw)}: a {contract.name} must not "
                                  "carry data")
        return contract
    if value is None:
        raise UnknownContract(f"{_where(offset, version_raw)}: a {contract.name} must carry data")
    try:
        contract.decode(value)
    except (msgspec.ValidationError, msgspec.DecodeError) as exc:
        raise UnknownContract(f"{_where(offset, version_raw)}: data does not match "
                              f"{contract.name}: {exc}") from None
    return contract


def _where(offset: int, version_raw: bytes | None) -> str:
    shown = version_raw.decode("utf-8", "replace") if version_raw is not None else "?"
    return f"offset {offset} (version {shown})"


class Mirror:
    """A subscriber's records, kept by a SQLAlchemy URL; opening it creates its tables."""

    def __init__(self, url: str) -> None:
        self.url = url
        self._engine: Engine | None = None

    @property
    def engine(self) -> Engine:
        if self._engine is None:
            parsed = make_url(self.url)
            if parsed.drivername in ("postgresql", "postgres"):
                parsed = parsed.set(drivername="postgresql+psycopg")
            self._engine = create_engine(parsed)
            if parsed.get_backend_name() == "sqlite":
                event.listen(self._engine, "connect", _sqlite_pragmas)
            with self._engine.begin() as conn:
                for statement in _SCHEMA:
                    conn.execute(text(statement))
        return self._engine

    def position(self, topic: str) -> Position | None:
        with self.engine.connect() as conn:
            row = conn.execute(text(
                "SELECT next_offset, version, synced_at FROM mirror_position WHERE topic = :t"
                " AND kafka_partition = 0"), {"t": topic}).one_or_none()
        if row is None:
            return None
        return Position(int(row[0]), int(row[1]), datetime.fromisoformat(row[2]))

    def apply(self, topic: str, batch: Batch) -> None:
        """A batch's records and the mirror's new position, in one transaction."""
        upserts = [row for row in batch.final.values() if row is not None]
        deletes = [(key,) for key, row in batch.final.items() if row is None]
        # Statements go to the driver as they are, rows as tuples: SQLAlchemy's per-row
        # parameter processing would cost about as much as SQLite's own insert.
        mark = "?" if self.engine.dialect.paramstyle == "qmark" else "%s"
        with self.engine.begin() as conn:
            if upserts:
                conn.exec_driver_sql(
                    "INSERT INTO mirror_record (record_key, kind, version, payload)"
                    f" VALUES ({mark}, {mark}, {mark}, {mark}) ON CONFLICT (record_key)"
                    " DO UPDATE SET kind = excluded.kind, version = excluded.version,"
                    " payload = excluded.payload", upserts)
            if deletes:
                conn.exec_driver_sql(
                    f"DELETE FROM mirror_record WHERE record_key = {mark}", deletes)
            conn.execute(text(
                "INSERT INTO mirror_position (topic, kafka_partition, next_offset, version,"
                " synced_at) VALUES (:t, 0, :o, :v, :at) ON CONFLICT (topic, kafka_partition)"
                " DO UPDATE SET next_offset = excluded.next_offset, version = excluded.version,"
                " synced_at = excluded.synced_at"),
                {"t": topic, "o": batch.next_offset, "v": batch.version,
                 "at": datetime.now(UTC).isoformat()})

    def reset(self) -> None:
        with self.engine.begin() as conn:
            conn.execute(text("DELETE FROM mirror_record"))
            conn.execute(text("DELETE FROM mirror_position"))

    def rows(self) -> dict[str, tuple[str, Any]]:
        """{record key: (kind, payload)} of everything the mirror holds."""
        with self.engine.connect() as conn:
            return {key: (kind, json.loads(payload)) for key, kind, payload in conn.execute(
                text("SELECT record_key, kind, payload FROM mirror_record"))}

    def close(self) -> None:
        if self._engine is not None:
            self._engine.dispose()
            self._engine = None


def _sqlite_pragmas(dbapi_connection: Any, _: object) -> None:
    # WAL with NORMAL sync survives a killed process; a batch is one transaction either way.
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.close()


ConsumerFactory = Callable[..., Any]


class Follower:
    """Applies one subscriber's feed to a mirror; constructing it connects to nothing."""

    def __init__(self, subscriber: str, mirror: Mirror, *, client_options: dict[str, Any],
                 poll_ms: int = 500, max_records: int = 5000,
                 consumer_factory: ConsumerFactory | None = None,
                 on_batch: Callable[[int], None] | None = None) -> None:
        self.subscriber = subscriber
        self.topic = sync_topic(subscriber)
        self.mirror = mirror
        self._options = client_options
        self._poll_ms = poll_ms
        self._max_records = max_records
        self._factory = consumer_factory
        self._on_batch = on_batch  # a test's hook, called after each applied batch

    def run(self, *, once: bool = False, stop: Callable[[], bool] = lambda: False,
            idle_exit_s: float | None = None) -> FollowStats:
        """Follow until stopped; with `once`, until the end offset seen at the start."""
        from kafka import KafkaConsumer, TopicPartition

        stats = FollowStats()
        position = self.mirror.position(self.topic)
        if position and datetime.now(UTC) - position.synced_at > timedelta(days=TOMBSTONE_DAYS):
            log.warning("mirror last synced %s: rebuilding from the snapshot", position.synced_at)
            self.mirror.reset()
            position, stats.rebuilt = None, True
        factory = self._factory or KafkaConsumer
        consumer = factory(**self._options, group_id=None, enable_auto_commit=False,
                           auto_offset_reset="earliest", client_id=f"follow-{self.subscriber}",
                           max_poll_records=self._max_records,
                           max_partition_fetch_bytes=8 * 1024 * 1024)
        partition = TopicPartition(self.topic, 0)
        try:
            if once and not consumer.partitions_for_topic(self.topic):
                # The relay makes a subscriber's topic with its first change: none yet, so
                # there is nothing to catch up on (asking for the end of a missing topic
                # would only time out).
                stats.caught_up = True
                stats.version = position.version if position else 0
                return stats
            consumer.assign([partition])
            if position is None:
                consumer.seek_to_beginning(partition)
                version = 0
            else:
                consumer.seek(partition, position.next_offset)
                version = position.version
            stats.version = version
            target = consumer.end_offsets([partition])[partition] if once else None
            idle_since = time.monotonic()
            while not stop():
                if target is not None and consumer.position(partition) >= target:
                    stats.caught_up = True
                    break
                batch = consumer.poll(timeout_ms=self._poll_ms).get(partition, [])
                if not batch:
                    if idle_exit_s is not None and time.monotonic() - idle_since > idle_exit_s:
                        break
                    continue
                idle_since = time.monotonic()
                version = self._apply(batch, version, stats)
                if self._on_batch is not None:
                    self._on_batch(batch[-1].offset)
        finally:
            consumer.close()
        stats.version = version
        return stats

    def _apply(self, records: list[Any], version: int, stats: FollowStats) -> int:
        batch = read_batch(records, version, stats)
        if batch.next_offset > records[0].offset:
            self.mirror.apply(self.topic, batch)
        if batch.refused is not None:
            raise batch.refused
        return batch.version


def add_command(commands: Any, connection: Any) -> None:
    """`python -m partners follow <subscriber>`."""
    follow = commands.add_parser(
        "follow", parents=[connection],
        help="mirror your slice of the reconciled picture (your sync feed) locally")
    follow.add_argument("subscriber", help="your subscriber (partner) id, e.g. bj_bureau")
    follow.add_argument("--mirror", metavar="URL",
                        help="sqlite:///path.sqlite or postgresql://user@host/db "
                             "(default: skillsync-mirror-<subscriber>.sqlite here)")
    follow.add_argument("--once", action="store_true",
                        help="catch up with the feed as it is now, then exit")
    follow.set_defaults(run=_follow)


def _follow(args: Any) -> int:
    import signal
    import sys
    import threading

    settings = args.settings
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    mirror = Mirror(args.mirror or default_mirror_url(args.subscriber))
    follower = Follower(args.subscriber, mirror, client_options={
        "bootstrap_servers": settings.bootstrap_servers.split(","),
        **settings.kafka_security()})
    try:
        stats = follower.run(once=args.once, stop=stop.is_set)
    except UnknownContract as exc:
        print(f"refused: {exc}", file=sys.stderr)
        return 3
    finally:
        mirror.close()
    print(f"{args.subscriber}: {stats.upserts} upserts, {stats.deletes} deletes, "
          f"{stats.repeats} repeats dropped; at version {stats.version}"
          + ("; caught up" if stats.caught_up else "")
          + ("; rebuilt from the snapshot" if stats.rebuilt else ""))
    return 0
