"""A simulated week of the city's partners, landed once per test module through Kafka."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

import pytest

from partners.faults import Faults
from partners.simulate import simulate
from tests.support.nightly import SENDER_CLOCK, appended_days, land_simulation, registry_of

ROLES = ("training_platform", "training_platform", "technician_college", "evaluation_org",
         "evaluation_org")
FAULTS = Faults(duplicate_rate=0.03, late_rate=0.05, out_of_order_rate=0.03,
                cross_platform_enrollments=4, malformed=3, schema_violations=3, bad_checksums=2,
                foreign_source=2, forbidden_types=2, missing=3, shared_certificate_numbers=2,
                double_subsidy_claims=3)


@dataclass(frozen=True)
class SimulatedWeek:
    database_url: str
    partners: dict[str, str]
    manifest: dict[str, Any]
    days: list[date]


@pytest.fixture
def simulated_week(kafka_bootstrap, database_url, new_partners, pseudonymiser,
                   seeded) -> Callable[..., SimulatedWeek]:
    """A week of the test's partners, from its seed: their ids, the first day, the events."""

    def make(events: int = 1500, days: int = 7, faults: Faults = FAULTS) -> SimulatedWeek:
        made = new_partners(*[f"{role}#{i}" for i, role in enumerate(ROLES)],
                            topic_overrides=SENDER_CLOCK)
        partners = {pid: label.split("#")[0] for label, pid in made.items()}
        first = seeded.today - timedelta(days=days + 10)
        simulation = simulate(first, events, seeded.rng.getrandbits(32), faults, days,
                              registry=registry_of(partners))
        land_simulation(simulation, bootstrap=kafka_bootstrap, database_url=database_url,
                        partners=partners, pseudonymiser=pseudonymiser)
        return SimulatedWeek(database_url, partners, simulation.manifest,
                             appended_days(database_url))

    return make
