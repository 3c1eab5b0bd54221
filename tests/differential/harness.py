"""Random weeks for the differential test: simulate, land, load, and compare with the model."""

from __future__ import annotations

import random
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, fields
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Any

import psycopg

from partners.faults import Faults
from partners.simulate import Simulation, simulate
from schemas.partners import PartnerRegistry
from schemas.reference import subsidy_rules
from tests.differential import model
from tests.support.nightly import registry_of
from tests.support.seed import draw_day

KEYS = {
    "fact_enrollment": ("partner_id", "enrollment_id", "person"),
    "fact_completion": ("partner_id", "enrollment_id", "person"),
    "fact_evaluation": ("partner_id", "evaluation_id", "person"),
    "fact_certificate": ("certificate_number", "person"),
    "fact_subsidy_eligibility": ("certificate_number", "person"),
    "discrepancy": ("kind", "partner_id", "event_id", "reference"),
    "fact_control_totals": ("partner_id", "event_id"),
    "partner_scorecard": ("business_day", "partner_id"),
}
ROLE_COUNTS = {"training_platform": (1, 3), "technician_college": (0, 2),
               "district_bureau": (0, 1), "evaluation_org": (1, 3)}
SHOWN = 8


@dataclass(frozen=True)
class Week:
    """One random week: everything about it follows from its seed and first day."""

    seed: int
    start: date
    days: int
    events: int
    lookback_days: int
    duplicate_window_days: int
    faults: Faults
    partners: dict[str, str]  # partner id -> role

    @classmethod
    def draw(cls, seed: int, start: date | None = None) -> Week:
        rng = random.Random(f"week:{seed}")
        first = draw_day(rng)
        partners = {}
        for role, (low, high) in ROLE_COUNTS.items():
            for _ in range(rng.randint(low, high)):
                partners[f"p{rng.getrandbits(32):08x}"] = role
        # Each knob off in a third of the weeks, so that every mix shows up.
        knobs: dict[str, Any] = {
            f.name: (round(rng.choice((0.0, rng.uniform(0, 0.2), rng.uniform(0, 0.2))), 3)
                     if f.name.endswith("_rate") else rng.choice((0, 1, 2, 3, 5, 8)))
            for f in fields(Faults)}
        faults = Faults(**knobs)
        return cls(seed=seed, start=start or first, days=rng.randint(3, 9),
                   events=rng.randint(60, 400), lookback_days=rng.randint(0, 4),
                   duplicate_window_days=rng.randint(0, 4), faults=faults, partners=partners)

    @property
    def registry(self) -> PartnerRegistry:
        return registry_of(self.partners)

    @property
    def rules(self) -> model.Rules:
        return model.Rules(self.lookback_days, self.duplicate_window_days,
                           tuple(subsidy_rules()))

    def replay(self) -> str:
        return f"--week-seed {self.seed} --start {self.start.isoformat()}"

    def simulation(self) -> Simulation:
        return simulate(self.start, self.events, self.seed, self.faults, self.days,
                        registry=self.registry)


def staging_of(database_url: str) -> model.Staging:
    with psycopg.connect(database_url) as conn:
        events = [model.Staged(*row) for row in conn.execute(
            "SELECT partner_id, event_id, family, occurred_at, appended_at, append_day, sent_day,"
            " person, key_id, data FROM staging.events")]
        refused = [model.Refusal(*row) for row in conn.execute(
            "SELECT partner_id, append_day, reason_code, replay_outcome FROM staging.rejected")]
        redelivered = [(p, d) for p, d in conn.execute(
            "SELECT partner_id, append_day FROM staging.redeliveries")]
        quarantined = {(p, e) for p, e in conn.execute(
            "SELECT partner_id, event_id FROM ops.quarantine")}
    return model.Staging(events, refused, redelivered, quarantined)


