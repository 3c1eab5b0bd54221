"""A reference model of the night's rules in plain Python, written from docs/warehouse.md.

It reads nothing but staged rows and returns the rows the warehouse should hold; the
differential test compares them, table by table, with what the SQL load wrote. It is kept
deliberately naive: one person at a time, whole lists, no indexes, no incremental state.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta, timezone
from decimal import Decimal
from hashlib import sha256
from typing import Any

from schemas.reference import SubsidyRule

SHANGHAI = timezone(timedelta(hours=8))
SUBSIDY_SCHEME = "training_subsidy"
LIFECYCLE_RECORDS = {
    # family -> how a report names its record (besides its person)
    "enrollment.created": ("partner", "enrollment_id"),
    "completion.recorded": ("partner", "enrollment_id"),
    "evaluation.recorded": ("partner", "evaluation_id"),
    "certificate.issued": ("certificate_number",),
}

Row = dict[str, Any]
Tables = dict[str, dict[tuple[Any, ...], Row]]


@dataclass(frozen=True)
class Staged:
    """One row of staging.events, as the model needs it."""

    partner_id: str
    event_id: str
    family: str
    occurred_at: datetime
    appended_at: datetime
    append_day: date
    sent_day: date
    person: str | None
    key_id: str | None
    data: Mapping[str, Any]


@dataclass(frozen=True)
class Refusal:
    partner_id: str
    append_day: date
    reason_code: str
    replay_outcome: str | None


@dataclass(frozen=True)
class Rules:
    lookback_days: int
    duplicate_window_days: int
    subsidy_rules: tuple[SubsidyRule, ...]


@dataclass
class Staging:
    """Everything the load reads: staged events, refusals, redeliveries and quarantine."""

    events: list[Staged]
    refused: list[Refusal] = field(default_factory=list)
    redelivered: list[tuple[str, date]] = field(default_factory=list)  # (partner, append day)
    quarantined: set[tuple[str, str]] = field(default_factory=set)


def local_day(moment: datetime) -> date:
    return moment.astimezone(SHANGHAI).date()


def filed_on(event: Staged, lookback: int) -> date:
    """A record happened on its own day if it arrived within the look-back, else on arrival."""
    happened = local_day(event.occurred_at)
    if event.append_day - timedelta(days=lookback) <= happened <= event.append_day:
        return happened
    return event.append_day


def moment(value: str) -> datetime:
    return datetime.fromisoformat(value)


def number(value: Any) -> Decimal:
    return Decimal(str(value))


def report_order(event: Staged) -> tuple[datetime, str]:
    """Which of several reports came first: when it happened, then its id."""
    return (event.occurred_at, event.event_id)


# -- the model ------------------------------------------------------------------------------


def expected(staging: Staging, loaded_days: Iterable[date], rules: Rules) -> Tables:
    """The warehouse after loading `loaded_days` (in any order), horizon the latest of them."""
    loaded = sorted(set(loaded_days))
    horizon = loaded[-1]
    visible = [e for e in staging.events if e.append_day <= horizon
               and (e.partner_id, e.event_id) not in staging.quarantined]
    tables: Tables = {name: {} for name in (
        "fact_enrollment", "fact_completion", "fact_evaluation", "fact_certificate",
        "fact_subsidy_eligibility", "discrepancy", "fact_control_totals", "partner_scorecard")}
    # Who holds each certificate number: a number two people hold is flagged on both.
    holders: dict[str, set[str]] = defaultdict(set)
    for e in visible:
        if e.family == "certificate.issued" and e.person is not None:
            holders[e.data["certificate_number"]].add(e.person)
    loaded_set = set(loaded)
    people: dict[str, list[Staged]] = defaultdict(list)
    for e in visible:
        if e.person is not None:
            people[e.person].append(e)
    # A person's records exist once any day naming them was loaded.
    named = {e.person for e in staging.events if e.append_day in loaded_set and e.person}
    for person in sorted(named & set(people)):
        _person(tables, person, people[person], holders, rules)
    _days(tables, staging, loaded, horizon, rules)
    return tables


def _add(tables: Tables, table: str, key: tuple[Any, ...], row: Row) -> None:
    assert key not in tables[table], f"{table}: two rows for {key}"
    tables[table][key] = row


def _discrepancy(tables: Tables, *, day: date, kind: str, reference: str, severity: str,
                 partner: str, event_id: str, person: str | None, detail: Row) -> None:
    _add(tables, "discrepancy", (kind, partner, event_id, reference), {
        "business_day": day, "kind": kind, "reference": reference, "severity": severity,
        "partner_id": partner, "event_id": event_id, "person": person, "detail": detail})


def _records(events: list[Staged], family: str) -> dict[tuple[Any, ...], list[Staged]]:
    """A person's reports of one family, grouped by the record they name, first report first."""
    naming = LIFECYCLE_RECORDS.get(family) or {
        "enrollment.withdrawn": ("partner", "enrollment_id"),
        "evaluation.corrected": ("partner", "evaluation_id"),
        "certificate.revoked": ("certificate_number",),
    }[family]
    grouped: dict[tuple[Any, ...], list[Staged]] = defaultdict(list)
    for e in events:
        if e.family == family:
            grouped[tuple(e.partner_id if f == "partner" else e.data[f] for f in naming)].append(e)
    return {k: sorted(v, key=report_order) for k, v in grouped.items()}


