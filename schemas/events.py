"""The event contracts: a CloudEvents 1.0 envelope around one typed payload per event type."""

from __future__ import annotations

import hashlib
import types
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Annotated, Any, Literal

import msgspec
from msgspec import Meta

from schemas.identity import (
    CREDIT_CODE_PATTERN,
    DIVISION_CODE_PATTERN,
    ID_TYPES,
    OCCUPATION_CODE_PATTERN,
    whole,
)
from schemas.topics import PARTNER_ID_PATTERN

TYPE_PREFIX = "org.skillsync."

IDENTIFIER_PATTERN = whole(r"[\x21-\x7e]+")
PHONE_PATTERN = whole(r"\+?[0-9][0-9-]{4,19}")
CERTIFICATE_NUMBER_PATTERN = whole("[A-Z0-9]{10,30}")
SOURCE_PATTERN = whole(f"/partners/{PARTNER_ID_PATTERN}")

Identifier = Annotated[str, Meta(min_length=1, max_length=128, pattern=IDENTIFIER_PATTERN)]
Text = Annotated[str, Meta(min_length=1, max_length=200)]
Timestamp = Annotated[datetime, Meta(tz=True)]
OccupationCode = Annotated[str, Meta(pattern=OCCUPATION_CODE_PATTERN)]
DivisionCode = Annotated[str, Meta(pattern=DIVISION_CODE_PATTERN)]
CreditCode = Annotated[str, Meta(pattern=CREDIT_CODE_PATTERN)]
Level = Annotated[int, Meta(ge=1, le=5)]
Score = Annotated[float, Meta(ge=0, le=100)]
Hours = Annotated[float, Meta(ge=0, le=2000)]
CertificateNumber = Annotated[str, Meta(pattern=CERTIFICATE_NUMBER_PATTERN)]
Sha256Hex = Annotated[str, Meta(pattern=whole("[0-9a-f]{64}"))]
IdType = Literal[ID_TYPES]  # type: ignore[valid-type]


class Closed(msgspec.Struct, forbid_unknown_fields=True):
    """A closed content model: unknown fields are refused, not ignored."""


class Learner(Closed):
    id_type: IdType
    id_number: Annotated[str, Meta(min_length=1, max_length=32)]
    name: Annotated[str, Meta(min_length=1, max_length=64)]
    phone: Annotated[str, Meta(pattern=PHONE_PATTERN)] | None = None


class Organisation(Closed):
    credit_code: CreditCode
    name: Text


class Course(Closed):
    course_id: Identifier
    occupation_code: OccupationCode
    level: Level
    hours: Annotated[float, Meta(gt=0, le=2000)]
    mode: Literal["online", "offline", "blended"]
    work_type: Text | None = None


class EnrollmentCreated(Closed):
    enrollment_id: Identifier
    learner: Learner
    course: Course
    institution: Organisation
    district_code: DivisionCode
    enrolled_at: Timestamp


class EnrollmentWithdrawn(Closed):
    enrollment_id: Identifier
    learner: Learner
    withdrawn_at: Timestamp
    reason: Literal["learner_request", "no_show", "duplicate", "course_cancelled", "other"]


class CompletionRecorded(Closed):
    enrollment_id: Identifier
    learner: Learner
    completed_at: Timestamp
    hours_attended: Hours


class EvaluationRecorded(Closed):
    evaluation_id: Identifier
    learner: Learner
    occupation_code: OccupationCode
    level: Level
    theory_score: Score
    practical_score: Score
    result: Literal["pass", "fail"]
    evaluated_at: Timestamp
    organisation: Organisation
    district_code: DivisionCode
    enrollment_id: Identifier | None = None


class EvaluationRecordedV2(EvaluationRecorded):
    """v2 adds the work type (工种), which has no national code and travels as text."""

    work_type: Text | None = None


class EvaluationCorrected(Closed):
    evaluation_id: Identifier
    corrects: Identifier
    learner: Learner
    corrected_at: Timestamp
    reason: Literal["scoring_error", "data_entry_error", "appeal_upheld", "other"]
    occupation_code: OccupationCode | None = None
    level: Level | None = None
    theory_score: Score | None = None
    practical_score: Score | None = None
    result: Literal["pass", "fail"] | None = None


