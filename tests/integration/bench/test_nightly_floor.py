"""The nightly bench's floor and per-statement shares: measured on real PostgreSQL."""

from __future__ import annotations

from datetime import date

import psycopg
import pytest

from bench.nightly_bench import (
    copy_floor,
    land_day,
    reset_statement_stats,
    statement_stats,
    statement_stats_ready,
)

pytestmark = pytest.mark.integration
DAY = date(2026, 6, 15)


def test_the_copy_floor_moves_the_whole_day_out_and_back_in_and_leaves_nothing(
        database_url: str) -> None:
    counts = land_day(database_url, DAY, 300, seed=3, offsets={})
    reset_statement_stats_if_ready(database_url)

    copied_out, copied_in = copy_floor(database_url, DAY)

    assert copied_out > 0 and copied_in > 0
    with psycopg.connect(database_url) as conn:
        assert conn.execute("SELECT to_regclass('staging.bench_floor')").fetchone() == (None,)
    copy_in = [s for s in statement_stats(database_url) if s[0].startswith("COPY staging.")]
    # The day's rows, every one of them, went through the COPY in.
    assert counts["event"] > 0 and len(copy_in) == 1 and copy_in[0][1] == 1


def test_each_statement_of_this_database_is_timed_since_the_last_reset(
        database_url: str) -> None:
    reset_statement_stats_if_ready(database_url)
    with psycopg.connect(database_url) as conn:
        for _ in range(3):
            conn.execute("SELECT count(*) FROM staging.events WHERE append_day = %s", (DAY,))

    stats = statement_stats(database_url)

    assert [(calls, query) for query, calls, _ in stats if "staging.events" in query] == [
        (3, "SELECT count(*) FROM staging.events WHERE append_day = $1")]


def reset_statement_stats_if_ready(database_url: str) -> None:
    # The test services start PostgreSQL as `make up` does, with pg_stat_statements preloaded.
    assert statement_stats_ready(database_url) is None
    reset_statement_stats(database_url)
