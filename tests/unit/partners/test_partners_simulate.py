"""The simulator: deterministic, contract-valid, calibrated, lifecycles closed by control totals."""

from __future__ import annotations

import os
import subprocess
import sys
from collections import Counter, defaultdict
from datetime import datetime, timedelta
from pathlib import Path

import orjson
import pytest

import partners
from partners.city import LEVEL_TARGETS, occupation_targets
from partners.faults import Faults
from partners.simulate import simulate
from schemas.events import totals_digest
from schemas.identity import credit_code_is_valid, validate_resident_id
from schemas.reference import divisions

REPO_ROOT = Path(partners.__file__).resolve().parent.parent
ALL_FAULTS = Faults(
    duplicate_rate=0.01, late_rate=0.01, out_of_order_rate=0.01, cross_platform_enrollments=3,
    malformed=3, schema_violations=6, bad_checksums=3, foreign_source=3, forbidden_types=2,
    missing=3, shared_certificate_numbers=2, double_subsidy_claims=2,
)  # fmt: skip


@pytest.fixture(scope="module")
def plain(registry, judge, day):
    """A fault-free day and the pipeline's verdict on each of its messages."""
    simulation = simulate(day, 40_000, seed=11, registry=registry)
    return simulation, judge(simulation)


def test_same_seed_gives_byte_identical_messages_and_manifest(registry, day):
    first = simulate(day, 3_000, seed=5, faults=ALL_FAULTS, days=2, registry=registry)
    second = simulate(day, 3_000, seed=5, faults=ALL_FAULTS, days=2, registry=registry)
    assert list(first.messages) == list(second.messages)
    assert first.manifest_json() == second.manifest_json()


def test_output_does_not_depend_on_the_interpreters_hash_seed():
    script = (
        "import hashlib, datetime\n"
        "from partners.simulate import simulate\n"
        "from partners.faults import Faults\n"
        "s = simulate(datetime.date(2025, 3, 10), 2000, 3, Faults(duplicate_rate=0.01, missing=2,"
        " cross_platform_enrollments=2, shared_certificate_numbers=1), days=2)\n"
        "h = hashlib.sha256(s.manifest_json())\n"
        "for m in s.messages: h.update(m.key + m.value)\n"
        "print(h.hexdigest())\n"
    )
    digests = {
        subprocess.run(
            [sys.executable, "-c", script], env={**os.environ, "PYTHONHASHSEED": hash_seed},
            cwd=REPO_ROOT, capture_output=True, text=True, check=True,
        ).stdout
        for hash_seed in ("1", "2")
    }  # fmt: skip
    assert len(digests) == 1


def test_messages_render_identically_on_every_pass(registry, day):
    simulation = simulate(day, 500, seed=5, faults=ALL_FAULTS, registry=registry)
    assert list(simulation.messages) == list(simulation.messages)


def test_other_seed_or_day_gives_other_events(registry, day):
    base = [m.value for m in simulate(day, 300, seed=5, registry=registry).messages]
    other_seed = [m.value for m in simulate(day, 300, seed=6, registry=registry).messages]
    later = day + timedelta(days=1)
    other_day = [m.value for m in simulate(later, 300, seed=5, registry=registry).messages]
    assert set(base).isdisjoint(other_seed)
    assert set(base).isdisjoint(other_day)


def test_without_faults_every_message_is_accepted_without_warnings(plain):
    simulation, verdicts = plain
    assert verdicts.refused == []
    assert all(not checked.warnings for _, checked in verdicts.accepted)
    assert len(verdicts.accepted) == simulation.manifest["landed_total"]


def test_requested_number_of_lifecycle_events_is_produced(plain):
    _, verdicts = plain
    lifecycle = [c for _, c in verdicts.accepted if c.family != "control.totals"]
    assert len(lifecycle) == 40_000
    assert len({c.event_id for c in lifecycle}) == 40_000


def test_manifest_counts_what_lands_per_partner_and_family(plain):
    simulation, verdicts = plain
    landed: dict[str, Counter[str]] = defaultdict(Counter)
    for _, checked in verdicts.accepted:
        landed[checked.partner_id][checked.family] += 1
    assert simulation.manifest["landed"] == {p: dict(c) for p, c in landed.items()}


def test_certificates_by_occupation_follow_the_published_figures(plain):
    _, verdicts = plain
    issued = [c.data for _, c in verdicts.accepted if c.family == "certificate.issued"]
    shares = Counter(data["occupation_code"] for data in issued)
    assert len(issued) > 5_000
    for code, target in occupation_targets().items():
        assert shares[code] / len(issued) == pytest.approx(target, abs=0.02), code
    # The two biggest published occupations dominate, as in the city's figures.
    top_two = [code for code, _ in shares.most_common(2)]
    assert top_two == ["4-01-06-02", "4-14-01-03"]


def test_certificate_levels_follow_the_level_mix(plain):
    _, verdicts = plain
    issued = [c.data for _, c in verdicts.accepted if c.family == "certificate.issued"]
    levels = Counter(data["level"] for data in issued)
    for level, target in LEVEL_TARGETS.items():
        assert levels[level] / len(issued) == pytest.approx(target, abs=0.02), level


