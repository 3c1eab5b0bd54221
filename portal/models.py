"""What the pages and the JSON endpoints show: one typed model per table row."""

from __future__ import annotations

from datetime import date, datetime
from typing import Literal

from pydantic import BaseModel, Field


class Problem(BaseModel):
    """An error answer of the JSON endpoints."""
    detail: str


# -- partner ------------------------------------------------------------------------------

class ScorecardDay(BaseModel):
    business_day: date
    received: int
    valid: int
    rejected: int
    rejected_by_reason: dict[str, int]
    duplicates: int
    late: int
    missing: int
    extra: int
    loaded: bool


class ReasonCount(BaseModel):
    reason_code: str
    reason: str = Field(description="What the reason code means, in the reader's language")
    fix_hint: str
    refused: int


class Refusal(BaseModel):
    append_day: date
    appended_at: datetime
    event_id: str | None
    reason_code: str
    reason: str = Field(description="What the reason code means, in the reader's language")
    fix_hint: str
    field_path: str = Field(description="JSON path of the refused field")
    message: str = Field(description="The refusal's detail as the pipeline recorded it")
    stage: str
    topic: str
    kafka_partition: int
    kafka_offset: int
    size_bytes: int
    payload_sha256: str
    replay_outcome: str | None


class RefusalPage(BaseModel):
    partner_id: str
    first: date
    last: date
    total: int
    page: int
    page_size: int
    rows: list[Refusal]


class ControlFamily(BaseModel):
    family: str
    counted: int | None
    landed: int | None
    missing: int
    extra: int


class ControlTotalDay(BaseModel):
    business_day: date
    status: Literal["ok", "gap", "not_sent"]
    loaded: bool
    event_id: str | None
    reported_at: datetime | None
    families: list[ControlFamily]


class Notice(BaseModel):
    business_day: date
    kind: str
    kind_text: str
    severity: str
    reference: str
    detail: dict[str, object]


class FeedState(BaseModel):
    """The partner's sync feed (skills.sync.<partner>): the version of its last change and the
    version the relay has published up to; both None for a partner subscribed to nothing."""

    available: bool
    state: str
    last_version: int | None = None
    published_version: int | None = None


# -- agency -------------------------------------------------------------------------------

class CertificateCount(BaseModel):
    occupation_code: str | None
    occupation: str
    certificate_type: str
    level: int | None
    in_force: int
    revoked: int


class EvaluationCount(BaseModel):
    occupation_code: str
    occupation: str
    level: int
    passed: int
    failed: int


class SubsidyCount(BaseModel):
    occupation_code: str | None
    occupation: str
    certificate_type: str
    level: int | None
    eligible: int
    not_eligible: int
    amount_yuan: int


class SubsidyDecision(BaseModel):
    reason: str
    reason_text: str
    certificates: int
    amount_yuan: int


class DistrictDay(BaseModel):
    business_day: date
    certificates: int
    evaluations: int
    subsidy_yuan: int


class DistrictSummary(BaseModel):
    district_code: str
    first: date
    last: date
    certificates: list[CertificateCount]
    evaluations: list[EvaluationCount]
    subsidies: list[SubsidyCount]
    decisions: list[SubsidyDecision]
    days: list[DistrictDay]


class CertificateRecord(BaseModel):
    business_day: date
    certificate_number: str
    certificate_type: str
    occupation_code: str | None
    level: int | None
    status: str
    issued_at: datetime
    revoked_at: datetime | None
    partner_id: str
    district_code: str | None
    id_masked: str | None
    name_masked: str | None


class EvaluationRecord(BaseModel):
    business_day: date
    evaluation_id: str
    occupation_code: str
    level: int
    theory_score: float
    practical_score: float
    result: str
    evaluated_at: datetime
    corrections: int
    partner_id: str
    district_code: str | None
    id_masked: str | None
    name_masked: str | None


class SubsidyRecord(BaseModel):
    business_day: date
    certificate_number: str
    certificate_type: str
    occupation_code: str | None
    level: int | None
    eligible: bool
    reason: str
    amount_yuan: int | None
    issued_day: date
    partner_id: str
    district_code: str | None
    id_masked: str | None
    name_masked: str | None


class RecordPage(BaseModel):
    district_code: str
    first: date
    last: date
    page: int
    page_size: int
    rows: list[CertificateRecord] | list[EvaluationRecord] | list[SubsidyRecord]


# -- operator -----------------------------------------------------------------------------

class PartnerIngest(BaseModel):
    partner_id: str
    lag: int | None = Field(description="Records on the broker not landed yet; null: unknown")
    last_landed_at: datetime | None
    refused_today: int


class NightlyRun(BaseModel):
    run_id: str
    run_type: str
    state: str | None
    business_day: date | None
    logical_date: datetime | None
    start_date: datetime | None
    end_date: datetime | None
    failed_tasks: list[str]
    airflow_url: str


class LoadRun(BaseModel):
    business_day: date
    run_id: str
    loaded_at: datetime
    rows_loaded: int


class ValidationFailure(BaseModel):
    business_day: date
    run_id: str
    check_name: str
    expectation: str
    severity: str
    element_count: int
    unexpected_count: int
    validated_at: datetime


class Alert(BaseModel):
    severity: Literal["error", "warning"]
    kind: str
    subject: str
    message: str


class Overview(BaseModel):
    nightly_sync_paused: bool | None = Field(description="null: Airflow not reachable")
    nightly_sync_intended_active: bool
    lag_sampled_at: datetime | None
    last_loaded_day: date | None
    partners: list[PartnerIngest]
    runs: list[NightlyRun]
    loads: list[LoadRun]
    validation_failures: list[ValidationFailure]
    alerts: list[Alert]
