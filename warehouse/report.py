"""The nightly report: a business day's warehouse figures as JSON and an offline HTML page."""

from __future__ import annotations

import html
import json
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, Engine, text

from warehouse.db import scoped_engine
from warehouse.feed_report import feed_figures, feed_section_html
from warehouse.settings import NightlySettings

# The page lists the most severe discrepancies first; the counts always cover all of them.
LISTED_DISCREPANCIES = 200
# Lists inside a discrepancy's detail (missing or extra event ids) are cut to this many.
LISTED_DETAIL_ITEMS = 10
SEVERITIES = ("error", "warning", "info")

Figures = dict[str, Any]


@dataclass(frozen=True)
class ReportFiles:
    html: Path
    json: Path


def write_day_report(day: date, settings: NightlySettings | None = None) -> ReportFiles:
    """The DAG's report step: read the day's figures and write both files."""
    s = settings or NightlySettings()
    with scoped_engine(s.database_url.get_secret_value()) as engine:
        figures = day_figures(engine, day, trend_days=s.report_trend_days)
    return write_report(figures, s.report_dir)


def write_report(figures: Figures, root: Path) -> ReportFiles:
    """`<root>/<day>/index.html` and `report.json`; a rerun of the day rewrites them identically."""
    folder = root / figures["business_day"]
    folder.mkdir(parents=True, exist_ok=True)
    files = ReportFiles(folder / "index.html", folder / "report.json")
    files.json.write_text(json.dumps(figures, ensure_ascii=False, indent=2, sort_keys=True) + "\n",
                          encoding="utf-8")
    files.html.write_text(render_html(figures), encoding="utf-8")
    return files


# -- figures ------------------------------------------------------------------------------

SCORE_FIELDS = ("received", "valid", "rejected", "duplicates", "late", "missing", "extra")


def day_figures(engine: Engine, day: date, *, trend_days: int = 14) -> Figures:
    """Everything the report shows, read from warehouse tables by business day only.

    Every query is bounded by the day or the trend window, so its cost follows them, not
    history. Person pseudonyms are never selected.
    """
    if trend_days < 1:
        raise ValueError("trend_days must be >= 1")
    params = {"day": day, "first": day - timedelta(days=trend_days - 1)}
    with engine.connect() as conn:
        scorecards = _scorecards(conn, params)
        discrepancies = _discrepancies(conn, params)
        certificates = _rows(conn, """
            SELECT c.occupation_code, o.name_en AS occupation, c.certificate_type, c.level,
                   count(*) FILTER (WHERE c.status = 'in_force')::int AS in_force,
                   count(*) FILTER (WHERE c.status = 'revoked')::int AS revoked
            FROM warehouse.fact_certificate c
            LEFT JOIN warehouse.dim_occupation o ON o.code = c.occupation_code
            WHERE c.business_day = :day
            GROUP BY 1, 2, 3, 4 ORDER BY 1 NULLS LAST, 3, 4""", params)
        subsidy_by_level = _rows(conn, """
            SELECT level, certificate_type, count(*)::int AS certificates,
                   sum(amount_yuan)::bigint AS amount_yuan
            FROM warehouse.fact_subsidy_eligibility
            WHERE business_day = :day AND eligible
            GROUP BY 1, 2 ORDER BY 2, 1 NULLS LAST""", params)
        not_eligible: dict[str, int] = dict(conn.execute(text("""
            SELECT reason, count(*)::int FROM warehouse.fact_subsidy_eligibility
            WHERE business_day = :day AND NOT eligible GROUP BY 1 ORDER BY 1"""), params).all())
        trend = _trend(conn, params)
        feeds = feed_figures(conn, day)
        loaded = conn.execute(text(
            "SELECT EXISTS (SELECT 1 FROM warehouse.load_runs WHERE business_day = :day)"),
            params).scalar_one()
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
        },
        "scorecards": scorecards,
        "discrepancies": discrepancies,
        "certificates": certificates,
        "subsidies": {"eligible_by_level": subsidy_by_level,
                      "not_eligible_by_reason": not_eligible},
        "trend": {"days": trend_days, "series": trend},
        "feeds": feeds,
    }


def _rows(conn: Connection, sql: str, params: Mapping[str, object]) -> list[dict[str, Any]]:
    return [dict(row) for row in conn.execute(text(sql), params).mappings()]


