"""Notices a group member that stopped working: out of the group, stuck in Kafka, or stalled."""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from kafka import KafkaConsumer, TopicPartition
from kafka.errors import KafkaError
from kafka.structs import MemberState

from consumers import metrics
from schemas.errors import ServiceUnavailable

log = logging.getLogger("skillsync.consumer")
# The longest wait between two asks to rejoin: a lost join is found again within a minute.
REJOIN_WAIT_MAX_S = 60.0


class Wedged(Exception):
    """The member cannot make progress by itself; its supervisor should start it again."""


@dataclass
class Health:
    """What the health endpoint reports, written by the service and its watchdog."""

    started_at: float = field(default_factory=time.monotonic)
    loop_at: float = field(default_factory=time.monotonic)  # last turn of the service's loop
    in_group: bool = False
    owned: tuple[str, ...] = ()
    wedged: str | None = None  # why, once the watchdog said so

    def live(self, stall_s: float) -> tuple[bool, str]:
        if self.wedged:
            return False, f"wedged: {self.wedged}"
        idle = time.monotonic() - self.loop_at
        if idle > stall_s:
            return False, f"the service loop has not turned for {idle:.0f}s"
        return True, "live"

    def ready(self, stall_s: float) -> tuple[bool, str]:
        live, why = self.live(stall_s)
        if not live:
            return live, why
        if not self.in_group:
            return False, "not in the consumer group"
        return True, f"in the group, owning {len(self.owned)} partitions"