def warehouse_of(database_url: str, columns: Mapping[str, Iterable[str]]) -> model.Tables:
    """The warehouse's rows of each table, keyed like the model's, in the model's columns."""
    tables: model.Tables = {}
    with psycopg.connect(database_url) as conn:
        for table, key in KEYS.items():
            wanted = [c for c in columns[table] if c not in key]
            rows = conn.execute(f"SELECT {', '.join((*key, *wanted))} FROM warehouse.{table}")
            tables[table] = {row[:len(key)]: dict(zip(wanted, row[len(key):], strict=True))
                             for row in rows}
    return tables


def differences(want: model.Tables, got: model.Tables) -> list[str]:
    """Row-by-row differences, a few per table; empty when the warehouse equals the model."""
    found = []
    for table in KEYS:
        w, g = want[table], got[table]
        missing = sorted(set(w) - set(g), key=str)
        unexpected = sorted(set(g) - set(w), key=str)
        shown = [c for c in model_columns()[table] if c not in KEYS[table]]
        changed = sorted((k for k in set(w) & set(g)
                          if not all(_same(w[k][c], g[k].get(c)) for c in shown)), key=str)
        for label, keys in (("missing", missing), ("unexpected", unexpected)):
            for k in keys[:SHOWN]:
                found.append(f"{table}: {label} {k}: {w.get(k) or g.get(k)}")
        for k in changed[:SHOWN]:
            diff = {c: (w[k][c], g[k].get(c)) for c in shown if not _same(w[k][c], g[k].get(c))}
            found.append(f"{table}: {k} differs (model, warehouse): {diff}")
        extra = len(missing) + len(unexpected) + len(changed) - min(len(missing), SHOWN) \
            - min(len(unexpected), SHOWN) - min(len(changed), SHOWN)
        if extra > 0:
            found.append(f"{table}: ... {extra} more")
    return found


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(_same(a[k], b[k]) for k in a)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, (int, float, Decimal)) and isinstance(b, (int, float, Decimal)) \
            and not isinstance(a, bool) and not isinstance(b, bool):
        return Decimal(str(a)) == Decimal(str(b))
    return type(a) is type(b) and a == b if isinstance(a, (bool, date, datetime)) else a == b


def model_columns() -> dict[str, set[str]]:
    """Every column the model fills, per table: what the comparison reads back."""
    return {
        "fact_enrollment": {
            "event_id", "business_day", "key_id", "occupation_code", "level", "course_id",
            "mode", "institution_code", "district_code", "enrolled_at", "status",
            "withdrawn_at", "withdrawal_reason", "withdrawal_event_id", "withdrawn_day",
            "canonical_partner_id", "canonical_enrollment_id"},
        "fact_completion": {"event_id", "business_day", "completed_at", "hours_attended",
                            "enrollment_found"},
        "fact_evaluation": {
            "event_id", "business_day", "occupation_code", "level", "theory_score",
            "practical_score", "result", "evaluated_at", "organisation_code", "district_code",
            "enrollment_id", "work_type", "corrections", "last_corrected_at",
            "correction_event_ids", "last_corrected_day"},
        "fact_certificate": {
            "partner_id", "event_id", "business_day", "certificate_type", "scheme",
            "occupation_code", "level", "issued_at", "evaluation_id", "organisation_code",
            "district_code", "evaluation_level", "paired_certificate_number", "status",
            "revoked_at", "revocation_reason", "revocation_partner_id", "revocation_event_id",
            "revoked_day",
            "passing_evaluation", "number_shared"},
        "fact_subsidy_eligibility": {
            "business_day", "partner_id", "district_code", "occupation_code", "level",
            "certificate_type", "issued_day", "scheme", "eligible", "reason", "amount_yuan",
            "first_claim_number"},
        "discrepancy": {"business_day", "severity", "person", "detail"},
        "fact_control_totals": {"business_day", "append_day", "appended_at", "status",
                                "counts"},
        "partner_scorecard": {"received", "valid", "rejected", "rejected_by_reason",
                              "duplicates", "late", "missing", "extra"},
    }


def days_of(start: date, days: int) -> list[date]:
    return [start + timedelta(days=i) for i in range(days)]
