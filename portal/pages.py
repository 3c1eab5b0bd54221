"""The HTML pages: sign-in, and each kind of reader's pages, with their CSV downloads."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterable, Iterator
from datetime import UTC, date, datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Form, Query, Request
from fastapi import Path as PathParam
from fastapi.responses import (
    FileResponse,
    HTMLResponse,
    RedirectResponse,
    Response,
    StreamingResponse,
)
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST

from portal import accounts, reads
from portal import models as m
from portal.operations import OverviewCollector, overview
from portal.web import (
    STATIC,
    FormRefused,
    Refused,
    agency_scope,
    csrf_ok,
    day_range,
    local_target,
    operator_scope,
    partner_scope,
    portal_of,
    require,
    start_session,
)
from schemas import i18n
from schemas.errors import REASON_CODES
from schemas.i18n import gettext
from warehouse.charts import bar_chart, line_chart
from warehouse.labels import (
    CERTIFICATE_TYPES,
    DISCREPANCY_KINDS,
    SCORE_LABELS,
    SEVERITY_LABELS,
    STATUSES,
    SUBSIDY_REASONS,
    label,
    level_label,
)

router = APIRouter(include_in_schema=False)

PARTNER_ID = Annotated[str, PathParam(pattern=r"^[A-Za-z0-9_-]{1,64}$")]
DISTRICT = Annotated[str, PathParam(pattern=r"^\d{6}$")]
DAY = Annotated[date | None, Query()]
# Filters may come empty from a form: an empty value is no filter.
OCCUPATION = Annotated[str | None, Query(pattern=r"^([1-8]-\d{2}-\d{2}-\d{2})?$")]
LEVEL = Annotated[str | None, Query(pattern=r"^[1-5]?$")]
PAGE = Annotated[int, Query(ge=1, le=100_000)]
STAGE = Annotated[Literal["decode", "validate", "authorise", ""] | None, Query()]
WHAT = Literal["certificates", "evaluations", "subsidies"]
SCORE_COLOURS = {"valid": "#4c9a52", "rejected": "#b8433a", "duplicates": "#d9822b"}
LEVEL_COLOURS = {"level 1": "#7a5aa6", "level 2": "#2f6db5", "level 3": "#4c9a52",
                 "level 4": "#d9822b", "level 5": "#b8433a", "no level": "#6b7c8f"}


def _filled(value: str | None) -> str | None:
    """An empty form field means no filter."""
    return value.strip() or None if value else None


# -- signing in and out, language ---------------------------------------------------------

@router.get("/", response_class=RedirectResponse)
def home(request: Request) -> Response:
    account = request.state.account
    return RedirectResponse(account.home if account else "/login", status_code=303)


@router.get("/healthz")
def health() -> dict[str, str]:
    return {"status": "ok"}


@router.get("/login", response_class=HTMLResponse)
def login_form(request: Request, next: str | None = None) -> Response:
    return portal_of(request).page(request, "login.html", next=local_target(next, ""),
                                   error=None)


@router.post("/login", response_class=HTMLResponse)
def login(request: Request, username: Annotated[str, Form(max_length=128)],
          password: Annotated[str, Form(max_length=1024)],
          csrf_token: Annotated[str | None, Form()] = None,
          next: Annotated[str | None, Form()] = None) -> Response:
    if not csrf_ok(request, csrf_token):
        raise FormRefused
    portal = portal_of(request)
    client = request.client.host if request.client else "unknown"
    with portal.db.portal() as conn:
        outcome = accounts.sign_in(conn, username.strip().lower(), password, client,
                                   allowed_failures=portal.settings.login_failures_allowed,
                                   window_s=portal.settings.login_window_s)
    if outcome.account is None:
        if outcome.throttled:
            response = portal.page(request, "login.html", status=429, next=next or "",
                                   error=gettext("Too many failed attempts: try again in a"
                                                 " few minutes."))
            response.headers["Retry-After"] = str(portal.settings.login_window_s)
            return response
        return portal.page(request, "login.html", status=401, next=next or "",
                           error=gettext("Wrong user name or password."))
    start_session(request, outcome.account)
    return RedirectResponse(local_target(next, outcome.account.home), status_code=303)


@router.post("/logout")
def logout(request: Request, csrf_token: Annotated[str | None, Form()] = None) -> Response:
    if not csrf_ok(request, csrf_token):
        raise FormRefused
    language = request.session.get("lang")
    request.session.clear()
    if language:
        request.session["lang"] = language
    return RedirectResponse("/login", status_code=303)


@router.post("/language")
def language(request: Request, lang: Annotated[str, Form(max_length=16)],
             csrf_token: Annotated[str | None, Form()] = None,
             next: Annotated[str | None, Form()] = None) -> Response:
    if not csrf_ok(request, csrf_token):
        raise FormRefused
    request.session["lang"] = i18n.negotiate(lang)
    return RedirectResponse(local_target(next, "/"), status_code=303)


@router.get("/static/portal.css")
def stylesheet() -> Response:
    return FileResponse(STATIC / "portal.css", media_type="text/css",
                        headers={"Cache-Control": "max-age=3600"})


# -- downloads ----------------------------------------------------------------------------

# A spreadsheet runs a cell that starts with one of these as a formula: partners' text could.
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def _cell(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.astimezone(i18n.DISPLAY_ZONE).isoformat()
    if isinstance(value, dict | list):
        value = json.dumps(value, ensure_ascii=False, sort_keys=True)
    if isinstance(value, str) and value.startswith(FORMULA_STARTS):
        return "'" + value
    return "" if value is None else value


def csv_download(filename: str, rows: Iterable[m.BaseModel],
                 columns: list[str]) -> StreamingResponse:
    """CSV with a BOM (spreadsheets then read it as UTF-8), streamed as the rows come."""
    def lines() -> Iterator[str]:
        buffer = io.StringIO()
        writer = csv.writer(buffer)
        buffer.write("\ufeff")
        writer.writerow(columns)
        for n, row in enumerate(rows, 1):
            data = row.model_dump()
            writer.writerow([_cell(data[c]) for c in columns])
            if n % 500 == 0:
                yield buffer.getvalue()
                buffer.seek(0)
                buffer.truncate()
        yield buffer.getvalue()

    return StreamingResponse(lines(), media_type="text/csv; charset=utf-8",
                             headers={"Content-Disposition": f'attachment; filename="{filename}"'})


def json_download(filename: str, rows: Iterable[m.BaseModel]) -> StreamingResponse:
    def chunks() -> Iterator[str]:
        yield "["
        for n, row in enumerate(rows):
            yield ("," if n else "") + row.model_dump_json()
        yield "]\n"

    return StreamingResponse(chunks(), media_type="application/json",
                             headers={"Content-Disposition": f'attachment; filename="{filename}"'})


# -- partner ------------------------------------------------------------------------------

def _partner_context(conn: Any, partner_id: str) -> dict[str, Any]:
    name, role = reads.partner_name(conn, partner_id)
    return {"partner_id": partner_id, "partner_name": name, "partner_role": role}


@router.get("/partner/{partner_id}", response_class=HTMLResponse)
def partner_scorecard(request: Request, partner_id: PARTNER_ID, day: DAY = None) -> Response:
    portal = portal_of(request)
    scope = partner_scope(require(request), partner_id)
    with portal.db.scoped(scope) as conn:
        latest = reads.latest_partner_day(conn, partner_id)
        shown = day or latest
        first, last = day_range(None, shown, latest, 30)
        days = reads.scorecards(conn, partner_id, first, last)
        reasons = reads.refusal_reasons(conn, partner_id, shown, shown) if shown else []
        controls = reads.control_totals(conn, partner_id, shown, shown) if shown else []
        notices = reads.notices(conn, partner_id, shown, shown, page_size=20) if shown else []
        feed = reads.feed_state(conn, partner_id)
        context = _partner_context(conn, partner_id)
    today = next((d for d in days if d.business_day == shown), None)
    trend = sorted(days, key=lambda d: d.business_day)
    charts = {
        "reasons": bar_chart("chart-reasons", gettext("Refused events by reason"),
                             [(r.reason_code, [("rejected", r.refused)]) for r in reasons],
                             {"rejected": SCORE_COLOURS["rejected"]},
                             names={"rejected": gettext(SCORE_LABELS["rejected"])}),
        "days": line_chart("chart-days", gettext("Events per day"),
                           [d.business_day.isoformat() for d in trend],
                           {k: [getattr(d, k) for d in trend]
                            for k in ("received", "valid", "rejected")},
                           names={k: gettext(SCORE_LABELS[k])
                                  for k in ("received", "valid", "rejected")}),
    }
    return portal.page(request, "partner/scorecard.html", **context, day=shown, today=today,
                       days=days, reasons=reasons, controls=controls, notices=notices,
                       charts=charts, feed=feed,
                       score_labels={k: gettext(v) for k, v in SCORE_LABELS.items()})


def _refusal_filter(conn: Any, partner_id: str, first: date | None, last: date | None,
                    reason: str | None, stage: str | None, event_id: str | None,
                    path: str | None) -> reads.RefusalFilter:
    start, end = day_range(first, last, reads.latest_partner_day(conn, partner_id), 7)
    return reads.RefusalFilter(start, end, _filled(reason), _filled(stage), _filled(event_id),
                               _filled(path))


REFUSAL_COLUMNS = ["append_day", "appended_at", "event_id", "reason_code", "reason",
                   "fix_hint", "field_path", "message", "stage", "topic", "kafka_partition",
                   "kafka_offset", "size_bytes", "payload_sha256", "replay_outcome"]
# PostgreSQL text cannot hold NUL: such a filter is refused as invalid, never sent to the database.
TEXT = Annotated[str | None, Query(max_length=256, pattern=r"^[^\x00]*$")]


@router.get("/partner/{partner_id}/refusals", response_class=HTMLResponse)
def partner_refusals(request: Request, partner_id: PARTNER_ID, first: DAY = None,
                     last: DAY = None, reason: TEXT = None, stage: STAGE = None,
                     event_id: TEXT = None, path: TEXT = None, page: PAGE = 1) -> Response:
    portal = portal_of(request)
    scope = partner_scope(require(request), partner_id)
    with portal.db.scoped(scope) as conn:
        where = _refusal_filter(conn, partner_id, first, last, reason, stage, event_id, path)
        found = reads.refusals(conn, partner_id, where, page=page,
                               page_size=portal.settings.page_size)
        context = _partner_context(conn, partner_id)
    return portal.page(request, "partner/refusals.html", **context, where=where, found=found,
                       reason_codes=sorted(REASON_CODES), pages=_pages(found.total,
                                                                      found.page_size))


def _pages(total: int, size: int) -> int:
    return max(1, -(-total // size))


@router.get("/partner/{partner_id}/refusals.{fmt}")
def partner_refusals_download(request: Request, partner_id: PARTNER_ID,
                              fmt: Literal["csv", "json"], first: DAY = None, last: DAY = None,
                              reason: TEXT = None, stage: STAGE = None, event_id: TEXT = None,
                              path: TEXT = None) -> Response:
    portal = portal_of(request)
    scope = partner_scope(require(request), partner_id)
    # The filter is checked before the download starts: a bad range is a 400, not a cut file.
    with portal.db.scoped(scope) as conn:
        where = _refusal_filter(conn, partner_id, first, last, reason, stage, event_id, path)

    def rows() -> Iterator[m.Refusal]:
        with portal.db.scoped(scope) as conn:
            yield from reads.all_refusals(conn, partner_id, where,
                                          portal.settings.download_limit)

    name = f"refusals-{partner_id}.{fmt}"
    return csv_download(name, rows(), REFUSAL_COLUMNS) if fmt == "csv" \
        else json_download(name, rows())


@router.get("/partner/{partner_id}/control-totals", response_class=HTMLResponse)
def partner_control_totals(request: Request, partner_id: PARTNER_ID, first: DAY = None,
                           last: DAY = None) -> Response:
    portal = portal_of(request)
    scope = partner_scope(require(request), partner_id)
    with portal.db.scoped(scope) as conn:
        start, end = day_range(first, last, reads.latest_partner_day(conn, partner_id), 30)
        days = reads.control_totals(conn, partner_id, start, end)
        context = _partner_context(conn, partner_id)
    return portal.page(request, "partner/control_totals.html", **context, first=start,
                       last=end, days=days)


@router.get("/partner/{partner_id}/notices", response_class=HTMLResponse)
def partner_notices(request: Request, partner_id: PARTNER_ID, first: DAY = None,
                    last: DAY = None, kind: TEXT = None, page: PAGE = 1) -> Response:
    portal = portal_of(request)
    scope = partner_scope(require(request), partner_id)
    with portal.db.scoped(scope) as conn:
        start, end = day_range(first, last, reads.latest_partner_day(conn, partner_id), 7)
        found = reads.notices(conn, partner_id, start, end, kind=_filled(kind), page=page,
                              page_size=portal.settings.page_size)
        context = _partner_context(conn, partner_id)
    return portal.page(request, "partner/notices.html", **context, first=start, last=end,
                       kind=_filled(kind), notices=found, page=page,
                       kinds=[(k, label(DISCREPANCY_KINDS, k)) for k in DISCREPANCY_KINDS])


# -- agency -------------------------------------------------------------------------------

def _district_name(code: str) -> str:
    from schemas.reference import divisions

    division = divisions().get(code)
    if division is None:
        return code
    return division.name_zh if i18n.current_locale().startswith("zh") else division.name_en


def _occupation_label(code: str | None, name: str) -> str:
    return f"{code} {name}".strip() if code else name


@router.get("/agency/{district}", response_class=HTMLResponse)
def agency_summary(request: Request, district: DISTRICT, first: DAY = None,
                   last: DAY = None) -> Response:
    portal = portal_of(request)
    scope = agency_scope(require(request), district)
    with portal.db.scoped(scope) as conn:
        start, end = day_range(first, last, reads.latest_district_day(conn, district), 14)
        summary = reads.district_summary(conn, district, start, end)
    by_occupation: dict[str, list[tuple[str, float]]] = {}
    for c in summary.certificates:
        key = "no level" if c.level is None else f"level {c.level}"
        by_occupation.setdefault(
            _occupation_label(c.occupation_code, c.occupation or label(CERTIFICATE_TYPES,
                                                                       c.certificate_type)),
            []).append((key, c.in_force + c.revoked))
    levels = {f"level {n}": level_label(n) for n in range(1, 6)} | {"no level":
                                                                     level_label(None)}
    amounts: dict[str, float] = {}
    for s in summary.subsidies:
        name = _occupation_label(s.occupation_code, s.occupation)
        amounts[name] = amounts.get(name, 0) + s.amount_yuan
    charts = {
        "certificates": bar_chart("chart-certificates",
                                  gettext("Certificates by occupation and level"),
                                  sorted(by_occupation.items()), LEVEL_COLOURS, names=levels),
        "subsidies": bar_chart("chart-subsidies",
                               gettext("Subsidy amount by occupation (yuan)"),
                               [(k, [("amount", v)]) for k, v in sorted(amounts.items())],
                               unit=" ¥"),
        "days": line_chart("chart-district-days", gettext("Per day"),
                           [d.business_day.isoformat() for d in summary.days],
                           {"certificates": [d.certificates for d in summary.days],
                            "evaluations": [d.evaluations for d in summary.days]},
                           names={"certificates": gettext("certificates"),
                                  "evaluations": gettext("evaluations")}),
    }
    return portal.page(request, "agency/summary.html", district=district,
                       district_name=_district_name(district), summary=summary,
                       charts=charts, labels=_fact_labels())


def _fact_labels() -> dict[str, dict[str, str]]:
    return {"type": {k: gettext(v) for k, v in CERTIFICATE_TYPES.items()},
            "status": {k: gettext(v) for k, v in STATUSES.items()},
            "reason": {k: gettext(v) for k, v in SUBSIDY_REASONS.items()}}


RECORD_COLUMNS: dict[str, list[str]] = {
    what: list(model.model_fields) for what, (_, model) in reads.RECORDS.items()}


def _fact_filter(conn: Any, district: str, first: date | None, last: date | None,
                 occupation: str | None, level: str | None) -> reads.FactFilter:
    start, end = day_range(first, last, reads.latest_district_day(conn, district), 14)
    return reads.FactFilter(start, end, _filled(occupation), int(level) if level else None)


@router.get("/agency/{district}/{what}.csv")
def agency_records_download(request: Request, district: DISTRICT, what: WHAT,
                            first: DAY = None, last: DAY = None, occupation: OCCUPATION = None,
                            level: LEVEL = None) -> Response:
    portal = portal_of(request)
    scope = agency_scope(require(request), district)
    with portal.db.scoped(scope) as conn:
        where = _fact_filter(conn, district, first, last, occupation, level)

    def rows() -> Iterator[m.BaseModel]:
        with portal.db.scoped(scope) as conn:
            yield from reads.records(conn, what, district, where,
                                     limit=portal.settings.download_limit, stream=True)

    return csv_download(f"{what}-{district}.csv", rows(), RECORD_COLUMNS[what])


# Declared after the download: "{what}" alone would also match "certificates.csv".
@router.get("/agency/{district}/{what}", response_class=HTMLResponse)
def agency_records(request: Request, district: DISTRICT, what: WHAT, first: DAY = None,
                   last: DAY = None, occupation: OCCUPATION = None, level: LEVEL = None,
                   page: PAGE = 1) -> Response:
    portal = portal_of(request)
    scope = agency_scope(require(request), district)
    size = portal.settings.page_size
    with portal.db.scoped(scope) as conn:
        where = _fact_filter(conn, district, first, last, occupation, level)
        rows = list(reads.records(conn, what, district, where, limit=size + 1,
                                  offset=(page - 1) * size))
    return portal.page(request, "agency/records.html", district=district,
                       district_name=_district_name(district), what=what, where=where,
                       rows=rows[:size], more=len(rows) > size, page=page,
                       columns=RECORD_COLUMNS[what], labels=_fact_labels())


# -- operator -----------------------------------------------------------------------------

@router.get("/operator", response_class=HTMLResponse)
def operator_overview(request: Request) -> Response:
    portal = portal_of(request)
    operator_scope(require(request))
    view = overview(portal.db, portal.settings, portal.sampler, portal.consumer_group,
                    datetime.now(UTC))
    docs_dir = portal.settings.data_docs_dir
    return portal.page(request, "operator/overview.html", view=view,
                       airflow_url=portal.settings.airflow_url,
                       severity={k: gettext(v) for k, v in SEVERITY_LABELS.items()},
                       states={k: gettext(v) for k, v in STATUSES.items()},
                       docs=docs_dir is not None and (docs_dir / "index.html").is_file())


@router.get("/operator/data-docs/{path:path}")
def data_docs(request: Request, path: str) -> Response:
    """Great Expectations' Data Docs, to operators only."""
    portal = portal_of(request)
    operator_scope(require(request))
    docs_dir = portal.settings.data_docs_dir
    root = docs_dir.resolve() if docs_dir is not None else None
    target = (root / (path or "index.html")).resolve() if root is not None else None
    if root is None or target is None or not target.is_relative_to(root) or not target.is_file():
        return HTMLResponse(gettext("No such page in the Data Docs."), status_code=404)
    return FileResponse(target)


@router.get("/metrics")
def metrics(request: Request) -> Response:
    """Prometheus text format: a scraper's bearer token, or an operator's session."""
    portal = portal_of(request)
    token = portal.settings.metrics_token
    presented = request.headers.get("authorization", "")
    if not (token and presented == f"Bearer {token.get_secret_value()}"):
        account = request.state.account
        if account is None or account.kind != "operator":
            raise Refused
    registry = CollectorRegistry(auto_describe=False)
    registry.register(OverviewCollector(lambda: overview(
        portal.db, portal.settings, portal.sampler, portal.consumer_group,
        datetime.now(UTC))))
    return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)
