"""Each fault knob causes exactly what the manifest says, as judged by the pipeline's own check."""

from __future__ import annotations

from collections import Counter, defaultdict
from dataclasses import fields
from datetime import date, datetime, timedelta
from typing import Any

import orjson
import pytest

from partners.faults import Faults
from partners.simulate import simulate

EVENTS = 4_000
REFUSING_KNOBS = {
    "malformed": {"decode.not_utf8", "decode.not_json", "decode.not_object"},
    "schema_violations": {
        "schema.out_of_range", "schema.missing_field", "schema.extra_field",
        "schema.bad_format", "schema.wrong_type", "schema.bad_value",
    },
    "bad_checksums": {"id_number.checksum"},
    "foreign_source": {"authorise.source_mismatch"},
    "forbidden_types": {"authorise.type_not_allowed"},
}  # fmt: skip


@pytest.fixture(scope="module")
def run(registry, judge, day):
    def simulate_with(days=1, **knobs):
        simulation = simulate(day, EVENTS, seed=21, faults=Faults(**knobs), days=days,
                              registry=registry)
        return simulation, judge(simulation)

    return simulate_with


def _payload(message):
    return orjson.loads(message.value)


def _kinds(manifest, kind):
    return [d for d in manifest["discrepancies"] if d["kind"] == kind]


def test_all_knobs_are_off_by_default(run):
    simulation, verdicts = run()
    manifest = simulation.manifest
    assert verdicts.refused == []
    assert manifest["rejected"] == manifest["discrepancies"] == manifest["duplicates"] == []
    assert manifest["late"] == manifest["out_of_order"] == []
    assert not any(manifest["faults"]["injected"].values())


@pytest.mark.parametrize("knob", sorted(REFUSING_KNOBS))
def test_refusing_knob_is_refused_with_the_reason_the_manifest_gives(run, knob):
    simulation, verdicts = run(**{knob: 6})
    expected = sorted(
        (r["partner"], r["key"], r["reason"]) for r in simulation.manifest["rejected"]
    )
    assert len(expected) == 6
    assert verdicts.refused_as_manifest_says() == expected
    assert {reason for _, _, reason in expected} == REFUSING_KNOBS[knob]
    assert simulation.manifest["faults"]["injected"][knob] == 6


@pytest.mark.parametrize("knob", sorted(REFUSING_KNOBS))
def test_refused_events_do_not_count_in_landed_totals(run, knob):
    simulation, verdicts = run(**{knob: 6})
    landed = Counter(checked.family for _, checked in verdicts.accepted)
    manifest_landed: Counter[str] = Counter()
    for by_family in simulation.manifest["landed"].values():
        manifest_landed.update(by_family)
    assert landed == manifest_landed


def test_exact_duplicates_repeat_the_same_bytes_and_land_once(run):
    simulation, verdicts = run(duplicate_rate=0.02)
    duplicates = simulation.manifest["duplicates"]
    assert len(duplicates) == pytest.approx(0.02 * EVENTS, rel=0.2)
    by_id = defaultdict(list)
    for message, checked in verdicts.accepted:
        by_id[checked.event_id].append(message.value)
    repeated = {event_id for event_id, values in by_id.items() if len(values) > 1}
    assert repeated == set(duplicates)
    assert all(len(set(by_id[event_id])) == 1 for event_id in repeated)
    assert simulation.manifest["landed_total"] == len(by_id)


def test_cross_platform_enrollments_are_one_person_on_one_course_at_two_partners(run):
    simulation, verdicts = run(cross_platform_enrollments=4)
    pairs = _kinds(simulation.manifest, "semantic_duplicate")
    assert len(pairs) == 4
    accepted = {checked.event_id: (message, checked) for message, checked in verdicts.accepted}
    for pair in pairs:
        (m1, c1), (m2, c2) = (accepted[event_id] for event_id in pair["ids"])
        assert c1.partner_id != c2.partner_id
        assert c1.person == c2.person
        course1, course2 = _payload(m1)["data"]["course"], _payload(m2)["data"]["course"]
        assert (course1["occupation_code"], course1["level"]) == (
            course2["occupation_code"], course2["level"],
        )  # fmt: skip


