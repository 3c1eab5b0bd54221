"""`python -m warehouse.relay` that SIGKILLs itself inside a batch, for the fault tests only.

SKILLSYNC_FAULT_CRASH=mid_send:N     on the N-th batch, half its changes handed to the producer
                                     and flushed, the rest not yet sent;
SKILLSYNC_FAULT_CRASH=before_record:N  the N-th batch acknowledged by the broker, its progress
                                     not yet recorded in PostgreSQL.
The production code is untouched: the hook wraps the relay's methods from outside.
"""

from __future__ import annotations

import os
import signal
from typing import Any

from warehouse import relay

_record = relay.Relay._record
_changes = relay.Relay._changes
_batches = 0


def _point() -> tuple[str, int]:
    point, _, at = os.environ.get("SKILLSYNC_FAULT_CRASH", "").partition(":")
    return point, int(at or 0)


def _hooked_changes(self: relay.Relay, subscriber: str, after: int) -> list[Any]:
    global _batches
    changes = _changes(self, subscriber, after)
    if not changes:
        return changes
    _batches += 1
    point, at = _point()
    if point == "mid_send" and _batches == at and len(changes) > 1:
        producer = self._producer_or_connect()
        topic = relay.sync_topic(subscriber)
        for change in changes[: len(changes) // 2]:
            producer.send(topic, partition=0, key=change.record_key.encode(),
                          value=change.payload.encode() if change.payload else None,
                          headers=relay.message_headers(subscriber, change))
        producer.flush(timeout=60)
        os.kill(os.getpid(), signal.SIGKILL)
    return changes


def _hooked_record(self: relay.Relay, subscriber: str, version: int) -> None:
    point, at = _point()
    if point == "before_record" and _batches == at:
        os.kill(os.getpid(), signal.SIGKILL)
    _record(self, subscriber, version)


relay.Relay._changes = _hooked_changes  # type: ignore[method-assign]
relay.Relay._record = _hooked_record  # type: ignore[method-assign]

if __name__ == "__main__":
    raise SystemExit(relay.main())
