"""One reader of a business day's warehouse figures: the report, the DAG's summary and the
portal's operators read the same numbers."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date, timedelta
from typing import Any

from sqlalchemy import Connection, Engine

from warehouse.labels import SEVERITIES
from warehouse.sql import statement

Figures = dict[str, Any]
SCORE_FIELDS = ("received", "valid", "rejected", "duplicates", "late", "missing", "extra")
# The page lists the most severe discrepancies first; the counts always cover all of them.
LISTED_DISCREPANCIES = 200
# Lists inside a discrepancy's detail (missing or extra event ids) are cut to this many.
LISTED_DETAIL_ITEMS = 10


def day_figures(engine: Engine, day: date, *, trend_days: int = 14) -> Figures:
    """Everything a day's report shows, read from the warehouse by business day only.

    Every query is bounded by the day or the trend window, so its cost follows them, not
    history. Person pseudonyms are never selected.
    """
    if trend_days < 1:
        raise ValueError("trend_days must be >= 1")
    params = {"day": day, "first": day - timedelta(days=trend_days - 1)}
    with engine.connect() as conn:
        scorecards = _rows(conn, "scorecards", params)
        discrepancies = _discrepancies(conn, params)
        certificates = _rows(conn, "certificates", params)
        subsidy_by_level = _rows(conn, "subsidy_by_level", params)
        not_eligible = {r["reason"]: r["certificates"]
                        for r in _rows(conn, "not_eligible", params)}
        trend = _rows(conn, "trend", params)
        accounting = _rows(conn, "accounting", params)
        feeds = _feeds(conn, params)
        loaded = conn.execute(statement("report/loaded"), params).scalar_one()
    for row in trend:
        row["day"] = row["day"].isoformat()
    totals = {f: sum(card[f] for card in scorecards) for f in SCORE_FIELDS}
    return {
        "business_day": day.isoformat(),
        "loaded": bool(loaded),
        "headline": {
            **totals,
            "discrepancies": sum(d["count"] for d in discrepancies["by_kind"]),
            "discrepancy_errors": sum(d["count"] for d in discrepancies["by_kind"]
                                      if d["severity"] == "error"),
            "certificates_issued": sum(c["in_force"] + c["revoked"] for c in certificates),
            "subsidy_eligible": sum(s["certificates"] for s in subsidy_by_level),
            "subsidy_amount_yuan": sum(s["amount_yuan"] for s in subsidy_by_level),
            "unaccounted": sum(a["unaccounted"] for a in accounting),
        },
        "scorecards": scorecards,
        "accounting": accounting,
        "discrepancies": discrepancies,
        "certificates": certificates,
        "subsidies": {"eligible_by_level": subsidy_by_level,
                      "not_eligible_by_reason": not_eligible},
        "trend": {"days": trend_days, "series": trend},
        "feeds": feeds,
    }


def _rows(conn: Connection, name: str, params: Mapping[str, object]) -> list[dict[str, Any]]:
    return [dict(row) for row in conn.execute(statement(f"report/{name}"), params).mappings()]


def _discrepancies(conn: Connection, params: Mapping[str, object]) -> dict[str, Any]:
    by_kind = _rows(conn, "discrepancy_kinds", params)
    listed = _rows(conn, "discrepancy_list", {**params, "severities": list(SEVERITIES),
                                              "limit": LISTED_DISCREPANCIES})
    for item in listed:
        item["detail"] = {k: (v[:LISTED_DETAIL_ITEMS] if isinstance(v, list) else v)
                          for k, v in sorted(item["detail"].items())}
    return {"by_kind": by_kind, "listed": listed,
            "unlisted": max(0, sum(d["count"] for d in by_kind) - len(listed))}


def _feeds(conn: Connection, params: Mapping[str, object]) -> list[dict[str, Any]]:
    """Per subscriber: its last change version, how far the relay is behind it, when it last
    published, and the changes the day's loads wrote, by kind and operation."""
    changes: dict[str, dict[str, int]] = {}
    for row in _rows(conn, "feed_changes", params):
        changes.setdefault(row["subscriber"], {})[f"{row['kind']} {row['operation']}s"] = (
            row["changes"])
    return [{**feed, "relayed_at": feed["relayed_at"].isoformat() if feed["relayed_at"] else None,
             "changes": changes.get(feed["subscriber"], {})}
            for feed in _rows(conn, "feeds", params)]
