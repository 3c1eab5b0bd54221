"""`python -m consumers` whose polls raise the broker's refusal while the broker is away, for
the fault tests only.

While the broker is away, a poll looks for the group's coordinator; that request is refused, so
the client asks for a metadata update and waits for it inside the same poll. Usually the update is
still backing off when the poll's time is up. Once in a while the client's refresh loop tries it
within that wait, is refused too, and kafka-python 3.0.12 raises the refusal out of poll
(coordinator/base.py, ensure_coordinator_ready_async). The timing is rare on a quiet machine and
common on a loaded one; here every poll made while nothing listens at the broker's address ends
that way. The production code is untouched: the hook wraps the Kafka client from outside.
"""

from __future__ import annotations

import os
import socket
from typing import Any

from kafka import KafkaConsumer
from kafka.errors import KafkaConnectionError

from consumers import __main__ as cli

_host, _, _port = os.environ["KAFKA_BOOTSTRAP_SERVERS"].split(",")[0].rpartition(":")
_poll = KafkaConsumer.poll


def _broker_away() -> bool:
    try:
        socket.create_connection((_host, int(_port)), timeout=0.5).close()
    except OSError:
        return True
    return False


def _refused_poll(self: KafkaConsumer, *args: Any, **kwargs: Any) -> Any:
    polled = _poll(self, *args, **kwargs)
    if _broker_away():
        raise KafkaConnectionError("111 ECONNREFUSED")
    return polled


KafkaConsumer.poll = _refused_poll

if __name__ == "__main__":
    raise SystemExit(cli.main())
