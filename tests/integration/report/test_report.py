"""The nightly report on a loaded faulty week: its figures, its rendering, what it never shows."""

from __future__ import annotations

import json
import re
from collections import Counter
from datetime import date, timedelta
from pathlib import Path

import psycopg
import pytest

from adapters.database import make_engine
from tests.integration.report.conftest import LoadedWeek, RenderedReport, run_chromium
from warehouse.figures import day_figures
from warehouse.report import ReportFiles, write_report

pytestmark = pytest.mark.integration
TREND_DAYS = 14


def _rows(database_url: str, sql: str, params: tuple = ()) -> list[tuple]:
    with psycopg.connect(database_url) as conn:
        return conn.execute(sql, params).fetchall()


def _busiest_day(week: LoadedWeek) -> date:
    """The day with the most discrepancies: every section of its report has something to show."""
    return _rows(week.database_url, "SELECT business_day FROM warehouse.discrepancy"
                 " GROUP BY 1 ORDER BY count(DISTINCT kind) DESC, count(*) DESC, 1 LIMIT 1")[0][0]


def _report(week: LoadedWeek, day: date, root: Path) -> ReportFiles:
    engine = make_engine(week.database_url)
    try:
        return write_report(day_figures(engine, day, trend_days=TREND_DAYS), root)
    finally:
        engine.dispose()


def test_the_report_shows_the_days_figures_as_the_warehouse_and_staging_hold_them(
        loaded_week, tmp_path):
    day = _busiest_day(loaded_week)
    files = _report(loaded_week, day, tmp_path)
    figures = json.loads(files.json.read_text(encoding="utf-8"))
    url = loaded_week.database_url

    assert files.html.parent == files.json.parent == tmp_path / day.isoformat()
    head = figures["headline"]
    (valid,), = _rows(url, "SELECT count(*) FROM staging.events WHERE append_day = %s", (day,))
    (rejected,), = _rows(url, "SELECT count(*) FROM staging.rejected WHERE append_day = %s",
                         (day,))
    (duplicates,), = _rows(url, "SELECT count(*) FROM staging.redeliveries WHERE append_day = %s",
                           (day,))
    assert (head["valid"], head["rejected"], head["duplicates"]) == (valid, rejected, duplicates)
    assert head["received"] == valid + rejected + duplicates
    assert head["rejected"] > 0 and head["duplicates"] > 0

    by_reason = Counter(dict(_rows(url, "SELECT reason_code, count(*) FROM staging.rejected"
                                        " WHERE append_day = %s GROUP BY 1", (day,))))
    shown: Counter[str] = Counter()
    for card in figures["scorecards"]:
        shown.update(card["rejected_by_reason"])
    assert shown == by_reason

    kinds = {(k, s): n for k, s, n in _rows(
        url, "SELECT kind, severity, count(*) FROM warehouse.discrepancy WHERE business_day = %s"
             " GROUP BY 1, 2", (day,))}
    assert {(d["kind"], d["severity"]): d["count"]
            for d in figures["discrepancies"]["by_kind"]} == kinds
    assert len(kinds) >= 2
    references = {r for (r,) in _rows(url, "SELECT reference FROM warehouse.discrepancy"
                                           " WHERE business_day = %s", (day,))}
    assert {d["reference"] for d in figures["discrepancies"]["listed"]} == references

    certificates = {(o, lv): n for o, lv, n in _rows(
        url, "SELECT occupation_code, level, count(*) FROM warehouse.fact_certificate"
             " WHERE business_day = %s GROUP BY 1, 2", (day,))}
    assert {(c["occupation_code"], c["level"]): c["in_force"] + c["revoked"]
            for c in figures["certificates"]} == certificates
    assert head["certificates_issued"] == sum(certificates.values()) > 0

    (eligible, amount), = _rows(url, "SELECT count(*), coalesce(sum(amount_yuan), 0)"
                                     " FROM warehouse.subsidy_list WHERE business_day = %s",
                                (day,))
    assert (head["subsidy_eligible"], head["subsidy_amount_yuan"]) == (eligible, amount)
    assert amount > 0

    trend = figures["trend"]["series"]
    assert [t["day"] for t in trend] == [
        (day - timedelta(days=n)).isoformat() for n in range(TREND_DAYS - 1, -1, -1)]
    received_by_day = {d.isoformat(): n for d, n in _rows(
        url, "SELECT business_day, sum(received) FROM warehouse.partner_scorecard GROUP BY 1")}
    assert {t["day"]: t["received"] for t in trend if t["received"]} == {
        d: n for d, n in received_by_day.items() if d in {t["day"] for t in trend}}


