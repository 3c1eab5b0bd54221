"""`consumers run` beside Kafka Connect's JDBC sink: one topic, one PostgreSQL, alternated runs.

What a data team would otherwise deploy is Kafka Connect with a JDBC sink, so that is the
peer: Connect 4.3 standalone with the Debezium JDBC sink 3.6.0.Final, resolved from Maven
Central (bench/peer/), each event's bytes hoisted into one `payload` text column keyed by its
Kafka coordinates. One topic is published once; every run reads all of it into a fresh
database on the same server, each side in a process of its own:

  consumer        `python -m consumers run --until-caught-up` (validates, authorises,
                  pseudonymises) from this tree
  consumer today  the same from the tree the targets were set against (`--today`), so that
                  PostgreSQL's CPU per event is compared within the run
  sink insert     the sink's fastest mode: insert, batch 2000, pgjdbc reWriteBatchedInserts
  sink upsert     its idempotent mode: upsert, batch 2000
  bare COPY       the consumer's landed rows again, batch by batch as binary COPY prepared
                  beforehand, into a table with staging.events' indexes: the database's floor

Sides run in a rotating order, round after round. A side's rate is sustained: from its first
batch's transaction to its last's, read back from each row's `landed_at` (the transaction's
start; the sink's table has the same default column). CPU per event is measured over that same
window from /proc, sampled every 0.1 s: the side's process, the PostgreSQL server on behalf of
the side's database (its backends and autovacuum workers, the postmaster and the server's own
WAL writer, checkpointer and the like; other databases' backends are left out), and the broker;
"rest" is whatever else the machine did meanwhile (other work on a shared machine). Peak RSS is
the process's own.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import secrets
import shutil
import signal
import statistics
import subprocess
import sys
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from urllib.parse import urlsplit

import psycopg
from kafka import KafkaAdminClient
from kafka.errors import KafkaError

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from adapters.kafka import ensure_topics
from bench import connect
from bench.ingest_bench import publish
from bench.support import (
    CpuSampler,
    ServerCpu,
    drop_database,
    listening_pid,
    machine_busy_seconds,
    peak_rss_mb,
    process_cpu_seconds,
    scratch_database,
)
from consumers.landing import EVENT_COLUMNS
from infra.local import REPO_ROOT, LocalServices
from infra.process import ServiceError
from schemas.partners import REGISTRY_PATH, load_registry
from schemas.topics import events_topic

SERVICES = LocalServices()
# The landing path the targets were measured on (PostgreSQL CPU per event "today").
TODAY_REV = "b63de5a"
CONSUMER, TODAY, BARE_COPY = "consumer", "consumer today", "bare COPY"
SINK_MODES = {m.name: m for m in (
    connect.SinkMode("sink insert", "insert", rewrite_batched_inserts=True),
    connect.SinkMode("sink upsert", "upsert"),
)}
SINK_TABLE = "peer_sink"
RSS_LIMIT_MB = 150
RUN_TIMEOUT_S = 600
CPU = ("process", "postgres", "broker", "stack", "rest")


@dataclass(frozen=True)
class Run:
    side: str
    rate: float  # sustained events/s
    cpu_us: dict[str, float]  # CPU µs per event in the window, by CPU
    peak_rss_mb: float
    load: float  # the machine's 1-minute load average as the run started


@dataclass
class Bench:
    """What every run shares: the services, the published topic, the files a consumer needs."""

    bootstrap: str
    server_url: str
    topic: str
    partitions: int
    events: int
    batch_size: int
    state: Path
    postmaster: int
    broker: int | None
    registry_file: Path
    key_file: Path
    consumers: int = 1  # consumer processes in the group, for either consumer side
    drop_indexes: tuple[str, ...] = ()  # staging indexes the consumer side lands without
    connect_home: Path | None = None
    today_tree: Path | None = None

    def counters(self, database: str, *pids: int) -> dict[str, Callable[[], float]]:
        """CPU-second counters of the server for the database, the broker, the machine and the
        side's processes."""
        counters: dict[str, Callable[[], float]] = {
            "postgres": ServerCpu(self.postmaster, database), "machine": machine_busy_seconds}
        if self.broker is not None:
            broker = self.broker
            counters["broker"] = lambda: process_cpu_seconds(broker)
        if pids:
            last = dict.fromkeys(pids, 0.0)

            def processes() -> float:
                for pid in pids:
                    with contextlib.suppress(ProcessLookupError):
                        last[pid] = process_cpu_seconds(pid)
                return sum(last.values())

            counters["process"] = processes
            # Sampled, not the exit status's ru_maxrss: that counts pages a forked child shared
            # with this process before it exec'd.
            for pid in pids:
                counters[f"rss {pid}"] = partial(peak_rss_mb, pid)
        return counters


