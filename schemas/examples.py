"""One valid example event per type: a starting point for tests, docs and the simulator."""

from __future__ import annotations

import copy
from typing import Any

from schemas.events import TYPE_PREFIX, totals_digest
from schemas.identity import certificate_number

_LEARNER = {
    "id_type": "resident_id",
    "id_number": "11010519491231002X",  # the worked example of GB 11643 itself
    "name": "张三",
    "phone": "13800138000",
}
_INSTITUTION = {"credit_code": "91330100799655058B", "name": "杭州示例职业培训学校"}
_EVALUATION_ORG = {
    "credit_code": "91330108075793G7LP",
    "name": "杭州数智职业技能评价有限公司",
}
_CERTIFICATE = certificate_number("S", "0001", "33", "000108", 2024, 4, 1)
_PAIRED_CERTIFICATE = certificate_number("S", "0001", "33", "000108", 2024, 4, 2)

_DATA: dict[str, tuple[str, str, dict[str, Any]]] = {
    # type name -> (partner, event time, data)
    "enrollment.created.v1": (
        "zjgj",
        "2024-03-01T09:30:00+08:00",
        {
            "enrollment_id": "ENR-2024-000123",
            "learner": _LEARNER,
            "course": {
                "course_id": "ZJGJ-C-0042",
                "occupation_code": "4-01-06-02",
                "level": 4,
                "work_type": "直播销售员",
                "hours": 64,
                "mode": "blended",
            },
            "institution": _INSTITUTION,
            "district_code": "330106",
            "enrolled_at": "2024-03-01T09:12:44+08:00",
        },
    ),
    "enrollment.withdrawn.v1": (
        "zjgj",
        "2024-03-05T10:00:00+08:00",
        {
            "enrollment_id": "ENR-2024-000123",
            "learner": _LEARNER,
            "withdrawn_at": "2024-03-05T09:58:00+08:00",
            "reason": "learner_request",
        },
    ),
    "completion.recorded.v1": (
        "zjgj",
        "2024-04-20T17:00:00+08:00",
        {
            "enrollment_id": "ENR-2024-000123",
            "learner": _LEARNER,
            "completed_at": "2024-04-20T16:45:00+08:00",
            "hours_attended": 62.5,
        },
    ),
    "evaluation.recorded.v1": (
        "eval01",
        "2024-05-11T18:00:00+08:00",
        {
            "evaluation_id": "EV-2024-05-0007",
            "learner": _LEARNER,
            "occupation_code": "4-01-06-02",
            "level": 4,
            "theory_score": 78.5,
            "practical_score": 84,
            "result": "pass",
            "evaluated_at": "2024-05-11T16:00:00+08:00",
            "organisation": _EVALUATION_ORG,
            "district_code": "330108",
            "enrollment_id": "ENR-2024-000123",
        },
    ),
    "evaluation.recorded.v2": (
        "eval01",
        "2024-05-11T18:00:00+08:00",
        {
            "evaluation_id": "EV-2024-05-0008",
            "learner": _LEARNER,
            "occupation_code": "4-01-06-02",
            "level": 4,
            "theory_score": 71,
            "practical_score": 90,
            "result": "pass",
            "evaluated_at": "2024-05-11T16:30:00+08:00",
            "organisation": _EVALUATION_ORG,
            "district_code": "330108",
            "work_type": "直播销售员",
        },
    ),
    "evaluation.corrected.v1": (
        "eval01",
        "2024-05-13T11:00:00+08:00",
        {
            "evaluation_id": "EV-2024-05-0007",
            "corrects": "evt-eval01-000451",
            "learner": _LEARNER,
            "corrected_at": "2024-05-13T10:40:00+08:00",
            "reason": "scoring_error",
            "practical_score": 86,
        },
    ),
    "certificate.issued.v1": (
        "eval01",
        "2024-05-20T09:00:00+08:00",
        {
            "certificate_number": _CERTIFICATE,
            "certificate_type": "skill_level",
            "scheme": "skill_level_2020",
            "learner": _LEARNER,
            "occupation_code": "4-01-06-02",
            "level": 4,
            "issued_at": "2024-05-20T08:30:00+08:00",
            "evaluation_id": "EV-2024-05-0007",
            "organisation": _EVALUATION_ORG,
            "paired_certificate_number": _PAIRED_CERTIFICATE,
        },
    ),
    "certificate.revoked.v1": (
        "eval01",
        "2024-06-02T15:00:00+08:00",
        {
            "certificate_number": _CERTIFICATE,
            "learner": _LEARNER,
            "revoked_at": "2024-06-02T14:20:00+08:00",
            "reason": "issued_in_error",
        },
    ),
    "control.totals.v1": (
        "zjgj",
        "2024-03-02T00:20:00+08:00",
        {
            "business_day": "2024-03-01",
            "counts": {"enrollment.created": 2},
            "digests": {"enrollment.created": totals_digest(["evt-zjgj-0001", "evt-zjgj-0002"])},
            "event_ids": {"enrollment.created": ["evt-zjgj-0001", "evt-zjgj-0002"]},
        },
    ),
}


def example_events() -> dict[str, dict[str, Any]]:
    """A fresh, valid CloudEvents dict for every event type, keyed by type name."""
    examples = {}
    for short_name, (partner_id, time, data) in _DATA.items():
        type_name = TYPE_PREFIX + short_name
        event: dict[str, Any] = {
            "specversion": "1.0",
            "id": f"evt-{partner_id}-{short_name.replace('.', '-')}-0001",
            "source": f"/partners/{partner_id}",
            "type": type_name,
            "time": time,
            "datacontenttype": "application/json",
        }
        if subject := data.get("enrollment_id") or data.get("evaluation_id"):
            event["subject"] = subject
        event["data"] = copy.deepcopy(data)
        examples[type_name] = event
    return examples