def _scorecards(conn: Connection, params: Mapping[str, object]) -> list[dict[str, Any]]:
    return _rows(conn, f"""
        SELECT s.partner_id, p.name, p.role, {", ".join(f"s.{f}" for f in SCORE_FIELDS)},
               s.rejected_by_reason
        FROM warehouse.partner_scorecard s
        LEFT JOIN warehouse.dim_partner p USING (partner_id)
        WHERE s.business_day = :day ORDER BY s.partner_id""", params)


def _discrepancies(conn: Connection, params: Mapping[str, object]) -> dict[str, Any]:
    by_kind = _rows(conn, """
        SELECT kind, severity, count(*)::int AS count FROM warehouse.discrepancy
        WHERE business_day = :day GROUP BY 1, 2 ORDER BY 1, 2""", params)
    listed = _rows(conn, """
        SELECT severity, kind, reference, partner_id, detail FROM warehouse.discrepancy
        WHERE business_day = :day
        ORDER BY array_position(CAST(:severities AS text[]), severity), kind, reference
        LIMIT :limit""", {**params, "severities": list(SEVERITIES),
                          "limit": LISTED_DISCREPANCIES})
    for item in listed:
        item["detail"] = {k: (v[:LISTED_DETAIL_ITEMS] if isinstance(v, list) else v)
                          for k, v in sorted(item["detail"].items())}
    return {"by_kind": by_kind, "listed": listed,
            "unlisted": max(0, sum(d["count"] for d in by_kind) - len(listed))}


def _trend(conn: Connection, params: Mapping[str, object]) -> list[dict[str, Any]]:
    rows = _rows(conn, """
        SELECT d::date AS day,
               EXISTS (SELECT 1 FROM warehouse.load_runs r WHERE r.business_day = d::date)
                   AS loaded,
               coalesce(s.received, 0)::int AS received, coalesce(s.valid, 0)::int AS valid,
               coalesce(s.rejected, 0)::int AS rejected,
               coalesce(s.duplicates, 0)::int AS duplicates,
               (SELECT count(*) FROM warehouse.fact_enrollment f
                WHERE f.business_day = d::date)::int AS enrollments,
               (SELECT count(*) FROM warehouse.fact_certificate f
                WHERE f.business_day = d::date)::int AS certificates,
               (SELECT count(*) FROM warehouse.discrepancy g
                WHERE g.business_day = d::date AND g.severity = 'error')::int
                   AS discrepancy_errors,
               (SELECT coalesce(sum(amount_yuan), 0) FROM warehouse.fact_subsidy_eligibility e
                WHERE e.business_day = d::date AND e.eligible)::bigint AS subsidy_amount_yuan
        FROM generate_series(CAST(:first AS date), CAST(:day AS date), interval '1 day') AS d
        LEFT JOIN LATERAL (
            SELECT sum(received) AS received, sum(valid) AS valid, sum(rejected) AS rejected,
                   sum(duplicates) AS duplicates
            FROM warehouse.partner_scorecard c WHERE c.business_day = d::date) s ON true
        ORDER BY d""", params)
    for row in rows:
        row["day"] = row["day"].isoformat()
    return rows


# -- HTML and SVG -------------------------------------------------------------------------

PALETTE = ("#2f6db5", "#d9822b", "#4c9a52", "#b8433a", "#7a5aa6", "#8c6d46", "#c75fa0",
           "#6b7c8f")
SEVERITY_COLOURS = {"error": "#b8433a", "warning": "#d9822b", "info": "#6b7c8f"}
SCORE_COLOURS = {"valid": "#4c9a52", "rejected": "#b8433a", "duplicates": "#d9822b"}
LEVELS = (1, 2, 3, 4, 5)
LEVEL_COLOURS = {"level 1": "#7a5aa6", "level 2": "#2f6db5", "level 3": "#4c9a52",
                 "level 4": "#d9822b", "level 5": "#b8433a", "no level": "#6b7c8f"}

Bar = tuple[str, Sequence[tuple[str, float]]]


def _e(value: object) -> str:
    return html.escape(str(value), quote=True)


def _label(value: str, width: int = 28) -> str:
    return value if len(value) <= width else value[:width - 1] + "…"