def landed_window(url: str, table: str) -> tuple[float, float, int]:
    """(first batch's start, last batch's start, events landed by the batches before the last)."""
    with psycopg.connect(url) as conn:
        batches = conn.execute(f"SELECT landed_at, count(*) FROM {table} "
                               "GROUP BY landed_at ORDER BY landed_at").fetchall()
    if len(batches) < 3:
        raise SystemExit(f"{table}: too few batches to measure a sustained rate")
    return (batches[0][0].timestamp(), batches[-1][0].timestamp(),
            sum(count for _, count in batches[:-1]))


def per_event(sampler: CpuSampler, start: float, end: float, events: int) -> dict[str, float]:
    spent = sampler.between(start, end)
    cpu = {name: 1e6 * spent.get(name, 0.0) / events for name in ("process", "postgres", "broker")}
    cpu["stack"] = cpu["process"] + cpu["postgres"] + cpu["broker"]
    cpu["rest"] = 1e6 * spent["machine"] / events - cpu["stack"]
    return cpu


def wait_exit(pid: int, timeout_s: float, *, done: Callable[[], bool] = lambda: False
              ) -> int | None:
    """Wait for a child to exit, or for done(); its exit code, or None if still running."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        reaped, status = os.waitpid(pid, os.WNOHANG)
        if reaped:
            return os.waitstatus_to_exitcode(status)
        if done():
            return None
        time.sleep(0.05)
    raise ServiceError(f"process {pid} still running after {timeout_s:.0f}s")


def stop(pid: int) -> None:
    """SIGTERM a child's process group, SIGKILL after 30 s."""
    os.killpg(pid, signal.SIGTERM)
    try:
        wait_exit(pid, 30)
    except ServiceError:
        os.killpg(pid, signal.SIGKILL)
        wait_exit(pid, 30)


def quiesce(server_url: str, timeout_s: float = 60) -> None:
    """Wait for autovacuum to finish what earlier runs left it (it would count for this run)."""
    deadline = time.monotonic() + timeout_s
    with psycopg.connect(server_url, autocommit=True) as conn:
        while time.monotonic() < deadline and conn.execute(
                "SELECT count(*) FROM pg_stat_activity "
                "WHERE backend_type = 'autovacuum worker'").fetchone() != (0,):
            time.sleep(0.2)


def log_tail(path: Path) -> str:
    return "\n".join(path.read_text(errors="replace").splitlines()[-30:])


# -- the consumer --------------------------------------------------------------------------

