"""A group member that wedges, and partners whose every partition ends in a transaction marker."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from adapters.ingest_lag import partition_lag
from adapters.kafka import ensure_topics
from adapters.settings import KafkaSettings
from consumers.__main__ import WEDGED_EXIT
from schemas.topics import events_topic, rejects_topic
from tests.fault.harness import Traffic, hooked_consumer
from tests.support.consumers import (
    landed,
    process_env,
    running,
    topic_pattern,
    wait_for,
)
from tests.support.events import encode, enrollment
from tests.support.kafka import publish
from tests.support.seed import Seeded

pytestmark = pytest.mark.integration

ROLES = ("training_platform", "technician_college", "evaluation_org")


def _partners(new_partners, seeded: Seeded, *late: str) -> dict[str, str]:
    made = new_partners(*ROLES)
    # Partners whose topics do not exist yet: created while the consumer runs.
    made.update({f"training_platform#{name}": seeded.partner_id() for name in late})
    return made


def _env(tmp_path: Path, kafka_bootstrap: str, database_url: str, partners: dict[str, str],
         stall_timeout_s: str = "10") -> dict[str, str]:
    return process_env(tmp_path, kafka_bootstrap=kafka_bootstrap, database_url=database_url,
                       partners=partners, batch_size="200", session_timeout_ms="6000",
                       membership_check_s="1", stall_timeout_s=stall_timeout_s)


@pytest.mark.parametrize("mode", ["stuck_io", "no_heartbeat"])
def test_a_wedged_member_says_so_exits_for_its_supervisor_and_nothing_is_lost(
        mode, scale, tmp_path, kafka_bootstrap, database_url, new_partners):
    traffic = Traffic.simulated(new_partners(*ROLES), scale, seed=909)
    traffic.publish(kafka_bootstrap)
    env = _env(tmp_path, kafka_bootstrap, database_url, traffic.partners)
    marker = tmp_path / "wedge"
    wedged = hooked_consumer(env, tmp_path / "wedged.log", module="tests.fault.wedging_consumer",
                             wedge=f"{mode}:3:{marker}")
    started = time.monotonic()
    try:
        status = wedged.proc.wait(timeout=180)
    finally:
        wedged.kill()
    noticed_s = round(time.monotonic() - started, 1)
    assert Path(f"{marker}.wedged").exists(), "the wedge was never injected"
    assert status == WEDGED_EXIT
    said = wedged.logged("consumer wedged")
    assert said and said[0]["level"] == "critical"

    # The supervisor starts it again: it resumes from PostgreSQL's positions.
    with running(env, tmp_path / "restarted.log") as restarted:
        recovery = traffic.wait_caught_up(database_url, consumer=restarted)
        assert restarted.proc.poll() is None
    traffic.verify(database_url, tmp_path, scenario=f"wedged member ({mode})", scale=scale,
                   lag_recovery_s=recovery, noticed_s=noticed_s)


def test_a_member_that_loses_the_join_a_new_topic_starts_recovers_in_place(
        scale, tmp_path, kafka_bootstrap, database_url, new_partners, seeded):
    partners = _partners(new_partners, seeded, "late")
    late = partners.pop("training_platform#late")
    traffic = Traffic.simulated(partners, scale, seed=910)
    # Time for the join to be asked for again before the stall check would end the member.
    env = _env(tmp_path, kafka_bootstrap, database_url,
               {**partners, "training_platform#late": late}, stall_timeout_s="120")
    marker = tmp_path / "wedge"
    publisher = traffic.publish_in_background(kafka_bootstrap, over_s=scale.traffic_s)
    member = hooked_consumer(env, tmp_path / "member.log", module="tests.fault.wedging_consumer",
                             wedge=f"lost_join:2:{marker}")
    try:
        wait_for(lambda: Path(f"{marker}.wedged").exists(), timeout=120,
                 what="the member's short polls to begin")
        # The new partner's topic appears: the rejoin it starts is the one the client loses.
        ensure_topics(kafka_bootstrap, [events_topic(late), rejects_topic(late)])
        count = 50 * (scale.events // 1_500)
        publish(kafka_bootstrap, events_topic(late),
                [encode(enrollment(late, n)) for n in range(count)])
        wait_for(lambda: sum(p == late for p, _ in landed(database_url)) == count,
                 timeout=180, what="the new topic's events landed")
        publisher.join(timeout=600)
        recovery = traffic.wait_caught_up(database_url, consumer=member)
        alive = member.proc.poll() is None
        member.terminate(timeout=60)
    finally:
        member.kill()
    assert alive, "the member must recover in place, not exit"
    assert member.logged("group join not finished by the client, asking it to rejoin")
    traffic.verify(database_url, tmp_path, scenario="join lost after a new topic",
                   scale=scale, lag_recovery_s=recovery, new_topic_events=count)


def test_transactional_partners_leave_no_lag_behind_their_commit_markers(
        scale, tmp_path, kafka_bootstrap, database_url, new_partners):
    traffic = Traffic.simulated(new_partners(*ROLES), scale, seed=911)
    env = _env(tmp_path, kafka_bootstrap, database_url, traffic.partners)
    with running(env, tmp_path / "consumer.log") as consumer:
        traffic.publish_in_transactions(kafka_bootstrap)
        recovery = traffic.wait_caught_up(database_url, consumer=consumer)

        def status_lag() -> int:
            return sum(partition_lag(
                KafkaSettings(bootstrap_servers=kafka_bootstrap),
                topic_pattern=topic_pattern(traffic.partners), database_url=database_url,
                group_id=env["SKILLSYNC_CONSUMER_GROUP"]).values())

        # What `consumers status` and the nightly sensor measure: end offsets, markers
        # included, against landed positions.
        wait_for(lambda: status_lag() == 0, timeout=60,
                 what="the status lag past the commit markers back to zero")
        consumer.terminate(timeout=60)
    traffic.verify(database_url, tmp_path, scenario="transactional partners (markers)",
                   scale=scale, lag_recovery_s=recovery)
