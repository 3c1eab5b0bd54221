"""The partner simulator: seeded lifecycles and faults as publishable messages plus ground truth."""

from __future__ import annotations

import gc
import random
from collections.abc import Iterator
from datetime import date
from typing import Any, NamedTuple

import orjson

from partners.city import City
from partners.faults import Faults
from partners.injection import Injector, Malformed
from partners.lifecycle import DAY_SECONDS, DayTotals, Planned, Planner, day_start, local_day
from partners.manifest import build_manifest
from partners.payloads import Renderer
from schemas.events import totals_digest
from schemas.partners import PartnerRegistry, load_registry
from schemas.topics import events_topic

HEADERS: tuple[tuple[str, bytes], ...] = (
    ("content-type", b"application/cloudevents+json; charset=utf-8"),
)
# Id lists keep a totals message well under the 1 MiB limit; larger days send digests only.
MAX_IDS_IN_TOTALS = 20_000
# Control totals for a day go out shortly after its midnight, once the day is closed.
TOTALS_DELAY_SECONDS = 20 * 60


class OutgoingMessage(NamedTuple):
    topic: str
    key: bytes
    value: bytes
    headers: tuple[tuple[str, bytes], ...]
    appended_at_ms: int | None = None
    """When the simulated broker appends it (None: whenever it does); topics that keep
    producers' timestamps record this one."""


class Simulation:
    """Messages in publish order (rendered lazily, identically on every pass) and ground truth."""

    def __init__(self, schedule: list[tuple[int, Planned]], manifest: dict[str, Any]) -> None:
        self._schedule = schedule  # (epoch seconds the broker appends it, event)
        self.manifest = manifest

    def __len__(self) -> int:
        return len(self._schedule)

    @property
    def messages(self) -> Iterator[OutgoingMessage]:
        renderer = Renderer()
        topics: dict[str, str] = {}
        for appended_at, planned in self._schedule:
            topic = topics.get(planned.partner_id)
            if topic is None:
                topic = topics[planned.partner_id] = events_topic(planned.partner_id)
            yield OutgoingMessage(
                topic, planned.subject.encode(), _value(renderer, planned), HEADERS,
                appended_at * 1000,
            )

    def manifest_json(self) -> bytes:
        return orjson.dumps(self.manifest, option=orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS)


def _value(renderer: Renderer, planned: Planned) -> bytes:
    facts = planned.facts
    if isinstance(facts, Malformed):
        return facts.value
    if isinstance(facts, DayTotals):
        families = sorted(facts.ids)
        data: dict[str, Any] = {
            "business_day": facts.business_day.isoformat(),
            "counts": {family: len(facts.ids[family]) for family in families},
            "digests": {family: totals_digest(facts.ids[family]) for family in families},
        }
        if sum(len(ids) for ids in facts.ids.values()) <= MAX_IDS_IN_TOTALS:
            data["event_ids"] = {family: sorted(facts.ids[family]) for family in families}
        return orjson.dumps(renderer.envelope(planned, data))
    event = renderer.event(planned)
    return planned.corrupt(event) if planned.corrupt is not None else orjson.dumps(event)


def simulate(
    day: date,
    events: int,
    seed: int,
    faults: Faults = Faults(),  # noqa: B008 - frozen, so a shared default is safe
    days: int = 1,
    registry: PartnerRegistry | None = None,
) -> Simulation:
    """`events` lifecycle events over `days` business days from `day`, plus faults and totals."""
    if events < 0 or days < 1:
        raise ValueError("events must be >= 0 and days >= 1")
    registry = registry if registry is not None else load_registry()
    # Millions of long-lived small objects make the cyclic collector rescan them over and over.
    collecting = gc.isenabled()
    gc.disable()
    try:
        return _simulate(day, events, seed, faults, days, registry)
    finally:
        if collecting:
            gc.enable()


def _simulate(
    day: date, events: int, seed: int, faults: Faults, days: int, registry: PartnerRegistry
) -> Simulation:
    rng = random.Random(f"skillsync:{seed}:{day.isoformat()}:{days}")
    city = City(registry, rng)
    planner = Planner(city, rng, day, days)
    planned = planner.plan(events)
    injector = Injector(planner, city, registry, rng, faults)
    injected = injector.apply(planned)
    # Totals count what the partner meant to send: landed events and withheld ones alike.
    totals = _control_totals(planner, [*planned, *injected.extra])
    sent = [*planned, *injected.extra, *injected.refused, *totals]
    injector.delay_deliveries([e for e in sent if not e.withheld])
    # Messages reach their topics in the order the broker appends them.
    timed = [(_appended(e), e.seq, e) for e in sent if not e.withheld]
    timed += [(at, planner.next_seq(), e) for at, e in injected.copies]
    timed.sort(key=lambda item: (item[0], item[1]))
    schedule = [(at, e) for at, _, e in timed]
    manifest = build_manifest(
        first_day=day, days=days, events=events, seed=seed, faults=faults, injected=injected,
        schedule=[e for _, e in schedule], withheld=[e for e in sent if e.withheld],
    )  # fmt: skip
    return Simulation(schedule, manifest)


def _appended(event: Planned) -> int:
    return event.published_at if event.delivered_at is None else event.delivered_at


def _control_totals(planner: Planner, landing: list[Planned]) -> list[Planned]:
    """One control.totals event per partner and business day it sent anything on."""
    ids: dict[tuple[str, date], dict[str, list[str]]] = {}
    for event in landing:
        day = local_day(event.published_at)
        ids.setdefault((event.partner_id, day), {}).setdefault(event.family, []).append(
            event.event_id
        )
    totals = []
    for offset, ((partner_id, day), by_family) in enumerate(sorted(ids.items())):
        at = day_start(day) + DAY_SECONDS + TOTALS_DELAY_SECONDS + offset % 600
        subject = f"totals-{day:%Y%m%d}"
        totals.append(
            planner.planned("control.totals", partner_id, subject, at, DayTotals(day, by_family))
        )
    return totals
