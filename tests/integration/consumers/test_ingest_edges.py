"""Real-world edges on the real services: markers, re-created topics, reused ids, odd input."""

from __future__ import annotations

import hashlib
import subprocess
import sys
import threading
import time
import unicodedata
from datetime import UTC, datetime

import psycopg
import pytest
from kafka import KafkaConsumer, KafkaProducer, TopicPartition
from kafka.admin import KafkaAdminClient
from kafka.errors import KafkaError

from adapters.ingest_lag import partition_lag
from adapters.kafka import ensure_topics
from adapters.settings import KafkaSettings
from infra.local import REPO_ROOT
from schemas.topics import events_topic, rejects_topic
from tests.support.consumers import (
    consumer_settings,
    free_port,
    landed_count,
    process_env,
    running,
    service,
    topic_pattern,
    wait_for,
)
from tests.support.events import encode, enrollment
from tests.support.kafka import publish, read_topic
from warehouse.freshness import ingest_progress

pytestmark = pytest.mark.integration

# After every record the broker appended: the cutoff that asks for everything.
EVERYTHING = datetime(2100, 1, 1, tzinfo=UTC)


def _status(env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "consumers", "status"], env=env, cwd=REPO_ROOT,
                          capture_output=True, text=True, timeout=120)


def _status_lag(env: dict[str, str], pid: str) -> int:
    done = _status(env)
    assert done.returncode == 0, done.stderr
    row = next(line for line in done.stdout.splitlines() if line.startswith(pid))
    return int(row.split()[1])


def _catch_up(env: dict[str, str], log_path, *args: str, timeout: float = 180) -> int:
    with running(env, log_path, "run", "--until-caught-up", *args) as process:
        return process.proc.wait(timeout=timeout)


def _end_offsets(bootstrap: str, topic: str) -> dict[int, int]:
    consumer = KafkaConsumer(bootstrap_servers=bootstrap, isolation_level="read_committed")
    try:
        partitions = [TopicPartition(topic, p) for p in range(3)]
        return {tp.partition: end for tp, end in consumer.end_offsets(partitions).items()}
    finally:
        consumer.close()


def _landed_positions(database_url: str, topic: str) -> dict[int, int]:
    with psycopg.connect(database_url) as conn:
        return dict(conn.execute("SELECT partition, next_offset FROM staging.consumer_offsets "
                                 "WHERE topic = %s", (topic,)).fetchall())


def test_a_commit_marker_as_the_last_write_leaves_no_lag_anywhere(
        tmp_path, kafka_bootstrap, database_url, new_partners):
    partners = new_partners("training_platform")
    pid = partners["training_platform"]
    topic = events_topic(pid)
    producer = KafkaProducer(bootstrap_servers=kafka_bootstrap, acks="all",
                             enable_idempotence=True, transactional_id=f"tx-{pid}")
    producer.init_transactions()
    producer.begin_transaction()
    for n in range(30):  # every partition ends with the transaction's commit marker
        producer.send(topic, encode(enrollment(pid, n)), partition=n % 3)
    producer.commit_transaction()
    producer.close()
    env = process_env(tmp_path, kafka_bootstrap=kafka_bootstrap, database_url=database_url,
                      partners=partners)

    status = _catch_up(env, tmp_path / "catch-up.log")

    assert status == 0
    assert landed_count(database_url) == 30
    # The landed positions are the reader's: past each partition's marker, at its end.
    assert _landed_positions(database_url, topic) == _end_offsets(kafka_bootstrap, topic)
    assert _status_lag(env, pid) == 0
    progress = ingest_progress(
        consumer_settings(kafka_bootstrap, database_url, group_id=env["SKILLSYNC_CONSUMER_GROUP"],
                          topic_pattern=topic_pattern(partners)), EVERYTHING)
    assert progress.caught_up, progress.describe()


def _recreate(bootstrap: str, topic: str) -> None:
    admin = KafkaAdminClient(bootstrap_servers=bootstrap)
    try:
        admin.delete_topics([topic])
        wait_for(lambda: topic not in admin.list_topics(), timeout=60, what="topic deleted")
    finally:
        admin.close()
    deadline = time.monotonic() + 60
    while True:  # the broker may still be removing the old incarnation
        try:
            ensure_topics(bootstrap, [topic])
            return
        except KafkaError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.5)


def _topic_ids(database_url: str, topic: str) -> set[object]:
    with psycopg.connect(database_url) as conn:
        return {row[0] for row in conn.execute(
            "SELECT topic_id FROM staging.consumer_offsets WHERE topic = %s", (topic,))}


