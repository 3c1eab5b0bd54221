"""Injects the requested faults into a planned simulation and records what each must cause."""

from __future__ import annotations

import copy
import random
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import orjson

from partners.city import City
from partners.faults import Faults
from partners.lifecycle import (
    DAY_SECONDS,
    PASS_MARK,
    Certificate,
    Correction,
    Enrollment,
    Evaluation,
    Planned,
    Planner,
    Revocation,
    Withdrawal,
    day_start,
    local_day,
)
from schemas.partners import PartnerRegistry

Corruption = Callable[[dict[str, Any]], bytes]


@dataclass(slots=True)
class Malformed:
    """Bytes that are no event at all."""

    value: bytes


@dataclass(slots=True)
class Injected:
    extra: list[Planned] = field(default_factory=list)
    """Events added that must land."""
    refused: list[Planned] = field(default_factory=list)
    """Events added that the pipeline must refuse."""
    copies: list[tuple[int, Planned]] = field(default_factory=list)
    """(publish time, event) of exact re-sends."""
    rejected: list[dict[str, Any]] = field(default_factory=list)
    discrepancies: list[dict[str, Any]] = field(default_factory=list)
    injected: dict[str, int] = field(default_factory=dict)


def _set(path: tuple[str, ...], value: Any) -> Corruption:
    def corrupt(event: dict[str, Any]) -> bytes:
        target = event
        for name in path[:-1]:
            target = target[name]
        target[path[-1]] = value
        return orjson.dumps(event)

    return corrupt


def _drop(path: tuple[str, ...]) -> Corruption:
    def corrupt(event: dict[str, Any]) -> bytes:
        target = event
        for name in path[:-1]:
            target = target[name]
        del target[path[-1]]
        return orjson.dumps(event)

    return corrupt


def _wrong_check_character(event: dict[str, Any]) -> bytes:
    learner = event["data"]["learner"]
    number = learner["id_number"]
    wrong = "10X98765432"[("10X98765432".index(number[17]) + 1) % 11]
    learner["id_number"] = number[:17] + wrong
    return orjson.dumps(event)


# Each breaks an enrollment.created event in one way; the code is what the contract answers.
SCHEMA_VIOLATIONS: tuple[tuple[str, Corruption], ...] = (
    ("schema.out_of_range", _set(("data", "course", "level"), 7)),
    ("schema.missing_field", _drop(("data", "learner", "name"))),
    ("schema.extra_field", _set(("data", "remark"), "re-sent by the night batch")),
    ("schema.bad_format", _set(("data", "course", "occupation_code"), "4-1-06-02")),
    ("schema.wrong_type", _set(("data", "course", "hours"), "64 hours")),
    ("schema.bad_value", _set(("data", "course", "mode"), "correspondence")),
)
MALFORMED_VALUES: tuple[tuple[str, bytes], ...] = (
    ("decode.not_utf8", b'{"specversion": "1.0", "id": "\xff\xfe\xfd"}'),
    ("decode.not_json", b'{"specversion": "1.0", "id": "3f2a'),
    ("decode.not_object", b'["specversion", "1.0"]'),
)
# Families that nothing later in a lifecycle refers to, so withholding one breaks no link.
LEAF_FAMILIES = frozenset({"enrollment.withdrawn", "evaluation.corrected", "certificate.revoked"})
# Families whose reports a partner may send twice under two ids (a correction sent twice is two
# corrections, so it is not among them).
RESENDABLE = frozenset({"enrollment.created", "completion.recorded", "evaluation.recorded",
                        "certificate.issued", "enrollment.withdrawn", "certificate.revoked"})


