"""The night's steps (validate, load, report) on a simulated day: time, peak memory, scaling.

The day is simulated (light faults), checked with the consumer's check_event and landed
straight into staging with COPY: the wait for ingest is not part of the night's cost, and the
consumer has its own benchmark. Three timed nights, in one scratch database, each one run of
the nightly_sync DAG through `dag.test()` (what `airflow dags test` runs), in this process:

  A  the day, with `--history-days` earlier days already in staging and the warehouse;
  B  the same day again, with ten times that history;
  C  a day of twice the events, with the same history as B.

The DAG's wait for ingest finds no topic to wait for (the day did not come through Kafka) and
is reported apart, out of the night's total. A step's seconds are its task's duration as
Airflow records it; its peak memory is this process's while the task's function ran.
History days are copies of the landed day (and of its loaded facts) under fresh keys and
fresh person pseudonyms, shifted a month back: tables and indexes grow as with real history,
while the night's look-ups by person, certificate or enrollment never match it. Targets:
B <= 1.3 x A, C <= 2.3 x B, the GX checkpoint <= 3 x the same checks as one SQL query, and
night A <= 5 x a COPY out plus a COPY in of its day's staging rows on the same database (the
floor); each night's statements are listed by their share of the database's time, from
pg_stat_statements.
"""

from __future__ import annotations

import argparse
import hashlib
import importlib.util
import os
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any, TypeVar

import orjson
import psycopg
from pydantic import SecretStr

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))


from adapters.settings import DatabaseSettings, NightlySettings, Settings
from bench.support import drop_database, peak_rss_mb, scratch_database
from consumers.landing import EVENT_COLUMNS, REJECT_COLUMNS, RejectRow, event_row
from infra import airflow as local_airflow
from infra.local import REPO_ROOT, LocalServices
from partners.faults import Faults
from partners.simulate import simulate
from quality.suites import staging_day_checks, staging_day_query
from schemas.days import business_day_of
from schemas.errors import Rejection
from schemas.partners import load_registry
from schemas.pipeline import check_event
from schemas.pseudonym import Pseudonymiser
from warehouse import nightly, report

# The local services `make up` (and `make bench`) start: PostgreSQL with Airflow's metadata,
# and the broker the DAG's wait asks.
SERVICES = LocalServices()
DEFAULT_DATABASE = SERVICES.database_url("postgres")
DAG_FILE = REPO_ROOT / "dags" / "nightly_sync.py"
# Rows of the table that are not the night's own task durations.
NOT_IN_NIGHT = ("wait (excluded)", "validate function", "same checks, SQL")
# The night's task functions, as the DAG's tasks import them when they run: (module, name).
TASK_FUNCTIONS = {"validate": (nightly, "validate"), "load": (nightly, "load"),
                  "summarise": (nightly, "summarise"), "report": (report, "write_day_report")}
TARGETS = {"history x10": 1.3, "events x2": 2.3, "GX vs SQL": 3.0, "A / COPY floor": 5.0}
# Statements listed per night, longest first; the rest are summed on one line.
TOP_STATEMENTS = 12
HISTORY_FACTOR = 10
# Light faults, so every step of the night has some of each kind of work.
FAULTS = Faults(duplicate_rate=0.001, late_rate=0.001, out_of_order_rate=0.001,
                cross_platform_enrollments=50, malformed=20, schema_violations=60,
                bad_checksums=20, foreign_source=20, forbidden_types=20, missing=20,
                shared_certificate_numbers=10, double_subsidy_claims=10)
# Staging rows copied into history days get these key fields suffixed with the copy's tag.
KEYED_FIELDS = ("enrollment_id", "evaluation_id", "certificate_number",
                "paired_certificate_number")
# Warehouse columns that are keys (suffixed), or the person (re-pseudonymised), in copies.
KEY_COLUMNS = {"enrollment_id", "evaluation_id", "certificate_number", "event_id",
               "canonical_enrollment_id", "first_claim_number", "paired_certificate_number",
               "reference"}
COPIED_TABLES = ("fact_enrollment", "fact_completion", "fact_evaluation", "fact_certificate",
                 "fact_subsidy_eligibility", "discrepancy", "partner_scorecard", "load_runs")

T = TypeVar("T")


# -- measuring ----------------------------------------------------------------------------

def _reset_peak_rss() -> None:
    # Writing 5 to clear_refs resets VmHWM, so each step's peak is its own.
    Path("/proc/self/clear_refs").write_text("5")


