"""Valid sample events and a registry for a partner's own tests, from the contract's examples."""

from __future__ import annotations

import copy
import random
from collections.abc import Mapping
from typing import Any

import orjson

from schemas.examples import example_events
from schemas.identity import resident_id_check_char
from schemas.partners import Partner, PartnerRegistry, load_registry

ENROLLMENT = "org.skillsync.enrollment.created.v1"


def registry_with(partners: Mapping[str, str], *, shipped: bool = True) -> PartnerRegistry:
    """The given {partner_id: role}, each allowed what its role is, added to the shipped
    registry (or, with shipped=False, alone)."""
    registry = load_registry()
    allowed_by_role = {p.role: p.allowed_types for p in registry}
    merged = {p.partner_id: p for p in registry} if shipped else {}
    for partner_id, role in partners.items():
        merged[partner_id] = Partner(partner_id=partner_id, name=f"test partner {partner_id}",
                                     role=role, district_code="330106",
                                     allowed_types=allowed_by_role[role])
    return PartnerRegistry(merged)


def resident_id(rng: random.Random) -> str:
    birth = f"{rng.randint(1960, 2004)}{rng.randint(1, 12):02d}{rng.randint(1, 28):02d}"
    first17 = f"330106{birth}{rng.randint(0, 999):03d}"
    return first17 + resident_id_check_char(first17)


def enrollment(partner_id: str, n: int, *, rng: random.Random | None = None) -> dict[str, Any]:
    """The n-th valid enrollment of a partner, with its own learner."""
    rng = rng or random.Random(f"{partner_id}:{n}")
    event = copy.deepcopy(example_events()[ENROLLMENT])
    event["id"] = f"{partner_id}-evt-{n:07d}"
    event["source"] = f"/partners/{partner_id}"
    event["subject"] = f"{partner_id}-enr-{n:07d}"
    data = event["data"]
    data["enrollment_id"] = event["subject"]
    data["learner"]["id_number"] = resident_id(rng)
    return event


def encode(event: Mapping[str, Any]) -> bytes:
    return orjson.dumps(event)
