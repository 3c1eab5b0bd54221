"""After any run: what partners were acknowledged for, against staging, rejects and warehouse."""

from __future__ import annotations

import argparse
import sys
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path
from typing import Any

import orjson
import psycopg

from adapters.database import scoped_engine
from schemas.days import SHANGHAI
from schemas.topics import events_topic, partner_of_topic
from warehouse.accounting import account_day

# The families whose events are each one fact row (others change these rows, or make rows of
# other tables); warehouse.accounting says where every family's events went.
FACT_OF_FAMILY = {
    "enrollment.created": "fact_enrollment",
    "completion.recorded": "fact_completion",
    "evaluation.recorded": "fact_evaluation",
    "certificate.issued": "fact_certificate",
}
SHOWN = 20  # examples printed per set; the counts are always complete

Offset = tuple[str, int, int]  # topic, partition, offset
EventKey = tuple[str, str]  # partner, event id


@dataclass(frozen=True, slots=True)
class Ack:
    """One message the broker acknowledged to a partner's producer."""

    topic: str
    partition: int
    offset: int
    key: str | None
    event_id: str | None  # None when the bytes hold no readable event id
    timestamp_ms: int = -1  # the broker's append time when the topic records it

    @classmethod
    def of(cls, topic: str, partition: int, offset: int, key: bytes | None, value: bytes,
           timestamp_ms: int = -1) -> Ack:
        return cls(topic, partition, offset, key.decode("utf-8", "replace") if key else None,
                   _event_id(value), timestamp_ms)

    @property
    def partner(self) -> str:
        return partner_of_topic(self.topic)

    @property
    def where(self) -> Offset:
        return (self.topic, self.partition, self.offset)

    def append_day(self) -> date | None:
        if self.timestamp_ms < 0:
            return None
        return datetime.fromtimestamp(self.timestamp_ms / 1000, SHANGHAI).date()


def _event_id(value: bytes) -> str | None:
    try:
        parsed = orjson.loads(value)
    except orjson.JSONDecodeError:
        return None
    event_id = parsed.get("id") if isinstance(parsed, dict) else None
    return event_id if isinstance(event_id, str) else None


def write_acks(path: Path, acks: Iterable[Ack]) -> None:
    with open(path, "wb") as out:
        for ack in acks:
            out.write(orjson.dumps([ack.topic, ack.partition, ack.offset, ack.key, ack.event_id,
                                    ack.timestamp_ms]) + b"\n")


def read_acks(path: Path) -> list[Ack]:
    with open(path, "rb") as lines:
        return [Ack(*orjson.loads(line)) for line in lines if line.strip()]


@dataclass(frozen=True, slots=True)
class RejectRow:
    where: Offset
    reason_code: str
    field_path: str
    message: str