def measured(step: Callable[[], T]) -> tuple[T, float, float]:
    """(result, seconds, peak RSS of this process in MB during the step)."""
    _reset_peak_rss()
    started = time.perf_counter()
    result = step()
    return result, time.perf_counter() - started, peak_rss_mb()


# -- landing ------------------------------------------------------------------------------

def _sent_at(raw: bytes) -> datetime | None:
    try:
        return datetime.fromisoformat(orjson.loads(raw)["time"])
    except (orjson.JSONDecodeError, KeyError, TypeError, ValueError):
        return None


def _staging_rows(day: date, events: int, seed: int,
                  offsets: dict[str, int]) -> Iterator[tuple[str, tuple[Any, ...]]]:
    """("event" | "reject" | "redelivery", row) per simulated message, as the consumer decides.

    offsets: the last offset used per topic, carried on (and updated) from the days before.
    """
    registry = load_registry()
    pseudonymiser = Pseudonymiser({"bench": hashlib.sha256(b"nightly-bench").digest()}, "bench")
    seen: set[tuple[str, str]] = set()
    sent = datetime.combine(day, datetime.min.time(), UTC)
    for message in simulate(day, events, seed, FAULTS).messages:
        partner = message.topic.rsplit(".", 1)[-1]
        offset = offsets[message.topic] = offsets.get(message.topic, -1) + 1
        sent = max(sent, _sent_at(message.value) or sent)
        appended_day = business_day_of(sent)
        try:
            event = check_event(message.value, topic_partner=partner, registry=registry,
                                pseudonymiser=pseudonymiser, now=sent)
        except Rejection as rejection:
            yield "reject", RejectRow(
                topic=message.topic, kafka_partition=0, kafka_offset=offset, partner_id=partner,
                appended_at=sent, append_day=appended_day, event_id=None,
                reason_code=rejection.code, field_path=rejection.path,
                message=rejection.message, stage=rejection.stage, size_bytes=len(message.value),
                payload_sha256=hashlib.sha256(message.value).hexdigest()).values()
            continue
        if (event.partner_id, event.event_id) in seen:
            yield "redelivery", (event.partner_id, appended_day, event.event_id, message.topic,
                                 0, offset)
            continue
        seen.add((event.partner_id, event.event_id))
        row = event_row(event, message.topic, 0, offset, sent, appended_day)
        # COPY adapts lists, not tuples, as arrays.
        yield "event", row._replace(warnings=list(row.warnings))


def land_day(database_url: str, day: date, events: int, seed: int,
             offsets: dict[str, int]) -> dict[str, int]:
    """Simulate, check and COPY one day into staging; counts of what landed where.

    Each topic's offsets continue from the days landed before with the same `offsets`, as a
    real topic's do: a day's rejects never take the keys of an earlier day's.
    """
    columns = {"event": ("staging.events", EVENT_COLUMNS),
               "reject": ("staging.rejected", REJECT_COLUMNS),
               "redelivery": ("staging.redeliveries", (
                   "partner_id", "append_day", "event_id", "topic", "kafka_partition",
                   "kafka_offset"))}
    buffered: dict[str, list[tuple[Any, ...]]] = {kind: [] for kind in columns}
    counts = dict.fromkeys(columns, 0)
    with psycopg.connect(database_url) as conn:

        def flush(kind: str) -> None:
            table, names = columns[kind]
            with conn.cursor() as cur, cur.copy(
                    f"COPY {table} ({', '.join(names)}) FROM STDIN") as copy:
                for row in buffered[kind]:
                    copy.write_row(row)
            counts[kind] += len(buffered[kind])
            buffered[kind].clear()

        for kind, row in _staging_rows(day, events, seed, offsets):
            buffered[kind].append(row)
            if len(buffered[kind]) >= 20_000:
                flush(kind)
        for kind in columns:
            flush(kind)
        conn.commit()
    return counts


# -- history ------------------------------------------------------------------------------

def _keyed_data(tag: str, shift_days: int) -> str:
    fields = ", ".join(f"'{f}', data->>'{f}' || '{tag}'" for f in KEYED_FIELDS)
    return (f"data || jsonb_strip_nulls(jsonb_build_object({fields},"
            f" 'business_day', ((data->>'business_day')::date + {shift_days})::text))")


def _person(column: str, tag: str) -> str:
    return f"encode(sha256(convert_to({column} || '{tag}', 'UTF8')), 'hex')"


