"""A subscriber written in Go from the JSON Schemas and docs alone mirrors its feed as well."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest
from kafka import KafkaProducer

from adapters.kafka import ensure_topics
from infra.local import REPO_ROOT
from partners.follow import Mirror
from schemas.topics import sync_topic
from tests.support.feed import relay_settings, topic_records, views_of
from tests.support.nightly import load_days
from warehouse.relay import Relay

pytestmark = pytest.mark.integration

EXAMPLE = REPO_ROOT / "partners" / "examples" / "go-follower"
BINARY = REPO_ROOT / ".local" / "test" / "go-follower"


@pytest.fixture(scope="module")
def go_follower() -> Path:
    """Built from the locked modules (go.sum) with the machine's Go toolchain."""
    env = {**os.environ, "GOFLAGS": "-mod=readonly"}
    subprocess.run(["go", "build", "-o", str(BINARY), "."], cwd=EXAMPLE, env=env, check=True,
                   timeout=600)
    return BINARY


def _follow(binary: Path, bootstrap: str, subscriber: str, mirror: Path, *,
            timeout: float = 300) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(binary), "-bootstrap", bootstrap, "-subscriber", subscriber, "-mirror", str(mirror),
         "-schemas", str(REPO_ROOT / "schemas" / "json" / "sync"), "-once"],
        capture_output=True, text=True, timeout=timeout, check=False)


def _rows(path: Path) -> dict:
    mirror = Mirror(f"sqlite:///{path}")
    try:
        return mirror.rows()
    finally:
        mirror.close()


def test_the_go_subscriber_mirrors_every_view_and_refuses_an_unknown_contract(
        go_follower, feed_city, kafka_bootstrap, tmp_path):
    city = feed_city(events=600, days=3)
    load_days(city.database_url, city.days[:2], "night")
    settings = relay_settings(city.database_url, kafka_bootstrap)
    Relay(settings).run(until_caught_up=True)
    for subscriber in city.subscribers:
        assert _follow(go_follower, kafka_bootstrap, subscriber,
                       tmp_path / f"{subscriber}.sqlite").returncode == 0
    # More nights, withdrawals and revocations among them: the mirrors resume from their own
    # positions and apply upserts and deletes.
    load_days(city.database_url, city.days[2:], "night")
    Relay(settings).run(until_caught_up=True)
    views = views_of(city.database_url, city.registry)
    for subscriber in city.subscribers:
        done = _follow(go_follower, kafka_bootstrap, subscriber, tmp_path / f"{subscriber}.sqlite")
        assert done.returncode == 0, done.stderr
        assert _rows(tmp_path / f"{subscriber}.sqlite") == views[subscriber], subscriber

    subscriber = max(city.subscribers, key=lambda s: len(views[s]))
    topic = sync_topic(subscriber)
    last = topic_records(kafka_bootstrap, topic)[-1]
    headers = dict(last.headers)
    version = str(int(headers["ce_changeversion"]) + 1).encode()
    producer = KafkaProducer(bootstrap_servers=kafka_bootstrap, acks="all")
    producer.send(topic, partition=0, key=b"from the future", value=last.value or b"{}",
                  headers=list({**headers, "ce_changeversion": version, "ce_id": version,
                                "ce_subject": b"from the future",
                                "ce_type": headers["ce_type"].replace(b".v1", b".v2")}.items()))
    producer.close()

    refused = _follow(go_follower, kafka_bootstrap, subscriber, tmp_path / f"{subscriber}.sqlite")

    assert refused.returncode == 3
    assert "does not know" in refused.stderr and "nothing from this change on" in refused.stderr
    assert _rows(tmp_path / f"{subscriber}.sqlite") == views[subscriber]


def test_the_go_subscriber_of_a_feed_with_no_change_yet_catches_up_at_once(
        go_follower, kafka_bootstrap, seeded, tmp_path):
    subscriber = seeded.partner_id()
    ensure_topics(kafka_bootstrap, [sync_topic(subscriber)], partitions=1)

    done = _follow(go_follower, kafka_bootstrap, subscriber, tmp_path / "empty.sqlite",
                   timeout=60)

    assert done.returncode == 0, done.stderr
    assert _rows(tmp_path / "empty.sqlite") == {}