def bar_chart(chart_id: str, title: str, bars: Sequence[Bar],
              colours: Mapping[str, str] | None = None, unit: str = "") -> str:
    """Horizontal bars, each stacked by series; one <rect class="mark"> per non-zero value."""
    # Series keep the order of `colours` (a legend reads level 1 before level 2), then appear.
    present = dict.fromkeys(name for _, parts in bars for name, _ in parts)
    series = [n for n in dict.fromkeys([*(colours or {}), *present]) if n in present]
    colour = {name: (colours or {}).get(name, PALETTE[i % len(PALETTE)])
              for i, name in enumerate(series)}
    left, plot, row, top = 210, 420, 24, 28
    height = top + max(1, len(bars)) * row + 34
    largest = max((sum(v for _, v in parts) for _, parts in bars), default=0) or 1
    out = [f'<svg class="chart" id="{_e(chart_id)}" role="img" viewBox="0 0 {left + plot + 90}'
           f' {height}" width="{left + plot + 90}" height="{height}"'
           f' xmlns="http://www.w3.org/2000/svg"><title>{_e(title)}</title>',
           _caption(title)]
    if not bars:
        out.append(f'<text class="empty" x="{left}" y="{top + 16}">nothing to show</text>')
    for index, (label, parts) in enumerate(bars):
        y = top + index * row
        out.append(f'<text class="axis" x="{left - 8}" y="{y + 15}" text-anchor="end">'
                   f'<title>{_e(label)}</title>{_e(_label(label))}</text>')
        x = float(left)
        for name, value in parts:
            if value <= 0:
                continue
            width = max(1.0, value / largest * plot)
            out.append(f'<rect class="mark" x="{x:.1f}" y="{y + 3}" width="{width:.1f}"'
                       f' height="{row - 7}" fill="{colour[name]}" data-label="{_e(label)}"'
                       f' data-series="{_e(name)}" data-value="{value:g}">'
                       f'<title>{_e(label)} · {_e(name)}: {value:,.0f}{unit}</title></rect>')
            x += width
        total = sum(v for _, v in parts)
        out.append(f'<text class="value" x="{x + 5:.1f}" y="{y + 15}">{total:,.0f}{unit}</text>')
    out.append(_legend(colour, left, height - 12) if len(series) > 1 else "")
    out.append("</svg>")
    return "".join(out)


