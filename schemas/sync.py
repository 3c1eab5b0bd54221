"""The sync feed's contracts: what each subscriber receives, as versioned CloudEvents per kind.

Each change is one Kafka record on `skills.sync.<subscriber>` in CloudEvents' binary content
mode: the record's data is the message value (JSON), every other attribute a `ce_` header.
An upsert carries the record's whole current state; a delete carries no value, so in the
compacted topic it is a tombstone. `changeversion` (header `ce_changeversion`) numbers a
subscriber's changes: strictly increasing, so a reader drops any repeat by its version.
"""

from __future__ import annotations

import types
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Annotated, Any, Literal

import msgspec
from msgspec import Meta

from schemas.events import Closed
from schemas.topics import PARTNER_ID_PATTERN

SYNC_TYPE_PREFIX = "org.skillsync.sync."
SYNC_SOURCE_PREFIX = "/skillsync/sync/"
SCHEMA_BASE_URI = "https://skillsync.example/schemas/sync/"
OPERATIONS = ("upserted", "deleted")
# The header of the change version, a CloudEvents extension attribute in binary mode.
VERSION_HEADER = "ce_changeversion"

# What a subscriber may subscribe to (the registry's `feeds`), and the record kinds of each.
SLICES: dict[str, tuple[str, ...]] = {
    # A district bureau: records of training and evaluations that took place in its district.
    "district": ("certificate", "evaluation", "completion", "subsidy_decision"),
    # The subsidy office: every eligibility decision, with any double claim's first claim.
    "subsidies": ("subsidy_decision",),
    # A publishing partner: what the night found about its own records.
    "notices": ("notice",),
    # A partner that enrols trainees: how far each of its enrollments got.
    "enrollment_outcomes": ("enrollment_outcome",),
    # A partner that issues certificates: what became of each of them.
    "certificate_outcomes": ("certificate_outcome",),
}
# Slices that give one kind two shapes: a subscriber takes at most one of them.
EXCLUSIVE_SLICES = frozenset({"district", "subsidies"})

PersonPseudonym = Annotated[str, Meta(pattern="^[0-9a-f]{64}$")]
PartnerId = Annotated[str, Meta(pattern=f"^{PARTNER_ID_PATTERN}$")]
Key = Annotated[str, Meta(min_length=1, max_length=600)]
Text = Annotated[str, Meta(min_length=1, max_length=200)]
Level = Annotated[int, Meta(ge=1, le=5)]
Timestamp = Annotated[datetime, Meta(tz=True)]


class Certificate(Closed):
    """A certificate issued after an evaluation in the subscriber's district, in its current
    state (a revocation is applied in place; the certificate leaves the feed only when erased)."""

    certificate_number: Text
    person: PersonPseudonym
    partner_id: PartnerId
    event_id: Text
    business_day: date
    certificate_type: Literal["skill_level", "special_ability"]
    scheme: Text
    issued_at: Timestamp
    evaluation_id: Text
    status: Literal["in_force", "revoked"]
    passing_evaluation: bool
    number_shared: bool
    occupation_code: Text | None = None
    level: Level | None = None
    organisation_code: Text | None = None
    district_code: Text | None = None
    evaluation_level: Level | None = None
    paired_certificate_number: Text | None = None
    revoked_at: Timestamp | None = None
    revocation_reason: Text | None = None
    revoked_day: date | None = None


class Evaluation(Closed):
    """A skill evaluation held in the subscriber's district, corrections applied."""

    partner_id: PartnerId
    evaluation_id: Text
    person: PersonPseudonym
    event_id: Text
    business_day: date
    occupation_code: Text
    level: Level
    theory_score: float
    practical_score: float
    result: Literal["pass", "fail"]
    evaluated_at: Timestamp
    corrections: Annotated[int, Meta(ge=0)]
    organisation_code: Text | None = None
    district_code: Text | None = None
    enrollment_id: Text | None = None
    work_type: Text | None = None
    last_corrected_day: date | None = None


class Completion(Closed):
    """A course completion of a training held in the subscriber's district (the district of
    its enrollment)."""

    partner_id: PartnerId
    enrollment_id: Text
    person: PersonPseudonym
    event_id: Text
    business_day: date
    completed_at: Timestamp
    hours_attended: float
    district_code: Text


class DoubleClaim(Closed):
    """The claim that came first for the same person, occupation and level."""

    first_certificate_number: Text
    first_partner_id: PartnerId | None = None
    first_district_code: Text | None = None


class SubsidyDecision(Closed):
    """A subsidy eligibility decision on one certificate. `double_claim` names the first claim
    for the subsidy office; a district sees only `first_claim_number` (the first claim may lie
    in another district)."""

    certificate_number: Text
    person: PersonPseudonym
    business_day: date
    partner_id: PartnerId
    certificate_type: Literal["skill_level", "special_ability"]
    issued_day: date
    scheme: Text
    eligible: bool
    reason: Literal["eligible", "revoked", "shared_number", "paired_certificate",
                    "already_claimed", "no_rule"]
    district_code: Text | None = None
    occupation_code: Text | None = None
    level: Level | None = None
    amount_yuan: int | None = None
    first_claim_number: Text | None = None
    double_claim: DoubleClaim | None = None


