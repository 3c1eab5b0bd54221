"""The sync check of `python -m quality.verify --sync`: each subscriber's topic against its outbox.

Per subscriber: a change version on the topic twice is duplicated; one below a version before
it is out of order; a record whose last change the relay published but whose topic holds an
older state (or none) is lost; a change the warehouse never wrote, or with other content, is
unexpected. Compaction may remove superseded changes, so records are compared by their latest
state, which compaction always keeps.
"""

from __future__ import annotations

import hashlib
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import psycopg

from adapters.database import libpq_url
from schemas.sync import VERSION_HEADER
from schemas.topics import sync_topic

SHOWN = 20


@dataclass(frozen=True, slots=True)
class FeedRecord:
    """One record read back from a sync topic."""

    offset: int
    key: str
    version: int
    value: bytes | None

    @classmethod
    def of(cls, record: Any) -> FeedRecord:
        headers = dict(record.headers or ())
        return cls(record.offset, (record.key or b"").decode("utf-8", "replace"),
                   int(headers.get(VERSION_HEADER, b"0") or 0), record.value)


@dataclass(frozen=True)
class Sent:
    """What the warehouse says a subscriber was (or is to be) sent."""

    published: dict[str, tuple[int, bytes]]  # key -> (version, payload digest), current records
    outbox: dict[int, tuple[str, bytes | None]]  # retained version -> (key, digest or None)
    relayed: int  # the relay's recorded progress
    last_version: int


@dataclass(frozen=True)
class FeedFinding:
    subscriber: str
    lost: tuple[str, ...] = ()
    duplicated: tuple[str, ...] = ()
    out_of_order: tuple[str, ...] = ()
    unexpected: tuple[str, ...] = ()
    counts: dict[str, int] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return not (self.lost or self.duplicated or self.out_of_order or self.unexpected)


def judge_feed(subscriber: str, sent: Sent, records: Sequence[FeedRecord]) -> FeedFinding:
    seen: Counter[int] = Counter()
    duplicated, out_of_order, unexpected = [], [], []
    top = 0
    latest: dict[str, FeedRecord] = {}
    for record in records:
        if seen[record.version]:
            duplicated.append(f"version {record.version} again at offset {record.offset}")
        elif record.version < top:
            out_of_order.append(f"version {record.version} at offset {record.offset} "
                                f"after version {top}")
        seen[record.version] += 1
        top = max(top, record.version)
        latest[record.key] = record
        digest = _digest(record.value)
        if record.version > sent.last_version or record.version < 1:
            unexpected.append(f"version {record.version} at offset {record.offset}: the "
                              "warehouse wrote no such change")
        elif record.version in sent.outbox and sent.outbox[record.version] != (record.key,
                                                                              digest):
            unexpected.append(f"version {record.version} at offset {record.offset}: not the "
                              "change the warehouse wrote")
    pending = {key for version, (key, _) in sent.outbox.items() if version > sent.relayed}
    lost = []
    for key, (version, digest) in sorted(sent.published.items()):
        if version > sent.relayed or key in pending:
            continue
        last = latest.get(key)
        if last is None or last.version < version or last.value is None:
            lost.append(f"{key}: version {version} is not on the topic")
        elif last.version == version and _digest(last.value) != digest:
            unexpected.append(f"{key}: version {version} carries other content")
    for key, record in sorted(latest.items()):
        if record.value is not None and key not in sent.published and key not in pending:
            unexpected.append(f"{key}: on the topic (version {record.version}), deleted or "
                              "never sent by the warehouse")
    return FeedFinding(subscriber, tuple(lost), tuple(duplicated), tuple(out_of_order),
                       tuple(unexpected), {"records": len(records), "keys": len(latest),
                                           "lag": max(0, sent.last_version - sent.relayed)})


def _digest(value: bytes | None) -> bytes | None:
    return None if value is None else hashlib.sha256(value).digest()


def read_sent(database_url: str) -> dict[str, Sent]:
    with psycopg.connect(libpq_url(database_url)) as conn:
        subscribers = conn.execute(
            "SELECT s.subscriber, s.last_version, coalesce(r.relayed_version, 0)"
            " FROM ops.feed_subscriber s LEFT JOIN ops.feed_relay r"
            " USING (subscriber) ORDER BY 1").fetchall()
        published: dict[str, dict[str, tuple[int, bytes]]] = {}
        for subscriber, key, version, digest in conn.execute(
                "SELECT subscriber, record_key, version, payload_sha256"
                " FROM ops.feed_published"):
            published.setdefault(subscriber, {})[key] = (version, bytes(digest))
        outbox: dict[str, dict[int, tuple[str, bytes | None]]] = {}
        for subscriber, version, key, digest in conn.execute(
                "SELECT subscriber, version, record_key,"
                " sha256(convert_to(CAST(payload AS text), 'UTF8')) FROM ops.feed_outbox"):
            outbox.setdefault(subscriber, {})[version] = (key, bytes(digest) if digest else None)
    return {s: Sent(published.get(s, {}), outbox.get(s, {}), relayed, last)
            for s, last, relayed in subscribers}


def read_feed(topic: str, client_options: dict[str, Any]) -> list[FeedRecord]:
    """Every record of the topic as it is now (none if it does not exist yet)."""
    from kafka import KafkaConsumer, TopicPartition

    consumer = KafkaConsumer(**client_options, group_id=None, enable_auto_commit=False,
                             client_id="skillsync-verify")
    try:
        if topic not in consumer.topics():
            return []
        partition = TopicPartition(topic, 0)
        consumer.assign([partition])
        end = consumer.end_offsets([partition])[partition]
        consumer.seek_to_beginning(partition)
        records: list[FeedRecord] = []
        while consumer.position(partition) < end:
            records += [FeedRecord.of(r) for r in consumer.poll(timeout_ms=500).get(partition,
                                                                                    [])]
        return records
    finally:
        consumer.close()


def check_sync(database_url: str, client_options: dict[str, Any],
               subscribers: Iterable[str] | None = None) -> list[FeedFinding]:
    sent = read_sent(database_url)
    wanted = sorted(subscribers) if subscribers is not None else sorted(sent)
    return [judge_feed(s, sent.get(s, Sent({}, {}, 0, 0)),
                       read_feed(sync_topic(s), client_options)) for s in wanted]


def render(findings: Sequence[FeedFinding]) -> str:
    lines = []
    for f in findings:
        lines.append(f"sync {f.subscriber:<16} records {f.counts.get('records', 0):>7}  "
                     f"lag {f.counts.get('lag', 0):>6}  lost {len(f.lost):>4}  duplicated "
                     f"{len(f.duplicated):>4}  out of order {len(f.out_of_order):>4}  "
                     f"unexpected {len(f.unexpected):>4}")
        for kind in ("lost", "duplicated", "out_of_order", "unexpected"):
            items = getattr(f, kind)
            lines += [f"    {kind}: {item}" for item in items[:SHOWN]]
            if len(items) > SHOWN:
                lines.append(f"    {kind}: ... {len(items) - SHOWN} more")
    ok = all(f.ok for f in findings)
    lines.append("OK: every feed holds every change once, in order" if ok
                 else "FAILED: a feed differs from what the warehouse wrote")
    return "\n".join(lines)
