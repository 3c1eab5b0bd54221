"""One record read from a partner topic, judged: a staging row, or a refusal with its reason."""

from __future__ import annotations

import hashlib
from datetime import UTC, date, datetime
from uuid import UUID

from consumers.landing import EventRow, RejectRow, event_row
from schemas.days import SHANGHAI
from schemas.errors import Rejection
from schemas.partners import PartnerRegistry
from schemas.pipeline import check_event, claimed_event_id
from schemas.pseudonym import Pseudonymiser

Appended = tuple[datetime, date]  # the broker's append time, and its business day


def append_time(timestamp_ms: int) -> Appended:
    appended = datetime.fromtimestamp(timestamp_ms / 1000, UTC)
    return appended, appended.astimezone(SHANGHAI).date()


def judge_record(raw: bytes, topic: str, partition: int, offset: int, partner: str,
                 appended: Appended, registry: PartnerRegistry, pseudonymiser: Pseudonymiser,
                 topic_id: UUID | None = None) -> EventRow | tuple[RejectRow, Rejection]:
    """The row to land for an accepted record, or the refusal's row and reason.

    The broker's append time is "now" for every rule: a replay next month decides as today.
    (Arguments by position where it runs for every record: keywords cost a tenth of it.)
    """
    appended_at, append_day = appended
    try:
        event = check_event(raw, topic_partner=partner, registry=registry,
                            pseudonymiser=pseudonymiser, now=appended_at)
    except Rejection as rejection:
        row = RejectRow(
            topic=topic, kafka_partition=partition, kafka_offset=offset, partner_id=partner,
            appended_at=appended_at, append_day=append_day, event_id=claimed_event_id(raw),
            reason_code=rejection.code, field_path=rejection.path, message=rejection.message,
            stage=rejection.stage, size_bytes=len(raw),
            payload_sha256=hashlib.sha256(raw).hexdigest(), topic_id=topic_id,
        )
        return row, rejection
    return event_row(event, topic, partition, offset, appended_at, append_day,
                     hashlib.sha256(raw).digest(), topic_id)