def test_late_events_happened_days_before_they_were_sent(run):
    simulation, verdicts = run(late_rate=0.02)
    late = {entry["id"]: entry for entry in simulation.manifest["late"]}
    assert late
    for message, checked in verdicts.accepted:
        sent_on = date.fromisoformat(_payload(message)["time"][:10])
        happened_on = checked.occurred_at.date()
        assert (checked.event_id in late) == (happened_on < sent_on)


def test_out_of_order_events_arrive_before_their_predecessor(run):
    simulation, verdicts = run(out_of_order_rate=0.02)
    entries = simulation.manifest["out_of_order"]
    assert entries
    position: dict[str, int] = {}
    for index, (_, checked) in enumerate(verdicts.accepted):
        position.setdefault(checked.event_id, index)
    for entry in entries:
        assert position[entry["id"]] < position[entry["arrives_before"]]


def test_missing_events_are_counted_in_totals_but_never_sent(run):
    simulation, verdicts = run(missing=5)
    gaps = _kinds(simulation.manifest, "control_total_gap")
    missing = {event_id for gap in gaps for event_id in gap["ids"]}
    assert len(missing) == 5
    sent = {checked.event_id for _, checked in verdicts.accepted}
    assert missing.isdisjoint(sent)
    listed = set()
    for _, checked in verdicts.accepted:
        if checked.family == "control.totals":
            for ids in checked.data["event_ids"].values():
                listed.update(ids)
    assert missing <= listed
    assert listed - missing == {c.event_id for _, c in verdicts.accepted} - {
        c.event_id for _, c in verdicts.accepted if c.family == "control.totals"
    }


def test_shared_certificate_numbers_name_two_people(run):
    simulation, verdicts = run(shared_certificate_numbers=3)
    conflicts = _kinds(simulation.manifest, "certificate_number_conflict")
    assert len(conflicts) == 3
    holders = defaultdict(set)
    for _, checked in verdicts.accepted:
        if checked.family == "certificate.issued":
            holders[checked.data["certificate_number"]].add(checked.person)
    shared = {number for number, people in holders.items() if len(people) > 1}
    assert shared == {conflict["certificate_number"] for conflict in conflicts}
    assert shared.isdisjoint(simulation.manifest["subsidy_eligible_certificates"])


def test_double_subsidy_claims_leave_only_the_first_certificate_eligible(run):
    simulation, verdicts = run(double_subsidy_claims=3)
    claims = _kinds(simulation.manifest, "double_claim")
    assert len(claims) == 3
    eligible = set(simulation.manifest["subsidy_eligible_certificates"])
    issued = {
        c.data["certificate_number"]: c for _, c in verdicts.accepted
        if c.family == "certificate.issued"
    }  # fmt: skip
    for claim in claims:
        first, second = (issued[n] for n in claim["certificate_numbers"])
        assert (first.person, first.data["occupation_code"], first.data["level"]) == (
            second.person, second.data["occupation_code"], second.data["level"],
        )  # fmt: skip
        assert first.partner_id != second.partner_id
        assert claim["certificate_numbers"][0] in eligible
        assert claim["certificate_numbers"][1] not in eligible


def test_level_mismatches_certify_another_level_than_evaluated(run):
    simulation, verdicts = run(level_mismatches=3)
    mismatches = _kinds(simulation.manifest, "level_mismatch")
    assert len(mismatches) == 3
    accepted = {c.event_id: c for _, c in verdicts.accepted}
    evaluations = {(c.partner_id, c.data["evaluation_id"]): c for c in accepted.values()
                   if c.family == "evaluation.recorded"}
    for mismatch in mismatches:
        certificate = accepted[mismatch["ids"][0]]
        evaluation = evaluations[(certificate.partner_id, certificate.data["evaluation_id"])]
        assert certificate.data["level"] != evaluation.data["level"]
        assert certificate.data["certificate_number"] == mismatch["certificate_number"]


def test_reversed_results_correct_a_certified_pass_to_a_fail(run):
    simulation, verdicts = run(reversed_results=3)
    reversed_ = _kinds(simulation.manifest, "certificate_without_passing_evaluation")
    assert len(reversed_) == 3
    accepted = [c for _, c in verdicts.accepted]
    fails = {(c.partner_id, c.data["evaluation_id"]) for c in accepted
             if c.family == "evaluation.corrected" and c.data.get("result") == "fail"}
    certified = {c.data["certificate_number"]: (c.partner_id, c.data["evaluation_id"])
                 for c in accepted if c.family == "certificate.issued"}
    assert {certified[r["certificate_number"]] for r in reversed_} == fails


