"""PostgreSQL failing under the consumer mid-batch: backends terminated, the server restarted."""

from __future__ import annotations

import contextlib
import random
import time
from collections.abc import Iterator

import psycopg
import pytest

from infra import postgres as local_postgres
from tests.fault.harness import Traffic, finish_publishing
from tests.support.consumers import own_postgres, process_env, running, wait_for

pytestmark = pytest.mark.integration

# A consumer backend inside a batch's transaction, waiting on the lock the test holds.
BLOCKED = ("SELECT pid FROM pg_stat_activity WHERE application_name LIKE 'skillsync-consumer:%' "
           "AND wait_event_type = 'Lock'")


@contextlib.contextmanager
def batch_held(database_url: str, admin_url: str) -> Iterator[list[int]]:
    """Hold the next batch mid-transaction: positions moved and rows copied, insert waiting.

    Yields the blocked consumer backends' pids; the lock goes when the block ends (or the
    server does).
    """
    holder = psycopg.connect(database_url)
    try:
        holder.execute("LOCK TABLE staging.events IN SHARE ROW EXCLUSIVE MODE")
        blocked: list[int] = []

        def found() -> bool:
            with psycopg.connect(admin_url, autocommit=True) as conn:
                blocked[:] = [pid for (pid,) in conn.execute(BLOCKED)]
            return bool(blocked)

        wait_for(found, timeout=60, what="a consumer batch waiting inside its transaction")
        yield blocked
    finally:
        with contextlib.suppress(psycopg.Error):
            holder.close()


def _terminate(admin_url: str, pids: list[int]) -> int:
    with psycopg.connect(admin_url, autocommit=True) as conn:
        return sum(conn.execute("SELECT pg_terminate_backend(%s)", (pid,)).fetchone() == (True,)
                   for pid in pids)


def test_backends_terminated_and_the_server_restarted_mid_batch_lose_nothing(
        scale, tmp_path, kafka_bootstrap, new_partners):
    partners = new_partners("training_platform", "technician_college", "evaluation_org")
    traffic = Traffic.simulated(partners, scale, seed=404)
    rng = random.Random(404)
    with own_postgres() as (cfg, database_url):
        admin_url = cfg.database_url("postgres").replace("+psycopg", "")
        env = process_env(tmp_path, kafka_bootstrap=kafka_bootstrap, database_url=database_url,
                          partners=partners, batch_size="200")
        publisher = traffic.publish_in_background(kafka_bootstrap, over_s=scale.traffic_s)
        with running(env, tmp_path / "consumer.log") as consumer:
            terminated = restarts = 0
            for _ in range(scale.rounds * 2):
                with batch_held(database_url, admin_url) as blocked:
                    terminated += _terminate(admin_url, blocked)
                time.sleep(rng.uniform(0.2, 1.5))
            for _ in range(max(1, scale.rounds // 2)):
                with batch_held(database_url, admin_url):
                    # Fast shutdown: every open transaction, the held batch's too, rolls back.
                    local_postgres.stop(cfg)
                time.sleep(rng.uniform(2.0, 5.0))
                local_postgres.start(cfg)
                restarts += 1
            finish_publishing(publisher, timeout=300)
            recovery = traffic.wait_caught_up(database_url, consumer=consumer)
            alive = consumer.proc.poll() is None
        assert alive, "the consumer must ride out PostgreSQL failures, not exit"
        traffic.verify(database_url, tmp_path, scenario="PostgreSQL backend terminated and "
                       "server restarted mid-batch", scale=scale, lag_recovery_s=recovery,
                       terminated=terminated, restarts=restarts)