def test_a_topic_deleted_and_re_created_while_stopped_is_read_from_its_new_start(
        tmp_path, kafka_bootstrap, database_url, new_partners):
    partners = new_partners("training_platform")
    pid = partners["training_platform"]
    topic = events_topic(pid)
    publish(kafka_bootstrap, topic, [encode(enrollment(pid, n)) for n in range(246)])
    env = process_env(tmp_path, kafka_bootstrap=kafka_bootstrap, database_url=database_url,
                      partners=partners)
    assert _catch_up(env, tmp_path / "first.log") == 0
    old_incarnation = _topic_ids(database_url, topic)

    _recreate(kafka_bootstrap, topic)
    publish(kafka_bootstrap, topic, [encode(enrollment(pid, n)) for n in range(1000, 1438)])
    status = _catch_up(env, tmp_path / "second.log")

    assert status == 0
    # The old incarnation's rows stay landed; every record of the new one lands too.
    assert landed_count(database_url) == 246 + 438
    assert _landed_positions(database_url, topic) == _end_offsets(kafka_bootstrap, topic)
    assert _topic_ids(database_url, topic).isdisjoint(old_incarnation)
    assert _status_lag(env, pid) == 0


def test_a_topic_re_created_under_a_running_consumer_is_read_from_its_new_start(
        kafka_bootstrap, database_url, new_partners, pseudonymiser):
    partners = new_partners("training_platform")
    pid = partners["training_platform"]
    topic = events_topic(pid)
    publish(kafka_bootstrap, topic, [encode(enrollment(pid, n)) for n in range(300)])
    # Timing decides whether the old code lost these: met while the new topic is still empty,
    # the old positions are past its end and the reader starts over; the test stopped above
    # is the one that always lost them.
    consumer = service(kafka_bootstrap, database_url, partners, pseudonymiser)
    runner = threading.Thread(target=consumer.run)
    runner.start()
    try:
        wait_for(lambda: landed_count(database_url) == 300, timeout=120, what="first landing")
        _recreate(kafka_bootstrap, topic)
        # More than the old incarnation held: its positions would be valid offsets here.
        publish(kafka_bootstrap, topic, [encode(enrollment(pid, n)) for n in range(1000, 1600)])
        wait_for(lambda: landed_count(database_url) == 900, timeout=120,
                 what="the new incarnation's 600 events landed")
    finally:
        consumer.request_stop()
        runner.join(timeout=120)


def test_an_event_id_reused_with_other_content_is_refused_with_both_digests(
        kafka_bootstrap, database_url, new_partners, pseudonymiser):
    partners = new_partners("training_platform")
    pid = partners["training_platform"]
    topic = events_topic(pid)
    original = encode(enrollment(pid, 1))
    publish(kafka_bootstrap, topic, [original], key=b"one")
    service(kafka_bootstrap, database_url, partners, pseudonymiser).run(until_caught_up=True)
    altered = enrollment(pid, 1)
    altered["data"]["learner"]["name"] = "李四"
    reused = encode(altered)
    # A brand-new id twice in one batch, with other bytes the second time.
    fresh, fresh_altered = enrollment(pid, 2), enrollment(pid, 2)
    fresh_altered["data"]["course"]["hours"] = 65
    publish(kafka_bootstrap, topic, [original, reused, encode(fresh), encode(fresh_altered)],
            key=b"one")

    stats = service(kafka_bootstrap, database_url, partners, pseudonymiser).run(
        until_caught_up=True)

    assert (stats.landed, stats.redelivered, stats.rejected) == (1, 1, 2)
    with psycopg.connect(database_url) as conn:
        refusals = conn.execute(
            "SELECT event_id, reason_code, field_path, message, payload_sha256 "
            "FROM staging.rejected ORDER BY kafka_offset").fetchall()
        names = conn.execute("SELECT data->'learner'->>'name_masked' FROM staging.events "
                             "WHERE event_id = %s", (f"{pid}-evt-0000001",)).fetchall()
    assert [(r[0], r[1], r[2]) for r in refusals] == [
        (f"{pid}-evt-0000001", "envelope.id_reused", "$.id"),
        (f"{pid}-evt-0000002", "envelope.id_reused", "$.id")]
    first = refusals[0][3]
    assert hashlib.sha256(original).hexdigest() in first
    assert hashlib.sha256(reused).hexdigest() in first
    assert refusals[0][4] == hashlib.sha256(reused).hexdigest()
    assert names == [("张**",)]  # the first content stays
    rejects = read_topic(kafka_bootstrap, rejects_topic(pid), 2, timeout=20)
    assert sorted(r.value for r in rejects) == sorted([reused, encode(fresh_altered)])
    assert {dict(r.headers)["skillsync.reason_code"] for r in rejects} == {b"envelope.id_reused"}


