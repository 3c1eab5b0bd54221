"""A secured broker of the tests' own, on free ports, provisioned for three throwaway partners."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from pydantic import SecretStr

from adapters.kafka import ensure_topics
from infra.kafka import security
from infra.kafka import service as kafka_service
from infra.local import LocalServices
from schemas.partners import PartnerRegistry
from schemas.topics import events_topic, rejects_topic
from tests.support.events import registry_with
from tests.support.seed import Seeded, derived_seed


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def only(registry: PartnerRegistry, partner_ids: list[str]) -> PartnerRegistry:
    return PartnerRegistry({pid: p for pid in partner_ids if (p := registry.get(pid))})


@dataclass(frozen=True)
class SecuredKafka:
    cfg: LocalServices
    registry: PartnerRegistry
    partners: dict[str, str]  # "a", "b", "c" -> partner id

    def registry_of(self, *names: str) -> PartnerRegistry:
        """The fixture's registry narrowed to some of its partners."""
        return only(self.registry, [self.partners[name] for name in names])

    def passwords(self) -> dict[str, SecretStr]:
        return security.load_passwords(self.cfg)

    def partner(self, name: str, *, tls: bool = True, **overrides: Any) -> dict[str, Any]:
        principal = security.partner_principal(self.partners[name])
        options = security.scram_options(self.cfg, principal, self.passwords()[principal], tls=tls)
        return {**options, **overrides}

    def pipeline(self, **overrides: Any) -> dict[str, Any]:
        options = security.scram_options(self.cfg, security.PIPELINE_PRINCIPAL,
                                         self.passwords()[security.PIPELINE_PRINCIPAL])
        return {**options, **overrides}

    def admin(self) -> dict[str, Any]:
        return {"bootstrap_servers": security.admin_bootstrap(self.cfg),
                **security.admin_options(self.cfg)}


@pytest.fixture(scope="module")
def secured_kafka(tmp_path_factory: pytest.TempPathFactory,
                  request: pytest.FixtureRequest) -> Iterator[SecuredKafka]:
    """Started for the module and stopped after it: this broker is ours alone."""
    state: Path = tmp_path_factory.mktemp("secured")
    cfg = LocalServices(state_dir=state, kafka_port=free_port(),
                        kafka_controller_port=free_port(), kafka_tls_port=free_port(),
                        kafka_internal_port=free_port(), kafka_plaintext_port=free_port(),
                        kafka_security=True, kafka_heap_mb=384, kafka_partitions=1)
    draws = Seeded(derived_seed(request.module.__name__))
    partners = {name: draws.partner_id("s") for name in ("a", "b", "c")}
    registry = only(registry_with({pid: "training_platform" for pid in partners.values()}),
                    list(partners.values()))
    kafka_service.start(cfg)
    try:
        ensure_topics(security.admin_bootstrap(cfg),
                      [t for pid in partners.values() for t in (events_topic(pid),
                                                                rejects_topic(pid))],
                      partitions=1, **security.admin_options(cfg))
        security.provision(cfg, registry)
        yield SecuredKafka(cfg, registry, partners)
    finally:
        kafka_service.stop(cfg)
