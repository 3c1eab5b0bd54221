"""The watchdog asks a member stuck in a join to rejoin, and never restarts a slow join for ever."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
from kafka.structs import MemberState

from consumers import watchdog
from consumers.watchdog import Health, Watchdog


class _Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class _Member:
    """A consumer as the watchdog sees it: a group state, no partitions, the rejoin flag."""

    def __init__(self, clock: _Clock) -> None:
        self.state = MemberState.REBALANCING
        self.asked_at: list[float] = []
        self._coordinator = self
        self._clock = clock

    def group_metadata(self) -> SimpleNamespace:
        return SimpleNamespace(state=self.state, member_id="m-1")

    def assignment(self) -> set[object]:
        return set()

    def request_rejoin(self) -> None:
        self.asked_at.append(self._clock.now)


def _checks(dog: Watchdog, clock: _Clock, seconds: int) -> None:
    for _ in range(seconds):
        clock.now += 1.0
        dog.check()


def test_a_join_that_never_finishes_is_asked_again_at_doubling_intervals(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """Once a member on a loaded machine never joined: its joins took longer than the watchdog's
    checks, and each ask to rejoin restarted the join under way (82 asks in two minutes)."""
    clock = _Clock()
    monkeypatch.setattr(watchdog.time, "monotonic", clock)
    member = _Member(clock)
    dog = Watchdog(group_id="g", stall_s=600, check_every_s=1.0, describe_group=lambda _: None,
                   on_stuck=lambda _: None, health=Health())
    dog._consumer = member  # start() would also start its thread

    _checks(dog, clock, 200)

    gaps = [b - a for a, b in zip(member.asked_at, member.asked_at[1:], strict=False)]
    assert member.asked_at[0] == 1002.0  # rebalancing at two checks in a row
    assert gaps[:5] == [2.0, 4.0, 8.0, 16.0, 32.0]
    assert max(gaps) == watchdog.REJOIN_WAIT_MAX_S


def test_a_finished_join_makes_the_next_stuck_join_asked_for_promptly_again(
        monkeypatch: pytest.MonkeyPatch) -> None:
    clock = _Clock()
    monkeypatch.setattr(watchdog.time, "monotonic", clock)
    member = _Member(clock)
    dog = Watchdog(group_id="g", stall_s=600, check_every_s=1.0, describe_group=lambda _: None,
                   on_stuck=lambda _: None, health=Health())
    dog._consumer = member
    _checks(dog, clock, 30)
    member.state = MemberState.STABLE
    _checks(dog, clock, 5)
    member.state = MemberState.REBALANCING
    asked = len(member.asked_at)

    _checks(dog, clock, 2)

    assert len(member.asked_at) == asked + 1
