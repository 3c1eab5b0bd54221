"""Fault knobs for the partner simulator: every fault is off unless asked for."""

from __future__ import annotations

from dataclasses import dataclass, fields


@dataclass(frozen=True, slots=True)
class Faults:
    """How much bad behaviour to mix into a simulation.

    Rates are fractions of the eligible events; counts are exact numbers of injected cases
    (fewer only when the simulation is too small to host them, which the manifest records).
    """

    duplicate_rate: float = 0.0
    """Share of events sent twice with identical bytes (a producer retry); each lands once."""
    late_rate: float = 0.0
    """Share of enrollments reported one to three days after they happened."""
    out_of_order_rate: float = 0.0
    """Share of follow-up events sent before the same partner's event they follow."""
    cross_platform_enrollments: int = 0
    """Enrollments reported by a second training partner as well."""
    malformed: int = 0
    """Messages whose bytes are not a JSON object."""
    schema_violations: int = 0
    """Events that break their payload contract."""
    bad_checksums: int = 0
    """Events carrying a resident ID number whose check character is wrong."""
    foreign_source: int = 0
    """Events whose source names a partner other than the topic's owner."""
    forbidden_types: int = 0
    """Events of a type the sending partner's role may not send."""
    missing: int = 0
    """Events counted in the control totals but never sent."""
    shared_certificate_numbers: int = 0
    """Certificate numbers issued to a second person as well."""
    double_subsidy_claims: int = 0
    """Second certificates for a person, occupation and level already certified elsewhere."""
    resent_records: int = 0
    """Records and withdrawals or revocations a partner's system sends again under a new id."""
    orphan_changes: int = 0
    """Withdrawals, corrections and revocations naming a record the partner never reported."""
    late_changes: int = 0
    """Withdrawals, corrections and revocations sent two to five days after they happened."""
    reversed_results: int = 0
    """Passed and certified evaluations later corrected to a fail."""
    level_mismatches: int = 0
    """Certificates issued at a level other than their evaluation's."""
    delivery_delay_rate: float = 0.0
    """Share of messages the broker appends later than the time the partner stamped on them
    (mostly by up to half an hour, now and then by a day or two) or, from a partner clock
    running ahead, up to nine minutes before it; half of them across a midnight."""

    def __post_init__(self) -> None:
        for field in fields(self):
            value = getattr(self, field.name)
            if field.name.endswith("_rate"):
                if not 0.0 <= value <= 0.5:
                    raise ValueError(f"{field.name} must be within [0, 0.5], got {value}")
            elif not isinstance(value, int) or value < 0:
                raise ValueError(f"{field.name} must be a non-negative integer, got {value!r}")

    @property
    def any(self) -> bool:
        return any(getattr(self, field.name) for field in fields(self))

    @classmethod
    def names(cls) -> tuple[str, ...]:
        return tuple(field.name for field in fields(cls))