def _person(tables: Tables, person: str, events: list[Staged],
            holders: Mapping[str, set[str]], rules: Rules) -> None:
    lookback = rules.lookback_days
    enrollments = _records(events, "enrollment.created")
    withdrawals = _records(events, "enrollment.withdrawn")
    completions = _records(events, "completion.recorded")
    evaluations = _records(events, "evaluation.recorded")
    corrections = _records(events, "evaluation.corrected")
    certificates = _records(events, "certificate.issued")
    revocations = _records(events, "certificate.revoked")

    # Repeated reports of one record: the first is the record, the others are named.
    for family, grouped in (("enrollment.created", enrollments),
                            ("completion.recorded", completions),
                            ("evaluation.recorded", evaluations),
                            ("certificate.issued", certificates)):
        for key, reports in grouped.items():
            reference = key[0] if family == "certificate.issued" else f"{key[0]}:{key[1]}"
            for repeat in reports[1:]:
                _discrepancy(tables, day=filed_on(repeat, lookback), kind="repeated_record",
                             reference=reference, severity="warning",
                             partner=repeat.partner_id, event_id=repeat.event_id,
                             person=person, detail={"family": family,
                                                    "record_event_id": reports[0].event_id})
    # Changes: the first withdrawal or revocation of a record applies, every correction
    # applies; a change naming no record of this person is named.
    for family, changes, records in (("enrollment.withdrawn", withdrawals, enrollments),
                                     ("certificate.revoked", revocations, certificates),
                                     ("evaluation.corrected", corrections, evaluations)):
        for key, reports in changes.items():
            reference = key[0] if family == "certificate.revoked" else f"{key[0]}:{key[1]}"
            found = key in records
            for index, change in enumerate(reports):
                if found and (index == 0 or family == "evaluation.corrected"):
                    continue
                _discrepancy(
                    tables, day=filed_on(change, lookback),
                    kind="repeated_change" if found else "change_without_record",
                    reference=reference, severity="info" if found else "warning",
                    partner=change.partner_id, event_id=change.event_id, person=person,
                    detail={"family": family,
                            "applied_event_id": reports[0].event_id if found else None})

    # Enrollments, with their withdrawal and the canonical report of the same training.
    window = rules.duplicate_window_days * 86400
    firsts = {key: reports[0] for key, reports in enrollments.items()}
    for (partner, enrollment_id), e in firsts.items():
        course = e.data["course"]
        enrolled_at = moment(e.data["enrolled_at"])
        canonical = (partner, enrollment_id)
        earlier = [
            (moment(o.data["enrolled_at"]), op, oid) for (op, oid), o in firsts.items()
            if op != partner and o.data["course"]["occupation_code"] == course["occupation_code"]
            and o.data["course"]["level"] == course["level"]
            and abs((moment(o.data["enrolled_at"]) - enrolled_at).total_seconds()) <= window
            and (moment(o.data["enrolled_at"]), op, oid) < (enrolled_at, partner, enrollment_id)]
        if earlier:
            canonical = min(earlier)[1:]
        withdrawal = withdrawals.get((partner, enrollment_id), [None])[0]
        day = filed_on(e, lookback)
        _add(tables, "fact_enrollment", (partner, enrollment_id, person), {
            "event_id": e.event_id, "business_day": day, "key_id": e.key_id,
            "occupation_code": course["occupation_code"], "level": course["level"],
            "course_id": course["course_id"], "mode": course["mode"],
            "institution_code": e.data["institution"]["credit_code"],
            "district_code": e.data["district_code"], "enrolled_at": enrolled_at,
            "status": "withdrawn" if withdrawal else "active",
            "withdrawn_at": moment(withdrawal.data["withdrawn_at"]) if withdrawal else None,
            "withdrawal_reason": withdrawal.data["reason"] if withdrawal else None,
            "withdrawal_event_id": withdrawal.event_id if withdrawal else None,
            "withdrawn_day": filed_on(withdrawal, lookback) if withdrawal else None,
            "canonical_partner_id": canonical[0], "canonical_enrollment_id": canonical[1]})
        if canonical != (partner, enrollment_id):
            _discrepancy(tables, day=day, kind="semantic_duplicate",
                         reference=f"{partner}:{enrollment_id}", severity="info", partner=partner,
                         event_id=e.event_id, person=person,
                         detail={"canonical": f"{canonical[0]}:{canonical[1]}"})

    for (partner, enrollment_id), reports in completions.items():
        c = reports[0]
        found = (partner, enrollment_id) in enrollments
        _add(tables, "fact_completion", (partner, enrollment_id, person), {
            "event_id": c.event_id, "business_day": filed_on(c, lookback),
            "completed_at": moment(c.data["completed_at"]),
            "hours_attended": number(c.data["hours_attended"]), "enrollment_found": found})
        if not found:
            _discrepancy(tables, day=filed_on(c, lookback), kind="completion_without_enrollment",
                         reference=f"{partner}:{enrollment_id}", severity="warning",
                         partner=partner, event_id=c.event_id, person=person,
                         detail={"event_id": c.event_id})

    # Evaluations with their corrections applied field by field, the latest one winning.
    effective: dict[tuple[str, str], Row] = {}
    for (partner, evaluation_id), reports in evaluations.items():
        v = reports[0]
        fixes = corrections.get((partner, evaluation_id), [])
        row: Row = {
            "event_id": v.event_id, "business_day": filed_on(v, lookback),
            "occupation_code": v.data["occupation_code"], "level": v.data["level"],
            "theory_score": number(v.data["theory_score"]),
            "practical_score": number(v.data["practical_score"]), "result": v.data["result"],
            "evaluated_at": moment(v.data["evaluated_at"]),
            "organisation_code": v.data["organisation"]["credit_code"],
            "district_code": v.data["district_code"],
            "enrollment_id": v.data.get("enrollment_id"), "work_type": v.data.get("work_type"),
            "corrections": len(fixes),
            "last_corrected_at": max((f.occurred_at for f in fixes), default=None),
            "correction_event_ids": [f.event_id for f in fixes],
            "last_corrected_day": filed_on(fixes[-1], lookback) if fixes else None,
        }
        for fix in fixes:  # oldest first, so the latest value of each field stays
            for name in ("occupation_code", "level", "result"):
                if fix.data.get(name) is not None:
                    row[name] = fix.data[name]
            for name in ("theory_score", "practical_score"):
                if fix.data.get(name) is not None:
                    row[name] = number(fix.data[name])
        effective[(partner, evaluation_id)] = row
        _add(tables, "fact_evaluation", (partner, evaluation_id, person), row)

    # Certificates, linked to their evaluation and revocation.
    issued: dict[str, Row] = {}
    for (certificate_number,), reports in certificates.items():
        k = reports[0]
        d = k.data
        linked = effective.get((k.partner_id, d["evaluation_id"]))
        revocation = revocations.get((certificate_number,), [None])[0]
        passing = bool(linked and linked["result"] == "pass") or any(
            p["result"] == "pass" and p["occupation_code"] == d.get("occupation_code")
            and p["level"] == d.get("level") for p in effective.values())
        row = {
            "partner_id": k.partner_id, "event_id": k.event_id,
            "business_day": filed_on(k, lookback), "certificate_type": d["certificate_type"],
            "scheme": d["scheme"], "occupation_code": d.get("occupation_code"),
            "level": d.get("level"), "issued_at": moment(d["issued_at"]),
            "evaluation_id": d["evaluation_id"],
            "organisation_code": d["organisation"]["credit_code"],
            "district_code": linked["district_code"] if linked else None,
            "evaluation_level": linked["level"] if linked else None,
            "paired_certificate_number": d.get("paired_certificate_number"),
            "status": "revoked" if revocation else "in_force",
            "revoked_at": moment(revocation.data["revoked_at"]) if revocation else None,
            "revocation_reason": revocation.data["reason"] if revocation else None,
            "revocation_partner_id": revocation.partner_id if revocation else None,
            "revocation_event_id": revocation.event_id if revocation else None,
            "revoked_day": filed_on(revocation, lookback) if revocation else None,
            "passing_evaluation": passing,
            "number_shared": bool(holders[certificate_number] - {person}),
        }
        issued[certificate_number] = row
        _add(tables, "fact_certificate", (certificate_number, person), row)
        findings = (
            ("certificate_without_passing_evaluation", not passing,
             {"evaluation_id": d["evaluation_id"], "event_id": k.event_id}),
            ("level_mismatch", row["evaluation_level"] is not None
             and row["evaluation_level"] != row["level"],
             {"certificate_level": row["level"], "evaluation_level": row["evaluation_level"],
              "evaluation_id": d["evaluation_id"]}),
            ("certificate_number_conflict", row["number_shared"], {"event_id": k.event_id}),
        )
        for kind, raised, detail in findings:
            if raised:
                _discrepancy(tables, day=row["business_day"], kind=kind,
                             reference=certificate_number, severity="error",
                             partner=k.partner_id, event_id=k.event_id, person=person,
                             detail=detail)

    _subsidies(tables, person, issued, rules)