class Watchdog:
    """Checks, from the service's loop and from a thread of its own, that the member works.

    Three signs of a wedged member, whatever its cause (see docs/reliability.md):
    - a turn of the service's loop (or a call into the Kafka client) has not ended for
      `stall_s`, waits for an unavailable service aside (its I/O thread is stuck: the loop
      cannot check anything, so the watchdog's thread calls `on_stuck`);
    - the client believes it holds its partitions, but the group coordinator no longer lists
      its member id (removed for missing heartbeats);
    - records wait on partitions it owns and nothing was read for `stall_s`.
    The last two raise Wedged in the loop.
    """

    def __init__(self, *, group_id: str, stall_s: float, check_every_s: float,
                 describe_group: Callable[[str], set[str] | None],
                 on_stuck: Callable[[str], None], health: Health) -> None:
        self._group_id = group_id
        self._stall_s = stall_s
        self._check_every_s = check_every_s
        self._describe_group = describe_group
        self._on_stuck = on_stuck
        self.health = health
        self._consumer: KafkaConsumer | None = None
        self._call: tuple[str, float] | None = None
        self._progress_at = time.monotonic()
        self._checked_at = time.monotonic()
        self._missing_member: str | None = None  # seen missing once: a second look decides
        self._rebalancing_since: float | None = None
        self._rejoin_wait_s = check_every_s
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self, consumer: KafkaConsumer) -> None:
        self._consumer = consumer
        self._progress_at = self._checked_at = time.monotonic()
        self._thread = threading.Thread(target=self._watch_calls, name="watchdog", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()

    @contextlib.contextmanager
    def kafka_call(self, name: str) -> Iterator[None]:
        self._call = (name, time.monotonic())
        try:
            yield
        finally:
            self._call = None

    def progressed(self) -> None:
        self._progress_at = time.monotonic()

    def waiting(self) -> None:
        """The loop waits for an unavailable service: alive, and not stalled by itself."""
        now = time.monotonic()
        self._progress_at = self.health.loop_at = now
        if self._call is not None:
            self._call = (self._call[0], now)

    def _watch_calls(self) -> None:
        while not self._stop.wait(1.0):
            call = self._call
            if call is not None and time.monotonic() - call[1] > self._stall_s:
                reason = (f"{call[0]} has not come back from the Kafka client for "
                          f"{time.monotonic() - call[1]:.0f}s")
                self._wedged(reason)
                self._on_stuck(reason)
                return

    def _wedged(self, reason: str) -> None:
        self.health.wedged = reason
        metrics.WEDGED.set(1)
        log.critical("consumer wedged", extra={"reason": reason, "group": self._group_id})

    def check(self) -> None:
        """Called once per turn of the service's loop; raises Wedged when the member is stuck."""
        now = time.monotonic()
        self.health.loop_at = now
        if self.health.wedged:
            raise Wedged(self.health.wedged)
        if now - self._checked_at < self._check_every_s or self._consumer is None:
            return
        self._checked_at = now
        consumer = self._consumer
        membership = consumer.group_metadata()
        owned = sorted(consumer.assignment())
        in_group = membership.state == MemberState.STABLE and bool(membership.member_id)
        self.health.in_group = in_group
        self.health.owned = tuple(f"{tp.topic}[{tp.partition}]" for tp in owned)
        metrics.IN_GROUP.set(int(in_group))
        if in_group:
            self._check_listed(membership.member_id)
        self._finish_lost_join(consumer, membership.state == MemberState.REBALANCING, now)
        if owned and now - self._progress_at > self._stall_s:
            self._check_stalled(consumer, owned)

    def _finish_lost_join(self, consumer: KafkaConsumer, rebalancing: bool, now: float) -> None:
        """A join the client started and then forgot is asked for again.

        kafka-python 3.0.12 loses a rejoin triggered by a metadata change (a new topic) when
        the join completes between two polls: it stops heartbeating and never applies the new
        assignment (docs/reliability.md, case 4). Still rebalancing at two checks in a row, the
        member asks to rejoin. Asking restarts a join under way, so each further ask waits twice
        as long: a join merely slower than the checks (a loaded machine) then gets to finish
        instead of being restarted for ever.
        """
        if not rebalancing:
            self._rebalancing_since = None
            self._rejoin_wait_s = self._check_every_s
            return
        if self._rebalancing_since is None:
            self._rebalancing_since = now
            return
        if now - self._rebalancing_since < self._rejoin_wait_s:
            return
        log.warning("group join not finished by the client, asking it to rejoin",
                    extra={"group": self._group_id,
                           "rebalancing_s": round(now - self._rebalancing_since, 1)})
        metrics.REJOINS_ASKED.inc()
        _request_rejoin(consumer)
        self._rebalancing_since = now
        self._rejoin_wait_s = min(2 * self._rejoin_wait_s, REJOIN_WAIT_MAX_S)

    def _check_listed(self, member_id: str) -> None:
        """Does the group coordinator still list this member? Asked twice before deciding."""
        try:
            members = self._describe_group(self._group_id)
        except (KafkaError, ServiceUnavailable):
            return  # the broker is away: that is waited for, not a wedge
        if members is None or member_id in members:
            self._missing_member = None
            return
        if self._missing_member != member_id:
            self._missing_member = member_id
            return
        reason = (f"the group coordinator no longer lists member {member_id}, yet the client "
                  f"still holds its partitions (removed for missing heartbeats)")
        self._wedged(reason)
        raise Wedged(reason)

    def _check_stalled(self, consumer: KafkaConsumer, owned: list[TopicPartition]) -> None:
        try:
            with self.kafka_call("end_offsets"):
                ends = consumer.end_offsets(owned)
            waiting = {tp: ends[tp] - (consumer.position(tp, timeout_ms=0) or 0) for tp in owned}
        except KafkaError:
            return  # the broker is away: that is waited for, not a wedge
        behind = {f"{tp.topic}[{tp.partition}]": n for tp, n in waiting.items() if n > 0}
        if not behind:
            self._progress_at = time.monotonic()  # caught up: nothing to make progress on
            return
        reason = (f"nothing read for {time.monotonic() - self._progress_at:.0f}s while "
                  f"records wait on owned partitions: {behind}")
        self._wedged(reason)
        raise Wedged(reason)


def _request_rejoin(consumer: KafkaConsumer) -> None:
    # The coordinator's own flag: need_rejoin() then stays true until a join completes.
    consumer._coordinator.request_rejoin()


class GroupMembers:
    """Member ids the group coordinator lists for a group, over one lazily opened admin client."""

    def __init__(self, admin_factory: Callable[[], Any]) -> None:
        self._admin_factory = admin_factory
        self._admin: Any = None

    def __call__(self, group_id: str) -> set[str] | None:
        if self._admin is None:
            self._admin = self._admin_factory()
        described = self._admin.describe_groups([group_id]).get(group_id)
        if not described or described.get("error"):
            return None
        return {member["member_id"] for member in described.get("members", ())}

    def close(self) -> None:
        if self._admin is not None:
            self._admin.close()
            self._admin = None
