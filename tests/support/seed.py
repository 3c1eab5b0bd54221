"""One seed per test run: every partner id, key and "today" a test makes is drawn from it.

A run's seed is SKILLSYNC_TEST_SEED when set, else a fresh one; a failing test prints it, and
setting the variable to it replays the run. Each test draws from its own stream (the run's seed
and the test's id), so a test replays alone or among others alike.
"""

from __future__ import annotations

import calendar
import functools
import hashlib
import os
import random
from datetime import date

SEED_VARIABLE = "SKILLSYNC_TEST_SEED"
# Days a test's "today" is drawn from: in the past (brokers refuse timestamps far ahead of their
# clock), and after every time in the contract's example events (2024-03), which tests reuse.
FIRST_TODAY = date(2024, 6, 1)
LAST_TODAY = date(2026, 10, 31)


@functools.cache
def run_seed() -> int:
    """This run's seed: the variable's value, or one drawn once from the system's randomness."""
    given = os.environ.get(SEED_VARIABLE)
    if given:
        return int(given)
    return int.from_bytes(os.urandom(4), "big")


def derived_seed(*parts: object) -> int:
    """A seed for one consumer of randomness (a test, a week), stable for a given run seed."""
    text = "\x1f".join(str(p) for p in (run_seed(), *parts))
    return int.from_bytes(hashlib.sha256(text.encode()).digest()[:8], "big")


class Seeded:
    """Draws for one test: partner ids, keys, and a "today" weighted towards month and year ends."""

    def __init__(self, seed: int) -> None:
        self.seed = seed
        self.rng = random.Random(seed)

    @functools.cached_property
    def today(self) -> date:
        return draw_day(self.rng)

    def partner_id(self, prefix: str = "t") -> str:
        return f"{prefix}{self.rng.getrandbits(40):010x}"

    def key(self) -> bytes:
        return self.rng.randbytes(32)


def draw_day(rng: random.Random, first: date = FIRST_TODAY, last: date = LAST_TODAY) -> date:
    """A day in [first, last]: a third of draws fall on the last days of a month or a year,
    where off-by-one-day mistakes in windows show."""
    roll = rng.random()
    if roll < 0.1:
        year = rng.randint(first.year, last.year - 1)
        day = date(year, 12, 31 - rng.randint(0, 2))
    elif roll < 0.33:
        year, month = rng.randint(first.year, last.year), rng.randint(1, 12)
        end = calendar.monthrange(year, month)[1]
        day = date(year, month, end - rng.randint(0, 1))
    else:
        day = date.fromordinal(rng.randint(first.toordinal(), last.toordinal()))
    return min(max(day, first), last)
