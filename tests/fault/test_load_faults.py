"""The night's load killed mid-transaction and retried, and one day loaded twice at once."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from datetime import date
from pathlib import Path

import psycopg
import pytest

from infra.local import REPO_ROOT
from tests.fault.harness import Scale, Traffic
from tests.support.consumers import service, wait_for
from tests.support.nightly import appended_days, table_checksums

pytestmark = pytest.mark.integration

# Where a killed load is caught: the first while it deletes the day's facts, the second with
# every fact written and only its bookkeeping row to go.
HOLD_POINTS = ("warehouse.partner_scorecard", "ops.load_runs")


@pytest.fixture
def landed_traffic(scale: Scale, kafka_bootstrap, database_url, new_partners,
                   pseudonymiser) -> Traffic:
    partners = new_partners("training_platform", "technician_college", "evaluation_org")
    traffic = Traffic.simulated(partners, scale, seed=808)
    traffic.publish(kafka_bootstrap)
    service(kafka_bootstrap, database_url, partners, pseudonymiser).run(until_caught_up=True)
    return traffic


def _load(database_url: str, day: date, run_id: str) -> subprocess.Popen[bytes]:
    """The load task's own code (warehouse.nightly.load) in a process that can be killed."""
    env = {**os.environ, "SKILLSYNC_DATABASE_URL": database_url}
    return subprocess.Popen(
        [sys.executable, "-c", "import sys; from datetime import date; "
         "from warehouse.nightly import load; load(date.fromisoformat(sys.argv[1]), sys.argv[2])",
         day.isoformat(), run_id], env=env, cwd=REPO_ROOT, stdin=subprocess.DEVNULL,
        stderr=subprocess.PIPE)


@contextlib.contextmanager
def held(database_url: str, table: str) -> Iterator[None]:
    """Block writes to a table the load writes (reads go on) until the block ends."""
    with psycopg.connect(database_url) as conn:
        conn.execute(f"LOCK TABLE {table} IN EXCLUSIVE MODE")
        yield
        conn.rollback()


def _waiting_on_lock(database_url: str) -> bool:
    name = database_url.rsplit("/", 1)[1]
    with psycopg.connect(database_url) as conn:
        row = conn.execute("SELECT count(*) FROM pg_stat_activity WHERE datname = %s "
                           "AND wait_event_type = 'Lock'", (name,)).fetchone()
    return bool(row and row[0])


def _load_backends(database_url: str) -> int:
    with psycopg.connect(database_url) as conn:
        row = conn.execute("SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' "
                           "AND database = (SELECT oid FROM pg_database "
                           "WHERE datname = current_database())").fetchone()
    return int(row[0]) if row else 0


def test_a_load_killed_mid_transaction_leaves_nothing_and_its_retry_matches_a_clean_load(
        scale: Scale, landed_traffic: Traffic, tmp_path: Path, database_url: str):
    days = appended_days(database_url)
    empty = table_checksums(database_url)
    killed = 0
    for round_ in range(scale.rounds):
        table = HOLD_POINTS[round_ % len(HOLD_POINTS)]
        with held(database_url, table):
            victim = _load(database_url, days[-1], f"killed-{round_}")
            try:
                def reached(v: subprocess.Popen[bytes] = victim) -> bool:
                    return _waiting_on_lock(database_url) or v.poll() is not None

                wait_for(reached, timeout=120, what=f"the load to reach {table}")
                assert victim.poll() is None, victim.stderr.read() if victim.stderr else ""
                victim.send_signal(signal.SIGKILL)
                victim.wait(timeout=30)
                killed += 1
            finally:
                if victim.poll() is None:
                    victim.kill()
        # The server rolls the dead session back once it notices the closed socket.
        wait_for(lambda: _load_backends(database_url) == 0, timeout=60,
                 what="the killed load's transaction to be rolled back")
        assert table_checksums(database_url) == empty

    for day in days:
        retry = _load(database_url, day, f"retry-{day}")
        assert retry.wait(timeout=600) == 0, retry.stderr.read() if retry.stderr else ""
    retried = table_checksums(database_url)
    for day in days:
        again = _load(database_url, day, f"again-{day}")
        assert again.wait(timeout=600) == 0
    assert table_checksums(database_url) == retried
    landed_traffic.verify(database_url, tmp_path, scenario="load task killed mid-transaction "
                          "and retried", scale=scale, loads_killed=killed)


def test_one_day_loaded_twice_at_once_equals_loading_it_once(
        scale: Scale, landed_traffic: Traffic, tmp_path: Path, database_url: str):
    days = appended_days(database_url)
    for day in days[:-1]:
        assert _load(database_url, day, f"first-{day}").wait(timeout=600) == 0
    alone = _load(database_url, days[-1], "alone")
    assert alone.wait(timeout=600) == 0
    once = table_checksums(database_url)

    racers = [_load(database_url, days[-1], f"racer-{n}") for n in range(2)]
    codes = [r.wait(timeout=600) for r in racers]

    assert codes == [0, 0]
    assert table_checksums(database_url) == once
    with psycopg.connect(database_url) as conn:
        runs = conn.execute("SELECT count(DISTINCT run_id) FROM ops.load_runs "
                            "WHERE business_day = %s", (days[-1],)).fetchone()
    assert runs == (3,)
    landed_traffic.verify(database_url, tmp_path, scenario="same day loaded twice concurrently",
                          scale=scale, concurrent_loads=2)
