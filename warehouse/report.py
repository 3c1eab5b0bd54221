"""The nightly report: a business day's warehouse figures as JSON and an offline HTML page."""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date
from functools import cache
from pathlib import Path
from typing import Any

from jinja2 import Environment

from adapters.database import scoped_engine
from adapters.settings import Settings
from schemas.errors import REASON_CODES
from schemas.i18n import (
    DEFAULT_LOCALE,
    LOCALES,
    N_,
    current_locale,
    gettext,
    locale_name,
    number,
    use_locale,
)
from warehouse.charts import bar_chart, line_chart
from warehouse.figures import SCORE_FIELDS, Figures, day_figures
from warehouse.labels import (
    CERTIFICATE_TYPES,
    DISCREPANCY_KINDS,
    ROLE_LABELS,
    SCORE_LABELS,
    SEVERITIES,
    SEVERITY_LABELS,
    SUBSIDY_REASONS,
    label,
    level_label,
)
from warehouse.templating import compact_json, environment


@dataclass(frozen=True)
class ReportFiles:
    html: Path  # the page in the default locale
    json: Path
    # The page in every locale, the default one included.
    pages: dict[str, Path] = field(default_factory=dict)


def write_day_report(day: date, settings: Settings | None = None) -> ReportFiles:
    """The DAG's report step: read the day's figures and write both files."""
    s = settings or Settings.load()
    with scoped_engine(s.database.sqlalchemy) as engine:
        figures = day_figures(engine, day, trend_days=s.nightly.report_trend_days)
    return write_report(figures, s.nightly.report_dir)


def write_report(figures: Figures, root: Path) -> ReportFiles:
    """`<root>/<day>/index.html` (and the page in each other locale) and `report.json`.

    A rerun of the day rewrites them identically.
    """
    folder = root / figures["business_day"]
    folder.mkdir(parents=True, exist_ok=True)
    pages = {locale: folder / report_page(locale) for locale in LOCALES}
    files = ReportFiles(pages[DEFAULT_LOCALE], folder / "report.json", pages)
    files.json.write_text(json.dumps(figures, ensure_ascii=False, indent=2, sort_keys=True) + "\n",
                          encoding="utf-8")
    for locale, page in pages.items():
        page.write_text(render_html(figures, locale), encoding="utf-8")
    return files


# -- figures ------------------------------------------------------------------------------



# -- HTML -------------------------------------------------------------------------------

SEVERITY_COLOURS = {"error": "#b8433a", "warning": "#d9822b", "info": "#6b7c8f"}
SCORE_COLOURS = {"valid": "#4c9a52", "rejected": "#b8433a", "duplicates": "#d9822b"}
LEVELS = (1, 2, 3, 4, 5)
LEVEL_COLOURS = {"level 1": "#7a5aa6", "level 2": "#2f6db5", "level 3": "#4c9a52",
                 "level 4": "#d9822b", "level 5": "#b8433a", "no level": "#6b7c8f"}
HEADLINE = ("received", "valid", "rejected", "duplicates", "late", "missing",
            "discrepancy_errors", "certificates_issued", "subsidy_eligible",
            "subsidy_amount_yuan")
HEADLINE_LABELS = {**SCORE_LABELS, "discrepancy_errors": N_("discrepancy errors"),
                   "certificates_issued": N_("certificates"),
                   "subsidy_eligible": N_("subsidy-eligible"),
                   "subsidy_amount_yuan": N_("subsidy yuan")}
TREND_LABELS = {**SCORE_LABELS, "enrollments": N_("enrollments"),
                "certificates": N_("certificates"),
                "discrepancy_errors": N_("discrepancy errors"),
                "subsidy yuan": N_("subsidy yuan")}


def report_page(locale: str) -> str:
    """The page's file name in a locale: index.html in the default one."""
    return "index.html" if locale == DEFAULT_LOCALE else f"index.{locale}.html"


@cache
def _templates() -> Environment:
    return environment()


def _level_key(level: int | None) -> str:
    return f"level {level}" if level is not None else "no level"


def _occupation(row: Mapping[str, Any]) -> str:
    if row["occupation_code"] is None:
        return label(CERTIFICATE_TYPES, row["certificate_type"])
    name = row["occupation_zh"] if current_locale().startswith("zh") else row["occupation"]
    return f"{row['occupation_code']} {name or ''}".strip()


def _names(labels: Mapping[str, str], keys: Sequence[str]) -> dict[str, str]:
    return {k: gettext(labels[k]) if k in labels else k for k in keys}


def render_html(figures: Figures, locale: str = DEFAULT_LOCALE) -> str:
    """A self-contained page in the locale: inline CSS and SVG, no script, nothing fetched."""
    with use_locale(locale):
        return _templates().get_template("report.html").render(
            **_page_parts(figures), locale=locale,
            languages=[(other, locale_name(other), report_page(other))
                       for other in LOCALES if other != locale])


