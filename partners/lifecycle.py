"""Trainee lifecycles planned as timed facts: enrol, withdraw, complete, evaluate, certify."""

from __future__ import annotations

import functools
import random
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime, time
from typing import Any

from partners.city import City, Course, EvaluationOrg, PeopleFactory, Person
from schemas.days import SHANGHAI
from schemas.identity import certificate_number

DAY_SECONDS = 86_400
UTC_OFFSET_SECONDS = 8 * 3600
_EPOCH_ORDINAL = date(1970, 1, 1).toordinal()
# Partners run their day from early morning until late evening, local time.
OPENING_SECONDS = 7 * 3600 + 1800
OPEN_SPAN_SECONDS = 14 * 3600
PASS_MARK = 60

WITHDRAWAL_SHARE = 0.07
STILL_TRAINING_SHARE = 0.08
EVALUATED_SHARE = 0.90
PASS_SHARE = 0.82
RESIT_SHARE = 0.35
CORRECTION_SHARE = 0.03
TWO_CERTIFICATE_SHARE = 0.06
REVOCATION_SHARE = 0.01

WITHDRAWAL_REASONS = ("learner_request", "learner_request", "no_show", "course_cancelled", "other")
REVOCATION_REASONS = ("fraud", "issued_in_error", "issued_in_error", "other")
CORRECTION_REASONS = ("scoring_error", "data_entry_error", "appeal_upheld")


@dataclass(slots=True)
class Enrollment:
    record_id: str
    partner_id: str
    person: Person
    course: Course
    level: int
    work_type: str | None


@dataclass(slots=True)
class Withdrawal:
    enrollment: Enrollment
    reason: str


@dataclass(slots=True)
class Completion:
    enrollment: Enrollment
    hours_attended: int


@dataclass(slots=True)
class Evaluation:
    evaluation_id: str
    org: EvaluationOrg
    person: Person
    occupation_code: str
    level: int
    theory_score: int
    practical_score: int
    enrollment: Enrollment | None
    work_type: str | None

    @property
    def passed(self) -> bool:
        return self.theory_score >= PASS_MARK and self.practical_score >= PASS_MARK


@dataclass(slots=True)
class Correction:
    evaluation: Evaluation
    theory_score: int
    practical_score: int
    reason: str
    result: str | None = None
    """Sent when the correction turns the result around."""


@dataclass(slots=True)
class Certificate:
    number: str
    evaluation: Evaluation
    issued_on: date
    paired: Certificate | None = None
    """The other certificate of a "one exam, two certificates" pair."""
    level: int | None = None
    """The level it certifies, when not its evaluation's (a mistake the night must flag)."""

    @property
    def certified_level(self) -> int:
        return self.evaluation.level if self.level is None else self.level


@dataclass(slots=True)
class Revocation:
    certificate: Certificate
    reason: str


@dataclass(slots=True)
class DayTotals:
    """What a partner reports it sent on one business day, event ids by family."""

    business_day: date
    ids: dict[str, list[str]]


@dataclass(slots=True)
class Planned:
    """One event as the simulation means it: who sends what, when it happens, when it is sent."""

    seq: int
    family: str
    partner_id: str
    event_id: str
    subject: str
    occurred_at: int
    published_at: int
    facts: object
    follows: Planned | None = None
    """The event that precedes this one in its lifecycle, on the same topic."""
    fault: str | None = None
    """The fault knob that made this event, when one did."""
    corrupt: Callable[[dict[str, Any]], bytes] | None = None
    """Turns the well-formed event into the bytes actually sent, for events meant to be refused."""
    withheld: bool = False
    """Counted in the control totals but never sent."""
    delivered_at: int | None = None
    """When the broker appends it, when that is not when it was sent."""


def day_start(day: date) -> int:
    """Epoch seconds of local midnight starting `day` in Asia/Shanghai."""
    return int(datetime.combine(day, time(), SHANGHAI).timestamp())


