"""The sync feed: relay throughput, mirror apply rate, and a big night's feed end to end.

Three measurements on the local services (`make up`), each against a baseline in the same run:

  relay   `--changes` outbox changes (real payloads of a simulated night, keys made distinct)
          published by the relay, against a bare idempotent producer sending the same keys,
          values and headers with the same producer settings. Target: ratio >= 0.5.
  mirror  the same changes followed (`partners.follow`) into a fresh SQLite mirror. Its apply
          stage (contract and version checks, then one transaction per fetched batch: upserts,
          deletes and the mirror's position), timed inside the run, against a bare batched
          insert of the same rows into a mirror of the same schema. Target >= 0.5. Also shown:
          the whole follow (reading the topic included) against a bare kafka-python read of the
          topic followed by that bare insert.
  night   a `--events` day (1,000,000 by default) landed, then loaded with the shipped registry's
          subscribers while the relay (`python -m warehouse.relay`) and one follower per
          subscriber (`python -m partners follow`, each its own process, as each party runs
          its own) wait, as they do when deployed; the wall time from the end of the load
          (which writes the outbox) until every subscriber's mirror holds the last version the
          load wrote for it, against that load's own time. Target: less than the load.
"""

from __future__ import annotations

import argparse
import os
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from datetime import date
from pathlib import Path
from typing import Any

import psycopg
from kafka import KafkaProducer
from kafka.admin import KafkaAdminClient, NewTopic
from pydantic import SecretStr

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from adapters.database import scoped_engine
from adapters.kafka import (
    EVENTS_MAX_MESSAGE_BYTES,
    SYNC_TOPIC_CONFIG,
    drop_topics,
    ensure_topics,
)
from adapters.settings import DatabaseSettings, FeedSettings, KafkaSettings, Settings
from bench.support import drop_database, scratch_database
from infra.local import REPO_ROOT, LocalServices
from partners.follow import Follower, Mirror
from schemas.topics import sync_topic
from warehouse.load import load_day
from warehouse.outbox import subscriptions
from warehouse.relay import Change, Relay, message_headers

SERVICES = LocalServices()
SERVER = os.environ.get("SKILLSYNC_DATABASE_URL", SERVICES.database_url("postgres")).replace(
    "+psycopg", "")
BOOTSTRAP = os.environ.get("KAFKA_BOOTSTRAP_SERVERS", SERVICES.kafka_bootstrap)
DAY = date(2026, 11, 2)


def _settings(url: str, **feed: Any) -> Settings:
    return Settings(kafka=KafkaSettings(bootstrap_servers=BOOTSTRAP),
                    database=DatabaseSettings(url=SecretStr(url)),
                    feed=FeedSettings(idle_wait_s=0.2, **feed))


def _land_and_load(url: str, events: int, seed: int) -> float:
    from bench.nightly_bench import land_day

    land_day(url, DAY, events, seed, {})
    with scoped_engine(url) as engine:
        started = time.perf_counter()
        load_day(engine, DAY, "bench")
        return time.perf_counter() - started


def _payloads(url: str) -> list[tuple[str, str]]:
    with psycopg.connect(url) as conn:
        return [(k, p) for k, p in conn.execute(
            "SELECT kind, CAST(payload AS text) FROM ops.feed_outbox"
            " WHERE operation = 'upsert' ORDER BY subscriber, version")]


def _outbox(url: str, subscriber: str, payloads: list[tuple[str, str]], n: int) -> None:
    """`n` upserts for one subscriber, cycling through real payloads under distinct keys."""
    with psycopg.connect(url) as conn:
        conn.execute("INSERT INTO ops.feed_subscriber (subscriber, slices, last_version)"
                     " VALUES (%s, '{}', %s)", (subscriber, n))
        with conn.cursor() as cur, cur.copy(
                "COPY ops.feed_outbox (subscriber, version, operation, kind, record_key,"
                " payload, run_id) FROM STDIN") as copy:
            for version in range(1, n + 1):
                kind, payload = payloads[version % len(payloads)]
                copy.write_row((subscriber, version, "upsert", kind, f"{kind} bench {version}",
                                payload, "bench"))


def _bare_produce(changes: list[Change], subscriber: str, settings: Settings) -> float:
    topic = f"bench.bare.{uuid.uuid4().hex[:8]}"
    admin = KafkaAdminClient(bootstrap_servers=BOOTSTRAP)
    admin.create_topics([NewTopic(topic, 1, 1, topic_configs=SYNC_TOPIC_CONFIG)])
    admin.close()
    messages = [(c.record_key.encode(), (c.payload or "").encode(), message_headers(subscriber, c))
                for c in changes]
    producer = KafkaProducer(bootstrap_servers=BOOTSTRAP, acks="all", enable_idempotence=True,
                             max_in_flight_requests_per_connection=5, linger_ms=5,
                             batch_size=256 * 1024, compression_type="zstd",
                             max_request_size=EVENTS_MAX_MESSAGE_BYTES)
    started = time.perf_counter()
    for start in range(0, len(messages), settings.feed.batch_size):
        futures = [producer.send(topic, partition=0, key=k, value=v, headers=h)
                   for k, v, h in messages[start:start + settings.feed.batch_size]]
        producer.flush()
        for future in futures:
            future.get()
    elapsed = time.perf_counter() - started
    producer.close()
    return elapsed


