"""PostgreSQL CPU per landed row, by staging index: the same rows copied into variants of staging.

A simulated day (`--events`, the mix the nightly bench lands) is landed once; its rows are then
copied again, batch by batch as binary COPY prepared beforehand (as the consumer sends them),
into copies of staging.events that differ only in their indexes: every index staging has, the
primary key alone, and the primary key with each secondary index in turn. The last measure
builds all the secondary indexes at once on a table already loaded (what building them once a
day, at night, would cost instead of maintaining them row by row). CPU is the server's on
behalf of the scratch database (bench.support.ServerCpu), medians of `--repeats`.

  .venv/bin/python bench/index_cost.py [--events 100000] [--repeats 3]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
from datetime import date
from pathlib import Path
from urllib.parse import urlsplit

import psycopg

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.nightly_bench import land_day
from bench.support import ServerCpu, drop_database, listening_pid, scratch_database
from consumers.landing import EVENT_COLUMNS
from infra.local import LocalServices

COLUMNS = ", ".join(EVENT_COLUMNS)


def secondary_indexes(conn: psycopg.Connection) -> dict[str, str]:
    """{name: definition} of staging.events' indexes other than its primary key."""
    return dict(conn.execute(
        "SELECT indexname, indexdef FROM pg_indexes WHERE schemaname = 'staging' AND "
        "tablename = 'events' AND indexname <> 'events_pkey' ORDER BY indexname").fetchall())


def on_table(definition: str, table: str) -> str:
    """An index definition of staging.events, unnamed, on another table."""
    return "CREATE INDEX ON " + table + " " + definition.split(" ON staging.events ", 1)[1]


def prepared_batches(conn: psycopg.Connection, batch_size: int) -> tuple[list[bytes], int]:
    """staging.events' rows as binary COPY data, one blob per batch; (blobs, rows)."""
    with conn.cursor() as cur:
        cur.execute(f"CREATE TEMP TABLE source AS SELECT row_number() OVER "
                    f"(ORDER BY kafka_partition, kafka_offset) AS n, {COLUMNS} "
                    "FROM staging.events")
        rows = cur.execute("SELECT count(*) FROM source").fetchone()
        assert rows is not None
        blobs = []
        for first in range(0, rows[0], batch_size):
            with cur.copy(f"COPY (SELECT {COLUMNS} FROM source WHERE n > {first} AND n <= "
                          f"{first + batch_size}) TO STDOUT (FORMAT BINARY)") as copy:
                blobs.append(b"".join(bytes(chunk) for chunk in copy))
    conn.commit()
    return blobs, rows[0]


def copy_cost(conn: psycopg.Connection, cpu: ServerCpu, blobs: list[bytes], rows: int,
              indexes: list[str], *, build_after: bool = False) -> float:
    """Server CPU µs per row to COPY the batches into a table with these indexes.

    build_after: load a table with the primary key alone, then time building the indexes.
    """
    table = "staging.index_cost"
    with conn.cursor() as cur:
        cur.execute(f"CREATE TABLE {table} (LIKE staging.events INCLUDING DEFAULTS "
                    "INCLUDING GENERATED, PRIMARY KEY (partner_id, event_id))")
        if not build_after:
            for index in indexes:
                cur.execute(on_table(index, table))
        conn.commit()
        before = cpu()
        for blob in blobs:
            with conn.transaction(), cur.copy(
                    f"COPY {table} ({COLUMNS}) FROM STDIN (FORMAT BINARY)") as copy:
                copy.write(blob)
        if build_after:
            # One process, as a night would build them alongside its other work.
            cur.execute("SET max_parallel_maintenance_workers = 0")
            before = cpu()
            for index in indexes:
                cur.execute(on_table(index, table))
            conn.commit()
        spent = cpu() - before
        cur.execute(f"DROP TABLE {table}")
        conn.commit()
    return 1e6 * spent / rows


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--events", type=int, default=100_000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--batch-size", type=int, default=2000)
    args = parser.parse_args()
    services = LocalServices()
    server_url = os.environ.get("SKILLSYNC_DATABASE_URL", services.database_url("postgres"))
    server_url = server_url.replace("+psycopg", "")
    postmaster = listening_pid(urlsplit(server_url).port or 5432)
    if postmaster is None:
        raise SystemExit("no PostgreSQL of this machine at SKILLSYNC_DATABASE_URL: its CPU "
                         "cannot be read")
    url, name = scratch_database(server_url, "bench_index_cost")
    try:
        land_day(url, date(2026, 6, 15), args.events, 5, {})
        with psycopg.connect(url) as conn:
            indexes = secondary_indexes(conn)
            blobs, rows = prepared_batches(conn, args.batch_size)
            variants: dict[str, tuple[list[str], bool]] = {
                "every index (as staging has)": (list(indexes.values()), False),
                "primary key alone": ([], False),
                **{f"primary key + {n}": ([d], False) for n, d in indexes.items()},
                "secondary indexes built at once": (list(indexes.values()), True),
            }
            costs: dict[str, list[float]] = {name: [] for name in variants}
            for _ in range(args.repeats):
                for variant, (chosen, build_after) in variants.items():
                    cpu = ServerCpu(postmaster, name)
                    costs[variant].append(copy_cost(conn, cpu, blobs, rows, chosen,
                                                    build_after=build_after))
    finally:
        drop_database(server_url, name)
    print(f"{rows:,} rows of a simulated day, batch {args.batch_size}, medians of "
          f"{args.repeats}; load average {os.getloadavg()[0]:.2f}")
    print(f"{'':<44}{'server CPU µs/row':>18}")
    for variant, values in costs.items():
        print(f"{variant:<44}{statistics.median(values):>18.1f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