class CertificateIssued(Closed):
    certificate_number: CertificateNumber
    certificate_type: Literal["skill_level", "special_ability"]
    scheme: Literal["skill_level_2020", "vocational_qualification", "special_ability"]
    learner: Learner
    issued_at: Timestamp
    evaluation_id: Identifier
    organisation: Organisation
    occupation_code: OccupationCode | None = None
    level: Level | None = None
    paired_certificate_number: CertificateNumber | None = None


class CertificateRevoked(Closed):
    certificate_number: CertificateNumber
    learner: Learner
    revoked_at: Timestamp
    reason: Literal["fraud", "issued_in_error", "evaluation_corrected", "duplicate", "other"]


class ControlTotals(Closed):
    business_day: date
    counts: Annotated[dict[str, Annotated[int, Meta(ge=0)]], Meta(max_length=16)]
    digests: Annotated[dict[str, Sha256Hex], Meta(max_length=16)]
    event_ids: Annotated[dict[str, list[Identifier]], Meta(max_length=16)] | None = None


class Envelope(Closed, tag_field="type"):
    """CloudEvents 1.0, structured JSON mode; each event type subclasses it with its data."""

    specversion: Literal["1.0"]
    id: Identifier
    source: Annotated[str, Meta(pattern=SOURCE_PATTERN)]
    time: Timestamp
    data: Closed  # narrowed to the payload type by each event type's subclass
    subject: Identifier | None = None
    datacontenttype: Literal["application/json"] | None = None


@dataclass(frozen=True, slots=True)
class EventType:
    family: str
    version: int
    data: type[Closed]
    envelope: type[Envelope]
    occurred_at_field: str | None  # the data field saying when it happened
    name: str = field(init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "name", f"{TYPE_PREFIX}{self.family}.v{self.version}")


def _event_type(
    family: str, version: int, data: type[Closed], occurred_at: str | None
) -> EventType:
    name = f"{TYPE_PREFIX}{family}.v{version}"
    class_name = "".join(part.title() for part in family.split(".")) + f"V{version}Event"

    def body(namespace: dict[str, Any]) -> None:
        namespace["__annotations__"] = {"data": data}
        namespace["__module__"] = __name__

    envelope = types.new_class(class_name, (Envelope,), {"tag": name}, body)
    return EventType(family, version, data, envelope, occurred_at)


EVENT_TYPES: dict[str, EventType] = {
    t.name: t
    for t in (
        _event_type("enrollment.created", 1, EnrollmentCreated, "enrolled_at"),
        _event_type("enrollment.withdrawn", 1, EnrollmentWithdrawn, "withdrawn_at"),
        _event_type("completion.recorded", 1, CompletionRecorded, "completed_at"),
        _event_type("evaluation.recorded", 1, EvaluationRecorded, "evaluated_at"),
        _event_type("evaluation.recorded", 2, EvaluationRecordedV2, "evaluated_at"),
        _event_type("evaluation.corrected", 1, EvaluationCorrected, "corrected_at"),
        _event_type("certificate.issued", 1, CertificateIssued, "issued_at"),
        _event_type("certificate.revoked", 1, CertificateRevoked, "revoked_at"),
        _event_type("control.totals", 1, ControlTotals, None),
    )
}
FAMILIES: frozenset[str] = frozenset(t.family for t in EVENT_TYPES.values())


def json_schema(event_type: EventType) -> dict[str, Any]:
    """The JSON Schema (draft 2020-12) of one event type's whole envelope."""
    schema = msgspec.json.schema(event_type.envelope)
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": f"https://skillsync.example/schemas/{event_type.family}.v{event_type.version}.json",
        "title": event_type.name,
        **schema,
    }


def totals_digest(event_ids: Iterable[str]) -> str:
    """SHA-256 hex of the event ids sorted (code point order) and joined by "\\n" in UTF-8."""
    return hashlib.sha256("\n".join(sorted(event_ids)).encode()).hexdigest()