class Counterpart(Closed):
    """The other party of a finding, by partner id and role only."""

    partner_id: PartnerId
    role: Text | None = None


class Notice(Closed):
    """A discrepancy the night found about one of the subscriber's own events. `detail` holds
    the finding's figures and the subscriber's own ids (see docs/warehouse.md); another party
    is named only in `counterparts`."""

    kind: Text
    severity: Literal["error", "warning", "info"]
    business_day: date
    reference: Key
    event_id: Text
    detail: dict[str, Any]
    counterparts: list[Counterpart]


class EnrollmentOutcome(Closed):
    """How far one of the subscriber's enrollments got: completion, an evaluation of the same
    person, occupation and level (by anyone), a certificate in force for them."""

    enrollment_id: Text
    event_id: Text
    business_day: date
    occupation_code: Text
    level: Level
    status: Literal["active", "withdrawn"]
    canonical: bool
    completed: bool
    evaluated: bool
    evaluation_passed: bool
    certified: bool
    withdrawn_day: date | None = None
    completed_day: date | None = None


class SubsidyOutcome(Closed):
    eligible: bool
    reason: Text
    amount_yuan: int | None = None


class CertificateOutcome(Closed):
    """What became of one of the subscriber's certificates."""

    certificate_number: Text
    event_id: Text
    business_day: date
    status: Literal["in_force", "revoked"]
    passing_evaluation: bool
    level_mismatch: bool
    number_shared: bool
    revoked_day: date | None = None
    subsidy: SubsidyOutcome | None = None


KINDS: dict[str, type[Closed]] = {
    "certificate": Certificate,
    "evaluation": Evaluation,
    "completion": Completion,
    "subsidy_decision": SubsidyDecision,
    "notice": Notice,
    "enrollment_outcome": EnrollmentOutcome,
    "certificate_outcome": CertificateOutcome,
}


class SyncEnvelope(Closed, kw_only=True):
    """A feed change as one CloudEvents 1.0 JSON object (headers and value put together)."""

    specversion: Literal["1.0"]
    id: Annotated[str, Meta(pattern="^[1-9][0-9]*$")]
    source: Annotated[str, Meta(pattern=f"^{SYNC_SOURCE_PREFIX}{PARTNER_ID_PATTERN}$")]
    time: Timestamp
    subject: Key
    changeversion: Annotated[str, Meta(pattern="^[1-9][0-9]*$")]
    dataschema: str | None = None
    datacontenttype: Literal["application/json"] | None = None


@dataclass(frozen=True, slots=True)
class SyncType:
    kind: str
    operation: str  # "upserted" or "deleted"
    version: int
    envelope: type[SyncEnvelope]
    name: str = field(init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "name", sync_type_name(self.kind, self.operation, self.version))

    @property
    def stem(self) -> str:
        """The schema file's name without .json, e.g. "certificate.upserted.v1"."""
        return f"{self.kind}.{self.operation}.v{self.version}"


def sync_type_name(kind: str, operation: str, version: int) -> str:
    return f"{SYNC_TYPE_PREFIX}{kind}.{operation}.v{version}"


def _sync_type(kind: str, operation: str, version: int, data: type[Closed]) -> SyncType:
    name = sync_type_name(kind, operation, version)
    class_name = "".join(p.title() for p in f"{kind}_{operation}".split("_")) + f"V{version}"

    def body(namespace: dict[str, Any]) -> None:
        if operation == "upserted":
            namespace["__annotations__"] = {"data": data,
                                            "datacontenttype": Literal["application/json"]}
        namespace["__module__"] = __name__

    envelope = types.new_class(class_name, (SyncEnvelope,), {"tag": name, "tag_field": "type"},
                               body)
    return SyncType(kind, operation, version, envelope)


# Every contract version a reader of this code understands. A new version is a new entry; the
# compatibility checker holds each kind's versions to full transitive compatibility.
SYNC_TYPES: dict[str, SyncType] = {
    t.name: t for kind, data in KINDS.items() for t in (
        _sync_type(kind, "upserted", 1, data), _sync_type(kind, "deleted", 1, data))
}


def json_schema(sync_type: SyncType) -> dict[str, Any]:
    """The JSON Schema (draft 2020-12) of one feed type's event, attributes and data together."""
    schema = msgspec.json.schema(sync_type.envelope)
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": f"{SCHEMA_BASE_URI}{sync_type.stem}.json",
        "title": sync_type.name,
        **schema,
    }


def schema_uri(kind: str, operation: str, version: int = 1) -> str:
    return f"{SCHEMA_BASE_URI}{kind}.{operation}.v{version}.json"


_DECODERS = {kind: msgspec.json.Decoder(data, strict=False) for kind, data in KINDS.items()}


def data_decoder(type_name: str) -> Callable[[bytes], Any]:
    """What validates an upsert's data against its contract (msgspec.ValidationError if not)."""
    return _DECODERS[SYNC_TYPES[type_name].kind].decode