def line_chart(chart_id: str, title: str, days: Sequence[str],
               series: Mapping[str, Sequence[float]], unit: str = "") -> str:
    """One line per series over the days, a <circle class="mark"> per day and series."""
    left, plot_w, plot_h, top = 90, 600, 170, 36
    width, height = left + plot_w + 30, top + plot_h + 64
    largest = max((v for values in series.values() for v in values), default=0) or 1
    step = plot_w / max(1, len(days) - 1)

    def at(i: int, v: float) -> tuple[float, float]:
        return left + i * step, top + plot_h - v / largest * plot_h

    out = [f'<svg class="chart" id="{_e(chart_id)}" role="img" viewBox="0 0 {width} {height}"'
           f' width="{width}" height="{height}" xmlns="http://www.w3.org/2000/svg">'
           f'<title>{_e(title)}</title>', _caption(title),
           f'<line class="grid" x1="{left}" y1="{top + plot_h}" x2="{left + plot_w}"'
           f' y2="{top + plot_h}"/>',
           f'<text class="axis" x="{left - 6}" y="{top + 4}" text-anchor="end">'
           f'{largest:,.0f}</text>',
           f'<text class="axis" x="{left - 6}" y="{top + plot_h}" text-anchor="end">0</text>']
    for i, day in enumerate(days):
        if i % max(1, len(days) // 7) == 0 or i == len(days) - 1:
            x, _ = at(i, 0)
            out.append(f'<text class="axis" x="{x:.1f}" y="{top + plot_h + 16}"'
                       f' text-anchor="middle">{_e(day[5:])}</text>')
    colour = {name: PALETTE[i % len(PALETTE)] for i, name in enumerate(series)}
    for name, values in series.items():
        points = " ".join(f"{x:.1f},{y:.1f}" for x, y in (at(i, v) for i, v in enumerate(values)))
        out.append(f'<polyline class="line" fill="none" stroke="{colour[name]}"'
                   f' stroke-width="2" points="{points}"/>')
        for i, value in enumerate(values):
            x, y = at(i, value)
            out.append(f'<circle class="mark" cx="{x:.1f}" cy="{y:.1f}" r="3.5"'
                       f' fill="{colour[name]}" data-label="{_e(days[i])}"'
                       f' data-series="{_e(name)}" data-value="{value:g}">'
                       f'<title>{_e(days[i])} · {_e(name)}: {value:,.0f}{unit}</title></circle>')
    out.append(_legend(colour, left, height - 10))
    out.append("</svg>")
    return "".join(out)


def _caption(title: str) -> str:
    return f'<text class="caption" x="4" y="16">{_e(title)}</text>'


def _legend(colour: Mapping[str, str], x: float, y: float) -> str:
    out = []
    for name, fill in colour.items():
        out.append(f'<rect class="key" x="{x:.0f}" y="{y - 9:.0f}" width="10" height="10"'
                   f' fill="{fill}"/><text class="legend" x="{x + 14:.0f}" y="{y:.0f}">'
                   f'{_e(name)}</text>')
        x += 24 + 7 * len(name)
    return "".join(out)


def _table(headers: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    head = "".join(f"<th>{_e(h)}</th>" for h in headers)
    body = "".join("<tr>" + "".join(
        f'<td class="num">{v:,}</td>' if isinstance(v, int) else f"<td>{_e(v)}</td>"
        for v in row) + "</tr>" for row in rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _level(level: int | None) -> str:
    return f"level {level}" if level is not None else "no level"


def _occupation(row: Mapping[str, Any]) -> str:
    if row["occupation_code"] is None:
        return str(row["certificate_type"])
    return f"{row['occupation_code']} {row['occupation'] or ''}".strip()


def render_html(figures: Figures) -> str:
    """A self-contained page: inline CSS and SVG, no script and nothing fetched."""
    day = figures["business_day"]
    head = figures["headline"]
    cards = figures["scorecards"]
    disc = figures["discrepancies"]
    certs = figures["certificates"]
    subsidies = figures["subsidies"]
    trend = figures["trend"]["series"]

    headline = "".join(
        f'<div class="figure"><span class="n" data-figure="{key}">{head[key]:,}</span>'
        f'<span class="k">{_e(label)}</span></div>'
        for key, label in (("received", "received"), ("valid", "valid"),
                           ("rejected", "rejected"), ("duplicates", "duplicates"),
                           ("late", "late"), ("missing", "missing"),
                           ("discrepancy_errors", "discrepancy errors"),
                           ("certificates_issued", "certificates"),
                           ("subsidy_eligible", "subsidy-eligible"),
                           ("subsidy_amount_yuan", "subsidy yuan")))

    reasons: dict[str, int] = {}
    for card in cards:
        for reason, n in card["rejected_by_reason"].items():
            reasons[reason] = reasons.get(reason, 0) + n
    kinds: dict[str, dict[str, int]] = {}
    for item in disc["by_kind"]:
        kinds.setdefault(item["kind"], {})[item["severity"]] = item["count"]
    by_occupation: dict[str, list[tuple[str, float]]] = {}
    for row in certs:
        by_occupation.setdefault(_occupation(row), []).append(
            (_level(row["level"]), row["in_force"] + row["revoked"]))
    days = [t["day"] for t in trend]

    charts = {
        "scorecards": bar_chart(
            "chart-scorecards", "Events received per partner",
            [(c["partner_id"], [(k, c[k]) for k in ("valid", "rejected", "duplicates")])
             for c in cards], SCORE_COLOURS),
        "rejects": bar_chart("chart-rejects", "Rejected events by reason",
                             [(r, [("rejected", n)]) for r, n in sorted(reasons.items())],
                             {"rejected": SCORE_COLOURS["rejected"]}),
        "discrepancies": bar_chart(
            "chart-discrepancies", "Discrepancies by kind and severity",
            [(k, [(s, by.get(s, 0)) for s in SEVERITIES]) for k, by in sorted(kinds.items())],
            SEVERITY_COLOURS),
        "certificates": bar_chart("chart-certificates",
                                  "Certificates by occupation and level",
                                  sorted(by_occupation.items()), LEVEL_COLOURS),
        "subsidies": bar_chart(
            "chart-subsidies", "Subsidy amount by level (yuan)",
            [(f"{r['certificate_type']} {_level(r['level'])}",
              [("amount", r["amount_yuan"])]) for r in subsidies["eligible_by_level"]],
            unit=" ¥"),
        "trend-events": line_chart(
            "chart-trend-events", "Events per day", days,
            {k: [t[k] for t in trend] for k in ("received", "valid", "rejected")}),
        "trend-facts": line_chart(
            "chart-trend-facts", "Warehouse facts per day", days,
            {k: [t[k] for t in trend]
             for k in ("enrollments", "certificates", "discrepancy_errors")}),
        "trend-subsidy": line_chart(
            "chart-trend-subsidy", "Subsidy amount per day (yuan)", days,
            {"subsidy yuan": [t["subsidy_amount_yuan"] for t in trend]}),
    }

    score_table = _table(
        ["partner", "name", "role", *SCORE_FIELDS, "rejected by reason"],
        [[c["partner_id"], c["name"] or "", c["role"] or "", *(c[f] for f in SCORE_FIELDS),
          ", ".join(f"{r}: {n}" for r, n in sorted(c["rejected_by_reason"].items()))]
         for c in cards])
    disc_table = _table(
        ["severity", "kind", "reference", "partner", "detail"],
        [[d["severity"], d["kind"], d["reference"], d["partner_id"] or "",
          json.dumps(d["detail"], ensure_ascii=False, sort_keys=True)] for d in disc["listed"]])
    unlisted = (f'<p class="note">{disc["unlisted"]:,} more not listed; report.json and'
                " warehouse.discrepancy hold the counts.</p>" if disc["unlisted"] else "")
    # In force by level, one row per occupation; revoked ones in a column of their own.
    pivot: dict[str, Counter[str]] = {}
    for row in certs:
        cell = pivot.setdefault(_occupation(row), Counter())
        cell[_level(row["level"])] += row["in_force"]
        cell["revoked"] += row["revoked"]
    columns = [*(_level(n) for n in LEVELS), _level(None), "revoked"]
    cert_table = _table(["occupation", *columns],
                        [[name, *(by[c] for c in columns)] for name, by in sorted(pivot.items())])
    subsidy_table = _table(
        ["certificate type", "level", "eligible certificates", "amount (yuan)"],
        [[r["certificate_type"], r["level"] if r["level"] is not None else "",
          r["certificates"], r["amount_yuan"]] for r in subsidies["eligible_by_level"]])
    not_eligible = _table(["not eligible because", "certificates"],
                          sorted(subsidies["not_eligible_by_reason"].items()))
    status = "" if figures["loaded"] else (
        '<p class="warn">This day has not been loaded: the figures below are empty.</p>')

    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>skillsync nightly report {_e(day)}</title>
<style>{_CSS}</style></head>
<body>
<header><h1>Nightly reconciliation report</h1>
<p>Business day <time datetime="{_e(day)}" id="business-day">{_e(day)}</time>
(Asia/Shanghai, by broker append time). Figures as JSON:
<a href="report.json">report.json</a>.</p>{status}</header>
<section id="headline" class="figures">{headline}</section>
<section id="scorecards"><h2>Partner scorecards</h2>{charts["scorecards"]}{charts["rejects"]}
{score_table}</section>
<section id="discrepancies"><h2>Discrepancies</h2>{charts["discrepancies"]}
{disc_table}{unlisted}</section>
<section id="certificates"><h2>Certificates issued</h2>{charts["certificates"]}
{cert_table}</section>
<section id="subsidies"><h2>Subsidies</h2>{charts["subsidies"]}{subsidy_table}
{not_eligible}</section>
<section id="trends"><h2>Last {len(days)} days</h2>{charts["trend-events"]}
{charts["trend-facts"]}{charts["trend-subsidy"]}</section>
{feed_section_html(figures.get("feeds", []))}
<footer>Read from the warehouse's facts for the day; no person pseudonyms or personal data
are shown.</footer>
</body></html>
"""


_CSS = """
body{font:14px/1.4 system-ui,-apple-system,"Segoe UI",sans-serif;margin:24px auto;
max-width:1100px;color:#1d2530;padding:0 16px}
h1{font-size:22px;margin:0 0 4px}h2{font-size:17px;margin:28px 0 8px;
border-bottom:1px solid #d5dbe3;padding-bottom:4px}
.figures{display:flex;flex-wrap:wrap;gap:10px;margin:16px 0}
.figure{background:#f3f6fa;border-radius:6px;padding:8px 12px;min-width:96px}
.figure .n{display:block;font-size:20px;font-weight:600}.figure .k{color:#586474;font-size:12px}
svg.chart{display:block;margin:8px 0;max-width:100%;height:auto}
svg text{font:12px system-ui,sans-serif;fill:#33404f}svg .value{fill:#586474}
svg .grid{stroke:#c5ccd6}svg .caption{font-weight:600;fill:#1d2530}svg .empty{fill:#8894a3}
table{border-collapse:collapse;margin:8px 0;font-size:12px}
th,td{border-bottom:1px solid #e3e8ee;padding:3px 8px;text-align:left;vertical-align:top}
td.num{text-align:right;font-variant-numeric:tabular-nums}
.warn{color:#b8433a;font-weight:600}.note,footer{color:#586474;font-size:12px}
footer{margin-top:32px}
"""
