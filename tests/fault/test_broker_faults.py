"""Brokers dying under load: a single broker SIGKILLed, a replicated cluster losing leaders."""

from __future__ import annotations

import random
import shutil
import time
import uuid
from collections.abc import Iterator

import pytest

from adapters.kafka import ensure_topics
from infra.kafka import service as local_kafka
from infra.local import REPO_ROOT, LocalServices
from infra.process import read_pid
from schemas.topics import events_topic, rejects_topic
from tests.fault.harness import SHORT, Traffic, finish_publishing, hooked_consumer, kill_hard
from tests.support.cluster import LocalCluster
from tests.support.consumers import free_port, own_postgres, process_env, running
from tests.support.seed import Seeded

pytestmark = pytest.mark.integration

ROLES = ("training_platform", "technician_college", "evaluation_org")


def _partners(seeded: Seeded) -> dict[str, str]:
    return {role: seeded.partner_id() for role in ROLES}


def _topics(partners: dict[str, str]) -> list[str]:
    return [t for p in partners.values() for t in (events_topic(p), rejects_topic(p))]


@pytest.fixture
def cluster() -> Iterator[LocalCluster]:
    state = REPO_ROOT / ".local" / "test" / "own" / f"cluster-{uuid.uuid4().hex[:8]}"
    ports: list[int] = []
    while len(ports) < 6:
        port = free_port()
        if port not in ports:
            ports.append(port)
    made = LocalCluster(state, list(zip(ports[::2], ports[1::2], strict=True)))
    try:
        made.start()
        yield made
    except BaseException:
        made.stop()  # the nodes' logs stay under the state folder for the post-mortem
        raise
    made.stop()
    shutil.rmtree(state, ignore_errors=True)


def test_a_broker_sigkilled_and_restarted_under_load_loses_nothing(
        scale, tmp_path, own_kafka: LocalServices, seeded: Seeded):
    bootstrap = own_kafka.kafka_bootstrap
    partners = _partners(seeded)
    ensure_topics(bootstrap, _topics(partners))
    traffic = Traffic.simulated(partners, scale, seed=505)
    rng = random.Random(505)
    with own_postgres() as (_, database_url):
        env = process_env(tmp_path, kafka_bootstrap=bootstrap, database_url=database_url,
                          partners=partners, batch_size="200")
        publisher = traffic.publish_in_background(bootstrap, over_s=scale.traffic_s)
        with running(env, tmp_path / "consumer.log") as consumer:
            # The scenario is a broker dying under a running consumer. On a loaded machine a
            # first kill could come before the process had even connected: a start against an
            # absent broker is its own case (the test below).
            consumer.wait_logged("partitions assigned", timeout=120)
            for _ in range(scale.rounds):
                time.sleep(rng.uniform(2.0, 5.0))
                kill_hard(read_pid(local_kafka.pid_file(own_kafka)))
                time.sleep(rng.uniform(1.0, 4.0))
                local_kafka.start(own_kafka)
            finish_publishing(publisher, timeout=600)
            recovery = traffic.wait_caught_up(database_url, consumer=consumer)
            alive = consumer.proc.poll() is None
        assert alive, "the consumer must ride out the broker's death, not exit"
        traffic.verify(database_url, tmp_path, scenario="broker SIGKILL and restart under load",
                       scale=scale, lag_recovery_s=recovery, broker_kills=scale.rounds)


