"""The sync feed: relay throughput, mirror apply rate, and a big night's feed end to end.

Three measurements on the local services (`make up`), each against a baseline in the same run:

  relay   `--changes` outbox changes (real payloads of a simulated night, keys made distinct)
          published by the relay, against a bare idempotent producer sending the same keys,
          values and headers with the same producer settings. Target: ratio >= 0.5.
  mirror  the same changes applied by the follower (`partners.follow`: read from the topic,
          contract checks, one transaction per batch) into a fresh SQLite mirror, against a
          bare batched insert of the same rows into the same kind of SQLite file. Target >= 0.5.
  night   a `--events` day (1,000,000 by default) landed and loaded with the shipped registry's
          subscribers; the wall time from the end of its load (which writes the outbox) until
          the relay has published everything and every subscriber's mirror is caught up
          (`python -m partners follow --once`, all at once), against that load's own time.
          Target: less than the load.
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
from concurrent.futures import ThreadPoolExecutor
from datetime import date
from pathlib import Path
from typing import Any

import psycopg
from kafka import KafkaProducer
from kafka.admin import KafkaAdminClient, NewTopic
from pydantic import SecretStr

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from adapters.database import scoped_engine
from adapters.kafka import EVENTS_MAX_MESSAGE_BYTES, SYNC_TOPIC_CONFIG
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


def _bare_insert(rows: list[tuple[str, str, int, str]], path: Path, batch: int) -> float:
    conn = sqlite3.connect(path)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=NORMAL")
    conn.execute("CREATE TABLE mirror_record (record_key TEXT PRIMARY KEY, kind TEXT NOT NULL,"
                 " version BIGINT NOT NULL, payload TEXT NOT NULL)")
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
        "relay/s", "bare produce/s", "relay ratio", "mirror/s", "bare insert/s", "mirror ratio",
        "bare consume/s", "mirror / bare consume")}
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
                started = time.perf_counter()
                stats = Follower(subscriber, mirror,
                                 client_options={"bootstrap_servers": BOOTSTRAP}).run(once=True)
                follow_s = time.perf_counter() - started
                mirror.close()
                assert stats.upserts == changes, stats
                insert_s = _bare_insert([(c.record_key, c.kind, c.version, c.payload or "")
                                         for c in batch], Path(folder) / "bare.sqlite", 5000)
            out["relay/s"].append(changes / relay_s)
            out["bare produce/s"].append(changes / bare_s)
            out["relay ratio"].append(bare_s / relay_s)
            out["mirror/s"].append(changes / follow_s)
            out["bare insert/s"].append(changes / insert_s)
            out["mirror ratio"].append(insert_s / follow_s)
            consume_s = _bare_consume(sync_topic(subscriber), changes)
            out["bare consume/s"].append(changes / consume_s)
            out["mirror / bare consume"].append(consume_s / follow_s)
            print(f"round {round_ + 1}: " + ", ".join(f"{k} {v[-1]:,.2f}" for k, v in out.items()),
                  flush=True)
    finally:
        drop_database(SERVER, name)
    return out


def night(events: int, seed: int, folder: Path) -> dict[str, float]:
    url, name = scratch_database(SERVER, "feednight")
    subscribers = [s.subscriber for s in subscriptions()]
    admin = KafkaAdminClient(bootstrap_servers=BOOTSTRAP)
    stale = [t for t in (sync_topic(s) for s in subscribers) if t in set(admin.list_topics())]
    if stale:
        admin.delete_topics(stale)
        while set(stale) & set(admin.list_topics()):
            time.sleep(0.5)
    admin.close()
    try:
        started = time.perf_counter()
        load_s = _land_and_load(url, events, seed)
        print(f"night: landed and loaded {events:,} events in "
              f"{time.perf_counter() - started:.1f}s (load {load_s:.1f}s)", flush=True)
        with psycopg.connect(url) as conn:
            changes = conn.execute("SELECT count(*) FROM ops.feed_outbox").fetchone()
        loaded = time.perf_counter()
        relay = subprocess.Popen([sys.executable, "-m", "warehouse.relay"], cwd=REPO_ROOT,
                                 env={**os.environ, "SKILLSYNC_DATABASE_URL": url,
                                      "KAFKA_BOOTSTRAP_SERVERS": BOOTSTRAP,
                                      "SKILLSYNC_FEED_IDLE_WAIT_S": "0.2"},
                                 stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

        def follow(subscriber: str) -> int:
            # Each mirror follows until it has everything the night wrote for it.
            mirror = Mirror(f"sqlite:///{folder}/{subscriber}.sqlite")
            with psycopg.connect(url) as conn:
                row = conn.execute("SELECT last_version FROM ops.feed_subscriber"
                                   " WHERE subscriber = %s", (subscriber,)).fetchone()
            last = int(row[0]) if row else 0
            version = 0
            while version < last:
                version = Follower(subscriber, mirror, client_options={
                    "bootstrap_servers": BOOTSTRAP}).run(once=True).version
            mirror.close()
            return version

        try:
            with ThreadPoolExecutor(max_workers=4) as pool:
                list(pool.map(follow, subscribers))
        finally:
            relay.terminate()
            relay.wait(timeout=60)
        caught_up_s = time.perf_counter() - loaded
    finally:
        drop_database(SERVER, name)
    return {"load_s": load_s, "caught_up_s": caught_up_s,
            "changes": float(changes[0] if changes else 0),
            "ratio": caught_up_s / load_s}


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