def _subsidies(tables: Tables, person: str, issued: Mapping[str, Row], rules: Rules) -> None:
    """Once per person, certificate type, occupation and level: the earliest certificate in
    force whose number is the person's alone holds the claim."""
    for certificate_number, f in issued.items():
        same = [(s["issued_at"], n, s) for n, s in issued.items()
                if s["certificate_type"] == f["certificate_type"]
                and s["occupation_code"] == f["occupation_code"] and s["level"] == f["level"]
                and s["status"] == "in_force" and not s["number_shared"]
                and (s["issued_at"], n) < (f["issued_at"], certificate_number)]
        first = min(same, key=lambda t: t[:2]) if same else None
        issued_day = local_day(f["issued_at"])
        amounts = [r for r in rules.subsidy_rules
                   if r.scheme == SUBSIDY_SCHEME and r.certificate_type == f["certificate_type"]
                   and r.level == f["level"] and r.applies_on(issued_day)]
        amount = max(amounts, key=lambda r: r.valid_from).amount_yuan if amounts else None
        if f["status"] == "revoked":
            reason = "revoked"
        elif f["number_shared"]:
            reason = "shared_number"
        elif first and first[2]["partner_id"] == f["partner_id"] \
                and first[2]["evaluation_id"] == f["evaluation_id"]:
            reason = "paired_certificate"
        elif first:
            reason = "already_claimed"
        elif amount is None:
            reason = "no_rule"
        else:
            reason = "eligible"
        _add(tables, "fact_subsidy_eligibility", (certificate_number, person), {
            "business_day": f["business_day"], "partner_id": f["partner_id"],
            "district_code": f["district_code"], "occupation_code": f["occupation_code"],
            "level": f["level"], "certificate_type": f["certificate_type"],
            "issued_day": issued_day, "scheme": SUBSIDY_SCHEME, "eligible": reason == "eligible",
            "reason": reason, "amount_yuan": amount if reason == "eligible" else None,
            "first_claim_number": first[1] if first else None})
        if reason == "already_claimed":
            assert first is not None
            _discrepancy(tables, day=f["business_day"], kind="double_claim",
                         reference=certificate_number, severity="error",
                         partner=f["partner_id"], event_id=f["event_id"], person=person,
                         detail={"first_certificate": first[1],
                                 "first_partner": first[2]["partner_id"],
                                 "first_district": first[2]["district_code"],
                                 "district": f["district_code"],
                                 "occupation_code": f["occupation_code"], "level": f["level"]})