def consumer_run(bench: Bench, side: str, round_: int) -> tuple[Run, str, str]:
    """One `consumers run --until-caught-up` over the topic; (the run, its database URL, name)."""
    tree = REPO_ROOT if side == CONSUMER else bench.today_tree
    assert tree is not None
    url, name = scratch_database(bench.server_url, "bench_peer", migrate=side == CONSUMER)
    if side != CONSUMER:
        # Its own migrations: today's schema is part of what is measured.
        subprocess.run([sys.executable, "-c", "import sys; from warehouse.migrate import "
                        "upgrade; upgrade(sys.argv[1])", url], cwd=tree, check=True)
    elif bench.drop_indexes:
        with psycopg.connect(url) as conn:
            for index in bench.drop_indexes:
                conn.execute(f"DROP INDEX staging.{index}")
    env = {**os.environ, "PYTHONPATH": str(tree), "KAFKA_BOOTSTRAP_SERVERS": bench.bootstrap,
           "SKILLSYNC_DATABASE_URL": url, "SKILLSYNC_PSEUDONYM_KEY_FILE": str(bench.key_file),
           "SKILLSYNC_PARTNERS_REGISTRY": str(bench.registry_file),
           "SKILLSYNC_CONSUMER_GROUP": f"bench-peer-{uuid.uuid4().hex[:8]}",
           "SKILLSYNC_TOPIC_PATTERN": f"^{bench.topic.replace('.', '[.]')}$",
           "SKILLSYNC_CONSUMER_BATCH_SIZE": str(bench.batch_size)}
    log = bench.state / f"{round_:02d}-{side.replace(' ', '-')}.log"
    quiesce(bench.server_url)
    load = os.getloadavg()[0]
    with open(log, "wb") as out:
        # Members of one group: the partitions are shared out among them.
        procs = [subprocess.Popen([sys.executable, "-m", "consumers", "run", "--until-caught-up"],
                                  cwd=tree, env=env, stdout=out, stderr=subprocess.STDOUT,
                                  start_new_session=True) for _ in range(bench.consumers)]
    with CpuSampler(bench.counters(name, *(p.pid for p in procs))) as sampler:
        for proc in procs:
            proc.returncode = wait_exit(proc.pid, RUN_TIMEOUT_S)
    if any(p.returncode != 0 for p in procs):
        raise ServiceError(f"{side} exited {[p.returncode for p in procs]}:\n{log_tail(log)}")
    start, end, events = landed_window(url, "staging.events")
    # The peak of the largest member: each is a process of its own.
    return Run(side, events / (end - start), per_event(sampler, start, end, events),
               sampler.peak("rss "), load), url, name


def bare_copy(bench: Bench, url: str) -> Run:
    """The landed rows again, as binary COPY prepared beforehand, batch by batch into a table
    with the same columns and indexes as staging.events: what the database alone can take."""
    columns = ", ".join(EVENT_COLUMNS)
    with psycopg.connect(url) as conn, conn.cursor() as cur:
        cur.execute("CREATE TABLE staging.bench_copy (LIKE staging.events INCLUDING ALL)")
        cur.execute(f"CREATE TEMP TABLE source AS SELECT row_number() OVER "
                    f"(ORDER BY kafka_partition, kafka_offset) AS n, {columns} "
                    "FROM staging.events")
        blobs = []
        for first in range(0, bench.events, bench.batch_size):
            with cur.copy(f"COPY (SELECT {columns} FROM source WHERE n > {first} AND n <= "
                          f"{first + bench.batch_size}) TO STDOUT (FORMAT BINARY)") as copy:
                blobs.append(b"".join(bytes(chunk) for chunk in copy))
        conn.commit()
        quiesce(bench.server_url)
        load = os.getloadavg()[0]
        with CpuSampler(bench.counters(urlsplit(url).path.lstrip("/"))) as sampler:
            started = time.time()
            for blob in blobs:
                with conn.transaction(), cur.copy(f"COPY staging.bench_copy ({columns}) "
                                                  "FROM STDIN (FORMAT BINARY)") as copy:
                    copy.write(blob)
            ended = time.time()
        copied = cur.execute("SELECT count(*) FROM staging.bench_copy").fetchone()
    assert copied is not None and copied[0] == bench.events, copied
    return Run(BARE_COPY, bench.events / (ended - started),
               per_event(sampler, started, ended, bench.events), float("nan"), load)


# -- the sink ------------------------------------------------------------------------------

def jdbc_url(url: str) -> str:
    parts = urlsplit(url)
    return (f"jdbc:postgresql://{parts.hostname}:{parts.port or 5432}{parts.path}"
            "?ApplicationName=connect-jdbc-sink")


class CommitWatch:
    """Whether a consumer group has committed a count of records; asks the broker at most
    twice a second."""

    def __init__(self, bootstrap: str, group: str, records: int) -> None:
        self._admin = KafkaAdminClient(bootstrap_servers=bootstrap)
        self._group, self._records = group, records
        self._asked = 0.0

    def __call__(self) -> bool:
        if time.monotonic() - self._asked < 0.5:
            return False
        self._asked = time.monotonic()
        try:
            offsets = self._admin.list_group_offsets(self._group).get(self._group, {})
        except KafkaError:
            return False  # the group is not there yet
        return sum(o.offset for o in offsets.values()) >= self._records

    def close(self) -> None:
        self._admin.close()