class Injector:
    """Applies each fault knob in a fixed order with the simulation's own RNG."""

    def __init__(
        self,
        planner: Planner,
        city: City,
        registry: PartnerRegistry,
        rng: random.Random,
        faults: Faults,
    ) -> None:
        self._planner = planner
        self._city = city
        self._registry = registry
        self._rng = rng
        self._faults = faults
        self._touched: set[int] = set()
        self._result = Injected()

    def apply(self, planned: list[Planned]) -> Injected:
        faults, result = self._faults, self._result
        by_family: dict[str, list[Planned]] = {}
        for event in planned:
            by_family.setdefault(event.family, []).append(event)
        result.injected = {name: 0 for name in Faults.names()}
        self._late(by_family.get("enrollment.created", []), faults.late_rate)
        self._out_of_order(planned, faults.out_of_order_rate)
        self._missing(planned, faults.missing)
        self._cross_platform(
            by_family.get("enrollment.created", []), faults.cross_platform_enrollments
        )
        revoked = {
            id(e.facts.certificate)
            for e in by_family.get("certificate.revoked", [])
            if isinstance(e.facts, Revocation)
        }
        lasting = [
            e
            for e in by_family.get("certificate.issued", [])
            if isinstance(e.facts, Certificate)
            and e.facts.paired is None
            and id(e.facts) not in revoked
        ]
        self._shared_numbers(lasting, faults.shared_certificate_numbers)
        self._double_claims(lasting, faults.double_subsidy_claims)
        self._level_mismatches(lasting, faults.level_mismatches)
        self._reversed_results(lasting, faults.reversed_results)
        self._late_changes(planned, faults.late_changes)
        self._resent_records(planned, faults.resent_records)
        self._orphan_changes(planned, faults.orphan_changes)
        self._schema_violations(by_family.get("enrollment.created", []))
        self._bad_checksums(planned)
        self._foreign_source(planned)
        self._forbidden_types(planned, by_family)
        self._malformed(planned)
        self._duplicates(planned, faults.duplicate_rate)
        return result

    def delay_deliveries(self, sent: list[Planned]) -> None:
        """Give a share of the messages a broker append time other than their send time.

        A slow network delays a message by up to half an hour, a partner's outbox now and then
        by a day or two; a partner clock running ahead stamps it up to nine minutes after the
        broker appends it. Half of them straddle a midnight, so that the day a partner sent a
        message on is not the day it landed.
        """
        rate = self._faults.delivery_delay_rate
        last = self._planner.window_end - 3600
        for event in self._rng.sample(sent, round(rate * len(sent))) if rate else ():
            rng, at = self._rng, event.published_at
            midnight = day_start(local_day(at)) + DAY_SECONDS
            if rng.random() < 0.5 and midnight - at <= 6 * 3600 and midnight < last:
                # Sent later, so it still happened before it was sent.
                if rng.random() < 0.5:
                    early = rng.randint(1, 300)
                    event.published_at = midnight - early
                    event.delivered_at = midnight + rng.randint(1, 1800 - early)
                else:
                    event.published_at = midnight + rng.randint(0, 480)
                    event.delivered_at = midnight - rng.randint(1, 60)
            elif rng.random() < 0.1 and at + 3 * DAY_SECONDS < last:
                # An outbox that could not reach the broker re-sends a day or two later.
                event.delivered_at = at + rng.randint(DAY_SECONDS, 2 * DAY_SECONDS)
            else:
                event.delivered_at = at + rng.randint(-540, 1800)
            self._result.injected["delivery_delay_rate"] += 1

    # -- helpers -----------------------------------------------------------------------------

    def _pick(self, candidates: list[Planned], count: int) -> list[Planned]:
        """Up to `count` distinct untouched candidates, in a seed-determined order."""
        free = [event for event in candidates if event.seq not in self._touched]
        chosen = self._rng.sample(free, min(count, len(free)))
        self._touched.update(event.seq for event in chosen)
        return chosen

    def _rate(self, candidates: list[Planned], rate: float) -> list[Planned]:
        return self._pick(candidates, round(rate * len(candidates)))

    def _same_day_later(self, at: int, most: int) -> int | None:
        """A moment after `at` on the same business day, before its control totals."""
        close = day_start(local_day(at)) + DAY_SECONDS - 900
        if close - at < 2:
            return None
        return at + self._rng.randint(1, min(most, close - at - 1))

    def _clone(self, source: Planned, fault: str, corrupt: Corruption | None) -> Planned:
        clone = copy.copy(source)
        clone.seq = self._planner.next_seq()
        clone.event_id = self._planner.event_id()
        clone.fault = fault
        clone.corrupt = corrupt
        clone.published_at = self._same_day_later(source.published_at, 600) or source.published_at
        clone.occurred_at = min(clone.occurred_at, clone.published_at)
        return clone

    def _refuse(self, event: Planned, reason: str) -> None:
        assert event.fault is not None
        self._result.refused.append(event)
        self._result.injected[event.fault] += 1
        self._result.rejected.append(
            {
                "partner": event.partner_id,
                "id": event.event_id if not isinstance(event.facts, Malformed) else None,
                "key": event.subject,
                "reason": reason,
                "fault": event.fault,
            }
        )

    # -- timing faults -----------------------------------------------------------------------

    def _late(self, enrollments: list[Planned], rate: float) -> None:
        for event in self._rate(enrollments, rate):
            event.occurred_at -= self._rng.randint(1, 3) * DAY_SECONDS
            event.fault = "late_rate"
            self._result.injected["late_rate"] += 1

    def _out_of_order(self, planned: list[Planned], rate: float) -> None:
        candidates = [e for e in planned if e.follows is not None and not e.follows.fault]
        for event in self._rate(candidates, rate):
            predecessor = event.follows
            assert predecessor is not None
            held_until = self._same_day_later(event.published_at, 1800)
            if held_until is None or predecessor.seq in self._touched:
                continue
            # The predecessor is held back until after its successor went out.
            self._touched.add(predecessor.seq)
            predecessor.published_at = held_until
            event.fault = "out_of_order_rate"
            self._result.injected["out_of_order_rate"] += 1

    def _duplicates(self, planned: list[Planned], rate: float) -> None:
        candidates = [e for e in planned if not e.withheld]
        for event in self._pick(candidates, round(rate * len(candidates))):
            again = self._same_day_later(event.published_at, 120)
            if again is None:
                continue
            self._result.copies.append((again, event))
            self._result.injected["duplicate_rate"] += 1

    def _missing(self, planned: list[Planned], count: int) -> None:
        for event in self._pick([e for e in planned if e.family in LEAF_FAMILIES], count):
            event.withheld = True
            event.fault = "missing"
            self._result.injected["missing"] += 1

    # -- facts that land but do not add up -----------------------------------------------------

    def _cross_platform(self, enrollments: list[Planned], count: int) -> None:
        trainers = self._city.training_partners
        for event in self._pick(enrollments, count):
            first = event.facts
            assert isinstance(first, Enrollment)
            others = [p for p in trainers if p != first.partner_id]
            at = self._same_day_later(event.occurred_at, 3600)
            if not others or at is None:
                continue
            partner = self._rng.choice(others)
            course = self._rng.choice(self._city.courses[partner][first.course.occupation_code])
            record = self._planner.record_id(partner, "E", at)
            second = Enrollment(record, partner, first.person, course, first.level, first.work_type)
            twin = self._planner.planned("enrollment.created", partner, record, at, second)
            twin.fault = "cross_platform_enrollments"
            self._touched.add(twin.seq)
            self._result.extra.append(twin)
            self._result.injected["cross_platform_enrollments"] += 1
            self._result.discrepancies.append(
                {
                    "kind": "semantic_duplicate",
                    "ids": [event.event_id, twin.event_id],
                    "partners": [first.partner_id, partner],
                }
            )

    def _shared_numbers(self, lasting: list[Planned], wanted: int) -> None:
        """Same organisation, level and day, so the copied number still fits its holder."""
        if not wanted:
            return
        groups: dict[tuple[str, int, int], list[Planned]] = {}
        for event in lasting:
            certificate = event.facts
            assert isinstance(certificate, Certificate)
            evaluation = certificate.evaluation
            key = (evaluation.org.partner_id, evaluation.level, certificate.issued_on.toordinal())
            groups.setdefault(key, []).append(event)
        pools = [group for _, group in sorted(groups.items()) if len(group) >= 2]
        self._rng.shuffle(pools)
        done = 0
        for group in pools:
            while done < wanted:
                pair = self._pick(group, 2)
                if len(pair) < 2:
                    break
                holder, claimant = sorted(pair, key=lambda e: (e.published_at, e.seq))
                number = holder.facts.number  # type: ignore[attr-defined]
                claimant.facts.number = number  # type: ignore[attr-defined]
                claimant.subject = number
                claimant.fault = "shared_certificate_numbers"
                done += 1
                self._result.discrepancies.append(
                    {
                        "kind": "certificate_number_conflict",
                        "certificate_number": number,
                        "ids": [holder.event_id, claimant.event_id],
                    }
                )
        self._result.injected["shared_certificate_numbers"] = done

    def _double_claims(self, lasting: list[Planned], count: int) -> None:
        for event in self._pick(lasting, count):
            first = event.facts
            assert isinstance(first, Certificate)
            evaluation = first.evaluation
            evaluated_at = self._planner.later(event.occurred_at)
            issued_at = self._planner.later(evaluated_at) if evaluated_at else None
            others = [
                org for pid, org in sorted(self._city.evaluation_orgs.items())
                if pid != evaluation.org.partner_id
            ]  # fmt: skip
            if evaluated_at is None or issued_at is None or not others:
                continue
            org = self._rng.choice(others)
            again = Evaluation(
                self._planner.record_id(org.partner_id, "V", evaluated_at), org,
                evaluation.person, evaluation.occupation_code, evaluation.level,
                self._rng.randint(60, 95), self._rng.randint(60, 95), None, evaluation.work_type,
            )  # fmt: skip
            recorded = self._planner.planned(
                "evaluation.recorded", org.partner_id, again.evaluation_id, evaluated_at, again
            )
            number = self._planner.certificate_number_for(org, again.level, local_day(issued_at))
            second = Certificate(number, again, local_day(issued_at))
            claim = self._planner.planned(
                "certificate.issued", org.partner_id, number, issued_at, second, recorded
            )
            for extra in (recorded, claim):
                extra.fault = "double_subsidy_claims"
                self._touched.add(extra.seq)
                self._result.extra.append(extra)
            self._result.injected["double_subsidy_claims"] += 1
            self._result.discrepancies.append(
                {
                    "kind": "double_claim",
                    "certificate_numbers": [first.number, number],
                    "ids": [event.event_id, claim.event_id],
                }
            )

    def _level_mismatches(self, lasting: list[Planned], count: int) -> None:
        for event in self._pick(lasting, count):
            certificate = event.facts
            assert isinstance(certificate, Certificate)
            evaluation = certificate.evaluation
            level = evaluation.level + (1 if evaluation.level < 5 else -1)
            certificate.level = level
            # The number carries the level it certifies, so the certificate stays well formed.
            certificate.number = self._planner.certificate_number_for(
                evaluation.org, level, certificate.issued_on)
            event.subject = certificate.number
            event.fault = "level_mismatches"
            self._result.injected["level_mismatches"] += 1
            self._result.discrepancies.append({
                "kind": "level_mismatch", "certificate_number": certificate.number,
                "ids": [event.event_id]})

    def _reversed_results(self, lasting: list[Planned], count: int) -> None:
        """A passed evaluation corrected to a fail after its certificate went out."""
        for event in self._pick(lasting, count):
            certificate = event.facts
            assert isinstance(certificate, Certificate)
            evaluation = certificate.evaluation
            at = self._planner.later(event.occurred_at)
            recorded = event.follows
            if at is None or recorded is None:
                continue
            self._touched.add(recorded.seq)
            reversal = Correction(evaluation, min(evaluation.theory_score, PASS_MARK - 1),
                                  evaluation.practical_score, "appeal_upheld", result="fail")
            correction = self._planner.planned(
                "evaluation.corrected", evaluation.org.partner_id, evaluation.evaluation_id, at,
                reversal, recorded)
            correction.fault = event.fault = "reversed_results"
            self._touched.add(correction.seq)
            self._result.extra.append(correction)
            self._result.injected["reversed_results"] += 1
            self._result.discrepancies.append({
                "kind": "certificate_without_passing_evaluation",
                "certificate_number": certificate.number, "ids": [event.event_id]})

    def _late_changes(self, planned: list[Planned], count: int) -> None:
        """Changes sent days after they happened; the record they change is long filed."""
        last = self._planner.window_end - 3600
        changes = [e for e in planned if e.family in LEAF_FAMILIES and not e.withheld
                   and e.published_at + 2 * DAY_SECONDS < last]
        for event in self._pick(changes, count):
            room = (last - event.published_at) // DAY_SECONDS
            event.published_at += self._rng.randint(2, min(5, room)) * DAY_SECONDS
            event.fault = "late_changes"
            self._result.injected["late_changes"] += 1

    def _resent_records(self, planned: list[Planned], count: int) -> None:
        """A record sent again under a new event id: the night keeps the first report."""
        resendable = [e for e in planned if e.family in RESENDABLE and not e.withheld]
        # Half of them changes, which are rare beside the records they change.
        changes = [e for e in resendable if e.family in LEAF_FAMILIES]
        chosen = self._pick(changes, count // 2)
        chosen += self._pick(resendable, count - len(chosen))
        for event in chosen:
            again = copy.copy(event)
            again.seq = self._planner.next_seq()
            again.event_id = self._planner.event_id()
            again.fault = "resent_records"
            resent_at = self._planner.later(event.published_at)
            if resent_at is None:
                continue
            again.published_at = resent_at
            if event.family in LEAF_FAMILIES:
                # A second withdrawal or revocation is an act of its own, with its own time.
                again.occurred_at = resent_at
            self._touched.add(again.seq)
            self._result.extra.append(again)
            self._result.injected["resent_records"] += 1
            kind = ("repeated_change" if event.family in LEAF_FAMILIES else "repeated_record")
            self._result.discrepancies.append({
                "kind": kind, "family": event.family, "ids": [event.event_id, again.event_id]})

    def _orphan_changes(self, planned: list[Planned], count: int) -> None:
        """A change to a record its partner never reported (a record id mistyped, say)."""
        enrollments = [e for e in planned if isinstance(e.facts, Enrollment) and not e.withheld]
        evaluations = [e for e in planned if isinstance(e.facts, Evaluation) and not e.withheld]
        for index in range(count):
            pool = (enrollments, evaluations)[index % 2]
            if not pool:
                continue
            source = pool[self._rng.randrange(len(pool))]
            at = self._planner.later(source.occurred_at)
            if at is None:
                continue
            facts = source.facts
            orphan: Planned
            if isinstance(facts, Enrollment):
                record = self._planner.record_id(facts.partner_id, "E", at)
                ghost = Enrollment(record, facts.partner_id, facts.person, facts.course,
                                   facts.level, facts.work_type)
                orphan = self._planner.planned("enrollment.withdrawn", facts.partner_id, record,
                                               at, Withdrawal(ghost, "other"))
            else:
                assert isinstance(facts, Evaluation)
                record = self._planner.record_id(facts.org.partner_id, "V", at)
                ghost_evaluation = copy.copy(facts)
                ghost_evaluation.evaluation_id = record
                orphan = self._planner.planned(
                    "evaluation.corrected", facts.org.partner_id, record, at,
                    Correction(ghost_evaluation, facts.theory_score,
                               max(0, facts.practical_score - 1), "data_entry_error"))
            orphan.fault = "orphan_changes"
            self._touched.add(orphan.seq)
            self._result.extra.append(orphan)
            self._result.injected["orphan_changes"] += 1
            self._result.discrepancies.append({
                "kind": "change_without_record", "family": orphan.family,
                "ids": [orphan.event_id]})

    # -- events the pipeline must refuse -------------------------------------------------------

    def _schema_violations(self, enrollments: list[Planned]) -> None:
        for index, source in enumerate(self._sources(enrollments, self._faults.schema_violations)):
            reason, corrupt = SCHEMA_VIOLATIONS[index % len(SCHEMA_VIOLATIONS)]
            self._refuse(self._clone(source, "schema_violations", corrupt), reason)

    def _bad_checksums(self, planned: list[Planned]) -> None:
        with_learner = [e for e in planned if not e.withheld]
        for source in self._sources(with_learner, self._faults.bad_checksums):
            clone = self._clone(source, "bad_checksums", _wrong_check_character)
            self._refuse(clone, "id_number.checksum")

    def _foreign_source(self, planned: list[Planned]) -> None:
        for source in self._sources(planned, self._faults.foreign_source):
            owner = self._registry.get(source.partner_id)
            peers = sorted(
                p.partner_id
                for p in self._registry
                if owner and p.role == owner.role and p.partner_id != source.partner_id
            )
            if not peers:
                continue
            impostor = self._rng.choice(peers)
            clone = self._clone(
                source, "foreign_source", _set(("source",), f"/partners/{impostor}")
            )
            self._refuse(clone, "authorise.source_mismatch")

    def _forbidden_types(self, planned: list[Planned], by_family: dict[str, list[Planned]]) -> None:
        count = self._faults.forbidden_types
        trainers = self._city.training_partners
        evaluators = sorted(self._city.evaluation_orgs)
        for index, source in enumerate(self._sources(planned, count)):
            # Alternately a trainer issuing a certificate and an evaluator enrolling trainees.
            wanted = "certificate.issued" if index % 2 == 0 else "enrollment.created"
            pool = by_family.get(wanted, [])
            if not pool:
                continue
            template = pool[self._rng.randrange(len(pool))]
            intruder = self._rng.choice(trainers if wanted == "certificate.issued" else evaluators)
            clone = self._clone(template, "forbidden_types", None)
            clone.partner_id = intruder
            clone.published_at = source.published_at
            clone.occurred_at = min(template.occurred_at, clone.published_at)
            self._refuse(clone, "authorise.type_not_allowed")

    def _malformed(self, planned: list[Planned]) -> None:
        for index, source in enumerate(self._sources(planned, self._faults.malformed)):
            reason, value = MALFORMED_VALUES[index % len(MALFORMED_VALUES)]
            clone = self._clone(source, "malformed", None)
            clone.facts = Malformed(value)
            clone.subject = f"malformed-{index + 1:04d}"
            self._refuse(clone, reason)

    def _sources(self, candidates: list[Planned], count: int) -> list[Planned]:
        """Events to copy from: drawn with replacement, since the copies leave them untouched."""
        usable = [e for e in candidates if not e.withheld and not e.fault]
        if not usable:
            return []
        return [usable[self._rng.randrange(len(usable))] for _ in range(count)]