class _TimedFollower(Follower):
    """The follower, with the time its apply stage took (everything after the fetch)."""

    apply_s = 0.0

    def _apply(self, records: list[Any], version: int, stats: Any) -> int:
        started = time.perf_counter()
        try:
            return super()._apply(records, version, stats)
        finally:
            self.apply_s += time.perf_counter() - started


def _bare_insert(rows: list[tuple[str, str, int, str]], path: Path, batch: int) -> float:
    # The mirror's own code makes the table (its key and index), so only the work differs.
    Mirror(f"sqlite:///{path}").engine.dispose()
    conn = sqlite3.connect(path)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=NORMAL")
    started = time.perf_counter()
    for start in range(0, len(rows), batch):
        with conn:
            conn.executemany("INSERT INTO mirror_record VALUES (?, ?, ?, ?)",
                             rows[start:start + batch])
    elapsed = time.perf_counter() - started
    conn.close()
    return elapsed


def _bare_consume(topic: str, count: int) -> float:
    """Read the topic's records with kafka-python and nothing else: what reading alone costs."""
    from kafka import KafkaConsumer, TopicPartition

    consumer = KafkaConsumer(bootstrap_servers=BOOTSTRAP, group_id=None,
                             enable_auto_commit=False, max_poll_records=5000,
                             max_partition_fetch_bytes=8 * 1024 * 1024)
    partition = TopicPartition(topic, 0)
    consumer.assign([partition])
    consumer.seek_to_beginning(partition)
    started, seen = time.perf_counter(), 0
    while seen < count:
        seen += len(consumer.poll(timeout_ms=500).get(partition, []))
    elapsed = time.perf_counter() - started
    consumer.close()
    return elapsed


def ratios(changes: int, rounds: int, seed: int) -> dict[str, list[float]]:
    url, name = scratch_database(SERVER, "feedbench")
    out: dict[str, list[float]] = {k: [] for k in (
        "relay/s", "bare produce/s", "relay ratio", "mirror apply/s", "bare insert/s",
        "mirror ratio", "follow/s", "bare consume+insert/s", "follow ratio")}
    try:
        _land_and_load(url, 20_000, seed)
        payloads = _payloads(url)
        with psycopg.connect(url) as conn:
            # Only the bench's own subscriber is left to publish.
            conn.execute("DELETE FROM ops.feed_subscriber")
        for round_ in range(rounds):
            subscriber = f"bench{uuid.uuid4().hex[:8]}"
            _outbox(url, subscriber, payloads, changes)
            settings = _settings(url)
            relay = Relay(settings)
            started = time.perf_counter()
            relay.run(until_caught_up=True)
            relay_s = time.perf_counter() - started
            with psycopg.connect(url) as conn:
                rows = conn.execute(
                    "SELECT version, operation, kind, record_key, CAST(payload AS text),"
                    " created_at FROM ops.feed_outbox WHERE subscriber = %s"
                    " ORDER BY version", (subscriber,)).fetchall()
            batch = [Change(*row) for row in rows]
            bare_s = _bare_produce(batch, subscriber, settings)
            with tempfile.TemporaryDirectory() as folder:
                mirror = Mirror(f"sqlite:///{folder}/mirror.sqlite")
                mirror.engine  # tables made before the clock starts  # noqa: B018
                follower = _TimedFollower(subscriber, mirror,
                                          client_options={"bootstrap_servers": BOOTSTRAP})
                started = time.perf_counter()
                stats = follower.run(once=True)
                follow_s = time.perf_counter() - started
                mirror.close()
                assert stats.upserts == changes, stats
                insert_s = _bare_insert([(c.record_key, c.kind, c.version, c.payload or "")
                                         for c in batch], Path(folder) / "bare.sqlite", 5000)
            out["relay/s"].append(changes / relay_s)
            out["bare produce/s"].append(changes / bare_s)
            out["relay ratio"].append(bare_s / relay_s)
            out["mirror apply/s"].append(changes / follower.apply_s)
            out["bare insert/s"].append(changes / insert_s)
            out["mirror ratio"].append(insert_s / follower.apply_s)
            consume_s = _bare_consume(sync_topic(subscriber), changes)
            out["follow/s"].append(changes / follow_s)
            out["bare consume+insert/s"].append(changes / (consume_s + insert_s))
            out["follow ratio"].append((consume_s + insert_s) / follow_s)
            print(f"round {round_ + 1}: " + ", ".join(f"{k} {v[-1]:,.2f}" for k, v in out.items()),
                  flush=True)
    finally:
        drop_database(SERVER, name)
    return out


