"""One example change per sync feed type, in its JSON form (attributes and data together)."""

from __future__ import annotations

import copy
from typing import Any

from schemas.sync import SYNC_SOURCE_PREFIX, SYNC_TYPES, schema_uri

_PERSON = "6f1c2a9d3b4e5f60718293a4b5c6d7e8f90a1b2c3d4e5f60718293a4b5c6d7e8"
_CERTIFICATE = "S000133000108244000001"

# kind -> (subscriber, record key, data)
_DATA: dict[str, tuple[str, str, dict[str, Any]]] = {
    "certificate": ("bj_bureau", f"certificate {_CERTIFICATE} {_PERSON}", {
        "certificate_number": _CERTIFICATE, "person": _PERSON, "partner_id": "eval01",
        "event_id": "evt-eval01-000512", "business_day": "2024-05-20",
        "certificate_type": "skill_level", "scheme": "skill_level_2020",
        "occupation_code": "4-01-06-02", "level": 4, "issued_at": "2024-05-20T00:30:00+00:00",
        "evaluation_id": "EV-2024-05-0007", "organisation_code": "91330108075793G7LP",
        "district_code": "330108", "evaluation_level": 4,
        "paired_certificate_number": "S000133000108244000002", "status": "in_force",
        "revoked_at": None, "revocation_reason": None, "revoked_day": None,
        "passing_evaluation": True, "number_shared": False}),
    "evaluation": ("bj_bureau", f"evaluation eval01 EV-2024-05-0007 {_PERSON}", {
        "partner_id": "eval01", "evaluation_id": "EV-2024-05-0007", "person": _PERSON,
        "event_id": "evt-eval01-000451", "business_day": "2024-05-11",
        "occupation_code": "4-01-06-02", "level": 4, "theory_score": 78.5,
        "practical_score": 86, "result": "pass", "evaluated_at": "2024-05-11T08:00:00+00:00",
        "organisation_code": "91330108075793G7LP", "district_code": "330108",
        "enrollment_id": "ENR-2024-000123", "work_type": None, "corrections": 1,
        "last_corrected_day": "2024-05-13"}),
    "completion": ("xh_bureau", f"completion zjgj ENR-2024-000123 {_PERSON}", {
        "partner_id": "zjgj", "enrollment_id": "ENR-2024-000123", "person": _PERSON,
        "event_id": "evt-zjgj-003120", "business_day": "2024-04-20",
        "completed_at": "2024-04-20T08:45:00+00:00", "hours_attended": 62.5,
        "district_code": "330106"}),
    "subsidy_decision": ("subsidy_office", f"subsidy_decision {_CERTIFICATE} {_PERSON}", {
        "certificate_number": _CERTIFICATE, "person": _PERSON, "business_day": "2024-05-20",
        "partner_id": "eval01", "district_code": "330108", "occupation_code": "4-01-06-02",
        "level": 4, "certificate_type": "skill_level", "issued_day": "2024-05-20",
        "scheme": "training_subsidy", "eligible": False, "reason": "already_claimed",
        "amount_yuan": None, "first_claim_number": "S000233000105234000017",
        "double_claim": {"first_certificate_number": "S000233000105234000017",
                         "first_partner_id": "eval05", "first_district_code": "330105"}}),
    "notice": ("zjgj", "notice semantic_duplicate evt-zjgj-003004 zjgj:ENR-2024-000123", {
        "kind": "semantic_duplicate", "severity": "info", "business_day": "2024-03-01",
        "reference": "zjgj:ENR-2024-000123", "event_id": "evt-zjgj-003004", "detail": {},
        "counterparts": [{"partner_id": "xgxy", "role": "training_platform"}]}),
    "enrollment_outcome": ("zjgj", "enrollment_outcome evt-zjgj-003004", {
        "enrollment_id": "ENR-2024-000123", "event_id": "evt-zjgj-003004",
        "business_day": "2024-03-01", "occupation_code": "4-01-06-02", "level": 4,
        "status": "active", "withdrawn_day": None, "canonical": False, "completed": True,
        "completed_day": "2024-04-20", "evaluated": True, "evaluation_passed": True,
        "certified": True}),
    "certificate_outcome": ("eval01", "certificate_outcome evt-eval01-000512", {
        "certificate_number": _CERTIFICATE, "event_id": "evt-eval01-000512",
        "business_day": "2024-05-20", "status": "in_force", "revoked_day": None,
        "passing_evaluation": True, "level_mismatch": False, "number_shared": False,
        "subsidy": {"eligible": False, "reason": "already_claimed", "amount_yuan": None}}),
}


def example_sync_events() -> dict[str, dict[str, Any]]:
    """A fresh, valid example of every sync feed type, keyed by type name."""
    examples = {}
    for version, (name, sync_type) in enumerate(sorted(SYNC_TYPES.items()), start=41):
        subscriber, key, data = _DATA[sync_type.kind]
        event: dict[str, Any] = {
            "specversion": "1.0", "id": str(version), "source": SYNC_SOURCE_PREFIX + subscriber,
            "type": name, "time": "2024-05-21T18:05:11.204Z", "subject": key,
            "changeversion": str(version),
            "dataschema": schema_uri(sync_type.kind, sync_type.operation),
        }
        if sync_type.operation == "upserted":
            event["datacontenttype"] = "application/json"
            event["data"] = copy.deepcopy(data)
        examples[name] = event
    return examples