def copy_staging_day(conn: psycopg.Connection, source: date, shift_days: int, tag: str,
                     offset_shift: int) -> None:
    """The source day's staging rows again, shift_days later, under fresh keys and people."""
    shift = f"interval '{shift_days} days'"
    expressions = {
        "event_id": f"event_id || '{tag}'", "occurred_at": f"occurred_at + {shift}",
        "appended_at": f"appended_at + {shift}", "append_day": f"append_day + {shift_days}",
        "sent_at": f"sent_at + {shift}",
        "person": _person("person", tag), "data": _keyed_data(tag, shift_days),
        "kafka_offset": f"kafka_offset + {offset_shift}",
    }
    select = ", ".join(expressions.get(c, c) for c in EVENT_COLUMNS)
    conn.execute(f"INSERT INTO staging.events ({', '.join(EVENT_COLUMNS)}) SELECT {select}"
                 " FROM staging.events WHERE append_day = %s", (source,))
    conn.execute(
        f"INSERT INTO staging.rejected ({', '.join(REJECT_COLUMNS)})"
        f" SELECT {', '.join(expressions.get(c, c) for c in REJECT_COLUMNS)}"
        " FROM staging.rejected WHERE append_day = %s", (source,))
    conn.execute(
        "INSERT INTO staging.redeliveries SELECT partner_id, append_day + %s,"
        " event_id || %s, topic, kafka_partition, kafka_offset + %s"
        " FROM staging.redeliveries WHERE append_day = %s",
        (shift_days, tag, offset_shift, source))


def copy_warehouse_day(conn: psycopg.Connection, source: date, shift_days: int,
                       tag: str) -> None:
    """The source day's facts, discrepancies and scorecards again, as copy_staging_day does."""
    conn.execute("INSERT INTO warehouse.dim_person SELECT DISTINCT "
                 f"{_person('person', tag)}, key_id FROM staging.events WHERE append_day = %s"
                 " AND person IS NOT NULL ON CONFLICT DO NOTHING", (source,))
    for table in COPIED_TABLES:
        names = [c for (c,) in conn.execute(
            "SELECT column_name FROM information_schema.columns WHERE table_schema ="
            " 'warehouse' AND table_name = %s ORDER BY ordinal_position", (table,))]

        def expression(column: str) -> str:
            if column == "business_day":
                return f"business_day + {shift_days}"
            if column == "person":
                return _person("person", tag)
            if column == "run_id":
                return f"run_id || '{tag}'"
            return f"{column} || '{tag}'" if column in KEY_COLUMNS else column

        conn.execute(f"INSERT INTO warehouse.{table} ({', '.join(names)})"
                     f" SELECT {', '.join(map(expression, names))} FROM warehouse.{table}"
                     " WHERE business_day = %s", (source,))


def add_history(database_url: str, template_day: date, days: range) -> None:
    """History days template_day - n for n in days, each a copy of the template's day."""
    with psycopg.connect(database_url) as conn:
        for n in days:
            tag = f"H{n:03d}"
            copy_staging_day(conn, template_day, -n, tag, offset_shift=n * 10**9)
            copy_warehouse_day(conn, template_day, -n, tag)
            conn.commit()
    vacuum(database_url)


def vacuum(database_url: str) -> None:
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute("VACUUM ANALYZE")


# -- distance to the floor -----------------------------------------------------------------

def statement_stats_ready(database_url: str) -> str | None:
    """None if pg_stat_statements records this database's statements; else why it cannot."""
    with psycopg.connect(database_url, autocommit=True) as conn:
        preloaded = conn.execute("SELECT current_setting('shared_preload_libraries')").fetchone()
        if not preloaded or "pg_stat_statements" not in preloaded[0]:
            return ("the server was started without pg_stat_statements preloaded (restart it: "
                    "python -m infra down, then up)")
        conn.execute("CREATE EXTENSION IF NOT EXISTS pg_stat_statements")
    return None


def reset_statement_stats(database_url: str) -> None:
    with psycopg.connect(database_url, autocommit=True) as conn:
        # This database's statements only: others on the server keep theirs.
        conn.execute("SELECT pg_stat_statements_reset(0, d.oid, 0) FROM pg_database d "
                     "WHERE d.datname = current_database()")


