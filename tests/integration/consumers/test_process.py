"""`python -m consumers` as operators run it: settings errors, SIGTERM, kill -9, metrics, status."""

from __future__ import annotations

import re
import subprocess
import sys
import urllib.request
from collections import Counter

import psycopg
import pytest

from infra.local import REPO_ROOT
from schemas.topics import events_topic
from tests.support.consumers import (
    free_port,
    landed,
    landed_count,
    process_env,
    running,
    service,
    wait_for,
)
from tests.support.events import encode, enrollment, poison
from tests.support.kafka import publish

pytestmark = pytest.mark.integration


def _positions_match_rows(database_url: str) -> bool:
    """Every landed position covers exactly the rows landed from that partition."""
    with psycopg.connect(database_url) as conn:
        rows = conn.execute(
            "SELECT o.partition, o.next_offset, count(e.event_id) "
            "FROM staging.consumer_offsets o LEFT JOIN staging.events e "
            "ON e.topic = o.topic AND e.kafka_partition = o.partition "
            "GROUP BY 1, 2").fetchall()
    return all(next_offset == count for _, next_offset, count in rows)


@pytest.mark.parametrize(("variable", "value"), [
    ("SKILLSYNC_CONSUMER_BATCH_SIZE", "0"),
    ("KAFKA_BOOTSTRAP_SERVERS", "kafka-without-port"),
    ("SKILLSYNC_PSEUDONYM_KEY_FILE", "/nonexistent/pseudonym.keys"),
    ("SKILLSYNC_PARTNERS_REGISTRY", "/nonexistent/partners.toml"),
])
def test_a_bad_setting_stops_the_service_with_a_message_naming_it(
        variable, value, tmp_path, kafka_bootstrap, database_url):
    env = process_env(tmp_path, kafka_bootstrap=kafka_bootstrap, database_url=database_url,
                      partners={"training_platform": "tbad"})
    env[variable] = value

    done = subprocess.run([sys.executable, "-m", "consumers", "run"], env=env, cwd=REPO_ROOT,
                          capture_output=True, text=True, timeout=60)

    assert done.returncode == 2
    assert variable in done.stderr


def test_sigterm_lands_the_batch_in_hand_and_exits_promptly(
        tmp_path, kafka_bootstrap, database_url, new_partners):
    partners = new_partners("training_platform")
    pid = partners["training_platform"]
    published = publish(kafka_bootstrap, events_topic(pid),
                        [encode(enrollment(pid, n)) for n in range(4000)])
    env = process_env(tmp_path, kafka_bootstrap=kafka_bootstrap, database_url=database_url,
                      partners=partners, batch_size="200", shutdown_grace_s="20")

    with running(env, tmp_path / "consumer.log") as consumer:
        wait_for(lambda: landed_count(database_url) > 0, timeout=60, what="a first batch")
        status = consumer.terminate(timeout=25)

    assert status == 0
    assert consumer.logged("consumer stopped")
    # Stopped between batches: every position covers exactly the rows landed behind it.
    assert _positions_match_rows(database_url)
    with running(env, tmp_path / "again.log", "run", "--until-caught-up") as again:
        assert again.proc.wait(timeout=120) == 0
    rows = landed(database_url)
    assert len(rows) == len(set(rows)) == published


def test_a_consumer_killed_mid_batch_and_restarted_lands_exactly_the_published_set(
        tmp_path, kafka_bootstrap, database_url, new_partners):
    partners = new_partners("training_platform")
    pid = partners["training_platform"]
    published = publish(kafka_bootstrap, events_topic(pid),
                        [encode(enrollment(pid, n)) for n in range(4000)])
    env = process_env(tmp_path, kafka_bootstrap=kafka_bootstrap, database_url=database_url,
                      partners=partners, batch_size="100",
                      # The dead member holds its partitions until its session expires.
                      session_timeout_ms="6000")

    with running(env, tmp_path / "killed.log") as victim:
        wait_for(lambda: landed_count(database_url) > 0, timeout=60, what="a first batch")
        victim.kill()  # SIGKILL: no drain, no goodbye to the group
    landed_at_kill = landed_count(database_url)
    with running(env, tmp_path / "restarted.log", "run", "--until-caught-up") as restarted:
        assert restarted.proc.wait(timeout=120) == 0

    assert 0 < landed_at_kill < published
    rows = landed(database_url)
    assert sorted(e for _, e in rows) == [f"{pid}-evt-{n:07d}" for n in range(published)]


def test_two_processes_in_one_group_share_the_partitions_and_land_every_event_once(
        tmp_path, kafka_bootstrap, database_url, new_partners):
    partners = new_partners("training_platform")
    pid = partners["training_platform"]
    env = process_env(tmp_path, kafka_bootstrap=kafka_bootstrap, database_url=database_url,
                      partners=partners, batch_size="100")

    with running(env, tmp_path / "a.log") as first, running(env, tmp_path / "b.log") as second:
        first.wait_logged("partitions assigned", timeout=60)
        second.wait_logged("partitions assigned", timeout=60)
        published = publish(kafka_bootstrap, events_topic(pid),
                            [encode(enrollment(pid, n)) for n in range(3000)])
        wait_for(lambda: landed_count(database_url) >= published, timeout=120,
                 what="every event landed")
        assert first.terminate(timeout=30) == 0
        assert second.terminate(timeout=30) == 0

    rows = landed(database_url)
    assert len(rows) == len(set(rows)) == published
    shares = [p.logged("consumer stopped")[-1]["landed"] for p in (first, second)]
    assert sum(shares) == published
    assert all(share > 0 for share in shares)


