"""The sync feed in the nightly report: per subscriber its last version, lag and the day's
changes by kind (a figures function and a small HTML section, kept apart from the report)."""

from __future__ import annotations

import html
from datetime import date
from typing import Any

from sqlalchemy import Connection, text


def feed_figures(conn: Connection, day: date) -> list[dict[str, Any]]:
    """Per subscriber: its last change version, how far the relay is behind it, and the changes
    the day's loads wrote, by kind and operation."""
    subscribers = conn.execute(text(
        "SELECT s.subscriber, s.last_version, coalesce(r.relayed_version, 0) AS relayed,"
        " r.relayed_at FROM warehouse.feed_subscriber s"
        " LEFT JOIN warehouse.feed_relay r USING (subscriber)"
        " WHERE s.slices <> '{}' OR s.last_version > 0 ORDER BY 1")).mappings().all()
    changes: dict[str, dict[str, int]] = {}
    for subscriber, kind, operation, n in conn.execute(text(
            "SELECT o.subscriber, o.kind, o.operation, count(*) FROM warehouse.feed_outbox o"
            " WHERE o.run_id IN (SELECT run_id FROM warehouse.load_runs"
            "                    WHERE business_day = :day)"
            " GROUP BY 1, 2, 3 ORDER BY 1, 2, 3"), {"day": day}):
        changes.setdefault(subscriber, {})[f"{kind} {operation}s"] = int(n)
    return [{"subscriber": s["subscriber"], "last_version": int(s["last_version"]),
             "lag": int(s["last_version"]) - int(s["relayed"]),
             "relayed_at": s["relayed_at"].isoformat() if s["relayed_at"] else None,
             "changes": changes.get(s["subscriber"], {})} for s in subscribers]


def feed_section_html(feeds: list[dict[str, Any]]) -> str:
    rows = "".join(
        f"<tr><td>{html.escape(f['subscriber'])}</td><td class=\"num\">{f['last_version']:,}</td>"
        f"<td class=\"num\">{f['lag']:,}</td><td>"
        + html.escape(", ".join(f"{k}: {n:,}" for k, n in f["changes"].items()) or "none")
        + "</td></tr>" for f in feeds)
    return ('<section id="feeds"><h2>Sync feeds</h2><table><thead><tr><th>subscriber</th>'
            "<th>last version</th><th>lag</th><th>the day's changes</th></tr></thead>"
            f"<tbody>{rows}</tbody></table></section>")