def statement_stats(database_url: str) -> list[tuple[str, int, float]]:
    """(statement, calls, seconds) of this database since the last reset, longest first."""
    with psycopg.connect(database_url, autocommit=True) as conn:
        rows = conn.execute(
            "SELECT query, calls, total_exec_time / 1000 FROM pg_stat_statements s "
            "JOIN pg_database d ON d.oid = s.dbid WHERE d.datname = current_database() "
            "AND query NOT LIKE '%%pg_stat_statements%%' ORDER BY total_exec_time DESC"
        ).fetchall()
    return [(" ".join(query.split()), calls, seconds) for query, calls, seconds in rows]


def copy_floor(database_url: str, day: date) -> tuple[float, float]:
    """Seconds to COPY the day's staging.events rows out (binary, to a file), and back in
    into a table with staging.events' columns and indexes: what moving the day costs at least."""
    spool = REPO_ROOT / ".local" / "bench" / f"copy-floor-{os.getpid()}.bin"
    spool.parent.mkdir(parents=True, exist_ok=True)
    try:
        with psycopg.connect(database_url) as conn, conn.cursor() as cur:
            cur.execute("CREATE TABLE staging.bench_floor (LIKE staging.events INCLUDING ALL)")
            # Generated columns are computed by COPY in, never written by it.
            columns = ", ".join(name for (name,) in cur.execute(
                "SELECT column_name FROM information_schema.columns WHERE table_schema = "
                "'staging' AND table_name = 'events' AND is_generated = 'NEVER' "
                "ORDER BY ordinal_position"))
            conn.commit()
            started = time.perf_counter()
            with spool.open("wb") as out, cur.copy(
                    f"COPY (SELECT {columns} FROM staging.events WHERE append_day = %s) TO "
                    "STDOUT (FORMAT BINARY)", (day,)) as copy:
                for chunk in copy:
                    out.write(chunk)
            copied_out = time.perf_counter() - started
            started = time.perf_counter()
            with spool.open("rb") as source, cur.copy(
                    f"COPY staging.bench_floor ({columns}) FROM STDIN (FORMAT BINARY)") as copy:
                while chunk := source.read(1 << 20):
                    copy.write(chunk)
            conn.commit()
            copied_in = time.perf_counter() - started
            cur.execute("DROP TABLE staging.bench_floor")
            conn.commit()
    finally:
        spool.unlink(missing_ok=True)
    return copied_out, copied_in


# -- the night ----------------------------------------------------------------------------

def forget_night(database_url: str, day: date) -> None:
    """Drop what an earlier night wrote for the day, so every timed night starts alike."""
    with psycopg.connect(database_url) as conn:
        for table in COPIED_TABLES:
            conn.execute(f"DELETE FROM warehouse.{table} WHERE business_day = %s", (day,))
        conn.execute("DELETE FROM ops.quarantine WHERE business_day = %s", (day,))
        conn.execute("DELETE FROM ops.validation_results WHERE business_day = %s", (day,))


def hand_written_checks(database_url: str, day: date) -> dict[str, int]:
    """The suite's checks as one SQL pass over the day: violations per check."""
    checks = staging_day_checks()
    counted = ", ".join(f"count(*) FILTER (WHERE {c.violation})" for c in checks)
    with psycopg.connect(database_url) as conn:
        row = conn.execute(f"SELECT {counted} FROM ({staging_day_query(day)}) day_rows")
        values = row.fetchone() or ()
    return dict(zip([c.name for c in checks], values, strict=True))


def load_dag() -> Any:
    """The nightly_sync DAG from its file, with Airflow pointed at the local services."""
    os.environ.update({k: v for k, v in local_airflow.environment(SERVICES, base={}).items()
                       if k.startswith("AIRFLOW")})
    os.environ["AIRFLOW__LOGGING__LOGGING_LEVEL"] = "WARNING"  # the tables, not task logs
    local_airflow.migrate(SERVICES)
    spec = importlib.util.spec_from_file_location("nightly_sync_bench", DAG_FILE)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.nightly_sync()


@contextmanager
def measured_tasks() -> Iterator[dict[str, tuple[float, float]]]:
    """{task: (seconds, peak MB) of its function}, by wrapping what the tasks call at run time."""
    measures: dict[str, tuple[float, float]] = {}
    originals = {task: getattr(module, name) for task, (module, name) in TASK_FUNCTIONS.items()}

    def wrapped(task: str) -> Callable[..., Any]:
        def call(*args: Any, **kwargs: Any) -> Any:
            result, seconds, peak = measured(lambda: originals[task](*args, **kwargs))
            measures[task] = (seconds, peak)
            return result
        return call

    for task, (module, name) in TASK_FUNCTIONS.items():
        setattr(module, name, wrapped(task))
    try:
        yield measures
    finally:
        for task, (module, name) in TASK_FUNCTIONS.items():
            setattr(module, name, originals[task])


