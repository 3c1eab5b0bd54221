"""The relay: publishes each subscriber's outbox, in version order, to skills.sync.<subscriber>.

`python -m warehouse.relay` runs until stopped; `--until-caught-up` exits once every change
written so far is on the broker. One relay publishes at a time (a PostgreSQL advisory lock;
another one waits as a standby). Each topic is compacted, has one partition and is keyed by
record key; every message is a CloudEvent in binary mode whose `ce_changeversion` header is
its change version.

Progress is kept in PostgreSQL (ops.feed_relay), after the broker acknowledged a batch.
A relay killed between the two finds, on start and after any failure, the last version on the
topic itself and resumes after it: with one writer and the idempotent producer the log is a
prefix of the versions sent, so nothing is lost and nothing is sent twice. A reader can drop a
repeat by its version all the same.
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import signal
import sys
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import psycopg
from kafka import KafkaConsumer, KafkaProducer, TopicPartition
from kafka.errors import KafkaError

from adapters.database import libpq_url
from adapters.kafka import EVENTS_MAX_MESSAGE_BYTES, ensure_topics
from adapters.settings import Settings
from schemas.errors import ServiceUnavailable
from schemas.sync import SYNC_SOURCE_PREFIX, VERSION_HEADER, schema_uri, sync_type_name
from schemas.topics import sync_topic
from warehouse.outbox import CHANNEL

log = logging.getLogger("skillsync.relay")

LOCK = "SELECT pg_advisory_lock(hashtext('skillsync.relay'))"
RECONNECT_BACKOFF_MAX_MS = 1000


@dataclass
class RelayStats:
    published: dict[str, int] = field(default_factory=dict)
    resumed_from_topic: dict[str, int] = field(default_factory=dict)
    failures: int = 0
    prunes: int = 0


@dataclass(frozen=True)
class Change:
    version: int
    operation: str
    kind: str
    record_key: str
    payload: str | None
    created_at: datetime


def message_headers(subscriber: str, change: Change) -> list[tuple[str, bytes]]:
    """The CloudEvents attributes of one change, as binary-mode headers."""
    operation = "upserted" if change.operation == "upsert" else "deleted"
    moment = change.created_at.astimezone(UTC).isoformat().replace("+00:00", "Z")
    headers = [
        ("ce_specversion", b"1.0"),
        ("ce_id", str(change.version).encode()),
        ("ce_source", f"{SYNC_SOURCE_PREFIX}{subscriber}".encode()),
        ("ce_type", sync_type_name(change.kind, operation, 1).encode()),
        ("ce_time", moment.encode()),
        ("ce_subject", change.record_key.encode()),
        (VERSION_HEADER, str(change.version).encode()),
        ("ce_dataschema", schema_uri(change.kind, operation).encode()),
    ]
    if change.payload is not None:
        headers.append(("content-type", b"application/json"))
    return headers


class Relay:
    """Publishes the outbox; constructing it connects to nothing."""

    def __init__(self, settings: Settings | None = None,
                 stop: threading.Event | None = None) -> None:
        self.settings = settings or Settings.load()
        self.stop = stop or threading.Event()
        self.stats = RelayStats()
        self._db: psycopg.Connection[Any] | None = None
        self._producer: KafkaProducer | None = None
        self._topics: set[str] = set()
        self._relayed: dict[str, int] = {}  # known to be on the broker, this connection
        # Old changes are pruned once the relay has caught up after publishing (and at start),
        # not on every idle wake-up: each prune reads the outbox, and a load may be writing it.
        self._prune_due = True

    def run(self, *, until_caught_up: bool = False) -> RelayStats:
        backoff = self.settings.feed.backoff_initial_s
        while not self.stop.is_set():
            try:
                self._connect()
                pending = self._pending()
                if pending:
                    for subscriber, last in pending.items():
                        self._publish(subscriber, last)
                    backoff = self.settings.feed.backoff_initial_s
                    self._prune_due = True
                    continue
                if self._prune_due:
                    self._prune()
                    self._prune_due = False
                if until_caught_up:
                    return self.stats
                self._wait()
            except (KafkaError, ServiceUnavailable, psycopg.OperationalError,
                    psycopg.InterfaceError, ConnectionError, TimeoutError) as exc:
                # An unavailable service: start again from what the topics and database say.
                self.stats.failures += 1
                log.warning("relay interrupted (%s: %s); retrying in %.1fs",
                            type(exc).__name__, exc, backoff)
                self._reset()
                self.stop.wait(backoff)
                backoff = min(backoff * 2, self.settings.feed.backoff_max_s)
        self._reset()
        return self.stats

    # -- database --------------------------------------------------------------------------

    def _connect(self) -> None:
        if self._db is not None and not self._db.closed:
            return
        self._db = psycopg.connect(self.settings.database.libpq, autocommit=True,
                                   application_name="skillsync-relay", connect_timeout=10)
        # A standby relay waits here until the active one is gone.
        self._db.execute(LOCK)
        self._db.execute(f"LISTEN {CHANNEL}")

    def _pending(self) -> dict[str, int]:
        """{subscriber: last version} of every subscriber with changes not yet relayed."""
        assert self._db is not None
        return dict(self._db.execute(
            "SELECT s.subscriber, s.last_version FROM ops.feed_subscriber s"
            " LEFT JOIN ops.feed_relay r USING (subscriber)"
            " WHERE s.last_version > coalesce(r.relayed_version, 0) ORDER BY 1").fetchall())

    def _changes(self, subscriber: str, after: int) -> list[Change]:
        assert self._db is not None
        return [Change(*row) for row in self._db.execute(
            "SELECT version, operation, kind, record_key, CAST(payload AS text), created_at"
            " FROM ops.feed_outbox WHERE subscriber = %s AND version > %s"
            " ORDER BY version LIMIT %s", (subscriber, after, self.settings.feed.batch_size))]

    def _record(self, subscriber: str, version: int) -> None:
        assert self._db is not None
        self._db.execute(
            "INSERT INTO ops.feed_relay (subscriber, relayed_version) VALUES (%s, %s)"
            " ON CONFLICT (subscriber) DO UPDATE SET relayed_version = greatest("
            " feed_relay.relayed_version, EXCLUDED.relayed_version), relayed_at = now()",
            (subscriber, version))
        self._relayed[subscriber] = version

    def _recorded(self, subscriber: str) -> int:
        assert self._db is not None
        row = self._db.execute("SELECT relayed_version FROM ops.feed_relay"
                               " WHERE subscriber = %s", (subscriber,)).fetchone()
        return int(row[0]) if row else 0

    def _wait(self) -> None:
        assert self._db is not None
        for _ in self._db.notifies(timeout=self.settings.feed.idle_wait_s, stop_after=1):
            break

    def _prune(self) -> None:
        assert self._db is not None
        self._db.execute(
            "DELETE FROM ops.feed_outbox o USING ops.feed_relay r"
            " WHERE o.subscriber = r.subscriber AND o.version <= r.relayed_version"
            " AND o.created_at < now() - make_interval(days => %s)",
            (self.settings.feed.retain_days,))
        self.stats.prunes += 1

    # -- broker ----------------------------------------------------------------------------

    def _publish(self, subscriber: str, last: int) -> None:
        topic = sync_topic(subscriber)
        if subscriber not in self._relayed:
            self._ensure_topic(topic)
            on_topic = last_version_on(topic, self._client_options())
            recorded = self._recorded(subscriber)
            if on_topic > recorded:
                # Sent by a relay that died before recording it: never sent again.
                self.stats.resumed_from_topic[subscriber] = on_topic
                self._record(subscriber, on_topic)
            else:
                self._relayed[subscriber] = recorded
        after = self._relayed[subscriber]
        while after < last and not self.stop.is_set():
            changes = self._changes(subscriber, after)
            if not changes:
                # The rest were an erased person's unsent upserts: nothing is left to send.
                self._record(subscriber, last)
                break
            producer = self._producer_or_connect()
            futures = [producer.send(
                topic, partition=0, key=c.record_key.encode(),
                value=c.payload.encode() if c.payload is not None else None,
                headers=message_headers(subscriber, c)) for c in changes]
            producer.flush(timeout=120)
            for future in futures:
                future.get(timeout=120)
            after = changes[-1].version
            self._record(subscriber, after)
            self.stats.published[subscriber] = (self.stats.published.get(subscriber, 0)
                                                + len(changes))

    def _client_options(self) -> dict[str, Any]:
        return {"bootstrap_servers": self.settings.kafka.servers, **self._connection_options()}

    def _connection_options(self) -> dict[str, Any]:
        # A client's own reconnect back-off grows to 30 s, longer than a broker takes to
        # restart; the relay backs off itself (the feed's backoff settings) and starts afresh.
        return {**self.settings.kafka.kafka_security(),
                "reconnect_backoff_max_ms": RECONNECT_BACKOFF_MAX_MS}

    def _producer_or_connect(self) -> KafkaProducer:
        if self._producer is None:
            self._producer = KafkaProducer(
                **self._client_options(), client_id="skillsync-relay", acks="all",
                enable_idempotence=True, max_in_flight_requests_per_connection=5,
                linger_ms=5, batch_size=256 * 1024, compression_type="zstd",
                max_request_size=EVENTS_MAX_MESSAGE_BYTES, request_timeout_ms=30_000,
                max_block_ms=60_000)
        return self._producer

    def _ensure_topic(self, topic: str) -> None:
        if topic in self._topics:
            return
        feed = self.settings.feed
        ensure_topics(self.settings.kafka.bootstrap_servers, [topic], partitions=1,
                      replication=feed.replication_factor, overrides=feed.topic_config,
                      **self._connection_options())
        self._topics.add(topic)

    def _reset(self) -> None:
        """Forget the connections and what the broker is known to hold."""
        if self._producer is not None:
            try:
                self._producer.close(timeout=5)
            except Exception:
                log.debug("producer close failed", exc_info=True)
            self._producer = None
        if self._db is not None:
            with contextlib.suppress(psycopg.Error):
                self._db.close()
            self._db = None
        self._relayed.clear()


def last_version_on(topic: str, client_options: dict[str, Any], *,
                    timeout_s: float = 30.0) -> int:
    """The change version of the topic's last record (0 for an empty topic)."""
    consumer = KafkaConsumer(**client_options, group_id=None, enable_auto_commit=False,
                             client_id="skillsync-relay-tail")
    try:
        partition = TopicPartition(topic, 0)
        consumer.assign([partition])
        end = consumer.end_offsets([partition])[partition]
        if end == 0:
            return 0
        consumer.seek(partition, end - 1)
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            for records in consumer.poll(timeout_ms=500).values():
                for record in reversed(records):
                    for name, value in record.headers or ():
                        if name == VERSION_HEADER:
                            return int(value)
        raise TimeoutError(f"could not read the last record of {topic}")
    finally:
        consumer.close()


