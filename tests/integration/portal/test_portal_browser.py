"""Each kind of reader in Chromium: signs in, reads, filters, downloads, switches language."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterator
from typing import Any
from urllib.parse import quote

import pytest

from tests.integration.portal.conftest import LiveServer, Logins, PortalWeek, screenshot, sign_in

pytestmark = pytest.mark.integration


@pytest.fixture
def page(browser: Any) -> Iterator[Any]:
    """A fresh browser context (no cookies) per test; downloads allowed."""
    context = browser.new_context(accept_downloads=True, viewport={"width": 1280, "height": 900})
    yield context.new_page()
    context.close()


def _download(page: Any, selector: str) -> str:
    with page.expect_download() as download:
        page.click(selector)
    return download.value.path().read_text(encoding="utf-8-sig")


def _cells(page: Any, table: str, column: int) -> list[str]:
    return [c.strip() for c in page.locator(f"{table} tbody tr td:nth-child({column})")
            .all_inner_texts()]


def test_a_partner_reads_its_scorecard_filters_and_downloads_its_refusals(
        page: Any, portal_server: LiveServer, portal_week: PortalWeek, logins: Logins) -> None:
    base, partner = portal_server.url, logins.partner
    sign_in(page, base, Logins.users["partner"])
    assert page.url == f"{base}/partner/{partner}"
    # Chinese first.
    assert page.locator("html").get_attribute("lang") == "zh-CN"
    assert "评分卡" in page.inner_text("nav.tabs")
    latest = portal_week.rows("SELECT max(business_day) FROM warehouse.partner_scorecard"
                              " WHERE partner_id = %s", (partner,))[0][0]
    (received, rejected), = portal_week.rows(
        "SELECT received, rejected FROM warehouse.partner_scorecard"
        " WHERE partner_id = %s AND business_day = %s", (partner, latest))
    assert page.inner_text("[data-figure=received]").replace(",", "") == str(received)
    assert page.inner_text("[data-figure=rejected]").replace(",", "") == str(rejected)
    assert page.inner_text("#feed-state") == "暂不可用"
    screenshot(page, "partner-scorecard-zh")

    page.click("nav.tabs >> text=被拒事件")
    first, last = portal_week.days[0], portal_week.days[-1]
    page.fill("input[name=first]", first.isoformat())
    page.fill("input[name=last]", last.isoformat())
    reason, count = portal_week.rows(
        "SELECT reason_code, count(*) FROM staging.rejected WHERE partner_id = %s"
        " GROUP BY 1 ORDER BY 2 DESC, 1 LIMIT 1", (partner,))[0]
    page.select_option("#reason", reason)
    page.click("#apply-filter")
    page.wait_for_load_state()
    shown_codes = set(_cells(page, "#refusals", 3))
    assert shown_codes == {reason}
    assert page.locator("#refusals tbody tr").count() == min(count, 25)
    screenshot(page, "partner-refusals-filtered")

    text = _download(page, "#download-csv")
    rows = list(csv.DictReader(io.StringIO(text)))
    expected = portal_week.rows(
        "SELECT event_id, reason_code, field_path, message, kafka_offset FROM staging.rejected"
        " WHERE partner_id = %s AND reason_code = %s AND append_day BETWEEN %s AND %s",
        (partner, reason, first, last))
    assert sorted((r["event_id"], r["reason_code"], r["field_path"], r["message"],
                   int(r["kafka_offset"])) for r in rows) == sorted(
        (e or "", c, p, msg, o) for e, c, p, msg, o in expected)
    assert all(r["fix_hint"] and r["reason"] for r in rows)
    assert rows[0]["appended_at"].endswith("+08:00")
    downloaded = json.loads(_download(page, "#download-json"))
    assert len(downloaded) == len(expected)

    page.click("nav.tabs >> text=控制总数")
    assert page.locator("#control-totals tbody tr").count() > 0
    screenshot(page, "partner-control-totals")
    page.click("nav.tabs >> text=通知")
    page.fill("input[name=first]", first.isoformat())
    page.fill("input[name=last]", last.isoformat())
    page.click("button[type=submit] >> text=显示")
    page.wait_for_load_state()
    kinds = set(page.locator("#notices tbody tr[data-kind]").evaluate_all(
        "rows => rows.map(r => r.dataset.kind)"))
    assert kinds == {k for (k,) in portal_week.rows(
        "SELECT DISTINCT kind FROM warehouse.discrepancy WHERE partner_id = %s", (partner,))}
    screenshot(page, "partner-notices")

    page.click("#lang-en")
    page.wait_for_load_state()
    assert page.locator("html").get_attribute("lang") == "en"
    assert "Notices" in page.inner_text("nav.tabs")
    page.click("nav.tabs >> text=Scorecard")
    assert "Refused events by reason" in page.inner_text("main")
    screenshot(page, "partner-scorecard-en")
    page.click("#logout")
    page.wait_for_load_state()
    assert page.url == f"{base}/login"
    page.goto(f"{base}/partner/{partner}")
    assert page.url.startswith(f"{base}/login")


def test_a_partner_cannot_see_another_partners_refusals(
        page: Any, portal_server: LiveServer, logins: Logins) -> None:
    base = portal_server.url
    sign_in(page, base, Logins.users["partner"])
    for path in (f"/partner/{logins.other_partner}/refusals",
                 f"/partner/{logins.other_partner}",
                 f"/partner/{logins.other_partner}/refusals.csv"):
        response = page.goto(f"{base}{path}")
        assert response.status == 403, path
        assert page.locator("#refusals").count() == 0
    screenshot(page, "partner-refused-other-partner")
    api = page.request.get(f"{base}/api/partners/{logins.other_partner}/refusals")
    assert api.status == 403 and "rows" not in api.json()


def test_a_district_agency_reads_its_district_and_exports_certificates(
        page: Any, portal_server: LiveServer, portal_week: PortalWeek, logins: Logins) -> None:
    base, district = portal_server.url, logins.district
    sign_in(page, base, Logins.users["agency"])
    assert page.url == f"{base}/agency/{district}"
    first, last = portal_week.days[0], portal_week.days[-1]
    page.fill("input[name=first]", first.isoformat())
    page.fill("input[name=last]", last.isoformat())
    page.click("#apply-range")
    page.wait_for_load_state()
    marks = page.locator("#chart-certificates .mark").evaluate_all(
        "ms => ms.map(m => Number(m.dataset.value))")
    in_district = ("district_code IN (SELECT district_code FROM warehouse.agency_district"
                   " WHERE agency = %s)")
    (certificates,), = portal_week.rows(
        f"SELECT count(*) FROM warehouse.fact_certificate WHERE {in_district}"
        " AND business_day BETWEEN %s AND %s", (f"agency_{district}", first, last))
    assert sum(marks) == certificates > 0
    screenshot(page, "agency-summary-zh")

    page.click("#certificate-counts tbody tr:first-child a")
    page.wait_for_load_state()
    screenshot(page, "agency-certificates-drilldown")
    masked = _cells(page, "#records", 11)
    assert masked and all("*" in m for m in masked)
    text = _download(page, "#download-csv")
    rows = list(csv.DictReader(io.StringIO(text)))
    occupation = page.input_value("input[name=occupation]")
    expected = portal_week.rows(
        f"SELECT certificate_number, level, status FROM warehouse.fact_certificate"
        f" WHERE {in_district} AND occupation_code = %s AND business_day BETWEEN %s AND %s"
        + (" AND level = %s" if page.input_value("select[name=level]") else ""),
        (f"agency_{district}", occupation, first, last,
         *([int(page.input_value("select[name=level]"))]
           if page.input_value("select[name=level]") else [])))
    assert sorted((r["certificate_number"], int(r["level"]), r["status"]) for r in rows) == \
        sorted(expected)
    assert {r["district_code"] for r in rows} <= {c for (c,) in portal_week.rows(
        "SELECT district_code FROM warehouse.agency_district WHERE agency = %s",
        (f"agency_{district}",))}
    assert all("*" in r["id_masked"] and "*" in r["name_masked"] for r in rows)
    assert "person" not in rows[0]

    for what in ("evaluations", "subsidies"):
        page.click(f"nav.tabs >> nth=0 >> a[href$='/{what}']")
        page.wait_for_load_state()
        screenshot(page, f"agency-{what}")
    page.click("#lang-en")
    page.wait_for_load_state()
    assert "Subsidies" in page.inner_text("nav.tabs")
    page.click("#logout")
    page.wait_for_load_state()
    assert page.url == f"{base}/login"


def test_a_district_typing_another_districts_urls_is_refused_and_shown_no_rows(
        page: Any, portal_server: LiveServer, logins: Logins) -> None:
    base, other = portal_server.url, logins.other_district
    sign_in(page, base, Logins.users["agency"])
    for path in (f"/agency/{other}", f"/agency/{other}/certificates",
                 f"/agency/{other}/subsidies?first=2000-01-01&last=2000-12-31",
                 f"/agency/{other}/certificates.csv"):
        response = page.goto(f"{base}{path}")
        assert response.status == 403, path
        assert page.locator("#refusal").is_visible()
        assert page.locator("#records, #certificate-counts").count() == 0
    screenshot(page, "agency-refused-other-district")
    for path in (f"/api/agencies/{other}/certificates", f"/api/agencies/{other}/summary",
                 "/api/operator/overview", f"/api/partners/{logins.partner}/refusals"):
        response = page.request.get(f"{base}{path}")
        assert response.status == 403, path
    page.goto(f"{base}/operator")
    assert page.locator("#refusal").is_visible()


def test_an_operator_sees_lag_freshness_runs_validation_and_the_paused_warning(
        page: Any, portal_server: LiveServer, portal_week: PortalWeek, logins: Logins,
        nightly_run: str) -> None:
    from adapters.ingest_lag import partition_lag

    base = portal_server.url
    portal_server.portal.sampler.read_once()
    sign_in(page, base, Logins.users["operator"])
    assert page.url == f"{base}/operator"
    assert page.locator("#paused-warning").is_visible()
    # The Airflow database may hold other nights (other tests, earlier sessions): find ours.
    run = page.locator(f'#runs tbody tr[data-run-id="{nightly_run}"]')
    assert run.get_attribute("data-state") == "success"
    assert run.locator("a").get_attribute("href") == (
        f"http://airflow.test:8080/dags/nightly_sync/runs/{quote(nightly_run, safe='')}")
    behind = partition_lag(portal_server.sections.kafka, topic_pattern=portal_week.topic_pattern,
                           database_url=portal_week.database_url, group_id=portal_week.group)
    by_partner: dict[str, int] = {}
    for (topic, _), n in behind.items():
        by_partner[topic.rpartition(".")[2]] = by_partner.get(topic.rpartition(".")[2], 0) + n
    shown = {row.get_attribute("data-partner"): row.locator("td").nth(1).inner_text()
             for row in page.locator("#partners tbody tr[data-partner]").all()}
    assert shown == {p: str(n) for p, n in by_partner.items()}
    assert page.inner_text("#last-loaded")
    failed = portal_week.rows("SELECT count(*) FROM ops.validation_results"
                              " WHERE NOT success")[0][0]
    assert page.locator("#validation tbody tr").count() == max(1, failed)
    alerts = page.locator("#alerts tbody tr[data-kind]").evaluate_all(
        "rows => rows.map(r => r.dataset.kind)")
    assert "nightly_sync_paused" in alerts
    screenshot(page, "operator-overview-zh")

    metrics = page.request.get(f"{base}/metrics").text()
    assert "skillsync_nightly_sync_paused 1.0" in metrics
    for partner, lag in by_partner.items():
        assert f'skillsync_partner_lag_records{{partner="{partner}"}} {float(lag)}' in metrics

    # An operator reads any partner's refusals: filtered by stage, downloaded, checked.
    page.goto(f"{base}/partner/{logins.other_partner}/refusals?first={portal_week.days[0]}"
              f"&last={portal_week.days[-1]}")
    page.select_option("select[name=stage]", "validate")
    page.click("#apply-filter")
    page.wait_for_load_state()
    rows = list(csv.DictReader(io.StringIO(_download(page, "#download-csv"))))
    assert sorted(r["event_id"] for r in rows) == sorted(e or "" for (e,) in portal_week.rows(
        "SELECT event_id FROM staging.rejected WHERE partner_id = %s AND stage = 'validate'",
        (logins.other_partner,)))
    assert rows and {r["stage"] for r in rows} == {"validate"}
    page.goto(f"{base}/operator")
    page.click("#lang-en")
    page.wait_for_load_state()
    assert "The pipeline at a glance" in page.inner_text("h1")
    screenshot(page, "operator-overview-en")
    page.click("#logout")
    page.wait_for_load_state()
    assert page.url == f"{base}/login"


def test_in_the_browser_a_forged_form_token_or_a_tampered_cookie_gets_nothing(
        browser: Any, portal_server: LiveServer, logins: Logins) -> None:
    import base64

    base = portal_server.url
    context = browser.new_context()
    page = context.new_page()
    sign_in(page, base, Logins.users["partner"])
    page.locator("#logout-form input[name=csrf_token]").evaluate("e => e.value = 'forged'")
    page.click("#logout")
    page.wait_for_load_state()
    assert page.locator("#refusal").is_visible()
    screenshot(page, "refused-forged-form")
    page.goto(f"{base}/partner/{logins.partner}")
    assert page.url == f"{base}/partner/{logins.partner}"  # the forged sign-out did nothing
    (cookie,) = [c for c in context.cookies() if c["name"] == "skillsync_session"]
    payload, _, signature = cookie["value"].partition(".")
    claims = json.loads(base64.b64decode(payload))
    forged = base64.b64encode(json.dumps({**claims, "user": Logins.users["operator"]}).encode())
    context.add_cookies([{**cookie, "value": f"{forged.decode()}.{signature}"}])
    page.goto(f"{base}/operator")
    assert page.url.startswith(f"{base}/login")
    context.close()
