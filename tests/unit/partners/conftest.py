"""Fixtures for the partner simulator tests: the shipped registry and the pipeline's verdicts."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime

import pytest

from partners.simulate import OutgoingMessage, Simulation
from schemas.errors import Rejection
from schemas.partners import PartnerRegistry, load_registry
from schemas.pipeline import CheckedEvent, check_event
from schemas.pseudonym import Pseudonymiser
from schemas.topics import partner_of_topic

DAY = date(2025, 3, 10)
# Late enough that no simulated timestamp counts as "in the future".
NOW = datetime(2025, 6, 1, tzinfo=UTC)


@dataclass
class Verdicts:
    """What the pipeline's check says about every message of a simulation, in order."""

    messages: list[OutgoingMessage]
    accepted: list[tuple[OutgoingMessage, CheckedEvent]] = field(default_factory=list)
    refused: list[tuple[OutgoingMessage, Rejection]] = field(default_factory=list)

    def refused_as_manifest_says(self) -> list[tuple[str, str, str]]:
        return sorted(
            (partner_of_topic(message.topic), message.key.decode(), rejection.code)
            for message, rejection in self.refused
        )


@pytest.fixture(scope="session")
def day() -> date:
    return DAY


@pytest.fixture(scope="session")
def registry() -> PartnerRegistry:
    return load_registry()


@pytest.fixture(scope="session")
def throwaway_pseudonymiser() -> Pseudonymiser:
    return Pseudonymiser({"t": b"k" * 32}, active_key_id="t")


@pytest.fixture(scope="session")
def judge(
    registry: PartnerRegistry, throwaway_pseudonymiser: Pseudonymiser
) -> Callable[[Simulation], Verdicts]:
    pseudonymiser = throwaway_pseudonymiser

    def run(simulation: Simulation) -> Verdicts:
        verdicts = Verdicts(list(simulation.messages))
        for message in verdicts.messages:
            try:
                checked = check_event(
                    message.value,
                    topic_partner=partner_of_topic(message.topic),
                    registry=registry,
                    pseudonymiser=pseudonymiser,
                    now=NOW,
                )
            except Rejection as rejection:
                verdicts.refused.append((message, rejection))
            else:
                verdicts.accepted.append((message, checked))
        return verdicts

    return run