def test_partition_leaders_killed_repeatedly_in_a_three_broker_cluster_lose_nothing(
        scale, tmp_path, cluster: LocalCluster, seeded: Seeded):
    partners = _partners(seeded)
    topics = _topics(partners)
    cluster.create_topics(topics)
    cluster.wait_in_sync(topics)
    traffic = Traffic.simulated(partners, scale, seed=606)
    watched = events_topic(partners["training_platform"])
    rng = random.Random(606)
    leaders_killed: list[int] = []
    with own_postgres() as (_, database_url):
        env = process_env(tmp_path, kafka_bootstrap=cluster.bootstrap, database_url=database_url,
                          partners=partners, batch_size="200")
        publisher = traffic.publish_in_background(cluster.bootstrap, over_s=scale.traffic_s)
        with running(env, tmp_path / "consumer.log") as consumer:
            for round_ in range(scale.rounds):
                time.sleep(rng.uniform(1.0, 3.0))
                leader, _ = cluster.replicas([watched])[(watched, round_ % 3)]
                cluster.kill(leader)
                leaders_killed.append(leader)
                time.sleep(rng.uniform(2.0, 4.0))
                cluster.restart(leader)
                # Killing the next leader before this one is back would leave one replica:
                # fewer than min.insync, so writes would stop rather than risk a loss.
                cluster.wait_in_sync(topics)
            finish_publishing(publisher, timeout=600)
            recovery = traffic.wait_caught_up(database_url, consumer=consumer)
            alive = consumer.proc.poll() is None
        assert alive, "the consumer must ride out leader elections, not exit"
        traffic.verify(database_url, tmp_path, scenario="3-broker cluster, leader killed "
                       "repeatedly (RF 3, min ISR 2)", scale=scale, lag_recovery_s=recovery,
                       leaders_killed=len(leaders_killed))


@pytest.mark.fault_short
def test_a_consumer_started_while_the_broker_is_down_waits_for_it_and_lands_everything(
        tmp_path, own_kafka: LocalServices, seeded: Seeded):
    """Once the short broker-kill run failed its lag bound: its first kill came before the
    consumer had connected, and kafka-python's reconnect backoff (growing about fourfold per
    failure, to 30 s) outgrew the 30 s its constructor allows for bootstrapping. The process
    died with a traceback and nothing landed after that."""
    bootstrap = own_kafka.kafka_bootstrap
    partners = _partners(seeded)
    ensure_topics(bootstrap, _topics(partners))
    traffic = Traffic.simulated(partners, SHORT, seed=707)
    with own_postgres() as (_, database_url):
        env = process_env(tmp_path, kafka_bootstrap=bootstrap, database_url=database_url,
                          partners=partners, batch_size="200", startup_timeout_s="90")
        local_kafka.stop(own_kafka)
        with running(env, tmp_path / "consumer.log") as consumer:
            time.sleep(12)  # past the client's fourth reconnect backoff
            local_kafka.start(own_kafka)
            traffic.publish(bootstrap)
            recovery = traffic.wait_caught_up(database_url, consumer=consumer)
            alive = consumer.proc.poll() is None
        assert alive, "the consumer must wait for the broker, not die"
        traffic.verify(database_url, tmp_path, scenario="consumer started with the broker down",
                       scale=SHORT, lag_recovery_s=recovery)


@pytest.mark.fault_short
def test_a_consumer_whose_poll_meets_the_refused_broker_waits_and_lands_everything(
        tmp_path, own_kafka: LocalServices, seeded: Seeded):
    """Once both short broker-kill runs failed their lag bound because the consumer had died:
    a poll made while the broker was away looked for the group's coordinator, kafka-python
    raised the refused connection out of poll, and the service loop took it for fatal. The
    hooked consumer meets that timing on every poll while the broker is away."""
    bootstrap = own_kafka.kafka_bootstrap
    partners = _partners(seeded)
    ensure_topics(bootstrap, _topics(partners))
    traffic = Traffic.simulated(partners, SHORT, seed=708)
    with own_postgres() as (_, database_url):
        env = process_env(tmp_path, kafka_bootstrap=bootstrap, database_url=database_url,
                          partners=partners, batch_size="200")
        consumer = hooked_consumer(env, tmp_path / "consumer.log",
                                   module="tests.fault.unlucky_consumer")
        try:
            consumer.wait_logged("partitions assigned", timeout=120)
            kill_hard(read_pid(local_kafka.pid_file(own_kafka)))
            time.sleep(10)  # some twenty polls with no broker to ask for the coordinator
            local_kafka.start(own_kafka)
            # Everything is sent once the broker is back: only a consumer still at work lands it.
            traffic.publish(bootstrap)
            recovery = traffic.wait_caught_up(database_url, consumer=consumer)
            waited = [e for e in consumer.logged("service unavailable, retrying")
                      if e.get("service") == "kafka"]
        finally:
            consumer.kill()
        assert waited, "the refused polls were waited out as an unavailable broker"
        traffic.verify(database_url, tmp_path, scenario="poll refused while the broker is away",
                       scale=SHORT, lag_recovery_s=recovery)
