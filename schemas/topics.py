"""Kafka topic names: per partner an events and a rejects topic, per subscriber a sync topic."""

from __future__ import annotations

import re

EVENTS_TOPIC_PREFIX = "skills.events."
REJECTS_TOPIC_PREFIX = "skills.rejects."
SYNC_TOPIC_PREFIX = "skills.sync."
PARTNER_ID_PATTERN = r"[a-z0-9_-]+"
EVENTS_TOPIC_PATTERN = rf"^{re.escape(EVENTS_TOPIC_PREFIX)}{PARTNER_ID_PATTERN}$"

_PARTNER_ID = re.compile(rf"^{PARTNER_ID_PATTERN}$")
_EVENTS_TOPIC = re.compile(EVENTS_TOPIC_PATTERN)


def _checked_partner_id(partner_id: str) -> str:
    if not _PARTNER_ID.fullmatch(partner_id):
        raise ValueError(f"partner id {partner_id!r} must match {PARTNER_ID_PATTERN}")
    return partner_id


def events_topic(partner_id: str) -> str:
    return EVENTS_TOPIC_PREFIX + _checked_partner_id(partner_id)


def rejects_topic(partner_id: str) -> str:
    return REJECTS_TOPIC_PREFIX + _checked_partner_id(partner_id)


def sync_topic(subscriber: str) -> str:
    return SYNC_TOPIC_PREFIX + _checked_partner_id(subscriber)


def partner_of_topic(topic: str) -> str:
    """The partner id owning an events topic; ValueError for any other topic."""
    if not _EVENTS_TOPIC.fullmatch(topic):
        raise ValueError(f"{topic!r} is not a partner events topic")
    return topic[len(EVENTS_TOPIC_PREFIX) :]
