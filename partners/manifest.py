"""The ground truth of a simulation: what must land, be refused, be flagged or be paid."""

from __future__ import annotations

import dataclasses
from datetime import date
from typing import Any

from partners.faults import Faults
from partners.injection import Injected
from partners.lifecycle import Certificate, DayTotals, Planned, Revocation, local_day

MANIFEST_VERSION = 1

RULES = {
    "landed": "events that must be in staging, once each, by partner and event family "
    "(control totals included)",
    "rejected": "messages that must be refused, with the reason code; id is null when the "
    "bytes hold no event, key is the Kafka message key",
    "duplicates": "event ids sent more than once with identical bytes; each lands once",
    "late": "events published on a business day after the one they happened on",
    "out_of_order": "events published before the same partner's event that precedes them",
    "control_totals": "per partner and business day of publication, the counts the partner "
    "reported: landed events plus those withheld",
    "subsidy_eligible_certificates": "per person, occupation and level, the earliest issued "
    "certificate still in force whose number belongs to one person only",
}


def build_manifest(
    *,
    first_day: date,
    days: int,
    events: int,
    seed: int,
    faults: Faults,
    injected: Injected,
    schedule: list[Planned],
    withheld: list[Planned],
) -> dict[str, Any]:
    refused = {id(e) for e in injected.refused}
    position: dict[int, int] = {}
    landed: list[Planned] = []
    for index, event in enumerate(schedule):
        if id(event) not in refused and id(event) not in position:
            position[id(event)] = index
            landed.append(event)

    counts: dict[str, dict[str, int]] = {}
    for event in landed:
        by_family = counts.setdefault(event.partner_id, {})
        by_family[event.family] = by_family.get(event.family, 0) + 1

    return {
        "manifest_version": MANIFEST_VERSION,
        "seed": seed,
        "first_day": first_day.isoformat(),
        "days": days,
        "events": events,
        "messages": len(schedule),
        "faults": {
            "requested": dataclasses.asdict(faults),
            "injected": injected.injected,
        },
        "rules": RULES,
        "landed": counts,
        "landed_total": len(landed),
        "rejected": injected.rejected,
        "duplicates": sorted(e.event_id for _, e in injected.copies),
        "late": _late(landed),
        "out_of_order": _out_of_order(landed, position),
        "control_totals": _reported_totals(landed),
        "discrepancies": [*injected.discrepancies, *_gaps(withheld)],
        "subsidy_eligible_certificates": _eligible(landed),
    }


def _late(landed: list[Planned]) -> list[dict[str, str]]:
    late = []
    for event in landed:
        happened, published = local_day(event.occurred_at), local_day(event.published_at)
        if happened < published and event.family != "control.totals":
            late.append(
                {
                    "id": event.event_id,
                    "partner": event.partner_id,
                    "occurred_day": happened.isoformat(),
                    "published_day": published.isoformat(),
                }
            )
    return late


def _out_of_order(landed: list[Planned], position: dict[int, int]) -> list[dict[str, str]]:
    found = []
    for event in landed:
        before = event.follows
        if before is not None and position.get(id(before), -1) > position[id(event)]:
            found.append(
                {
                    "id": event.event_id,
                    "partner": event.partner_id,
                    "arrives_before": before.event_id,
                }
            )
    return found


def _reported_totals(landed: list[Planned]) -> dict[str, dict[str, dict[str, int]]]:
    reported: dict[str, dict[str, dict[str, int]]] = {}
    for event in landed:
        totals = event.facts
        if isinstance(totals, DayTotals):
            by_family = {family: len(ids) for family, ids in sorted(totals.ids.items())}
            reported.setdefault(event.partner_id, {})[totals.business_day.isoformat()] = by_family
    return reported


def _gaps(withheld: list[Planned]) -> list[dict[str, Any]]:
    gaps: dict[tuple[str, str, str], list[str]] = {}
    for event in withheld:
        key = (event.partner_id, local_day(event.published_at).isoformat(), event.family)
        gaps.setdefault(key, []).append(event.event_id)
    return [
        {
            "kind": "control_total_gap",
            "partner": partner,
            "business_day": day,
            "family": family,
            "ids": sorted(ids),
        }
        for (partner, day, family), ids in sorted(gaps.items())
    ]


def _eligible(landed: list[Planned]) -> list[str]:
    issued = [e for e in landed if e.family == "certificate.issued"]
    revoked = {e.facts.certificate.number for e in landed if isinstance(e.facts, Revocation)}
    holders: dict[str, set[str]] = {}
    for event in issued:
        certificate = event.facts
        assert isinstance(certificate, Certificate)
        holders.setdefault(certificate.number, set()).add(certificate.evaluation.person.resident_id)
    first: dict[tuple[str, str, int], tuple[int, int, str]] = {}
    for event in issued:
        certificate = event.facts
        assert isinstance(certificate, Certificate)
        if certificate.number in revoked or len(holders[certificate.number]) > 1:
            continue
        evaluation = certificate.evaluation
        claim = (evaluation.person.resident_id, evaluation.occupation_code,
                 certificate.certified_level)
        candidate = (event.occurred_at, event.seq, certificate.number)
        if claim not in first or candidate < first[claim]:
            first[claim] = candidate
    return sorted(number for _, _, number in first.values())