def test_the_report_renders_offline_in_chromium_with_its_charts_and_headline(
        loaded_week, tmp_path, chromium):
    day = _busiest_day(loaded_week)
    files = _report(loaded_week, day, tmp_path / "reports")
    figures = json.loads(files.json.read_text(encoding="utf-8"))

    dom = run_chromium(chromium, files.html, tmp_path / "profile", "--dump-dom")
    screenshot = tmp_path / "report.png"
    run_chromium(chromium, files.html, tmp_path / "profile", "--window-size=1200,4200",
                 f"--screenshot={screenshot}")
    page = RenderedReport(dom)

    charts = {c.chart_id: c.marks for c in page.charts}
    assert set(charts) == {
        "chart-scorecards", "chart-rejects", "chart-discrepancies", "chart-certificates",
        "chart-subsidies", "chart-trend-events", "chart-trend-facts", "chart-trend-subsidy"}
    assert all(charts.values()), "every chart of a busy day has data marks"
    scored = {(m["data-label"], m["data-series"]): int(m["data-value"])
              for m in charts["chart-scorecards"]}
    assert scored == {(c["partner_id"], k): c[k] for c in figures["scorecards"]
                      for k in ("valid", "rejected", "duplicates") if c[k]}
    assert len(charts["chart-trend-events"]) == 3 * TREND_DAYS
    head = figures["headline"]
    assert {k: int(v.replace(",", "")) for k, v in page.figures.items()} == {
        k: head[k] for k in page.figures}
    assert {"received", "valid", "rejected", "subsidy_amount_yuan"} <= set(page.figures)
    assert page.external == []
    assert screenshot.stat().st_size > 20_000


def test_the_report_holds_no_pseudonyms_or_personal_data(loaded_week, tmp_path):
    day = _busiest_day(loaded_week)
    files = _report(loaded_week, day, tmp_path)
    published = files.html.read_text(encoding="utf-8") + files.json.read_text(encoding="utf-8")
    url = loaded_week.database_url

    people = [p for (p,) in _rows(url, "SELECT person FROM warehouse.dim_person")]
    masked = {v for (v,) in _rows(url, """
        SELECT DISTINCT value FROM staging.events, jsonb_each_text(data->'learner')
        WHERE key IN ('id_masked', 'name_masked', 'phone_masked') AND value IS NOT NULL""")}
    assert people and masked
    assert [p for p in people if p[:12] in published] == []
    assert [m for m in masked if m in published] == []
    assert re.search(r"(?<![0-9A-Z])\d{17}[\dX](?![0-9])", published) is None


def test_reporting_a_day_again_rewrites_the_same_files(loaded_week, tmp_path):
    day = _busiest_day(loaded_week)
    first = _report(loaded_week, day, tmp_path / "first")
    again = _report(loaded_week, day, tmp_path / "again")

    assert first.html.read_bytes() == again.html.read_bytes()
    assert first.json.read_bytes() == again.json.read_bytes()


def test_the_report_reads_in_chinese_first_and_in_english_beside_it(loaded_week, tmp_path):
    day = _busiest_day(loaded_week)
    files = _report(loaded_week, day, tmp_path)
    chinese = files.html.read_text(encoding="utf-8")
    english = files.pages["en"].read_text(encoding="utf-8")

    assert files.pages["zh_CN"] == files.html and files.html.name == "index.html"
    assert '<html lang="zh-CN">' in chinese and "夜间对账报告" in chinese
    assert "合作方评分卡" in chinese and 'href="index.en.html"' in chinese
    assert '<html lang="en">' in english and "Nightly reconciliation report" in english
    assert "夜间对账报告" not in english and 'href="index.html"' in english
    # The figures are the same in both: only the words change.
    figures = [re.findall(r'data-figure="(\w+)">([\d,]+)<', page) for page in (chinese, english)]
    assert figures[0] == figures[1] and figures[0]
