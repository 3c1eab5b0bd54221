"""`python -m consumers` whose Kafka client wedges on purpose, for the fault tests only.

SKILLSYNC_FAULT_WEDGE=MODE:N:PATH, from the N-th landing on (PATH.wedged is created then):
  lost_join     for LOST_JOIN_WINDOW_S, polls wait at most 20 ms with 50 ms of other work
                between them: the timing in which kafka-python 3.0.12 loses the join a new
                topic starts (docs/reliability.md, case 4), after which the client heartbeats
                no more and never applies the new assignment, however it polls;
  stuck_io      the client's I/O thread blocks for good inside Fetcher._create_fetch_requests,
                so every call into the client hangs;
  no_heartbeat  heartbeat requests never complete: the group coordinator removes the member
                while the client believes it still holds its partitions.
The production code is untouched: the hooks wrap the Kafka client and Lander.land from outside.
"""

from __future__ import annotations

import os
import threading
import time
from pathlib import Path

from kafka import KafkaConsumer
from kafka.consumer.fetcher import Fetcher
from kafka.coordinator.base import BaseCoordinator

from consumers import __main__ as cli
from consumers.landing import Batch, Lander, LandResult

_mode, _, _rest = os.environ.get("SKILLSYNC_FAULT_WEDGE", "").partition(":")
_at, _, _marker = _rest.partition(":")
_wedged = threading.Event()
LOST_JOIN_WINDOW_S = 8.0
_wedged_at = [0.0]
_land = Lander.land
_calls = 0


def _hooked_land(self: Lander, batch: Batch) -> LandResult:
    global _calls
    _calls += 1
    if _at and _calls == int(_at):
        Path(_marker + ".wedged").touch()
        _wedged_at[0] = time.monotonic()
        _wedged.set()
    return _land(self, batch)


_poll = KafkaConsumer.poll


def _short_poll(self: KafkaConsumer, timeout_ms: int = 0, *args: object, **kwargs: object):
    if _wedged.is_set() and time.monotonic() - _wedged_at[0] < LOST_JOIN_WINDOW_S:
        time.sleep(0.05)
        timeout_ms = min(timeout_ms, 20)
    return _poll(self, timeout_ms, *args, **kwargs)


_create_fetch_requests = Fetcher._create_fetch_requests


def _stuck_create_fetch_requests(self: Fetcher):
    while _wedged.is_set():
        time.sleep(1)  # on the client's I/O thread: nothing else of the client runs
    return _create_fetch_requests(self)


_send_heartbeat_request = BaseCoordinator._send_heartbeat_request


async def _silent_heartbeat(self: BaseCoordinator):
    if _wedged.is_set():
        await self._manager._net.sleep(10**6)  # never answered
    return await _send_heartbeat_request(self)


Lander.land = _hooked_land  # type: ignore[method-assign]
if _mode == "lost_join":
    KafkaConsumer.poll = _short_poll
elif _mode == "stuck_io":
    Fetcher._create_fetch_requests = _stuck_create_fetch_requests
elif _mode == "no_heartbeat":
    BaseCoordinator._send_heartbeat_request = _silent_heartbeat

if __name__ == "__main__":
    raise SystemExit(cli.main())
