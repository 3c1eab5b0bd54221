"""`python -m partners follow` that SIGKILLs itself inside its N-th apply, for the fault tests.

SKILLSYNC_FAULT_CRASH=mid_apply:N  on the N-th batch, every record written to the mirror and
                                   the transaction not yet committed.
"""

from __future__ import annotations

import os
import signal

from sqlalchemy import event

from partners import follow
from partners.cli import main

_apply = follow.Mirror.apply
_batches = 0


def _hooked_apply(self: follow.Mirror, topic: str, batch: follow.Batch) -> None:
    global _batches
    _batches += 1
    point, _, at = os.environ.get("SKILLSYNC_FAULT_CRASH", "").partition(":")
    if point == "mid_apply" and _batches == int(at):
        # Dies at COMMIT: the batch's writes are in the open transaction, never committed.
        event.listen(self.engine, "commit", lambda *_: os.kill(os.getpid(), signal.SIGKILL))
    _apply(self, topic, batch)


follow.Mirror.apply = _hooked_apply  # type: ignore[method-assign]
_init = follow.Follower.__init__


def _small_batches(self: follow.Follower, *args: object, **kwargs: object) -> None:
    # Many small batches, so that the N-th one falls inside the feed.
    kwargs["max_records"] = int(os.environ.get("SKILLSYNC_FAULT_MAX_RECORDS", "5000"))
    _init(self, *args, **kwargs)  # type: ignore[arg-type]


follow.Follower.__init__ = _small_batches  # type: ignore[method-assign]

if __name__ == "__main__":
    raise SystemExit(main())
