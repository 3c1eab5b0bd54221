"""The rejects topics' contract: a refused message, whole, with headers saying where and why."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from schemas.errors import Rejection

HEADER_PREFIX = "skillsync."
ORIGINAL_TOPIC = HEADER_PREFIX + "original_topic"
ORIGINAL_PARTITION = HEADER_PREFIX + "original_partition"
ORIGINAL_OFFSET = HEADER_PREFIX + "original_offset"
ORIGINAL_TIMESTAMP = HEADER_PREFIX + "original_timestamp"
REASON_CODE = HEADER_PREFIX + "reason_code"
FIELD_PATH = HEADER_PREFIX + "field_path"
MESSAGE = HEADER_PREFIX + "message"
STAGE = HEADER_PREFIX + "stage"
SERVICE_VERSION = HEADER_PREFIX + "service_version"


def reject_headers(topic: str, partition: int, offset: int, timestamp_ms: int,
                   rejection: Rejection, service_version: str) -> list[tuple[str, bytes]]:
    """The headers a refused message is republished with, after its own."""
    return [
        (ORIGINAL_TOPIC, topic.encode()),
        (ORIGINAL_PARTITION, str(partition).encode()),
        (ORIGINAL_OFFSET, str(offset).encode()),
        (ORIGINAL_TIMESTAMP, str(timestamp_ms).encode()),
        (REASON_CODE, rejection.code.encode()),
        (FIELD_PATH, rejection.path.encode()),
        (MESSAGE, rejection.message.encode()),
        (STAGE, rejection.stage.encode()),
        (SERVICE_VERSION, service_version.encode()),
    ]


@dataclass(frozen=True, slots=True)
class RejectRecord:
    """One refused message read back from a partner's rejects topic."""

    reason_code: str
    field_path: str
    message: str
    stage: str
    original_topic: str
    original_partition: int | None
    original_offset: int | None
    key: bytes | None
    value: bytes

    @classmethod
    def from_kafka(cls, key: bytes | None, value: bytes,
                   headers: Iterable[tuple[str, bytes | None]] | None) -> RejectRecord:
        found = {name: (raw or b"").decode("utf-8", "replace") for name, raw in headers or ()
                 if name.startswith(HEADER_PREFIX)}

        def number(name: str) -> int | None:
            text = found.get(name, "")
            return int(text) if text.lstrip("-").isdigit() else None

        return cls(
            reason_code=found.get(REASON_CODE, ""),
            field_path=found.get(FIELD_PATH, ""),
            message=found.get(MESSAGE, ""),
            stage=found.get(STAGE, ""),
            original_topic=found.get(ORIGINAL_TOPIC, ""),
            original_partition=number(ORIGINAL_PARTITION),
            original_offset=number(ORIGINAL_OFFSET),
            key=key,
            value=value,
        )

    @property
    def origin(self) -> tuple[str, int, int] | None:
        """Where the refused message was appended: (topic, partition, offset), if the headers
        say."""
        if self.original_topic and self.original_partition is not None \
                and self.original_offset is not None:
            return (self.original_topic, self.original_partition, self.original_offset)
        return None
