"""Consumers dying around the commit, joining and leaving in a storm, and stalling past eviction."""

from __future__ import annotations

import random
import time
from pathlib import Path

import pytest

from tests.fault.harness import Traffic, finish_publishing, hooked_consumer
from tests.support.consumers import ConsumerProcess, landed_count, process_env, running, wait_for

pytestmark = pytest.mark.integration


def _env(tmp_path: Path, kafka_bootstrap: str, database_url: str, partners: dict[str, str],
         **settings: str) -> dict[str, str]:
    return process_env(tmp_path, kafka_bootstrap=kafka_bootstrap, database_url=database_url,
                       partners=partners, batch_size="200",
                       # A dead member holds its partitions until its session expires.
                       session_timeout_ms="6000", **settings)


def _partners(new_partners) -> dict[str, str]:
    return new_partners("training_platform", "technician_college", "evaluation_org")


@pytest.mark.parametrize("point", ["before_commit", "after_commit"])
def test_kill_9_around_the_database_commit_loses_and_duplicates_nothing(
        point, scale, tmp_path, kafka_bootstrap, database_url, new_partners):
    traffic = Traffic.simulated(_partners(new_partners), scale, seed=101)
    traffic.publish(kafka_bootstrap)
    env = _env(tmp_path, kafka_bootstrap, database_url, traffic.partners)
    rng = random.Random(f"crash:{point}")
    deaths = 0
    for round_ in range(scale.rounds):
        before = landed_count(database_url)
        victim = hooked_consumer(env, tmp_path / f"victim-{round_}.log",
                                 crash=f"{point}:{rng.randint(1, 4)}")
        try:
            victim.proc.wait(timeout=120)
        finally:
            victim.kill()
        deaths += victim.proc.returncode == -9
        after = landed_count(database_url)
        # Before the commit, the dying batch's rows vanish with it; after, they are all there.
        assert after >= before
    started = time.monotonic()
    with running(env, tmp_path / "final.log", "run", "--until-caught-up") as final:
        assert final.proc.wait(timeout=300) == 0
    recovery = round(time.monotonic() - started, 1)

    assert deaths == scale.rounds
    traffic.verify(database_url, tmp_path, scenario=f"kill -9 {point.replace('_', ' ')}",
                   scale=scale, lag_recovery_s=recovery, kills=deaths)


def test_a_rebalance_storm_of_clean_and_hard_exits_lands_every_event_once(
        scale, tmp_path, kafka_bootstrap, database_url, new_partners):
    traffic = Traffic.simulated(_partners(new_partners), scale, seed=202)
    env = _env(tmp_path, kafka_bootstrap, database_url, traffic.partners)
    rng = random.Random(202)
    publisher = traffic.publish_in_background(kafka_bootstrap, over_s=scale.traffic_s)
    members: list[ConsumerProcess] = []
    changes = {"joined": 0, "left_clean": 0, "killed": 0}
    try:
        storm_ends = time.monotonic() + scale.traffic_s
        while time.monotonic() < storm_ends:
            members = [m for m in members if m.proc.poll() is None]
            if len(members) < 2 or (len(members) < 3 and rng.random() < 0.5):
                members.append(hooked_consumer(
                    env, tmp_path / f"member-{sum(changes.values())}.log"))
                changes["joined"] += 1
            else:
                leaving = members.pop(rng.randrange(len(members)))
                if rng.random() < 0.5:
                    leaving.terminate(timeout=60)
                    changes["left_clean"] += 1
                else:
                    leaving.kill()
                    changes["killed"] += 1
            time.sleep(rng.uniform(2.0, 4.0))
        finish_publishing(publisher, timeout=300)
        if not any(m.proc.poll() is None for m in members):
            members.append(hooked_consumer(env, tmp_path / "last.log"))
        recovery = traffic.wait_caught_up(database_url)
    finally:
        for member in members:
            member.kill()

    assert changes["left_clean"] and changes["killed"]
    traffic.verify(database_url, tmp_path, scenario="rebalance storm", scale=scale,
                   lag_recovery_s=recovery, **changes)


def test_a_consumer_evicted_for_slow_processing_cannot_land_its_stale_batch(
        scale, tmp_path, kafka_bootstrap, database_url, new_partners):
    traffic = Traffic.simulated(_partners(new_partners), scale, seed=303)
    traffic.publish(kafka_bootstrap)
    env = _env(tmp_path, kafka_bootstrap, database_url, traffic.partners,
               max_poll_interval_ms="5000")
    release = tmp_path / "release"
    slow = hooked_consumer(env, tmp_path / "slow.log", stall=f"3:{release}")
    try:
        wait_for(lambda: Path(f"{release}.stalled").exists() or slow.proc.poll() is not None,
                 timeout=120, what="the slow consumer to stall on its third batch")
        assert slow.proc.poll() is None
        stalled_at = landed_count(database_url)
        with running(env, tmp_path / "successor.log") as successor:
            recovery = traffic.wait_caught_up(database_url)
            # The successor took every partition and landed past the stalled batch.
            assert landed_count(database_url) > stalled_at
            release.touch()
            dropped = slow.wait_logged("batch dropped", timeout=120)
            successor.terminate(timeout=60)
    finally:
        slow.kill()

    # Caught by the ownership check or, failing that, by the compare-and-set on positions.
    assert dropped["reason"] in {"partition_released", "fenced"}
    traffic.verify(database_url, tmp_path, scenario="processing slower than max.poll.interval",
                   scale=scale, lag_recovery_s=recovery)