def _page_parts(figures: Figures) -> dict[str, Any]:
    cards = figures["scorecards"]
    disc = figures["discrepancies"]
    certs = figures["certificates"]
    subsidies = figures["subsidies"]
    trend = figures["trend"]["series"]

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
            (_level_key(row["level"]), row["in_force"] + row["revoked"]))
    level_names = {_level_key(n): level_label(n) for n in (*LEVELS, None)}
    days = [t["day"] for t in trend]
    scores = ("valid", "rejected", "duplicates")

    charts = {
        "scorecards": bar_chart(
            "chart-scorecards", gettext("Events received per partner"),
            [(c["partner_id"], [(k, c[k]) for k in scores]) for c in cards], SCORE_COLOURS,
            names=_names(SCORE_LABELS, scores)),
        "rejects": bar_chart("chart-rejects", gettext("Refused events by reason"),
                             [(r, [("rejected", n)]) for r, n in sorted(reasons.items())],
                             {"rejected": SCORE_COLOURS["rejected"]},
                             names=_names(SCORE_LABELS, ["rejected"])),
        "discrepancies": bar_chart(
            "chart-discrepancies", gettext("Discrepancies by kind and severity"),
            [(k, [(s, by.get(s, 0)) for s in SEVERITIES]) for k, by in sorted(kinds.items())],
            SEVERITY_COLOURS, names=_names(SEVERITY_LABELS, SEVERITIES)),
        "certificates": bar_chart("chart-certificates",
                                  gettext("Certificates by occupation and level"),
                                  sorted(by_occupation.items()), LEVEL_COLOURS,
                                  names=level_names),
        "subsidies": bar_chart(
            "chart-subsidies", gettext("Subsidy amount by level (yuan)"),
            [(f"{label(CERTIFICATE_TYPES, r['certificate_type'])} {level_label(r['level'])}",
              [("amount", r["amount_yuan"])]) for r in subsidies["eligible_by_level"]],
            unit=" ¥"),
        "trend-events": line_chart(
            "chart-trend-events", gettext("Events per day"), days,
            {k: [t[k] for t in trend] for k in ("received", "valid", "rejected")},
            names=_names(TREND_LABELS, ("received", "valid", "rejected"))),
        "trend-facts": line_chart(
            "chart-trend-facts", gettext("Warehouse facts per day"), days,
            {k: [t[k] for t in trend]
             for k in ("enrollments", "certificates", "discrepancy_errors")},
            names=_names(TREND_LABELS, ("enrollments", "certificates", "discrepancy_errors"))),
        "trend-subsidy": line_chart(
            "chart-trend-subsidy", gettext("Subsidy amount per day (yuan)"), days,
            {"subsidy yuan": [t["subsidy_amount_yuan"] for t in trend]},
            names=_names(TREND_LABELS, ["subsidy yuan"])),
    }
    # In force by level, one row per occupation; revoked ones in a column of their own.
    pivot: dict[str, Counter[str]] = {}
    for row in certs:
        cell = pivot.setdefault(_occupation(row), Counter())
        cell[_level_key(row["level"])] += row["in_force"]
        cell["revoked"] += row["revoked"]
    columns = [*(_level_key(n) for n in LEVELS), _level_key(None), "revoked"]
    reason_text = {r: gettext(REASON_CODES[r]) if r in REASON_CODES else r
                   for c in cards for r in c["rejected_by_reason"]}
    return {
        "day": figures["business_day"],
        "loaded": figures["loaded"],
        "headline": [(key, figures["headline"][key], gettext(HEADLINE_LABELS[key]))
                     for key in HEADLINE],
        "charts": charts,
        "score_table": Table(
            [gettext("partner"), gettext("name"), gettext("role"),
             *_names(SCORE_LABELS, SCORE_FIELDS).values(), gettext("refused by reason")],
            [[c["partner_id"], c["name"] or "", label(ROLE_LABELS, c["role"]),
              *(c[f] for f in SCORE_FIELDS),
              "; ".join(f"{r} ({reason_text[r]}): {n}"
                        for r, n in sorted(c["rejected_by_reason"].items()))]
             for c in cards]),
        "accounting_table": Table(
            [gettext("partner"), gettext("staged"), gettext("in the warehouse"),
             gettext("named with a reason"), gettext("unaccounted")],
            [[a["partner_id"], a["staged"], a["reflected"], a["named"], a["unaccounted"]]
             for a in figures["accounting"]]),
        "discrepancy_table": Table(
            [gettext("severity"), gettext("kind"), gettext("reference"), gettext("partner"),
             gettext("detail")],
            [[label(SEVERITY_LABELS, d["severity"]),
              f"{d['kind']}: {label(DISCREPANCY_KINDS, d['kind'])}", d["reference"],
              d["partner_id"] or "", compact_json(d["detail"])] for d in disc["listed"]]),
        "unlisted": disc["unlisted"],
        "certificate_table": Table(
            [gettext("occupation"), *(level_names.get(c, gettext("revoked")) for c in columns)],
            [[name, *(by[c] for c in columns)] for name, by in sorted(pivot.items())]),
        "subsidy_table": Table(
            [gettext("certificate type"), gettext("level"), gettext("eligible certificates"),
             gettext("amount (yuan)")],
            [[label(CERTIFICATE_TYPES, r["certificate_type"]), level_label(r["level"]),
              r["certificates"], r["amount_yuan"]] for r in subsidies["eligible_by_level"]]),
        "not_eligible_table": Table(
            [gettext("not eligible because"), gettext("certificates")],
            [[label(SUBSIDY_REASONS, reason), n]
             for reason, n in sorted(subsidies["not_eligible_by_reason"].items())]),
        "feed_table": Table(
            [gettext("subscriber"), gettext("last version"), gettext("not yet published"),
             gettext("the day's changes")],
            [[f["subscriber"], f["last_version"], f["lag"],
              ", ".join(f"{k}: {number(n)}" for k, n in f["changes"].items()) or "-"]
             for f in figures.get("feeds", [])]),
        "trend_days": len(days),
    }


@dataclass(frozen=True)
class Table:
    headers: list[str]
    rows: list[list[Any]]
