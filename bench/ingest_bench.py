"""Sustained ingest events/s into staging as ratios to a bare consume and a bare COPY, one run.

The service runs in a process of its own (as `python -m consumers run` would), so its peak RSS
is the consumer's alone, not the benchmark's with the generated events. Each round reads the
same published topic into a fresh database; the ratios that decide are the medians.

Sustained means start-up and shutdown left out, for the service and the baselines alike: the
rate runs from the first batch to the last. For the service that is read from staging itself,
where each landed row's `landed_at` is its batch's transaction start.
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import secrets
import statistics
import sys
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, replace
from pathlib import Path

import psycopg
from kafka import KafkaConsumer, KafkaProducer, TopicPartition

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from adapters.kafka import ensure_topics
from bench.support import drop_database, machine_busy_seconds, peak_rss_mb, scratch_database
from consumers.landing import EVENT_COLUMNS
from infra.local import LocalServices
from partners.samples import encode, enrollment, registry_with
from schemas.topics import events_topic

# The local services `make up` (and `make bench`) start, unless the environment names others.
SERVICES = LocalServices()
TARGETS = {"vs bare consume": 0.6, "vs bare COPY": 0.4, "replay vs first": 1.0}
RSS_LIMIT_MB = 300


@dataclass(frozen=True)
class IngestRun:
    seconds: float  # from calling the service to its return: start-up and shutdown included
    landed: int
    peak_rss_mb: float
    consumer_cpu_s: float  # the consumer process's own CPU time over the same span
    machine_cpu_s: float  # every core's busy time over the same span: PostgreSQL, Kafka, ...


def publish(bootstrap: str, topic: str, partner: str, count: int) -> None:
    producer = KafkaProducer(bootstrap_servers=bootstrap, acks="all", linger_ms=20,
                             batch_size=256 * 1024, compression_type="lz4")
    for n in range(count):
        producer.send(topic, encode(enrollment(partner, n)))
    producer.flush(timeout=120)
    producer.close()


def bare_consume(bootstrap: str, topic: str, count: int, batch_size: int) -> float:
    """Events/s a plain kafka-python consumer reads the topic at (same isolation, no work).

    From the first records polled to the last, as the service's sustained rate is measured.
    """
    consumer = KafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False,
                             isolation_level="read_committed", max_poll_records=batch_size)
    partitions = [TopicPartition(topic, p) for p in sorted(consumer.partitions_for_topic(topic))]
    consumer.assign(partitions)
    consumer.seek_to_beginning(*partitions)
    first = 0
    while not first:
        first = sum(len(records) for records in consumer.poll(timeout_ms=500).values())
    started = time.perf_counter()
    seen = first
    while seen < count:
        seen += sum(len(records) for records in consumer.poll(timeout_ms=500).values())
    elapsed = time.perf_counter() - started
    consumer.close()
    return (seen - first) / elapsed


def sustained_ingest(database_url: str) -> float:
    """Events/s the service landed at, from its first batch's transaction to its last's.

    The last batch's rows count for nothing: only its start is known, which ends the window.
    """
    with psycopg.connect(database_url) as conn:
        batches = conn.execute("SELECT landed_at, count(*) FROM staging.events "
                               "GROUP BY landed_at ORDER BY landed_at").fetchall()
    if len(batches) < 3:
        raise SystemExit("too few batches to measure a sustained rate: publish more events")
    window = (batches[-1][0] - batches[0][0]).total_seconds()
    return sum(count for _, count in batches[:-1]) / window


def _timed_ingest(bootstrap: str, database_url: str, topic: str, partner: str, group: str,
                  batch_size: int, linger_ms: int, tuned: bool) -> IngestRun:
    """In the consumer's own process: the service lands the whole topic, as it would in service."""
    from pydantic import SecretStr

    from adapters.settings import DatabaseSettings, IngestSettings, KafkaSettings, Settings
    from consumers.service import IngestService, tune_interpreter
    from schemas.pseudonym import Pseudonymiser

    registry = registry_with({partner: "training_platform"})
    # Each run its own key: a replay lands nothing whatever the pseudonyms would have been.
    pseudonymiser = Pseudonymiser({"b1": secrets.token_bytes(32)}, active_key_id="b1")
    settings = Settings(
        kafka=KafkaSettings(bootstrap_servers=bootstrap),
        database=DatabaseSettings(url=SecretStr(database_url)),
        ingest=IngestSettings(group_id=group, topic_pattern=f"^{topic.replace('.', '[.]')}$",
                              batch_size=batch_size, linger_ms=linger_ms))
    service = IngestService(settings, registry=registry, pseudonymiser=pseudonymiser)
    if tuned:
        tune_interpreter()  # as `python -m consumers run` does
    started, cpu, machine = time.perf_counter(), time.process_time(), machine_busy_seconds()
    stats = service.run(until_caught_up=True)
    return IngestRun(time.perf_counter() - started, stats.landed, peak_rss_mb(),
                     time.process_time() - cpu, machine_busy_seconds() - machine)


def ingest(bootstrap: str, database_url: str, topic: str, partner: str, group: str,
           batch_size: int, linger_ms: int, tuned: bool) -> IngestRun:
    """_timed_ingest in a fresh process (spawned: nothing inherited from this one)."""
    with ProcessPoolExecutor(max_workers=1,
                             mp_context=multiprocessing.get_context("spawn")) as pool:
        return pool.submit(_timed_ingest, bootstrap, database_url, topic, partner, group,
                           batch_size, linger_ms, tuned).result()


def _batches(rows: list[tuple], size: int) -> Iterator[list[tuple]]:
    for start in range(0, len(rows), size):
        yield rows[start:start + size]