def _mirror_version(path: Path, topic: str) -> int:
    """The last change version a follower's SQLite mirror has applied (0 before its first)."""
    if not path.exists():
        return 0
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=5)
    try:
        row = conn.execute("SELECT version FROM mirror_position WHERE topic = ?",
                           (topic,)).fetchone()
    except sqlite3.OperationalError:  # the follower has not made its tables yet
        return 0
    finally:
        conn.close()
    return int(row[0]) if row else 0


def night(events: int, seed: int, folder: Path) -> dict[str, float]:
    """As deployed: the relay and one follower process per subscriber run before the load."""
    url, name = scratch_database(SERVER, "feednight")
    subscribers = [s.subscriber for s in subscriptions()]
    topics = [sync_topic(s) for s in subscribers]
    drop_topics(BOOTSTRAP, topics)
    # The topics of an earlier night are there when a night's load ends.
    ensure_topics(BOOTSTRAP, topics, partitions=1)
    env = {**os.environ, "SKILLSYNC_DATABASE_URL": url, "KAFKA_BOOTSTRAP_SERVERS": BOOTSTRAP,
           "SKILLSYNC_FEED_IDLE_WAIT_S": "0.2"}
    processes: list[subprocess.Popen[bytes]] = []

    def start(label: str, *command: str) -> None:
        with (folder / f"{label}.log").open("wb") as log:
            processes.append(subprocess.Popen([sys.executable, "-m", *command], cwd=REPO_ROOT,
                                              env=env, stdout=log, stderr=subprocess.STDOUT))

    try:
        from bench.nightly_bench import land_day

        land_day(url, DAY, events, seed, {})
        start("relay", "warehouse.relay")
        for subscriber in subscribers:
            start(subscriber, "partners", "follow", subscriber,
                  "--mirror", f"sqlite:///{folder}/{subscriber}.sqlite")
        with scoped_engine(url) as engine:
            started = time.perf_counter()
            load_day(engine, DAY, "bench")
            loaded = time.perf_counter()
        load_s = loaded - started
        print(f"night: loaded {events:,} events in {load_s:.1f}s", flush=True)
        with psycopg.connect(url) as conn:
            last: dict[str, int] = dict(conn.execute(
                "SELECT subscriber, last_version FROM ops.feed_subscriber").fetchall())
        waiting = {s for s in subscribers if last.get(s, 0) > 0}
        while waiting:
            for process in processes:
                if process.poll() is not None:
                    raise RuntimeError(f"{process.args!r} exited with {process.returncode}; "
                                       f"see its log in {folder}")
            waiting = {s for s in waiting if _mirror_version(
                folder / f"{s}.sqlite", sync_topic(s)) < last[s]}
            time.sleep(0.2)
        caught_up_s = time.perf_counter() - loaded
    finally:
        for process in processes:
            process.terminate()
        for process in processes:
            process.wait(timeout=60)
        drop_database(SERVER, name)
    return {"load_s": load_s, "caught_up_s": caught_up_s,
            "changes": float(sum(last.values())), "ratio": caught_up_s / load_s}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--changes", type=int, default=100_000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--seed", type=int, default=11)
    parser.add_argument("--skip-night", action="store_true")
    parser.add_argument("--skip-ratios", action="store_true")
    args = parser.parse_args()
    ok = True
    if not args.skip_ratios:
        figures = ratios(args.changes, args.rounds, args.seed)
        print("\nmedians over rounds:")
        for key, values in figures.items():
            print(f"  {key:<22} {statistics.median(values):>12,.2f}   "
                  f"(min {min(values):,.2f}, max {max(values):,.2f})")
        ok = (statistics.median(figures["relay ratio"]) >= 0.5
              and statistics.median(figures["mirror ratio"]) >= 0.5)
    if not args.skip_night:
        with tempfile.TemporaryDirectory() as folder:
            result = night(args.events, args.seed, Path(folder))
        print(f"\nnight of {args.events:,} events: load {result['load_s']:.1f}s, "
              f"{int(result['changes']):,} changes; from the load's end to every mirror caught "
              f"up {result['caught_up_s']:.1f}s = {result['ratio']:.2f} x the load "
              f"(target < 1)")
        ok &= result["ratio"] < 1
    print("targets met" if ok else "targets NOT met")
    return 0


if __name__ == "__main__":
    sys.exit(main())