def night(dag: Any, settings: Settings, day: date, *, statements: bool
          ) -> tuple[dict[str, tuple[float, float]], list[tuple[str, int, float]]]:
    """One DAG run for the day, then the same checks by hand.

    ({step: (seconds, peak MB)}, the night's statements as statement_stats gives them, if asked).
    """
    url = settings.database.sqlalchemy
    forget_night(url, day)
    vacuum(url)
    os.environ.update({
        "SKILLSYNC_DATABASE_URL": url, "SKILLSYNC_REPORT_DIR": str(settings.nightly.report_dir),
        "SKILLSYNC_GX_DIR": str(settings.nightly.gx_dir),
        "KAFKA_BOOTSTRAP_SERVERS": os.environ.get("KAFKA_BOOTSTRAP_SERVERS",
                                                  SERVICES.kafka_bootstrap),
        # No topic matches: the day was landed without Kafka, so the wait has nothing to await.
        "SKILLSYNC_TOPIC_PATTERN": r"^skills\.events\.bench-landed-directly$",
        "SKILLSYNC_CONSUMER_GROUP": "nightly-bench"})
    if statements:
        reset_statement_stats(url)
    with measured_tasks() as functions:
        run = dag.test(logical_date=datetime.now(UTC), run_conf={"business_day": day.isoformat()})
    durations = {ti.task_id: float(ti.duration or 0) for ti in run.get_task_instances()}
    if str(run.state) != "success":
        states = {ti.task_id: str(ti.state) for ti in run.get_task_instances()}
        raise RuntimeError(f"nightly_sync for {day} ended {run.state}: {states}")
    steps = {"wait (excluded)": (durations["wait_for_ingest"], float("nan"))}
    for task, step in (("validate", "validate (GX)"), ("load", "load"),
                       ("summarise", "summarise"), ("report", "report")):
        steps[step] = (durations[task], functions[task][1])
    # The checkpoint's own time, without the task's bookkeeping, is what the SQL is held to.
    night_statements = statement_stats(url) if statements else []
    steps["validate function"] = functions["validate"]
    _, seconds, peak = measured(lambda: hand_written_checks(url, day))
    steps["same checks, SQL"] = (seconds, peak)
    return steps, night_statements


def print_statements(name: str, statements: list[tuple[str, int, float]],
                     night_s: float) -> None:
    """The night's statements by the share of the database's time they took, longest first."""
    total = sum(seconds for _, _, seconds in statements)
    if not total:
        return
    print(f"\nnight {name}: {total:.2f}s in {len(statements)} statements "
          f"({total / night_s:.0%} of the night), by share")
    for query, calls, seconds in statements[:TOP_STATEMENTS]:
        print(f"{seconds / total:>6.1%}{seconds:>8.2f}s{calls:>6}x  {query[:110]}")
    rest = statements[TOP_STATEMENTS:]
    if rest:
        print(f"{sum(s for _, _, s in rest) / total:>6.1%}{sum(s for _, _, s in rest):>8.2f}s"
              f"{sum(c for _, c, _ in rest):>6}x  ({len(rest)} other statements)")


