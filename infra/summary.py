"""The demo's closing summary: what landed and what the warehouse holds, against ground truth."""

from __future__ import annotations

from collections import Counter
from datetime import date
from typing import Any

import psycopg


def _scalar(conn: psycopg.Connection, sql: str, params: tuple[object, ...] = ()) -> Any:
    row = conn.execute(sql, params).fetchone()
    return row[0] if row else None


def _check(ok: bool) -> str:
    return "ok" if ok else "MISMATCH"


def print_summary(database_url: str, business_day: date, manifest: dict[str, Any]) -> bool:
    """Print the summary; True when every count equals the simulator's ground truth."""
    url = database_url.replace("+psycopg", "")
    with psycopg.connect(url) as conn:
        staged = Counter({(p, f): n for p, f, n in conn.execute(
            "SELECT partner_id, family, count(*) FROM staging.events "
            "WHERE append_day = %s GROUP BY 1, 2", (business_day,))})
        rejected: Counter[str] = Counter(dict(conn.execute(
            "SELECT reason_code, count(*) FROM staging.rejected WHERE append_day = %s "
            "GROUP BY 1", (business_day,)).fetchall()))
        redelivered = _scalar(conn, "SELECT count(*) FROM staging.redeliveries "
                                    "WHERE append_day = %s", (business_day,))
        # A certificate number claimed by two people is one conflict, whatever rows record it;
        # any other finding is one per day, partner and reference, as the manifest counts them.
        found_kinds: Counter[str] = Counter(dict(conn.execute(
            "SELECT kind, count(DISTINCT CASE WHEN kind = 'certificate_number_conflict' "
            "THEN reference ELSE concat_ws('|', business_day, partner_id, reference) END) "
            "FROM warehouse.discrepancy GROUP BY 1"
        ).fetchall()))
        subsidy = [n for (n,) in conn.execute(
            "SELECT certificate_number FROM warehouse.subsidy_list ORDER BY 1")]
        subsidy_yuan = _scalar(conn, "SELECT coalesce(sum(amount_yuan), 0) "
                                     "FROM warehouse.subsidy_list")
        accounted = conn.execute(
            "SELECT coalesce(sum(staged), 0), coalesce(sum(reflected), 0),"
            " coalesce(sum(quarantined + flagged), 0), coalesce(sum(unaccounted), 0)"
            " FROM ops.accounting WHERE business_day = %s", (business_day,)).fetchone()
        facts = {table: _scalar(conn, f"SELECT count(*) FROM warehouse.{table}")
                 for (table,) in conn.execute(
                "SELECT table_name FROM information_schema.tables "
                "WHERE table_schema = 'warehouse' AND table_name LIKE 'fact%' ORDER BY 1")}
    expected_landed = Counter({(p, f): n for p, by_family in manifest["landed"].items()
                               for f, n in by_family.items()})
    expected_rejected = Counter(r["reason"] for r in manifest["rejected"])
    all_ok = True

    print(f"\n=== skillsync nightly summary for business day {business_day} ===")
    print(f"{'partner':<12} {'landed':>8} {'expected':>9}")
    for partner in sorted({p for p, _ in expected_landed | staged}):
        got = sum(n for (p, _), n in staged.items() if p == partner)
        want = sum(n for (p, _), n in expected_landed.items() if p == partner)
        all_ok &= got == want
        print(f"{partner:<12} {got:>8} {want:>9}  {_check(got == want)}")
    total_got, total_want = sum(staged.values()), sum(expected_landed.values())
    print(f"{'total':<12} {total_got:>8} {total_want:>9}  {_check(total_got == total_want)}")
    print(f"\nrejected {sum(rejected.values())} (expected {sum(expected_rejected.values())}):")
    for reason in sorted(set(rejected) | set(expected_rejected)):
        ok = rejected[reason] == expected_rejected[reason]
        all_ok &= ok
        print(f"  {reason:<32} {rejected[reason]:>5} {expected_rejected[reason]:>5}  {_check(ok)}")
    duplicates = len(manifest.get("duplicates", []))
    print(f"\nre-sent events landed once: {redelivered} (expected {duplicates})"
          f"  {_check(redelivered == duplicates)}")
    all_ok &= redelivered == duplicates
    expected_kinds = Counter(d["kind"] for d in manifest["discrepancies"])
    print("\ndiscrepancies found by the night (expected from the injected faults):")
    for kind in sorted(set(found_kinds) | set(expected_kinds)):
        ok = found_kinds[kind] == expected_kinds[kind]
        all_ok &= ok
        print(f"  {kind:<40} {found_kinds[kind]:>5} {expected_kinds[kind]:>5}  {_check(ok)}")
    subsidy_ok = subsidy == sorted(manifest["subsidy_eligible_certificates"])
    all_ok &= subsidy_ok
    print(f"\nsubsidy-eligible certificates: {len(subsidy)} (expected "
          f"{len(manifest['subsidy_eligible_certificates'])}), {subsidy_yuan:,} yuan"
          f"  {_check(subsidy_ok)}")
    staged_n, reflected_n, named_n, unaccounted_n = accounted or (0, 0, 0, 0)
    balanced = staged_n == sum(staged.values()) and unaccounted_n == 0
    all_ok &= balanced
    print(f"\nevery landed event accounted for: {staged_n} staged = {reflected_n} in the "
          f"warehouse + {named_n} named by a discrepancy or quarantine  {_check(balanced)}")
    print("\nwarehouse facts: " + ", ".join(f"{t}={n}" for t, n in facts.items()))
    print(f"\nresult: {'every count matches the ground truth' if all_ok else 'MISMATCHES above'}")
    return all_ok
