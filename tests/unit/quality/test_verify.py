"""The verifier's judgement: lost, duplicated and unexpected sets from acks, manifest and rows."""

from __future__ import annotations

from datetime import date

import orjson
import pytest

from quality.verify import Ack, Observed, RejectRow, judge, main, read_acks, write_acks

TOPIC = "skills.events.p1"
MANIFEST = {
    "landed": {"p1": {"enrollment.created": 2}},
    "rejected": [{"partner": "p1", "id": None, "key": "malformed-0001",
                  "reason": "decode.not_json"},
                 {"partner": "p1", "id": "e9", "key": "s9", "reason": "schema.extra_field"}],
}


def _ack(offset: int, event_id: str | None, key: str) -> Ack:
    value = orjson.dumps({"id": event_id}) if event_id else b"{not json"
    return Ack.of(TOPIC, 0, offset, key.encode(), value, timestamp_ms=1_700_000_000_000)


ACKS = [_ack(0, "e1", "s1"), _ack(1, "e2", "s2"), _ack(2, None, "malformed-0001"),
        _ack(3, "e9", "s9"), _ack(4, "e1", "s1")]


def _clean() -> Observed:
    return Observed(
        staged={("p1", "e1"): (TOPIC, 0, 0), ("p1", "e2"): (TOPIC, 0, 1)},
        staged_family={("p1", "e1"): "enrollment.created", ("p1", "e2"): "enrollment.created"},
        staged_day={("p1", "e1"): date(2023, 11, 15), ("p1", "e2"): date(2023, 11, 15)},
        redelivered=[(TOPIC, 0, 4)],
        rejected=[RejectRow((TOPIC, 0, 2), "decode.not_json", "$", "not JSON"),
                  RejectRow((TOPIC, 0, 3), "schema.extra_field", "$.data.x", "unknown field")],
        positions={(TOPIC, 0): 5},
    )


def test_a_run_that_landed_each_acknowledged_message_once_passes():
    report = judge(ACKS, MANIFEST, _clean())

    assert report.ok, report.render()
    assert report.counts["must_land"] == 2 and report.counts["must_reject"] == 2


def test_an_acknowledged_event_missing_from_staging_is_lost():
    seen = _clean()
    del seen.staged[("p1", "e2")]

    report = judge(ACKS, MANIFEST, seen)

    assert report.finding("staging").lost == ("('p1', 'e2')",)
    assert report.finding("offsets").lost == (f"('{TOPIC}', 0, 1)",)
    assert report.finding("manifest").lost == ("p1/enrollment.created: 1 fewer than sent",)
    assert not report.ok


def test_an_offset_landed_and_refused_both_is_duplicated():
    seen = _clean()
    seen.rejected.append(RejectRow((TOPIC, 0, 1), "schema.bad_value", "$.x", "bad"))

    report = judge(ACKS, MANIFEST, seen)

    assert report.finding("offsets").duplicated == (f"('{TOPIC}', 0, 1)",)
    assert report.finding("rejects").unexpected == (
        f"('{TOPIC}', 0, 1): refused as 'schema.bad_value', expected 'to land'",)


def test_a_reject_with_the_wrong_reason_or_none_is_unexpected():
    seen = _clean()
    seen.rejected[1] = RejectRow((TOPIC, 0, 3), "schema.extra_field", "", "")

    report = judge(ACKS, MANIFEST, seen)

    assert report.finding("rejects").unexpected == (f"('{TOPIC}', 0, 3): refused without a reason",)


def test_a_rejection_the_manifest_expects_but_nobody_acknowledged_is_lost():
    report = judge(ACKS[:3] + ACKS[4:], MANIFEST, _clean())

    assert any("never acknowledged" in item for item in report.finding("rejects").lost)


def test_an_event_nobody_sent_is_unexpected_and_lag_counts_unlanded_offsets():
    seen = _clean()
    seen.staged[("p1", "ghost")] = (TOPIC, 1, 0)
    seen.staged_family[("p1", "ghost")] = "enrollment.created"
    seen.positions = {(TOPIC, 0): 3}

    report = judge(ACKS, MANIFEST, seen)

    assert report.finding("staging").unexpected == ("('p1', 'ghost')",)
    assert report.counts["lag"] == 2


def test_warehouse_rows_must_match_staged_events_of_loaded_days_once():
    seen = _clean()
    seen.loaded_days = {date(2023, 11, 15)}
    seen.facts = {"fact_enrollment": [("p1", "e1"), ("p1", "e1"), ("p1", "zz")]}
    seen.outcomes = {("p1", "e1"): "reflected", ("p1", "e2"): "unaccounted"}

    finding = judge(ACKS, MANIFEST, seen).finding("warehouse")

    assert finding.lost == ("('p1', 'e2')",)
    assert finding.duplicated == ("fact_enrollment: ('p1', 'e1')",)
    assert finding.unexpected == ("('p1', 'zz')",)


def test_acknowledgements_survive_a_round_trip_through_their_file(tmp_path):
    path = tmp_path / "run.acks.jsonl"
    write_acks(path, ACKS)

    assert read_acks(path) == ACKS


def test_the_command_names_a_missing_file_and_exits_2(tmp_path, capsys):
    code = main(["--manifest", str(tmp_path / "nope.json"), "--database-url", "postgresql://x"])

    assert code == 2
    assert "--manifest" in capsys.readouterr().err


@pytest.mark.parametrize("value", [b"\xff\xfe", b"[1]", b'{"id": 5}'])
def test_an_ack_of_bytes_without_a_readable_id_has_none(value):
    assert Ack.of(TOPIC, 0, 0, None, value).event_id is None