def test_identifiers_are_valid_and_include_retired_address_codes(plain):
    _, verdicts = plain
    id_numbers, credit_codes = set(), set()
    for message, _ in verdicts.accepted:
        data = orjson.loads(message.value)["data"]
        if "learner" in data:
            id_numbers.add(data["learner"]["id_number"])
        for holder in ("institution", "organisation"):
            if holder in data:
                credit_codes.add(data[holder]["credit_code"])
    assert all(validate_resident_id(number) == number for number in id_numbers)
    assert all(credit_code_is_valid(code) for code in credit_codes)
    retired = {code for code, d in divisions().items() if d.retired}
    assert {number[:6] for number in id_numbers} & retired


def test_one_person_per_id_number(plain):
    _, verdicts = plain
    names: dict[str, set[str]] = defaultdict(set)
    for message, _ in verdicts.accepted:
        learner = orjson.loads(message.value)["data"].get("learner")
        if learner:
            names[learner["id_number"]].add(learner["name"])
    assert all(len(spelled) == 1 for spelled in names.values())


def test_times_are_shanghai_local_with_offset(plain):
    _, verdicts = plain
    for message, _ in verdicts.accepted[:2_000]:
        stamp = orjson.loads(message.value)["time"]
        assert stamp.endswith("+08:00")
        assert datetime.fromisoformat(stamp).utcoffset() == timedelta(hours=8)


def test_lifecycles_cover_every_step_including_paired_certificates(plain):
    _, verdicts = plain
    families = Counter(c.family for _, c in verdicts.accepted)
    assert set(families) == {
        "enrollment.created", "enrollment.withdrawn", "completion.recorded",
        "evaluation.recorded", "evaluation.corrected", "certificate.issued",
        "certificate.revoked", "control.totals",
    }  # fmt: skip
    results = Counter(
        c.data["result"] for _, c in verdicts.accepted if c.family == "evaluation.recorded"
    )
    assert results["pass"] > results["fail"] > 0
    paired = [
        c.data for _, c in verdicts.accepted
        if c.family == "certificate.issued" and "paired_certificate_number" in c.data
    ]  # fmt: skip
    numbers = {data["certificate_number"] for data in paired}
    assert paired and all(data["paired_certificate_number"] in numbers for data in paired)


def test_certificates_follow_a_passing_evaluation_of_the_same_person(plain):
    _, verdicts = plain
    passed = {
        c.data["evaluation_id"]: (c.person, c.data["occupation_code"], c.data["level"])
        for _, c in verdicts.accepted
        if c.family == "evaluation.recorded" and c.data["result"] == "pass"
    }
    for _, checked in verdicts.accepted:
        if checked.family == "certificate.issued":
            data = checked.data
            expected = (checked.person, data["occupation_code"], data["level"])
            assert passed[data["evaluation_id"]] == expected


def test_each_partner_closes_its_day_with_matching_control_totals(plain, day):
    _, verdicts = plain
    sent: dict[str, dict[str, list[str]]] = defaultdict(lambda: defaultdict(list))
    closed: dict[str, dict] = {}
    for _, checked in verdicts.accepted:
        assert checked.partner_id not in closed, "an event came after the partner's totals"
        if checked.family == "control.totals":
            closed[checked.partner_id] = checked.data
        else:
            sent[checked.partner_id][checked.family].append(checked.event_id)
    assert closed.keys() == sent.keys()
    for partner, totals in closed.items():
        assert totals["business_day"] == day.isoformat()
        assert totals["counts"] == {f: len(ids) for f, ids in sent[partner].items()}
        assert totals["digests"] == {f: totals_digest(ids) for f, ids in sent[partner].items()}


def test_multi_day_run_closes_every_day_and_spreads_lifecycles(registry, judge, day):
    verdicts = judge(simulate(day, 6_000, seed=3, days=3, registry=registry))
    assert verdicts.refused == []
    totals_days = {
        c.data["business_day"] for _, c in verdicts.accepted if c.family == "control.totals"
    }
    assert len(totals_days) == 3
    certificate_days = {
        c.occurred_at.date() for _, c in verdicts.accepted if c.family == "certificate.issued"
    }
    assert len(certificate_days) >= 2


def test_subsidy_eligibility_is_once_per_person_occupation_and_level(plain):
    simulation, verdicts = plain
    eligible = set(simulation.manifest["subsidy_eligible_certificates"])
    revoked = {
        c.data["certificate_number"]
        for _, c in verdicts.accepted
        if c.family == "certificate.revoked"
    }
    claims: dict[tuple, list[str]] = defaultdict(list)
    for _, checked in verdicts.accepted:
        if checked.family == "certificate.issued":
            data = checked.data
            claims[(checked.person, data["occupation_code"], data["level"])].append(
                data["certificate_number"]
            )
    for numbers in claims.values():
        in_force = [n for n in numbers if n not in revoked]
        assert len(eligible.intersection(numbers)) == (1 if in_force else 0)
    assert eligible.isdisjoint(revoked)