def local_day(epoch_seconds: int) -> date:
    """The Asia/Shanghai calendar day of a moment (UTC+8 all year: no daylight saving)."""
    return _day_of((epoch_seconds + UTC_OFFSET_SECONDS) // DAY_SECONDS)


@functools.cache
def _day_of(days_since_epoch: int) -> date:
    return date.fromordinal(_EPOCH_ORDINAL + days_since_epoch)


class Planner:
    """Plans whole lifecycles inside a window of business days, drawing from one seeded RNG."""

    def __init__(self, city: City, rng: random.Random, first_day: date, days: int) -> None:
        self._city = city
        self._rng = rng
        self._people = PeopleFactory(rng, first_day)
        self.first_day = first_day
        self.days = days
        self._window_start = day_start(first_day)
        self.window_end = self._window_start + days * DAY_SECONDS
        # Steps stop a little before midnight so the day's control totals come last.
        self._last_step = self.window_end - 900
        self._seq = 0
        self._records: dict[str, int] = {}
        self._serials: dict[tuple[str, int, int], int] = {}

    # -- identifiers -------------------------------------------------------------------------

    def event_id(self) -> str:
        h = f"{self._rng.getrandbits(128):032x}"
        return f"{h[:8]}-{h[8:12]}-4{h[13:16]}-{'89ab'[int(h[16], 16) & 3]}{h[17:20]}-{h[20:]}"

    def record_id(self, partner_id: str, letter: str, at: int) -> str:
        """A partner's own record number: prefix, business day, running number."""
        n = self._records.get(partner_id, 0) + 1
        self._records[partner_id] = n
        return f"{partner_id.upper().replace('_', '')}-{local_day(at):%Y%m%d}-{letter}{n:07d}"

    def certificate_number_for(self, org: EvaluationOrg, level: int, issued: date) -> str:
        # One exam site number per organisation and day keeps numbers unique across days.
        site = issued.timetuple().tm_yday * 32 + org.site_index
        key = (org.partner_id, issued.toordinal(), level)
        serial = self._serials.get(key, 0) + 1
        self._serials[key] = serial
        return certificate_number(
            "S", org.certificate_org_code, "33", f"{site:06d}", issued.year, level, serial
        )

    def next_seq(self) -> int:
        self._seq += 1
        return self._seq

    # -- planning ----------------------------------------------------------------------------

    def planned(
        self,
        family: str,
        partner_id: str,
        subject: str,
        at: int,
        facts: object,
        follows: Planned | None = None,
    ) -> Planned:
        return Planned(
            seq=self.next_seq(),
            family=family,
            partner_id=partner_id,
            event_id=self.event_id(),
            subject=subject,
            occurred_at=at,
            published_at=at,
            facts=facts,
            follows=follows if follows is not None and follows.partner_id == partner_id else None,
        )

    def later(self, at: int) -> int | None:
        """A time after `at` inside the window, or None when the window has no room left."""
        room = self._last_step - at
        if room < 600:
            return None
        return at + 60 + int(self._rng.random() * min(room - 60, max(3600, room // 3)))

    def start_time(self, day_index: int) -> int:
        base = self._window_start + day_index * DAY_SECONDS + OPENING_SECONDS
        return base + int(self._rng.random() * OPEN_SPAN_SECONDS)

    def journey(self, day_index: int) -> list[Planned]:
        """One trainee's lifecycle from enrolment onwards, as far as the window reaches."""
        rng, city = self._rng, self._city
        occupation = city.occupations.draw(rng)
        level = city.levels.draw(rng)
        trainer = city.trainer_for[occupation].draw(rng)
        course = rng.choice(city.courses[trainer][occupation])
        person = self._people.person()
        at = self.start_time(day_index)
        work_types = city.work_types[occupation]
        work_type = rng.choice(work_types) if work_types else None
        enrollment = Enrollment(
            self.record_id(trainer, "E", at), trainer, person, course, level, work_type
        )
        first = self.planned("enrollment.created", trainer, enrollment.record_id, at, enrollment)
        events = [first]
        step = rng.random()
        if step < WITHDRAWAL_SHARE + STILL_TRAINING_SHARE:
            if step < WITHDRAWAL_SHARE and (when := self.later(at)) is not None:
                reason = rng.choice(WITHDRAWAL_REASONS)
                events.append(
                    self.planned(
                        "enrollment.withdrawn", trainer, enrollment.record_id, when,
                        Withdrawal(enrollment, reason), first,
                    )
                )  # fmt: skip
            return events
        completed_at = self.later(at)
        if completed_at is None:
            return events
        hours = max(8, course.hours - rng.choice((0, 0, 0, 2, 4)))
        events.append(
            self.planned(
                "completion.recorded", trainer, enrollment.record_id, completed_at,
                Completion(enrollment, hours), first,
            )
        )  # fmt: skip
        if rng.random() >= EVALUATED_SHARE:
            return events
        org = city.evaluation_orgs[city.evaluator_for[occupation].draw(rng)]
        passed = rng.random() < PASS_SHARE
        evaluated_at = completed_at
        for attempt in range(2):
            next_sitting = self.later(evaluated_at)
            if next_sitting is None:
                return events
            evaluated_at = next_sitting
            evaluation = self.evaluation(
                org, person, occupation, level, passed, enrollment, evaluated_at
            )
            events.extend(evaluation)
            if passed:
                events.extend(self.certification(evaluation[0], evaluated_at))
                return events
            if attempt == 0 and rng.random() >= RESIT_SHARE:
                return events
            passed = rng.random() < 0.75
        return events

    def evaluation(
        self,
        org: EvaluationOrg,
        person: Person,
        occupation: str,
        level: int,
        passed: bool,
        enrollment: Enrollment | None,
        at: int,
    ) -> list[Planned]:
        rng = self._rng
        if passed:
            theory, practical = rng.randint(60, 98), rng.randint(60, 99)
        elif rng.random() < 0.5:
            theory, practical = rng.randint(20, 59), rng.randint(40, 90)
        else:
            theory, practical = rng.randint(60, 95), rng.randint(25, 59)
        evaluation = Evaluation(
            self.record_id(org.partner_id, "V", at), org, person, occupation, level, theory,
            practical, enrollment, enrollment.work_type if enrollment else None,
        )  # fmt: skip
        recorded = self.planned(
            "evaluation.recorded", org.partner_id, evaluation.evaluation_id, at, evaluation
        )
        planned = [recorded]
        if rng.random() < CORRECTION_SHARE and (when := self.later(at)) is not None:
            # A correction fixes one score without turning the result around.
            change = rng.randint(1, 5)
            if passed:
                theory = min(100, theory + change)
            elif theory < PASS_MARK:
                theory = max(0, theory - change)
            else:
                practical = max(0, practical - change)
            correction = Correction(evaluation, theory, practical, rng.choice(CORRECTION_REASONS))
            planned.append(
                self.planned(
                    "evaluation.corrected", org.partner_id, evaluation.evaluation_id, when,
                    correction, recorded,
                )
            )  # fmt: skip
        return planned

    def certification(self, passing: Planned, after: int) -> list[Planned]:
        rng = self._rng
        evaluation = passing.facts
        assert isinstance(evaluation, Evaluation)
        at = self.later(after)
        if at is None:
            return []
        issued = local_day(at)
        certificates = [
            Certificate(self.certificate_number_for(evaluation.org, evaluation.level, issued),
                        evaluation, issued)
            for _ in range(2 if rng.random() < TWO_CERTIFICATE_SHARE else 1)
        ]  # fmt: skip
        if len(certificates) == 2:
            first, second = certificates
            first.paired, second.paired = second, first
        planned = []
        for certificate in certificates:
            number = certificate.number
            planned.append(
                self.planned(
                    "certificate.issued", evaluation.org.partner_id, number, at, certificate,
                    passing,
                )
            )  # fmt: skip
        if rng.random() < REVOCATION_SHARE and (when := self.later(at)) is not None:
            issued_event = planned[-1]
            revoked = certificates[-1]
            planned.append(
                self.planned(
                    "certificate.revoked", evaluation.org.partner_id, revoked.number, when,
                    Revocation(revoked, rng.choice(REVOCATION_REASONS)), issued_event,
                )
            )  # fmt: skip
        return planned

    def plan(self, events: int) -> list[Planned]:
        """Lifecycles starting on each day until `events` events are planned in all."""
        planned: list[Planned] = []
        for day_index in range(self.days):
            budget = events // self.days + (1 if day_index < events % self.days else 0)
            while budget > 0:
                journey = self.journey(day_index)
                if len(journey) > budget:
                    journey = _cut(journey, budget)
                budget -= len(journey)
                planned.extend(journey)
        return planned


def _cut(journey: list[Planned], keep: int) -> list[Planned]:
    """The first `keep` events; a certificate whose pair was cut off becomes a single one."""
    kept = journey[:keep]
    issued = {id(e.facts) for e in kept}
    for event in kept:
        certificate = event.facts
        if isinstance(certificate, Certificate) and id(certificate.paired) not in issued:
            certificate.paired = None
    return kept