_HOLDER = """
import sys, time
from kafka import KafkaConsumer
from kafka.coordinator.assignors.cooperative_sticky import CooperativeStickyAssignor
bootstrap, group, pattern = sys.argv[1:4]
consumer = KafkaConsumer(bootstrap_servers=bootstrap, group_id=group, enable_auto_commit=False,
                         session_timeout_ms=6000, heartbeat_interval_ms=1000,
                         partition_assignment_strategy=(CooperativeStickyAssignor,))
consumer.subscribe(pattern=pattern)
said = False
while True:  # a member that holds its partitions and lands nothing
    consumer.poll(timeout_ms=500)
    if consumer.assignment() and not said:
        print("holding", len(consumer.assignment()), flush=True)
        said = True
"""


def test_catch_up_never_claims_success_while_another_members_partitions_are_behind(
        tmp_path, kafka_bootstrap, database_url, new_partners):
    partners = new_partners("training_platform")
    pid = partners["training_platform"]
    topic = events_topic(pid)
    producer = KafkaProducer(bootstrap_servers=kafka_bootstrap, acks="all")
    for n in range(600):
        producer.send(topic, encode(enrollment(pid, n)), partition=n % 3)
    producer.flush()
    producer.close()
    env = process_env(tmp_path, kafka_bootstrap=kafka_bootstrap, database_url=database_url,
                      partners=partners, session_timeout_ms="6000")
    holder = subprocess.Popen(
        [sys.executable, "-c", _HOLDER, kafka_bootstrap, env["SKILLSYNC_CONSUMER_GROUP"],
         topic_pattern(partners)], cwd=REPO_ROOT, stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout is not None and holder.stdout.readline().startswith("holding")
        with running(env, tmp_path / "impatient.log", "run", "--until-caught-up",
                     "--catch-up-patience", "8") as impatient:
            status = impatient.proc.wait(timeout=180)
        said = impatient.logged("not caught up")
        landed_while_held = landed_count(database_url)
        holder.kill()  # a dead member: its partitions move once its session expires
        holder.wait(timeout=30)
        after_death = _catch_up(env, tmp_path / "patient.log")
    finally:
        holder.kill()

    assert status == 4
    assert said and said[-1]["level"] == "error"
    assert any(name.startswith(f"{topic}[") for name in said[-1]["behind"])
    assert landed_while_held < 600
    assert after_death == 0
    assert landed_count(database_url) == 600


def _start_line(command: str, env: dict[str, str]) -> str:
    """What `python -m consumers COMMAND` says when a service is away: it must be one line."""
    done = subprocess.run([sys.executable, "-m", "consumers", command], env=env, cwd=REPO_ROOT,
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 69, done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    return lines[0]


@pytest.mark.parametrize("command", ["run", "status"])
def test_unreachable_kafka_at_start_is_one_line_naming_the_setting_and_address(
        command, tmp_path, database_url):
    address = f"127.0.0.1:{free_port()}"
    env = process_env(tmp_path, kafka_bootstrap=address, database_url=database_url,
                      partners={"training_platform": "tunreach"}, startup_timeout_s="2")

    line = _start_line(command, env)

    assert "KAFKA_BOOTSTRAP_SERVERS" in line and address in line


@pytest.mark.parametrize("command", ["run", "status"])
def test_unreachable_postgres_at_start_is_one_line_naming_the_setting_and_address(
        command, tmp_path, kafka_bootstrap):
    port = free_port()
    env = process_env(tmp_path, kafka_bootstrap=kafka_bootstrap,
                      database_url=f"postgresql://skillsync:secret-pw@127.0.0.1:{port}/skillsync",
                      partners={"training_platform": "tunreach"}, startup_timeout_s="2")

    line = _start_line(command, env)

    assert "SKILLSYNC_DATABASE_URL" in line and f"127.0.0.1:{port}/skillsync" in line
    assert "secret-pw" not in line


def _get(port: int, path: str) -> tuple[int, str]:
    import urllib.error
    import urllib.request

    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=10) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as error:
        return error.code, error.read().decode()


def test_health_metrics_and_status_show_each_processes_partitions_and_membership(
        tmp_path, kafka_bootstrap, database_url, new_partners):
    partners = new_partners("training_platform")
    pid = partners["training_platform"]
    port = free_port()
    env = process_env(tmp_path, kafka_bootstrap=kafka_bootstrap, database_url=database_url,
                      partners=partners, metrics_port=str(port), membership_check_s="1")
    with running(env, tmp_path / "consumer.log") as consumer:
        consumer.wait_logged("partitions assigned", timeout=60)
        wait_for(lambda: _get(port, "/readyz")[0] == 200, timeout=30, what="ready")
        live = _get(port, "/livez")
        ready = _get(port, "/readyz")
        scraped = _get(port, "/metrics")[1]
        status = _status(env)
        consumer.terminate(timeout=30)

    assert live[0] == 200 and ready[0] == 200 and "owning 3 partitions" in ready[1]
    owned = [line for line in scraped.splitlines()
             if line.startswith("skillsync_partition_owned{") and line.endswith(" 1.0")]
    assert len(owned) == 3 and all(events_topic(pid) in line for line in owned)
    assert "skillsync_consumer_in_group 1.0" in scraped
    assert status.returncode == 0, status.stderr
    member = [line for line in status.stdout.splitlines()
              if "in group  skillsync-consumer-" in line]
    assert len(member) == 1
    assert all(f"{events_topic(pid)}[{p}]" in member[0] for p in range(3))


def test_odd_input_is_refused_or_folded_on_the_real_services(
        kafka_bootstrap, database_url, new_partners, pseudonymiser):
    partners = new_partners("training_platform")
    pid = partners["training_platform"]

    def variant(n: int, **learner: str) -> dict:
        event = enrollment(pid, n)
        event["data"]["learner"].update({"id_number": "33010619900101123X", **learner})
        return event

    full_width = "".join(chr(0xFF10 + int(c)) if c.isdigit() else c
                         for c in "33010619900101123X")
    arabic = "".join(chr(0x0660 + int(c)) for c in "33010619900101123") + "X"
    assert unicodedata.normalize("NFKC", full_width) == "33010619900101123X"
    ancient = variant(4)
    ancient["time"] = "0001-01-01T00:00:00+14:00"
    huge = encode(variant(5)).replace(b'"level":4', b'"level":' + b"1" + b"0" * 30)
    deep = (b'{"specversion":"1.0","id":"' + pid.encode() + b'-deep","data":'
            + b'{"a":' * 5000 + b"1" + b"}" * 5001)
    not_utf8 = encode(variant(6))[:20] + b"\xff" + encode(variant(6))[20:]
    publish(kafka_bootstrap, events_topic(pid), [
        encode(variant(1)), encode(variant(2, id_number=full_width)),
        encode(variant(3, id_number=arabic)), encode(ancient), huge, deep, not_utf8,
    ], key=b"one")

    service(kafka_bootstrap, database_url, partners, pseudonymiser).run(until_caught_up=True)

    with psycopg.connect(database_url) as conn:
        persons = conn.execute("SELECT DISTINCT person FROM staging.events").fetchall()
        masks = conn.execute(
            "SELECT DISTINCT data->'learner'->>'name_masked' FROM staging.events").fetchall()
        # Every timestamp staging holds reads back (a year-1 one would raise DataError).
        conn.execute("SELECT occurred_at, sent_at, appended_at FROM staging.events").fetchall()
        refused = {row[0]: row[1:] for row in conn.execute(
            "SELECT event_id, reason_code, field_path, message FROM staging.rejected")}
    assert len(persons) == 1  # ASCII and full-width digits: one person
    assert masks == [("张**",)]
    assert refused[f"{pid}-evt-0000003"][:2] == ("id_number.format", "$.data.learner.id_number")
    assert refused[f"{pid}-evt-0000004"][:2] == ("envelope.out_of_range", "$.time")
    assert refused[f"{pid}-evt-0000005"][:2] == ("schema.out_of_range", "$.data.course.level")
    assert "out of range" in refused[f"{pid}-evt-0000005"][2]
    assert refused[f"{pid}-deep"][0] == "decode.too_deep"
    utf8 = [v for v in refused.values() if v[0] == "decode.not_utf8"]
    assert len(utf8) == 1 and "byte offset 20" in utf8[0][2]


def test_lag_is_measured_from_positions_for_the_sensor_too(
        kafka_bootstrap, database_url, new_partners, pseudonymiser):
    partners = new_partners("training_platform")
    pid = partners["training_platform"]
    producer = KafkaProducer(bootstrap_servers=kafka_bootstrap, acks="all",
                             enable_idempotence=True, transactional_id=f"tx2-{pid}")
    producer.init_transactions()
    for committed in (True, False):  # an aborted transaction last: its records never land
        producer.begin_transaction()
        for n in range(10):
            producer.send(events_topic(pid), encode(enrollment(pid, n + 10 * committed)),
                          partition=n % 3)
        if committed:
            producer.commit_transaction()
        else:
            producer.abort_transaction()
    producer.close()

    service(kafka_bootstrap, database_url, partners, pseudonymiser).run(until_caught_up=True)

    assert landed_count(database_url) == 10
    lag = partition_lag(KafkaSettings(bootstrap_servers=kafka_bootstrap),
                        topic_pattern=topic_pattern(partners), database_url=database_url,
                        group_id=f"g-{pid}")
    assert lag == {(events_topic(pid), p): 0 for p in range(3)}