# -- partner-level figures of the days loads restate ----------------------------------------


def restated_days(staging: Staging, day: date, lookback: int) -> set[date]:
    """The day itself and the days within the look-back that its events were sent on or
    report control totals for."""
    related = {day}
    for e in staging.events:
        if e.append_day == day:
            related.add(e.sent_day)
            if e.family == "control.totals":
                related.add(date.fromisoformat(e.data["business_day"]))
    return {d for d in related if day - timedelta(days=lookback) <= d <= day}


def _days(tables: Tables, staging: Staging, loaded: list[date], horizon: date,
          rules: Rules) -> None:
    lookback = rules.lookback_days
    days: set[date] = set()
    for day in loaded:
        days |= restated_days(staging, day, lookback)
    totals = [e for e in staging.events if e.family == "control.totals"
              and e.append_day <= horizon and (e.partner_id, e.event_id) not in staging.quarantined]
    by_day: dict[tuple[str, date], list[Staged]] = defaultdict(list)
    for t in totals:
        by_day[(t.partner_id, date.fromisoformat(t.data["business_day"]))].append(t)
    applied: dict[tuple[str, date], Staged] = {}
    for (partner, day), messages in by_day.items():
        in_time = [t for t in messages if t.append_day <= day + timedelta(days=lookback)]
        latest = max(in_time, key=lambda t: (t.appended_at, t.event_id), default=None)
        for t in messages:
            if not (day in days or t.append_day in loaded):
                continue
            status = ("late" if t not in in_time else "applied" if t is latest
                      else "superseded")
            _add(tables, "fact_control_totals", (partner, t.event_id), {
                "business_day": day, "append_day": t.append_day, "appended_at": t.appended_at,
                "status": status, "counts": t.data["counts"]})
            if status == "applied" and day in days:
                applied[(partner, day)] = t
            if status == "late" and t.append_day in days:
                _discrepancy(tables, day=t.append_day, kind="control_totals_late",
                             reference=day.isoformat(), severity="warning", partner=partner,
                             event_id=t.event_id, person=None,
                             detail={"business_day": day.isoformat(),
                                     "append_day": t.append_day.isoformat()})
    for (partner, day), t in applied.items():
        _gaps(tables, staging, partner, day, t, horizon, lookback)
    _scorecards(tables, staging, days)


