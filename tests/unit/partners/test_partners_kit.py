"""The publishing kit: refuses locally what the pipeline would, keys and totals what it sends."""

from __future__ import annotations

import copy
from datetime import date

import orjson
import pytest

from partners.cli import main
from partners.kit import Publisher, RejectRecord, SendFailed, send_all
from partners.simulate import simulate
from schemas.errors import Rejection
from schemas.examples import example_events
from schemas.identity import resident_id_check_char
from schemas.pipeline import check_event
from schemas.topics import events_topic

ENROLLMENT = "org.skillsync.enrollment.created.v1"
UNREACHABLE = "127.0.0.1:9"


class FutureDouble:
    def get(self, timeout: float | None = None) -> None:
        return None

    def add_errback(self, callback: object) -> None:
        return None


class ProducerDouble:
    """Records what would have gone to the broker."""

    def __init__(self, bootstrap: str | None) -> None:
        self.bootstrap = bootstrap
        self.sent: list[tuple[str, bytes, bytes]] = []

    def send(self, topic: str, *, key: bytes, value: bytes, headers: list) -> FutureDouble:
        self.sent.append((topic, key, value))
        return FutureDouble()

    def flush(self, timeout: float | None = None) -> None:
        return None

    def close(self, timeout: float | None = None) -> None:
        return None


def _enrollment(n: int) -> dict:
    event = copy.deepcopy(example_events()[ENROLLMENT])
    event["id"] = f"evt-zjgj-{n:05d}"
    event["subject"] = event["data"]["enrollment_id"] = f"ZJGJ-E{n:05d}"
    first17 = f"33010619900101{n % 1000:03d}"
    event["data"]["learner"]["id_number"] = first17 + resident_id_check_char(first17)
    return event


def _broken_variants() -> list[bytes]:
    wrong_level = _enrollment(1)
    wrong_level["data"]["course"]["level"] = 9
    foreign = _enrollment(2)
    foreign["source"] = "/partners/xgxy"
    checksum = _enrollment(3)
    number = checksum["data"]["learner"]["id_number"]
    checksum["data"]["learner"]["id_number"] = number[:17] + ("0" if number[17] != "0" else "1")
    certificate = copy.deepcopy(example_events()["org.skillsync.certificate.issued.v1"])
    certificate["source"] = "/partners/zjgj"
    return [orjson.dumps(e) for e in (wrong_level, foreign, checksum, certificate)] + [b"{oops"]


@pytest.fixture
def producers():
    made: list[ProducerDouble] = []

    def factory(bootstrap: str | None) -> ProducerDouble:
        made.append(ProducerDouble(bootstrap))
        return made[-1]

    return made, factory


def test_refusals_carry_the_reason_code_the_pipeline_gives(registry, throwaway_pseudonymiser):
    broken = _broken_variants()
    publisher = Publisher("zjgj", registry=registry, bootstrap=UNREACHABLE)
    report = publisher.publish(broken)
    pipeline_codes = []
    for raw in broken:
        with pytest.raises(Rejection) as refused:
            check_event(raw, topic_partner="zjgj", registry=registry,
                        pseudonymiser=throwaway_pseudonymiser)  # fmt: skip
        pipeline_codes.append(refused.value.code)
    assert [r.code for r in report.refused] == pipeline_codes
    assert len(set(pipeline_codes)) == len(broken)
    assert report.sent == 0


def test_refused_events_never_reach_the_broker(registry, producers):
    made, factory = producers
    publisher = Publisher("zjgj", registry=registry, producer_factory=factory)
    report = publisher.publish(_broken_variants())
    assert report.sent == 0
    assert all(not producer.sent for producer in made)


def test_construction_connects_to_nothing(registry, producers):
    made, factory = producers
    Publisher("zjgj", registry=registry, producer_factory=factory)
    assert made == []