@dataclass
class Observed:
    """What the run left behind, read from PostgreSQL for the partners under check."""

    staged: dict[EventKey, Offset] = field(default_factory=dict)
    staged_family: dict[EventKey, str] = field(default_factory=dict)
    redelivered: list[Offset] = field(default_factory=list)
    rejected: list[RejectRow] = field(default_factory=list)
    # (topic, partition) -> next offset landed; the furthest any group got.
    positions: dict[tuple[str, int], int] = field(default_factory=dict)
    loaded_days: set[date] = field(default_factory=set)
    staged_day: dict[EventKey, date] = field(default_factory=dict)
    quarantined: set[EventKey] = field(default_factory=set)
    # fact table -> every (partner, event id) row it holds, repeats included.
    facts: dict[str, list[EventKey]] = field(default_factory=dict)
    # Staged events of loaded days -> where the warehouse accounts for them (warehouse.accounting).
    outcomes: dict[EventKey, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Finding:
    """One comparison: the sets that should be empty, each named by what it holds."""

    check: str
    lost: tuple[str, ...] = ()
    duplicated: tuple[str, ...] = ()
    unexpected: tuple[str, ...] = ()

    @property
    def ok(self) -> bool:
        return not (self.lost or self.duplicated or self.unexpected)


@dataclass(frozen=True)
class Report:
    findings: tuple[Finding, ...]
    counts: Mapping[str, int]

    @property
    def ok(self) -> bool:
        return all(f.ok for f in self.findings) and self.counts.get("lag", 0) == 0

    def finding(self, check: str) -> Finding:
        return next(f for f in self.findings if f.check == check)

    def summary(self) -> dict[str, Any]:
        """Counts only: what a test records and the docs quote."""
        return {**self.counts, **{
            f"{f.check}.{kind}": len(getattr(f, kind)) for f in self.findings
            for kind in ("lost", "duplicated", "unexpected")}}

    def render(self) -> str:
        lines = ["  ".join(f"{k}={v}" for k, v in self.counts.items())]
        for f in self.findings:
            lines.append(f"{f.check:<10} lost {len(f.lost):>6}   duplicated {len(f.duplicated):>6}"
                         f"   unexpected {len(f.unexpected):>6}")
            for kind in ("lost", "duplicated", "unexpected"):
                items = getattr(f, kind)
                for item in items[:SHOWN]:
                    lines.append(f"    {kind}: {item}")
                if len(items) > SHOWN:
                    lines.append(f"    {kind}: ... {len(items) - SHOWN} more")
        lines.append("OK: nothing lost, duplicated or unexpected" if self.ok else "FAILED")
        return "\n".join(lines)


def expected_rejects(acks: Sequence[Ack], manifest: Mapping[str, Any]) -> dict[Offset, str]:
    """Acknowledged offsets the manifest says must be refused, with the reason code.

    The manifest names a refused event by id, or by message key when its bytes hold no id.
    """
    by_id = {(r["partner"], r["id"]): r["reason"] for r in manifest.get("rejected", ())
             if r.get("id") is not None}
    by_key = {(r["partner"], r["key"]): r["reason"] for r in manifest.get("rejected", ())
              if r.get("id") is None}
    expected: dict[Offset, str] = {}
    for ack in acks:
        reason = by_id.get((ack.partner, ack.event_id or "")) if ack.event_id else None
        reason = reason or by_key.get((ack.partner, ack.key or ""))
        if reason is not None:
            expected[ack.where] = reason
    return expected


def judge(acks: Sequence[Ack], manifest: Mapping[str, Any], seen: Observed, *,
          day: date | None = None) -> Report:
    """Compare acknowledged messages and the manifest with what the run left behind."""
    in_scope = [a for a in acks if day is None or a.append_day() in (None, day)]
    must_reject = expected_rejects(in_scope, manifest)
    must_land = {(a.partner, a.event_id) for a in in_scope
                 if a.where not in must_reject and a.event_id is not None}
    unreadable = [a for a in in_scope if a.where not in must_reject and a.event_id is None]
    never_sent = _unacknowledged_rejections(acks, manifest) if day is None else []
    findings = [
        _staging(must_land, seen, unreadable),
        _offsets(in_scope, seen),
        _rejects(must_reject, seen, never_sent),
        _manifest(manifest, seen) if day is None else Finding("manifest"),
        _warehouse(seen),
    ]
    acked_end: dict[tuple[str, int], int] = {}
    for ack in acks:
        tp = (ack.topic, ack.partition)
        acked_end[tp] = max(acked_end.get(tp, 0), ack.offset + 1)
    lag = sum(max(0, end - seen.positions.get(tp, 0)) for tp, end in acked_end.items())
    acked_offsets = {a.where for a in acks}
    counts = {
        "acknowledged": len(in_scope),
        "must_land": len(must_land),
        "must_reject": len(must_reject),
        "staged": len(seen.staged),
        "redelivered": len(seen.redelivered),
        "rejected": len(seen.rejected),
        # Written by a producer retry whose acknowledgement never arrived: harmless, counted.
        "unacknowledged_copies": sum(1 for where in seen.redelivered
                                     if where not in acked_offsets),
        "lag": lag,
    }
    return Report(tuple(findings), counts)


def _staging(must_land: set[EventKey], seen: Observed, unreadable: list[Ack]) -> Finding:
    staged = set(seen.staged)
    return Finding(
        "staging",
        lost=_names(must_land - staged) + tuple(f"{a.where}: acknowledged, not an event and "
                                                "not expected to be refused" for a in unreadable),
        # staging's primary key forbids a second row per event; a repeat shows in the offsets.
        unexpected=_names(staged - must_land),
    )


def _offsets(acks: Sequence[Ack], seen: Observed) -> Finding:
    """Every acknowledged message is accounted for exactly once: landed, a repeat, or refused."""
    uses = Counter([*seen.staged.values(), *seen.redelivered,
                    *(r.where for r in seen.rejected)])
    acked = {a.where for a in acks}
    return Finding(
        "offsets",
        lost=_names(w for w in acked if uses[w] == 0),
        duplicated=_names(w for w in acked if uses[w] > 1),
    )


def _unacknowledged_rejections(acks: Sequence[Ack], manifest: Mapping[str, Any]) -> list[str]:
    """Messages the manifest says were sent to be refused, which no acknowledgement covers."""
    ids = {(a.partner, a.event_id) for a in acks}
    keys = {(a.partner, a.key) for a in acks}
    return [f"{r['partner']}/{r.get('id') or r['key']}: meant to be refused as {r['reason']!r}, "
            "never acknowledged" for r in manifest.get("rejected", ())
            if ((r["partner"], r["id"]) not in ids if r.get("id") is not None
                else (r["partner"], r["key"]) not in keys)]


def _rejects(must_reject: Mapping[Offset, str], seen: Observed,
             never_sent: Sequence[str] = ()) -> Finding:
    got = {r.where: r for r in seen.rejected}
    wrong = [f"{w}: refused as {r.reason_code!r}, expected "
             f"{must_reject.get(w, 'to land')!r}" for w, r in sorted(got.items())
             if must_reject.get(w) != r.reason_code]
    reasonless = [f"{r.where}: refused without a reason" for r in seen.rejected
                  if not (r.reason_code and r.field_path and r.message)]
    return Finding(
        "rejects",
        lost=_names(w for w in must_reject if w not in got) + tuple(never_sent),
        duplicated=_names(w for w, n in Counter(r.where for r in seen.rejected).items() if n > 1),
        unexpected=tuple(wrong + reasonless),
    )


def _manifest(manifest: Mapping[str, Any], seen: Observed) -> Finding:
    """The simulator's ground truth per partner and family, whatever was acknowledged."""
    want = Counter({(p, f): n for p, by_family in manifest.get("landed", {}).items()
                    for f, n in by_family.items()})
    got = Counter((p, seen.staged_family[(p, e)]) for p, e in seen.staged)
    return Finding(
        "manifest",
        lost=tuple(f"{p}/{f}: {want[(p, f)] - got[(p, f)]} fewer than sent"
                   for p, f in sorted(want) if got[(p, f)] < want[(p, f)]),
        unexpected=tuple(f"{p}/{f}: {got[(p, f)] - want[(p, f)]} more than sent"
                         for p, f in sorted(got) if got[(p, f)] > want[(p, f)]),
    )


def _warehouse(seen: Observed) -> Finding:
    """Each staged event of a loaded day is reflected in the warehouse or named with a reason
    (the accounting identity); a fact row stands for one staged event of its family, once."""
    if not seen.loaded_days:
        return Finding("warehouse")
    loaded = [k for k, d in seen.staged_day.items() if d in seen.loaded_days]
    lost = [k for k in loaded if seen.outcomes.get(k, "unaccounted") == "unaccounted"]
    duplicated: list[str] = []
    unexpected: list[EventKey] = []
    for family, table in FACT_OF_FAMILY.items():
        rows = Counter(seen.facts.get(table, ()))
        duplicated += [f"{table}: {k}" for k, n in rows.items() if n > 1]
        unexpected += [k for k in rows if seen.staged_family.get(k) != family]
    return Finding("warehouse", lost=_names(lost), duplicated=tuple(sorted(duplicated)),
                   unexpected=_names(unexpected))


def _names(items: Iterable[object]) -> tuple[str, ...]:
    return tuple(sorted(str(i) for i in items))


# -- reading PostgreSQL --------------------------------------------------------------------

def observe(database_url: str, partners: Iterable[str], day: date | None = None) -> Observed:
    """What staging and the warehouse hold for these partners (on one append day if given)."""
    partners = sorted(set(partners))
    on_day = "AND append_day = %(day)s" if day else ""
    params = {"p": partners, "day": day}
    seen = Observed()
    with psycopg.connect(database_url) as conn:
        for p, e, fam, t, part, off, d in conn.execute(
                "SELECT partner_id, event_id, family, topic, kafka_partition, kafka_offset, "
                f"append_day FROM staging.events WHERE partner_id = ANY(%(p)s) {on_day}", params):
            seen.staged[(p, e)] = (t, part, off)
            seen.staged_family[(p, e)] = fam
            seen.staged_day[(p, e)] = d
        seen.redelivered = [(t, part, off) for t, part, off in conn.execute(
            "SELECT topic, kafka_partition, kafka_offset FROM staging.redeliveries "
            f"WHERE partner_id = ANY(%(p)s) {on_day}", params)]
        seen.rejected = [RejectRow((t, part, off), code, path, msg)
                         for t, part, off, code, path, msg in conn.execute(
            "SELECT topic, kafka_partition, kafka_offset, reason_code, field_path, message "
            f"FROM staging.rejected WHERE partner_id = ANY(%(p)s) {on_day}", params)]
        seen.positions = {(t, part): off for t, part, off in conn.execute(
            "SELECT topic, partition, max(next_offset) FROM staging.consumer_offsets "
            "WHERE topic = ANY(%(t)s) GROUP BY 1, 2", {"t": [events_topic(p) for p in partners]})}
        seen.loaded_days = {d for (d,) in conn.execute(
            "SELECT DISTINCT business_day FROM ops.load_runs")}
        if seen.loaded_days:
            seen.quarantined = {(p, e) for p, e in conn.execute(
                "SELECT partner_id, event_id FROM ops.quarantine "
                "WHERE partner_id = ANY(%(p)s)", params)}
            for table in FACT_OF_FAMILY.values():
                seen.facts[table] = [(p, e) for p, e in conn.execute(
                    f"SELECT partner_id, event_id FROM warehouse.{table} "
                    "WHERE partner_id = ANY(%(p)s)", params)]
    if seen.loaded_days:
        checked = set(partners)
        with scoped_engine(database_url) as engine, engine.connect() as sa_conn:
            for loaded in sorted(seen.loaded_days if day is None else {day} & seen.loaded_days):
                for partner, event_id, _, outcome in account_day(sa_conn, loaded).events():
                    if partner in checked:
                        seen.outcomes[(partner, event_id)] = outcome
    return seen


def verify(database_url: str, manifest: Mapping[str, Any], acks: Sequence[Ack], *,
           day: date | None = None) -> Report:
    partners = {a.partner for a in acks} | set(manifest.get("landed", {}))
    return judge(acks, manifest, observe(database_url, partners, day), day=day)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m quality.verify",
        description="Compare what partners were acknowledged for with staging, rejects and "
                    "warehouse; print what was lost, duplicated or unexpected.")
    parser.add_argument("--manifest", type=Path, default=None,
                        help="the simulator's manifest (JSON)")
    parser.add_argument("--acks", type=Path, default=None,
                        help="producer acknowledgements, one JSON array a line "
                             "(default: MANIFEST with the suffix .acks.jsonl)")
    parser.add_argument("--database-url", required=True)
    parser.add_argument("--day", type=date.fromisoformat, default=None,
                        help="only the messages appended on this business day (YYYY-MM-DD)")
    parser.add_argument("--sync", action="store_true",
                        help="also check every subscriber's sync feed against the outbox (lost, "
                             "duplicated, out of order, unexpected changes); the broker is "
                             "reached as the relay is (KAFKA_BOOTSTRAP_SERVERS, SKILLSYNC_KAFKA_*)")
    args = parser.parse_args(argv)
    if args.manifest is None and not args.sync:
        parser.error("give --manifest, --sync or both")
    synced = True
    if args.sync:
        from adapters.settings import Settings
        from quality.sync_check import check_sync, render

        kafka = Settings.load().kafka
        findings = check_sync(args.database_url, {"bootstrap_servers": kafka.servers,
                                                  **kafka.kafka_security()})
        print(render(findings))
        synced = all(f.ok for f in findings)
        if args.manifest is None:
            return 0 if synced else 1
    acks_path = args.acks or args.manifest.with_suffix(".acks.jsonl")
    for what, path in (("--manifest", args.manifest), ("--acks", acks_path)):
        if not path.is_file():
            print(f"quality.verify: {what}: no file at {path}", file=sys.stderr)
            return 2
    manifest = orjson.loads(args.manifest.read_bytes())
    report = verify(args.database_url, manifest, read_acks(acks_path), day=args.day)
    print(report.render())
    return 0 if report.ok and synced else 1


if __name__ == "__main__":
    raise SystemExit(main())