def _gaps(tables: Tables, staging: Staging, partner: str, day: date, totals: Staged,
          horizon: date, lookback: int) -> None:
    """What the partner said it sent that day against what landed from it in time."""
    last = min(horizon, day + timedelta(days=lookback))
    for family, counted in totals.data["counts"].items():
        listed = (totals.data.get("event_ids") or {}).get(family)
        landed = sorted(e.event_id for e in staging.events
                        if e.partner_id == partner and e.family == family and e.sent_day == day
                        and day - timedelta(days=1) <= e.append_day <= last)
        digest = sha256("\n".join(landed).encode()).hexdigest()
        if counted == len(landed) and digest == totals.data["digests"].get(family):
            continue
        missing = sorted(set(listed) - set(landed)) if listed is not None else []
        extra = sorted(set(landed) - set(listed)) if listed is not None else []
        _discrepancy(
            tables, day=day, kind="control_total_gap", reference=family,
            severity="error" if counted > len(landed) or missing else "warning",
            partner=partner, event_id=totals.event_id, person=None,
            detail={"family": family, "counted": counted, "landed": len(landed),
                    "missing": missing, "extra": extra,
                    "missing_count": len(missing) if listed is not None
                    else max(counted - len(landed), 0),
                    "extra_count": len(extra) if listed is not None
                    else max(len(landed) - counted, 0)})


def _scorecards(tables: Tables, staging: Staging, days: set[date]) -> None:
    cards: dict[tuple[date, str], Row] = {}

    def card(day: date, partner: str) -> Row:
        return cards.setdefault((day, partner), {
            "valid": 0, "rejected": 0, "duplicates": 0, "late": 0, "rejected_by_reason": {}})

    for e in staging.events:
        if e.append_day in days:
            c = card(e.append_day, e.partner_id)
            c["valid"] += 1
            if e.family != "control.totals" and local_day(e.occurred_at) < e.append_day:
                c["late"] += 1
    for r in staging.refused:
        if r.append_day in days and r.replay_outcome != "landed":
            c = card(r.append_day, r.partner_id)
            c["rejected"] += 1
            c["rejected_by_reason"][r.reason_code] = c["rejected_by_reason"].get(
                r.reason_code, 0) + 1
    for partner, day in staging.redelivered:
        if day in days:
            card(day, partner)["duplicates"] += 1
    gaps = [d for d in tables["discrepancy"].values() if d["kind"] == "control_total_gap"]
    for (day, partner), c in cards.items():
        mine = [g["detail"] for g in gaps
                if g["business_day"] == day and g["partner_id"] == partner]
        _add(tables, "partner_scorecard", (day, partner), {
            "received": c["valid"] + c["rejected"] + c["duplicates"], "valid": c["valid"],
            "rejected": c["rejected"], "rejected_by_reason": c["rejected_by_reason"],
            "duplicates": c["duplicates"], "late": c["late"],
            "missing": sum(g["missing_count"] for g in mine),
            "extra": sum(g["extra_count"] for g in mine)})
