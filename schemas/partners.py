"""The partners registry: who may publish, under which role, which event families, and which
slices of the reconciled picture each party receives back (its feeds)."""

from __future__ import annotations

import tomllib
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from schemas.errors import ConfigurationError
from schemas.events import FAMILIES
from schemas.sync import EXCLUSIVE_SLICES, SLICES

REGISTRY_PATH = Path(__file__).resolve().parent / "partners.toml"

ROLES = ("training_platform", "technician_college", "evaluation_org", "district_bureau",
         "subsidy_office")


class RegistryError(ConfigurationError):
    """The registry file is unusable: a configuration error, fix the file and restart."""


@dataclass(frozen=True)
class Partner:
    """A registered partner; `allowed_types` holds event families such as "enrollment.created",
    `feeds` the slices of the sync feed it subscribes to (schemas.sync.SLICES)."""

    partner_id: str
    name: str
    role: str
    district_code: str | None
    allowed_types: frozenset[str]
    credit_code: str | None = field(default=None, compare=False)
    feeds: frozenset[str] = frozenset()

    def may_publish(self, family: str) -> bool:
        return family in self.allowed_types


class PartnerRegistry:
    """Partners by id; immutable once built."""

    def __init__(self, partners: Mapping[str, Partner]) -> None:
        self._partners = dict(partners)

    def get(self, partner_id: str) -> Partner | None:
        return self._partners.get(partner_id)

    def __iter__(self) -> Iterator[Partner]:
        return iter(self._partners.values())

    def __len__(self) -> int:
        return len(self._partners)

    def __contains__(self, partner_id: object) -> bool:
        return partner_id in self._partners


def load_registry(path: Path | None = None) -> PartnerRegistry:
    """Read the registry TOML (default the shipped schemas/partners.toml); RegistryError if it
    is malformed."""
    source = path or REGISTRY_PATH
    try:
        document = tomllib.loads(source.read_text(encoding="utf-8"))
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise RegistryError(f"cannot read partners registry {source}: {exc}") from exc
    role_types = {
        role: frozenset(spec.get("allowed_types", ()))
        for role, spec in document.get("roles", {}).items()
    }
    role_feeds = {role: frozenset(spec.get("feeds", ()))
                  for role, spec in document.get("roles", {}).items()}
    partners: dict[str, Partner] = {}
    for entry in document.get("partner", []):
        try:
            partner_id, role = entry["partner_id"], entry["role"]
            allowed = frozenset(entry["allowed_types"] if "allowed_types" in entry
                                else role_types[role])
            partner = Partner(
                partner_id=partner_id,
                name=entry["name"],
                role=role,
                district_code=entry.get("district_code"),
                allowed_types=allowed,
                credit_code=entry.get("credit_code"),
                feeds=frozenset(entry.get("feeds", role_feeds.get(role, ()))),
            )
        except KeyError as exc:
            raise RegistryError(f"{source}: partner entry {entry!r} lacks {exc}") from None
        if role not in ROLES:
            raise RegistryError(f"{source}: partner {partner_id!r} has unknown role {role!r}")
        if unknown := allowed - FAMILIES:
            raise RegistryError(f"{source}: {partner_id!r} allows unknown {sorted(unknown)}")
        _check_feeds(source, partner)
        if partner_id in partners:
            raise RegistryError(f"{source}: partner {partner_id!r} is listed twice")
        partners[partner_id] = partner
    return PartnerRegistry(partners)


def _check_feeds(source: Path, partner: Partner) -> None:
    if unknown := partner.feeds - SLICES.keys():
        raise RegistryError(f"{source}: {partner.partner_id!r} subscribes to unknown feeds "
                            f"{sorted(unknown)}")
    if len(partner.feeds & EXCLUSIVE_SLICES) > 1:
        raise RegistryError(f"{source}: {partner.partner_id!r} may subscribe to only one of "
                            f"{sorted(EXCLUSIVE_SLICES)}")
    if "district" in partner.feeds and not (partner.district_code or "").isdigit():
        raise RegistryError(f"{source}: {partner.partner_id!r} subscribes to its district's "
                            "feed but names no district_code")