def test_valid_events_go_to_the_partners_topic_keyed_by_subject(registry, producers):
    made, factory = producers
    events = [_enrollment(n) for n in range(3)]
    publisher = Publisher("zjgj", registry=registry, producer_factory=factory)
    report = publisher.publish([orjson.dumps(e) for e in events] + _broken_variants()[:1])
    assert (report.sent, len(report.refused)) == (3, 1)
    assert report.refused[0].index == 3
    (producer,) = made
    assert [(t, k) for t, k, _ in producer.sent] == [
        (events_topic("zjgj"), e["subject"].encode()) for e in events
    ]


def test_control_totals_cover_what_was_sent_for_the_day(
    registry, producers, throwaway_pseudonymiser
):
    made, factory = producers
    events = [_enrollment(n) for n in range(4)]
    publisher = Publisher("zjgj", registry=registry, producer_factory=factory)
    publisher.publish([orjson.dumps(e) for e in events])
    report = publisher.publish_totals(date(2024, 3, 1))
    assert report.sent == 1 and not report.refused
    totals = orjson.loads(made[0].sent[-1][2])
    checked = check_event(made[0].sent[-1][2], topic_partner="zjgj", registry=registry,
                          pseudonymiser=throwaway_pseudonymiser)  # fmt: skip
    assert checked.family == "control.totals"
    assert totals["data"]["counts"] == {"enrollment.created": 4}
    assert sorted(totals["data"]["event_ids"]["enrollment.created"]) == sorted(
        e["id"] for e in events
    )


def test_reject_records_are_read_from_the_pipelines_headers():
    headers = [
        ("content-type", b"application/cloudevents+json"),
        ("skillsync.original_topic", b"skills.events.zjgj"),
        ("skillsync.original_partition", b"2"),
        ("skillsync.original_offset", b"41"),
        ("skillsync.reason_code", b"id_number.checksum"),
        ("skillsync.field_path", b"$.data.learner.id_number"),
        ("skillsync.message", b"the check character does not match"),
        ("skillsync.stage", b"validate"),
    ]
    record = RejectRecord.from_kafka(b"ZJGJ-E1", b"{}", headers)
    assert (record.reason_code, record.field_path, record.stage) == (
        "id_number.checksum", "$.data.learner.id_number", "validate",
    )  # fmt: skip
    assert (record.original_topic, record.original_partition, record.original_offset) == (
        "skills.events.zjgj", 2, 41,
    )  # fmt: skip


def test_cli_check_only_explains_refusals_and_fails(tmp_path, capsys):
    source = tmp_path / "events.jsonl"
    source.write_bytes(orjson.dumps(_enrollment(1)) + b"\n" + _broken_variants()[0] + b"\n")
    assert main(["publish", "--partner", "zjgj", "--file", str(source), "--check-only"]) == 1
    assert "line 2: refused schema.out_of_range" in capsys.readouterr().err


def test_cli_simulate_writes_topic_files_and_manifest(tmp_path):
    out = tmp_path / "sim"
    args = ["simulate", "--day", "2025-03-10", "--events", "300", "--seed", "4", "--malformed", "2"]
    assert main([*args, "--out", str(out)]) == 0
    manifest = orjson.loads((out / "manifest.json").read_bytes())
    lines = sum(len(p.read_bytes().splitlines()) for p in out.glob("skills.events.*.jsonl"))
    assert lines == manifest["messages"]
    assert len(manifest["rejected"]) == 2


class FailingFuture(FutureDouble):
    def add_errback(self, callback) -> None:
        callback(TimeoutError("no acknowledgement"))


def test_send_all_sends_in_order_and_reports_unacknowledged_sends(registry):
    simulation = simulate(date(2025, 3, 10), 50, seed=2, registry=registry)
    producer = ProducerDouble(None)
    assert send_all(simulation.messages, producer) == len(simulation)
    assert [(t, k, v) for t, k, v in producer.sent] == [
        (m.topic, m.key, m.value) for m in simulation.messages
    ]

    failing = ProducerDouble(None)
    failing.send = lambda topic, **kwargs: FailingFuture()  # type: ignore[method-assign]
    with pytest.raises(SendFailed, match="not acknowledged"):
        send_all(simulation.messages, failing)
