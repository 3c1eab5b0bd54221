"""`python -m consumers` with a fault at a chosen landing, for the fault tests only.

SKILLSYNC_FAULT_CRASH=before_commit:N  SIGKILL itself on the N-th landing, every statement of the
                                       batch executed and the COMMIT not yet sent;
SKILLSYNC_FAULT_CRASH=after_commit:N   SIGKILL itself right after the N-th landing committed,
                                       before the service records or acknowledges it;
SKILLSYNC_FAULT_STALL=N:PATH           on the N-th landing, create PATH.stalled and wait for PATH
                                       to exist before landing (processing slower than
                                       max.poll.interval.ms).
The production code is untouched: the hook wraps Lander.land from outside.
"""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

from consumers import __main__ as cli
from consumers.landing import Batch, Lander, LandResult

_land = Lander.land
_calls = 0


def _die() -> None:
    os.kill(os.getpid(), signal.SIGKILL)


def _hooked_land(self: Lander, batch: Batch) -> LandResult:
    global _calls
    _calls += 1
    crash_point, _, crash_at = os.environ.get("SKILLSYNC_FAULT_CRASH", "").partition(":")
    stall_at, _, release = os.environ.get("SKILLSYNC_FAULT_STALL", "").partition(":")
    if stall_at and _calls == int(stall_at):
        Path(release + ".stalled").touch()
        while not Path(release).exists():
            time.sleep(0.1)
    if crash_at and _calls == int(crash_at):
        if crash_point == "before_commit":
            # An outer transaction turns the lander's own into a savepoint: everything is
            # written, and the process dies before the COMMIT reaches the server.
            with self._connection().transaction():
                _land(self, batch)
                _die()
        result = _land(self, batch)
        _die()
        return result
    return _land(self, batch)


Lander.land = _hooked_land  # type: ignore[method-assign]

if __name__ == "__main__":
    raise SystemExit(cli.main())
