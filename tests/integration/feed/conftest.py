"""A simulated week of a city with subscribers of every kind, landed straight into staging."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path

import pytest

from partners.faults import Faults
from partners.simulate import Simulation, simulate
from schemas.partners import PartnerRegistry
from schemas.topics import sync_topic
from tests.support.feed import FEED_ROLES, feed_registry, write_registry
from tests.support.kafka import drop_topics
from tests.support.landing import land_directly
from tests.support.nightly import appended_days

# Every knob that makes a record change after it was first sent, or leave a view.
EVERY_FAULT = Faults(duplicate_rate=0.03, late_rate=0.05, out_of_order_rate=0.03,
                     cross_platform_enrollments=4, malformed=2, schema_violations=2,
                     bad_checksums=2, foreign_source=1, forbidden_types=1, missing=3,
                     shared_certificate_numbers=3, double_subsidy_claims=4, resent_records=3,
                     orphan_changes=3, late_changes=4, reversed_results=3, level_mismatches=3,
                     delivery_delay_rate=0.05)


@dataclass(frozen=True)
class FeedCity:
    database_url: str
    registry: PartnerRegistry
    registry_file: Path
    simulation: Simulation
    days: list[date]

    @property
    def subscribers(self) -> list[str]:
        return sorted(p.partner_id for p in self.registry if p.feeds)


@pytest.fixture
def feed_city(database_url, pseudonymiser, seeded, tmp_path, monkeypatch,
              kafka_bootstrap) -> Callable[..., FeedCity]:
    """The test's city (ids and days from its seed), its registry in force for loads."""

    def make(events: int = 1200, days: int = 6, faults: Faults = EVERY_FAULT) -> FeedCity:
        registry = feed_registry({seeded.partner_id(): role for role in FEED_ROLES})
        path = write_registry(registry, tmp_path / "partners.toml")
        monkeypatch.setenv("SKILLSYNC_PARTNERS_REGISTRY", str(path))
        first = seeded.today - timedelta(days=days + 10)
        simulation = simulate(first, events, seeded.rng.getrandbits(32), faults, days,
                              registry=registry)
        land_directly(simulation.messages, database_url, registry, pseudonymiser)
        drop_topics(kafka_bootstrap, [sync_topic(p.partner_id) for p in registry])
        return FeedCity(database_url, registry, path, simulation, appended_days(database_url))

    return make
