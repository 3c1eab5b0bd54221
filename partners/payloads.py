"""Planned facts rendered as CloudEvents dicts in the shapes schemas.events defines."""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

from partners.city import EvaluationOrg, Institution, Person
from partners.lifecycle import (
    DAY_SECONDS,
    UTC_OFFSET_SECONDS,
    Certificate,
    Completion,
    Correction,
    Enrollment,
    Evaluation,
    Planned,
    Revocation,
    Withdrawal,
)
from schemas.events import TYPE_PREFIX

SPECVERSION = "1.0"
CONTENT_TYPE = "application/json"
_EPOCH = date(1970, 1, 1)


class Clock:
    """Formats epoch seconds as RFC 3339 with the +08:00 offset, caching each day's prefix."""

    def __init__(self) -> None:
        self._prefixes: dict[int, str] = {}

    def __call__(self, epoch_seconds: int) -> str:
        days, second = divmod(epoch_seconds + UTC_OFFSET_SECONDS, DAY_SECONDS)
        prefix = self._prefixes.get(days)
        if prefix is None:
            prefix = f"{_EPOCH + timedelta(days=days):%Y-%m-%d}T"
            self._prefixes[days] = prefix
        hours, rest = divmod(second, 3600)
        minutes, seconds = divmod(rest, 60)
        return f"{prefix}{hours:02d}:{minutes:02d}:{seconds:02d}+08:00"


def learner(person: Person) -> dict[str, Any]:
    return {
        "id_type": "resident_id",
        "id_number": person.resident_id,
        "name": person.name,
        "phone": person.phone,
    }


def organisation(org: EvaluationOrg | Institution) -> dict[str, str]:
    return {"credit_code": org.credit_code, "name": org.name}


def type_name(family: str, version: int = 1) -> str:
    return f"{TYPE_PREFIX}{family}.v{version}"


class Renderer:
    """Turns planned events into CloudEvents dicts; deterministic, no randomness of its own."""

    def __init__(self) -> None:
        self.clock = Clock()

    def envelope(self, planned: Planned, data: dict[str, Any], version: int = 1) -> dict[str, Any]:
        return {
            "specversion": SPECVERSION,
            "id": planned.event_id,
            "source": f"/partners/{planned.partner_id}",
            "type": type_name(planned.family, version),
            "time": self.clock(planned.published_at),
            "subject": planned.subject,
            "datacontenttype": CONTENT_TYPE,
            "data": data,
        }

    def event(self, planned: Planned) -> dict[str, Any]:
        facts = planned.facts
        at = self.clock(planned.occurred_at)
        if isinstance(facts, Enrollment):
            return self.envelope(planned, self.enrollment(facts, at))
        if isinstance(facts, Completion):
            return self.envelope(
                planned,
                {
                    "enrollment_id": facts.enrollment.record_id,
                    "learner": learner(facts.enrollment.person),
                    "completed_at": at,
                    "hours_attended": facts.hours_attended,
                },
            )
        if isinstance(facts, Withdrawal):
            return self.envelope(
                planned,
                {
                    "enrollment_id": facts.enrollment.record_id,
                    "learner": learner(facts.enrollment.person),
                    "withdrawn_at": at,
                    "reason": facts.reason,
                },
            )
        if isinstance(facts, Evaluation):
            data = self.evaluation(facts, at)
            # The work type (工种) only travels in version 2.
            if facts.work_type is not None:
                data["work_type"] = facts.work_type
                return self.envelope(planned, data, version=2)
            return self.envelope(planned, data)
        if isinstance(facts, Correction):
            return self.envelope(planned, self.correction(planned, facts, at))
        if isinstance(facts, Certificate):
            return self.envelope(planned, self.certificate(facts, at))
        if isinstance(facts, Revocation):
            return self.envelope(
                planned,
                {
                    "certificate_number": facts.certificate.number,
                    "learner": learner(facts.certificate.evaluation.person),
                    "revoked_at": at,
                    "reason": facts.reason,
                },
            )
        raise TypeError(f"no rendering for {type(facts).__name__}")

    @staticmethod
    def enrollment(facts: Enrollment, at: str) -> dict[str, Any]:
        course: dict[str, Any] = {
            "course_id": facts.course.course_id,
            "occupation_code": facts.course.occupation_code,
            "level": facts.level,
            "hours": facts.course.hours,
            "mode": facts.course.mode,
        }
        if facts.work_type is not None:
            course["work_type"] = facts.work_type
        return {
            "enrollment_id": facts.record_id,
            "learner": learner(facts.person),
            "course": course,
            "institution": organisation(facts.course.institution),
            "district_code": facts.course.institution.district_code,
            "enrolled_at": at,
        }

    @staticmethod
    def evaluation(facts: Evaluation, at: str) -> dict[str, Any]:
        data: dict[str, Any] = {
            "evaluation_id": facts.evaluation_id,
            "learner": learner(facts.person),
            "occupation_code": facts.occupation_code,
            "level": facts.level,
            "theory_score": facts.theory_score,
            "practical_score": facts.practical_score,
            "result": "pass" if facts.passed else "fail",
            "evaluated_at": at,
            "organisation": organisation(facts.org),
            "district_code": facts.org.district_code,
        }
        if facts.enrollment is not None:
            data["enrollment_id"] = facts.enrollment.record_id
        return data

    @staticmethod
    def correction(planned: Planned, facts: Correction, at: str) -> dict[str, Any]:
        corrected = facts.evaluation
        data: dict[str, Any] = {
            "evaluation_id": corrected.evaluation_id,
            "corrects": planned.follows.event_id if planned.follows else corrected.evaluation_id,
            "learner": learner(corrected.person),
            "corrected_at": at,
            "reason": facts.reason,
        }
        # A correction carries only the fields it changes.
        if facts.theory_score != corrected.theory_score:
            data["theory_score"] = facts.theory_score
        if facts.practical_score != corrected.practical_score:
            data["practical_score"] = facts.practical_score
        if facts.result is not None:
            data["result"] = facts.result
        return data

    @staticmethod
    def certificate(facts: Certificate, at: str) -> dict[str, Any]:
        evaluation = facts.evaluation
        data: dict[str, Any] = {
            "certificate_number": facts.number,
            "certificate_type": "skill_level",
            "scheme": "skill_level_2020",
            "learner": learner(evaluation.person),
            "occupation_code": evaluation.occupation_code,
            "level": facts.certified_level,
            "issued_at": at,
            "evaluation_id": evaluation.evaluation_id,
            "organisation": organisation(evaluation.org),
        }
        if facts.paired is not None:
            data["paired_certificate_number"] = facts.paired.number
        return data