def sink_run(bench: Bench, side: str, round_: int) -> Run:
    """Connect standalone with the sink in one mode over the topic, stopped once it committed all.

    Its consumer group's committed offsets say when: the sink commits only what it wrote.
    """
    assert bench.connect_home is not None
    mode = SINK_MODES[side]
    url, database = scratch_database(bench.server_url, "bench_peer", migrate=False)
    try:
        with psycopg.connect(url) as conn:
            # Created beforehand: tasks starting together race to create it.
            conn.execute(f"CREATE TABLE {SINK_TABLE} (__connect_topic text NOT NULL, "
                         "__connect_partition integer NOT NULL, __connect_offset bigint NOT NULL,"
                         " payload text, landed_at timestamptz NOT NULL DEFAULT now(), PRIMARY KEY"
                         " (__connect_topic, __connect_partition, __connect_offset))")
        name = f"peer-{uuid.uuid4().hex[:8]}"
        run_dir = bench.state / f"{round_:02d}-{side.replace(' ', '-')}"
        run_dir.mkdir()
        worker, connector = run_dir / "worker.properties", run_dir / "connector.properties"
        worker.write_text(connect.worker_properties(
            bench.bootstrap, bench.connect_home / "plugins", run_dir, bench.batch_size))
        connector.write_text(connect.connector_properties(
            name, bench.topic, bench.partitions, jdbc_url(url), SINK_TABLE, mode))
        log = run_dir / "connect.log"
        quiesce(bench.server_url)
        load = os.getloadavg()[0]
        with open(log, "wb") as out:
            proc = subprocess.Popen(connect.command(bench.connect_home, run_dir, worker, connector),
                                    stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
        watch = CommitWatch(bench.bootstrap, f"connect-{name}", bench.events)
        code: int | None = None
        try:
            with CpuSampler(bench.counters(database, proc.pid)) as sampler:
                code = wait_exit(proc.pid, RUN_TIMEOUT_S, done=watch)
                if code is not None:
                    raise ServiceError(f"Connect exited {code}:\n{log_tail(log)}")
            peak = sampler.peak("rss ")
        finally:
            watch.close()
            proc.returncode = 0  # reaped by wait_exit or stop, never by Popen
            if code is None:
                stop(proc.pid)
        with psycopg.connect(url) as conn:
            count = conn.execute(f"SELECT count(*) FROM {SINK_TABLE}").fetchone()
        assert count is not None and count[0] == bench.events, (side, count)
        start, end, events = landed_window(url, SINK_TABLE)
        return Run(side, events / (end - start), per_event(sampler, start, end, events), peak,
                   load)
    finally:
        drop_database(bench.server_url, database)


# -- a round, the whole bench ----------------------------------------------------------------

def one_side(bench: Bench, side: str, round_: int) -> list[Run]:
    if side in SINK_MODES:
        return [sink_run(bench, side, round_)]
    run, url, database = consumer_run(bench, side, round_)
    try:
        return [run, bare_copy(bench, url)] if side == CONSUMER else [run]
    finally:
        drop_database(bench.server_url, database)


def ratios(runs: dict[str, Run]) -> dict[str, float]:
    """The issue's targets as ratios of one round's runs (those whose sides ran)."""
    ours = runs[CONSUMER]
    found = {}
    if "sink insert" in runs:
        found["ingest / sink insert"] = ours.rate / runs["sink insert"].rate
    if "sink upsert" in runs:
        found["ingest / sink upsert"] = ours.rate / runs["sink upsert"].rate
    if "sink insert" in runs:
        found["stack CPU / sink insert"] = (ours.cpu_us["stack"]
                                            / runs["sink insert"].cpu_us["stack"])
    found["ingest / bare COPY"] = ours.rate / runs[BARE_COPY].rate
    if TODAY in runs:
        found["PostgreSQL CPU / today"] = (ours.cpu_us["postgres"]
                                           / runs[TODAY].cpu_us["postgres"])
    return found


TARGETS = {"ingest / sink insert": (">=", 1.0), "ingest / sink upsert": (">=", 1.3),
           "stack CPU / sink insert": ("<=", 1.0), "PostgreSQL CPU / today": ("<=", 0.5),
           "ingest / bare COPY": (">=", 0.8)}


def extract_today(rev: str, state_root: Path) -> Path | None:
    """The tree at rev, extracted once under state_root; None (said why) if git cannot."""
    tree = state_root / f"tree-{rev}"
    if (tree / ".complete").exists():
        return tree
    shutil.rmtree(tree, ignore_errors=True)
    tree.mkdir(parents=True)
    archive = subprocess.run(["git", "-C", str(REPO_ROOT), "archive", rev],
                             capture_output=True, check=False)
    if archive.returncode != 0:
        print(f"no '{TODAY}' side: git cannot archive {rev} "
              f"({archive.stderr.decode().strip()})")
        return None
    subprocess.run(["tar", "-x", "-C", str(tree)], input=archive.stdout, check=True)
    # Compiled once, as this tree's modules are: compiling at every start is not its cost.
    subprocess.run([sys.executable, "-m", "compileall", "-q", str(tree)], check=True)
    (tree / ".complete").touch()
    return tree


def prepare(args: argparse.Namespace) -> Bench:
    bootstrap = os.environ.get("KAFKA_BOOTSTRAP_SERVERS", SERVICES.kafka_bootstrap)
    server_url = os.environ.get("SKILLSYNC_DATABASE_URL", SERVICES.database_url("postgres"))
    server_url = server_url.replace("+psycopg", "")
    state_root = args.state_dir or SERVICES.state_dir / "bench" / "peer"
    state = state_root / time.strftime("%Y%m%dT%H%M%S")
    state.mkdir(parents=True)
    parts = urlsplit(server_url)
    postmaster = listening_pid(parts.port or 5432)
    if postmaster is None:
        raise SystemExit(f"no PostgreSQL listening on port {parts.port} of this machine: its "
                         "CPU cannot be measured (run `make up`, or point "
                         "SKILLSYNC_DATABASE_URL at a local server)")
    broker = listening_pid(int(bootstrap.split(",")[0].rpartition(":")[2]))
    if broker is None:
        print("the broker is not a process of this machine: its CPU is not measured")
    partner = f"peer{uuid.uuid4().hex[:8]}"
    registry_file = state / "partners.toml"
    # The benchmark partner alone, in the registry format every reference tree reads: today's
    # registry may hold roles (the sync feed's subscribers) an older consumer does not know.
    families = sorted(next(p for p in load_registry(REGISTRY_PATH)
                           if p.role == "training_platform").allowed_types)
    registry_file.write_text(
        f"[roles.training_platform]\nallowed_types = {json.dumps(families)}\n\n"
        f'[[partner]]\npartner_id = "{partner}"\nname = "benchmark partner"\n'
        'role = "training_platform"\ndistrict_code = "330106"\n', encoding="utf-8")
    key_file = state / "pseudonym.keys"
    key_file.write_text(f"b1:{secrets.token_hex(32)}\n")
    key_file.chmod(0o600)
    bench = Bench(bootstrap, server_url, events_topic(partner), args.partitions, args.events,
                  args.batch_size,
                  state, postmaster, broker, registry_file, key_file, args.consumers,
                  tuple(args.drop_index))
    if set(args.sides) & set(SINK_MODES):
        bench.connect_home = connect.ensure_resolved(SERVICES)
    if args.today and TODAY in args.sides:
        bench.today_tree = extract_today(args.today, state_root)
    ensure_topics(bootstrap, [bench.topic], partitions=args.partitions)
    publish(bootstrap, bench.topic, partner, args.events)
    return bench




def print_run(round_: int, run: Run) -> None:
    print(f"{round_:<6}{run.side:<16}{run.rate:>10,.0f}" + "".join(
        f"{run.cpu_us[name]:>12.1f}" for name in CPU) + f"{run.peak_rss_mb:>9.0f}"
        f"{run.load:>7.2f}", flush=True)


def summarise(rounds: list[dict[str, Run]]) -> bool:
    """Medians per side and of each round's ratios; True if every target measured is met."""
    sides = list(rounds[0])
    print(f"\nmedians of {len(rounds)} rounds")
    print(f"{'':<6}{'side':<16}{'events/s':>10}" + "".join(f"{n + ' µs':>12}" for n in CPU)
          + f"{'RSS MB':>9}")
    for side in sides:
        runs = [r[side] for r in rounds]
        print(f"{'':<6}{side:<16}{statistics.median(r.rate for r in runs):>10,.0f}" + "".join(
            f"{statistics.median(r.cpu_us[n] for r in runs):>12.1f}" for n in CPU)
            + f"{max(r.peak_rss_mb for r in runs):>9.0f}")
    met = True
    per_round = [ratios(r) for r in rounds]
    if per_round[0]:
        print(f"\n{'median ratio':<26}{'value':>8}{'range':>14}{'target':>10}")
        for name in per_round[0]:
            values = [r[name] for r in per_round]
            value = statistics.median(values)
            op, limit = TARGETS[name]
            ok = value >= limit if op == ">=" else value <= limit
            met &= ok
            print(f"{name:<26}{value:>8.2f}{min(values):>7.2f}–{max(values):<6.2f}"
                  f"{op + ' ' + str(limit):>10}{'' if ok else '  MISS'}")
    peak = max(r[CONSUMER].peak_rss_mb for r in rounds)
    ok = peak <= RSS_LIMIT_MB
    met &= ok
    print(f"{'consumer peak RSS MB':<26}{peak:>8.0f}{'':>14}{'<= ' + str(RSS_LIMIT_MB):>10}"
          f"{'' if ok else '  MISS'}")
    return met


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--events", type=int, default=100_000)
    parser.add_argument("--partitions", type=int, default=3)
    parser.add_argument("--batch-size", type=int, default=2000)
    parser.add_argument("--consumers", type=int, default=1,
                        help="consumer processes in the group on a consumer side (CPU and "
                             "events/s are of all of them, RSS of the largest)")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--state-dir", type=Path, default=None, metavar="DIR",
                        help="where each run's logs and settings go (default .local/bench/peer)")
    parser.add_argument("--today", default=TODAY_REV, metavar="REV",
                        help=f"git revision of the '{TODAY}' side (default {TODAY_REV}; "
                             "'' or --sides without it leaves it out)")
    parser.add_argument("--drop-index", action="append", default=[], metavar="NAME",
                        help="land the consumer side without this staging index (a prototype "
                             "of what moving it off the landing path would buy); repeatable")
    parser.add_argument("--sides", type=lambda v: [s.strip() for s in v.split(",")],
                        default=[CONSUMER, TODAY, *SINK_MODES],
                        help="comma-separated sides to run (default all; a sink side needs "
                             "Maven once, and Java); the consumer's brings the bare COPY")
    args = parser.parse_args()
    unknown = set(args.sides) - {CONSUMER, TODAY, *SINK_MODES}
    if unknown or CONSUMER not in args.sides:
        parser.error(f"--sides: {CONSUMER!r} and any of {[TODAY, *SINK_MODES]}")
    bench = prepare(args)
    sides = [s for s in args.sides if s != TODAY or bench.today_tree is not None]
    print(f"{args.events:,} events on {args.partitions} partitions, batch {args.batch_size}, "
          f"{args.rounds} rounds of: {', '.join(sides)}; {args.consumers} consumer process(es) "
          f"a side; logs in {bench.state}")
    print(f"{'round':<6}{'side':<16}{'events/s':>10}" + "".join(f"{n + ' µs':>12}" for n in CPU)
          + f"{'RSS MB':>9}{'load':>7}")
    rounds = []
    for round_ in range(1, args.rounds + 1):
        shift = (round_ - 1) % len(sides)
        runs: dict[str, Run] = {}
        for side in sides[shift:] + sides[:shift]:
            for run in one_side(bench, side, round_):
                runs[run.side] = run
                print_run(round_, run)
        rounds.append(runs)
    return 0 if summarise(rounds) else 1


if __name__ == "__main__":
    sys.exit(main())