def _night_seconds(steps: dict[str, tuple[float, float]]) -> float:
    return sum(s for name, (s, _) in steps.items() if name not in NOT_IN_NIGHT)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--events", type=int, default=1_000_000,
                        help="lifecycle events of the measured day (night C has twice as many)")
    parser.add_argument("--history-days", type=int, default=1,
                        help="days of history before night A (night B has ten times as many)")
    parser.add_argument("--seed", type=int, default=11)
    parser.add_argument("--keep", action="store_true", help="keep the scratch database")
    parser.add_argument("--night-a-only", action="store_true",
                        help="night A and its distance to the COPY floor alone: no 2x day, no "
                             "10x history (on a busy machine those take the most time)")
    args = parser.parse_args()
    server_url = os.environ.get("SKILLSYNC_DATABASE_URL", DEFAULT_DATABASE).replace("+psycopg",
                                                                                    "")
    url, name = scratch_database(server_url, "bench_nightly")
    unmeasured = statement_stats_ready(url)
    if unmeasured:
        print(f"statements' shares not measured: {unmeasured}")
    settings = Settings(database=DatabaseSettings(url=SecretStr(url)), nightly=NightlySettings(
        report_dir=Path(f".local/bench/reports/{name}"), gx_dir=Path(f".local/bench/gx/{name}")))
    day = date(2026, 6, 15)
    bigger_day = day + timedelta(days=7)
    started = time.perf_counter()
    try:
        offsets: dict[str, int] = {}
        counts, seconds, peak = measured(
            lambda: land_day(url, day, args.events, args.seed, offsets))
        print(f"landed {day}: {counts} in {seconds:.1f}s (peak {peak:.0f} MB)", flush=True)
        if not args.night_a_only:
            counts, seconds, peak = measured(
                lambda: land_day(url, bigger_day, 2 * args.events, args.seed + 1, offsets))
            print(f"landed {bigger_day}: {counts} in {seconds:.1f}s (peak {peak:.0f} MB)",
                  flush=True)
        # Every task process pays this once; it is reported apart, not inside a step.
        _, seconds, _ = measured(lambda: __import__("great_expectations"))
        print(f"importing Great Expectations: {seconds:.1f}s", flush=True)
        # Freshly copied tables have no statistics yet; autovacuum would catch up on its own.
        vacuum(url)
        # History is copied from the day's own loaded facts: load it once first (not timed).
        nightly.load(day, "bench-template", settings)
        history = HISTORY_FACTOR * args.history_days
        _, seconds, _ = measured(lambda: add_history(url, day, range(30, 30 + args.history_days)))
        print(f"history: {args.history_days} day(s) copied in {seconds:.1f}s", flush=True)
        dag = load_dag()
        nights, statements = {}, {}
        nights["A"], statements["A"] = night(dag, settings, day, statements=not unmeasured)
        floors = {"A": copy_floor(url, day)}
        if not args.night_a_only:
            _, seconds, _ = measured(
                lambda: add_history(url, day, range(30 + args.history_days, 30 + history)))
            print(f"history: {history} day(s) in all, copied in {seconds:.1f}s", flush=True)
            nights["B"], statements["B"] = night(dag, settings, day, statements=not unmeasured)
            nights["C"], statements["C"] = night(dag, settings, bigger_day,
                                                 statements=not unmeasured)
            floors["B"], floors["C"] = floors["A"], copy_floor(url, bigger_day)
    finally:
        if not args.keep:
            drop_database(server_url, name)

    print(f"\n{args.events:,} events a day; A: {args.history_days} day(s) of history"
          + ("" if args.night_a_only
             else f", B: {history}, C: {2 * args.events:,} events with B's history"))
    print(f"{'step':<20}" + "".join(f"{n + ' s':>10}{n + ' MB':>9}" for n in nights))
    for step in nights["A"]:
        print(f"{step:<20}" + "".join(f"{nights[n][step][0]:>10.2f}{nights[n][step][1]:>9.0f}"
                                      for n in nights))
    totals = {n: _night_seconds(steps) for n, steps in nights.items()}
    print(f"{'night (no wait/SQL)':<20}" + "".join(f"{totals[n]:>10.2f}{'':>9}" for n in nights))
    ratios = {"GX vs SQL": max(s["validate function"][0] / s["same checks, SQL"][0]
                               for s in nights.values())}
    if "C" in nights:
        ratios["history x10"] = totals["B"] / totals["A"]
        ratios["events x2"] = totals["C"] / totals["B"]
    ratios["A / COPY floor"] = totals["A"] / sum(floors["A"])
    print(f"\n{'night / COPY out + in of its day':<34}" + "".join(f"{n:>10}" for n in nights))
    print(f"{'COPY out s':<34}" + "".join(f"{floors[n][0]:>10.2f}" for n in nights))
    print(f"{'COPY in s':<34}" + "".join(f"{floors[n][1]:>10.2f}" for n in nights))
    print(f"{'night / (out + in)':<34}" + "".join(f"{totals[n] / sum(floors[n]):>10.2f}"
                                                  for n in nights))
    for n, night_statements in statements.items():
        print_statements(n, night_statements, totals[n])
    failed = False
    print(f"\n{'ratio':<14}{'value':>8}{'target':>10}")
    for ratio, value in ratios.items():
        ok = value <= TARGETS[ratio]
        failed |= not ok
        print(f"{ratio:<14}{value:>8.2f}{'<= ' + str(TARGETS[ratio]):>10}"
              f"{'' if ok else '  MISS'}")
    print(f"wall time of the whole benchmark: {time.perf_counter() - started:.0f}s")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
