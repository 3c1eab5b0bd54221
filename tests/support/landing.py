"""Staging filled the way the consumer fills it, without the broker: check, pseudonymise, land."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime
from hashlib import sha256

from consumers.landing import Batch, Lander, Position, RejectRow, event_row
from partners.simulate import OutgoingMessage
from schemas.days import business_day_of
from schemas.errors import Rejection
from schemas.partners import PartnerRegistry
from schemas.pipeline import check_event, claimed_event_id
from schemas.pseudonym import Pseudonymiser
from schemas.topics import partner_of_topic


def land_directly(messages: Iterable[OutgoingMessage], database_url: str,
                  registry: PartnerRegistry, pseudonymiser: Pseudonymiser,
                  batch_size: int = 400, group_id: str = "direct") -> None:
    """Check and land every message as the consumer would, appended at its appended_at_ms.

    The broker is left out: what reconciliation sees is staging, and a simulated week lands in
    a fraction of a second this way. One partition per topic, offsets counted from 0; another
    `group_id` lands the same messages again, as a replay of the topics would.
    """
    lander = Lander(database_url, group_id=group_id)
    landed: dict[tuple[str, int], Position] = {}
    offsets: dict[tuple[str, int], int] = {}
    batch = Batch()
    try:
        for message in messages:
            assert message.appended_at_ms is not None, "a message landed directly needs a time"
            appended = datetime.fromtimestamp(message.appended_at_ms / 1000, UTC)
            where = (message.topic, 0)
            offset = offsets[where] = offsets.get(where, -1) + 1
            partner = partner_of_topic(message.topic)
            try:
                event = check_event(message.value, topic_partner=partner, registry=registry,
                                    pseudonymiser=pseudonymiser, now=appended)
                batch.events.append(event_row(event, message.topic, 0, offset, appended,
                                              business_day_of(appended),
                                              sha256(message.value).digest()))
            except Rejection as refused:
                batch.rejects.append(RejectRow(
                    message.topic, 0, offset, partner, appended, business_day_of(appended),
                    claimed_event_id(message.value), refused.code, refused.path,
                    refused.message, refused.stage, len(message.value),
                    sha256(message.value).hexdigest()))
            batch.expected_offsets.setdefault(where, landed.get(where))
            batch.next_offsets[where] = offset + 1
            if len(batch) >= batch_size:
                lander.land(batch)
                landed.update({where: Position(offset, None)
                               for where, offset in batch.next_offsets.items()})
                batch = Batch()
        if len(batch):
            lander.land(batch)
    finally:
        lander.close()