def _scrape(port: int) -> str:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as response:
        return response.read().decode()


def _sample(text: str, name: str, **labels: str) -> float:
    wanted = ",".join(f'{k}="{v}"' for k, v in sorted(labels.items()))
    for line in text.splitlines():
        match = re.fullmatch(rf"{name}(?:\{{(.*)\}})? (\S+)", line)
        if match and ",".join(sorted((match.group(1) or "").split(","))) == wanted:
            return float(match.group(2))
    raise AssertionError(f"no sample {name}{{{wanted}}} in the scrape")


def test_the_metrics_endpoint_counts_consumed_landed_rejected_and_reports_lag(
        tmp_path, kafka_bootstrap, database_url, new_partners):
    partners = new_partners("training_platform")
    pid = partners["training_platform"]
    refused = poison(pid)
    valid = [encode(enrollment(pid, n)) for n in range(300)]
    publish(kafka_bootstrap, events_topic(pid), valid + list(refused.values()))
    port = free_port()
    env = process_env(tmp_path, kafka_bootstrap=kafka_bootstrap, database_url=database_url,
                      partners=partners, metrics_port=str(port))

    with running(env, tmp_path / "consumer.log") as consumer:
        wait_for(lambda: landed_count(database_url) == len(valid), timeout=60,
                 what="every valid event landed")
        wait_for(lambda: "skillsync_rejected_total{" in _scrape(port), timeout=30,
                 what="rejects counted")
        scraped = _scrape(port)
        consumer.terminate(timeout=30)

    assert _sample(scraped, "skillsync_consumed_total", partner=pid) == len(valid) + len(refused)
    assert _sample(scraped, "skillsync_landed_total", partner=pid) == len(valid)
    for code in refused:
        assert _sample(scraped, "skillsync_rejected_total", partner=pid, reason=code) == 1
    assert _sample(scraped, "skillsync_batch_seconds_count") >= 1
    lag = [_sample(scraped, "skillsync_consumer_lag", topic=events_topic(pid), partition=str(p))
           for p in range(3)]
    assert lag == [0, 0, 0]


def test_logs_are_json_lines_without_personal_data(
        tmp_path, kafka_bootstrap, database_url, new_partners):
    partners = new_partners("training_platform")
    pid = partners["training_platform"]
    events = [enrollment(pid, n) for n in range(50)]
    publish(kafka_bootstrap, events_topic(pid), [encode(e) for e in events] + list(
        poison(pid).values()))
    env = process_env(tmp_path, kafka_bootstrap=kafka_bootstrap, database_url=database_url,
                      partners=partners)

    with running(env, tmp_path / "consumer.log", "run", "--until-caught-up") as consumer:
        assert consumer.proc.wait(timeout=120) == 0

    entries = consumer.logs()  # fails if any line is not JSON
    assert {"consumer starting", "partitions assigned", "consumer stopped"} <= {
        e["msg"] for e in entries}
    text = "\n".join(consumer.log_lines())
    for event in events:
        learner = event["data"]["learner"]
        for personal in (learner["id_number"], learner["name"], learner["phone"]):
            assert personal not in text


def test_status_shows_lag_last_landed_time_and_rejects_by_reason(
        tmp_path, kafka_bootstrap, database_url, new_partners, pseudonymiser):
    partners = new_partners("training_platform")
    pid = partners["training_platform"]
    refused = poison(pid)
    publish(kafka_bootstrap, events_topic(pid),
            [encode(enrollment(pid, n)) for n in range(40)] + list(refused.values()))
    service(kafka_bootstrap, database_url, partners, pseudonymiser).run(until_caught_up=True)
    publish(kafka_bootstrap, events_topic(pid),
            [encode(enrollment(pid, n)) for n in range(40, 45)])  # not landed yet
    env = process_env(tmp_path, kafka_bootstrap=kafka_bootstrap, database_url=database_url,
                      partners=partners)

    done = subprocess.run([sys.executable, "-m", "consumers", "status"], env=env,
                          cwd=REPO_ROOT, capture_output=True, text=True, timeout=60)

    assert done.returncode == 0, done.stderr
    row = next(line for line in done.stdout.splitlines() if line.startswith(pid))
    _, lag, day, time_of_day, reasons = row.split(maxsplit=4)
    assert int(lag) == 5
    assert re.fullmatch(r"\d{4}-\d\d-\d\d", day) and re.fullmatch(r"\d\d:\d\d:\d\d", time_of_day)
    counts = Counter(dict(pair.split("=") for pair in reasons.split(", ")))
    assert {code: int(n) for code, n in counts.items()} == dict.fromkeys(refused, 1)