def test_resent_records_repeat_a_report_under_a_new_id(run):
    simulation, verdicts = run(resent_records=6)
    resent = [d for d in simulation.manifest["discrepancies"]
              if d["kind"] in ("repeated_record", "repeated_change")]
    assert len(resent) == 6
    accepted = {c.event_id: c for _, c in verdicts.accepted}
    for entry in resent:
        c1, c2 = (accepted[i] for i in entry["ids"])
        change = c1.family in ("enrollment.withdrawn", "certificate.revoked")
        assert (entry["kind"] == "repeated_change") == change
        # A record is sent again as it was; a change again is a second act, at its own time.
        timeless = {"withdrawn_at", "revoked_at"} if change else set()
        assert c1.event_id != c2.event_id
        assert {k: v for k, v in c1.data.items() if k not in timeless} == {
            k: v for k, v in c2.data.items() if k not in timeless}
        assert change == (c1.occurred_at < c2.occurred_at)


def test_orphan_changes_name_records_never_reported(run):
    simulation, verdicts = run(orphan_changes=4)
    orphans = _kinds(simulation.manifest, "change_without_record")
    assert len(orphans) == 4
    accepted = [c for _, c in verdicts.accepted]
    records = {(c.partner_id, c.data.get("enrollment_id") or c.data.get("evaluation_id"))
               for c in accepted if c.family in ("enrollment.created", "evaluation.recorded")}
    by_id = {c.event_id: c for c in accepted}
    for orphan in orphans:
        change = by_id[orphan["ids"][0]]
        key = change.data.get("enrollment_id") or change.data.get("evaluation_id")
        assert (change.partner_id, key) not in records


def test_late_changes_are_sent_days_after_they_happened(run):
    simulation, verdicts = run(late_changes=4, days=7)
    assert simulation.manifest["faults"]["injected"]["late_changes"] == 4
    late = {entry["id"]: entry for entry in simulation.manifest["late"]}
    changes = [c for _, c in verdicts.accepted if c.event_id in late
               and c.family in ("enrollment.withdrawn", "evaluation.corrected",
                                "certificate.revoked")]
    assert len(changes) >= 4
    assert all(date.fromisoformat(late[c.event_id]["published_day"])
               - date.fromisoformat(late[c.event_id]["occurred_day"]) >= timedelta(days=2)
               for c in changes)


def test_delivery_delays_move_the_broker_time_not_the_partner_time(run):
    simulation, _ = run(delivery_delay_rate=0.05, days=7)
    moved = [m for m in simulation.messages if m.appended_at_ms != _sent_ms(m)]
    assert len(moved) == pytest.approx(0.05 * len(simulation), rel=0.25)
    assert all(-540_000 <= m.appended_at_ms - _sent_ms(m) <= 2 * 86_400_000 for m in moved)
    assert any(m.appended_at_ms - _sent_ms(m) < 0 for m in moved)
    assert any(m.appended_at_ms - _sent_ms(m) > 86_400_000 for m in moved)
    by_topic: dict[str, list[int]] = defaultdict(list)
    for message in simulation.messages:
        by_topic[message.topic].append(message.appended_at_ms)
    assert all(times == sorted(times) for times in by_topic.values())


def _sent_ms(message) -> int:
    return int(datetime.fromisoformat(_payload(message)["time"]).timestamp() * 1000)


def test_counts_too_large_for_the_day_are_capped_and_reported(run):
    simulation, _ = run(shared_certificate_numbers=100_000)
    injected = simulation.manifest["faults"]["injected"]["shared_certificate_numbers"]
    assert 0 < injected < 100_000
    assert len(_kinds(simulation.manifest, "certificate_number_conflict")) == injected


@pytest.mark.parametrize("name", [f.name for f in fields(Faults)])
def test_knobs_refuse_nonsense_values(name):
    bad: dict[str, Any] = {name: 0.9 if name.endswith("_rate") else -1}
    with pytest.raises(ValueError, match=name):
        Faults(**bad)