def relay_lag(database_url: str) -> dict[str, int]:
    """Changes written but not yet relayed, per subscriber (only those behind)."""
    with psycopg.connect(libpq_url(database_url)) as conn:
        return dict(conn.execute(
            "SELECT s.subscriber, s.last_version - coalesce(r.relayed_version, 0)"
            " FROM ops.feed_subscriber s LEFT JOIN ops.feed_relay r"
            " USING (subscriber) WHERE s.last_version > coalesce(r.relayed_version, 0)"
            " ORDER BY 1").fetchall())


@dataclass(frozen=True)
class FeedState:
    lag: dict[str, int]  # subscriber -> changes written, not yet on its topic

    @property
    def caught_up(self) -> bool:
        return not self.lag

    def describe(self) -> str:
        if self.caught_up:
            return "every subscriber's feed has every change"
        return f"{sum(self.lag.values())} changes not yet published: {self.lag}"


def wait_for_relay(settings: Settings | None = None, *, poll_s: float = 0.5) -> FeedState:
    """The feed's state once the relay has caught up, or after the feed's `wait_s` if not."""
    s = settings or Settings.load()
    url = s.database.libpq
    deadline = time.monotonic() + s.feed.wait_s
    while True:
        state = FeedState(relay_lag(url))
        if state.caught_up or time.monotonic() > deadline:
            return state
        time.sleep(poll_s)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m warehouse.relay",
        description="Publish the sync feed's outbox to skills.sync.<subscriber>.")
    parser.add_argument("--until-caught-up", action="store_true",
                        help="exit once every change written so far is published")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    settings = Settings.load().check("database", "kafka", "feed")
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    stats = Relay(settings, stop).run(until_caught_up=args.until_caught_up)
    for subscriber, n in sorted(stats.published.items()):
        print(f"{subscriber}: {n} changes published")
    return 0


if __name__ == "__main__":
    sys.exit(main())