def bare_copy(database_url: str, batch_size: int) -> tuple[float, int]:
    """Seconds to COPY the landed rows into a table shaped like staging.events, batch by batch."""
    columns = ", ".join(EVENT_COLUMNS)
    with psycopg.connect(database_url) as conn:
        # As text, PostgreSQL's plainest bulk load: COPY parses every value.
        as_text = ", ".join(f"{c}::text" if c == "data" else c for c in EVENT_COLUMNS)
        rows = conn.execute(f"SELECT {as_text} FROM staging.events").fetchall()
        conn.execute("CREATE TABLE staging.bench_copy (LIKE staging.events INCLUDING ALL)")
        conn.commit()
        started = time.perf_counter()
        for batch in _batches(rows, batch_size):
            with conn.transaction(), conn.cursor() as cur, cur.copy(
                    f"COPY staging.bench_copy ({columns}) FROM STDIN") as copy:
                for row in batch:
                    copy.write_row(row)
        return time.perf_counter() - started, len(rows)


def one_round(args: argparse.Namespace, bootstrap: str, server_url: str, topic: str,
              partner: str, round_: int) -> tuple[dict[str, float], IngestRun]:
    """Events/s of each measure, and the first ingest, on a fresh database."""
    database_url, database = scratch_database(server_url, "bench_ingest")
    try:
        consumed = bare_consume(bootstrap, topic, args.events, args.batch_size)
        first = ingest(bootstrap, database_url, topic, partner, f"{partner}-{round_}-first",
                       args.batch_size, args.linger_ms, not args.untuned)
        sustained = sustained_ingest(database_url)
        replay = ingest(bootstrap, database_url, topic, partner, f"{partner}-{round_}-replay",
                        args.batch_size, args.linger_ms, not args.untuned)
        copy_s, copied = bare_copy(database_url, args.batch_size)
    finally:
        drop_database(server_url, database)
    assert first.landed == args.events and replay.landed == 0 and copied == args.events
    # A replay lands nothing, so it has no batches to time: both runs are compared whole.
    rate = {"bare consume": consumed, "bare COPY": args.events / copy_s, "ingest": sustained,
            "ingest whole": args.events / first.seconds,
            "replay whole": args.events / replay.seconds}
    return rate, replace(first, peak_rss_mb=max(first.peak_rss_mb, replay.peak_rss_mb))


def ratios(rate: dict[str, float]) -> dict[str, float]:
    return {"vs bare consume": rate["ingest"] / rate["bare consume"],
            "vs bare COPY": rate["ingest"] / rate["bare COPY"],
            "replay vs first": rate["replay whole"] / rate["ingest whole"]}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--events", type=int, default=100_000)
    parser.add_argument("--batch-size", type=int, default=2000)
    parser.add_argument("--linger-ms", type=int, default=200)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--untuned", action="store_true",
                        help="run the consumer with the interpreter's defaults (no "
                             "consumers.service.tune_interpreter), to see what the tuning buys")
    args = parser.parse_args()
    bootstrap = os.environ.get("KAFKA_BOOTSTRAP_SERVERS", SERVICES.kafka_bootstrap)
    server_url = os.environ.get("SKILLSYNC_DATABASE_URL", SERVICES.database_url("postgres"))
    server_url = server_url.replace("+psycopg", "")

    partner = f"bench{uuid.uuid4().hex[:8]}"
    topic = events_topic(partner)
    ensure_topics(bootstrap, [topic])
    publish(bootstrap, topic, partner, args.events)

    print(f"{args.events} events, batch {args.batch_size}, linger {args.linger_ms} ms, "
          f"{args.rounds} rounds; events/s")
    names = ("bare consume", "bare COPY", "ingest", "ingest whole", "replay whole")
    print(f"{'round':<7}" + "".join(f"{n:>14}" for n in names) + "".join(
        f"{n:>17}" for n in TARGETS) + f"{'RSS MB':>9}")
    rounds = []
    for round_ in range(1, args.rounds + 1):
        rate, run = one_round(args, bootstrap, server_url, topic, partner, round_)
        rounds.append((rate, ratios(rate), run))
        print(f"{round_:<7}" + "".join(f"{rate[n]:>14,.0f}" for n in names) + "".join(
            f"{v:>17.2f}" for v in ratios(rate).values()) + f"{run.peak_rss_mb:>9.0f}",
            flush=True)

    median = {name: statistics.median(r[1][name] for r in rounds) for name in TARGETS}
    peak = max(r[2].peak_rss_mb for r in rounds)
    # What the whole pipeline costs in CPU, and so how many such cores a target would need.
    machine_us = statistics.median(1e6 * r[2].machine_cpu_s / args.events for r in rounds)
    consumer_us = statistics.median(1e6 * r[2].consumer_cpu_s / args.events for r in rounds)
    consume_rate = statistics.median(r[0]["bare consume"] for r in rounds)
    print(f"\nCPU per event during a first ingest: {machine_us:.1f} µs on the whole machine "
          f"({os.cpu_count()} cores), {consumer_us:.1f} µs of it in the consumer process; "
          f"0.6 of a bare consume ({0.6 * consume_rate:,.0f} events/s) needs "
          f"{0.6 * consume_rate * machine_us / 1e6:.1f} such cores")
    print(f"\n{'median ratio':<18}{'value':>8}{'target':>10}")
    failed = False
    for name, value in median.items():
        ok = value >= TARGETS[name]
        failed |= not ok
        print(f"{name:<18}{value:>8.2f}{'>= ' + str(TARGETS[name]):>10}{'' if ok else '  MISS'}")
    print(f"{'consumer peak RSS':<18}{peak:>8.0f}{'<= ' + str(RSS_LIMIT_MB):>10}"
          f"{'' if peak <= RSS_LIMIT_MB else '  MISS'}")
    failed |= peak > RSS_LIMIT_MB
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
