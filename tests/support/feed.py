"""The sync feed in tests: a registry with subscribers of every kind, and the outbox replayed."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import psycopg

from schemas.partners import Partner, PartnerRegistry, load_registry

# Roles of a test city with every kind of subscriber, and where each sits.
FEED_ROLES = (("training_platform", "330106"), ("training_platform", "330108"),
              ("technician_college", "330110"), ("evaluation_org", "330106"),
              ("evaluation_org", "330108"), ("evaluation_org", "330103"),
              ("district_bureau", "330106"), ("district_bureau", "330108"),
              ("district_bureau", "330105"), ("subsidy_office", "330100"))


def feed_registry(partners: Mapping[str, tuple[str, str]]) -> PartnerRegistry:
    """{partner_id: (role, district)}, each with its role's families and feeds as shipped."""
    shipped = {p.role: p for p in load_registry()}
    return PartnerRegistry({
        pid: Partner(partner_id=pid, name=f"test partner {pid}", role=role,
                     district_code=district, allowed_types=shipped[role].allowed_types,
                     feeds=shipped[role].feeds)
        for pid, (role, district) in partners.items()})


def write_registry(registry: PartnerRegistry, path: Path) -> Path:
    """The registry as a TOML file a process reads (SKILLSYNC_PARTNERS_REGISTRY)."""
    lines = []
    for p in registry:
        lines += ["[[partner]]", f'partner_id = "{p.partner_id}"', f'name = "{p.name}"',
                  f'role = "{p.role}"', f'district_code = "{p.district_code}"',
                  "allowed_types = [" + ", ".join(f'"{t}"' for t in sorted(p.allowed_types))
                  + "]", "feeds = [" + ", ".join(f'"{f}"' for f in sorted(p.feeds)) + "]", ""]
    path.write_text("\n".join(lines), encoding="utf-8")
    return path


def replayed_outbox(database_url: str, subscriber: str) -> dict[str, tuple[str, Any]]:
    """The subscriber's outbox applied in version order: what a perfect mirror holds."""
    mirror: dict[str, tuple[str, Any]] = {}
    with psycopg.connect(database_url) as conn:
        for operation, kind, key, payload in conn.execute(
                "SELECT operation, kind, record_key, payload FROM warehouse.feed_outbox"
                " WHERE subscriber = %s ORDER BY version", (subscriber,)):
            if operation == "upsert":
                mirror[key] = (kind, payload)
            else:
                mirror.pop(key, None)
    return mirror


def outbox_versions(database_url: str) -> dict[str, list[int]]:
    with psycopg.connect(database_url) as conn:
        versions: dict[str, list[int]] = {}
        for subscriber, version in conn.execute(
                "SELECT subscriber, version FROM warehouse.feed_outbox ORDER BY created_at, "
                "subscriber, version"):
            versions.setdefault(subscriber, []).append(version)
    return versions
