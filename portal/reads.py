"""The partner and agency pages' reads, each on a connection already in the reader's scope."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import date
from typing import Any

from sqlalchemy import Connection, TextClause

from portal import models as m
from portal import queries as q
from schemas.errors import FIX_HINTS, REASON_CODES
from schemas.i18n import current_locale, gettext, number
from warehouse.agency import agency_role
from warehouse.labels import DISCREPANCY_KINDS, SUBSIDY_REASONS, label


@dataclass(frozen=True)
class RefusalFilter:
    first: date
    last: date
    reason: str | None = None
    stage: str | None = None
    event_id: str | None = None
    path: str | None = None

    def params(self, partner_id: str) -> dict[str, Any]:
        return {"partner": partner_id, "first": self.first, "last": self.last,
                "reason": self.reason or None, "stage": self.stage or None,
                "event_id": self.event_id or None, "path": self.path or None}


@dataclass(frozen=True)
class FactFilter:
    first: date
    last: date
    occupation: str | None = None
    level: int | None = None

    def params(self, district_code: str) -> dict[str, Any]:
        return {"agency": agency_role(district_code), "first": self.first, "last": self.last,
                "occupation": self.occupation or None, "level": self.level}


def reason_text(code: str) -> str:
    return gettext(REASON_CODES[code]) if code in REASON_CODES else code


def fix_hint(code: str) -> str:
    return gettext(FIX_HINTS[code]) if code in FIX_HINTS else ""


def _rows(conn: Connection, statement: TextClause,
          params: Mapping[str, Any]) -> list[dict[str, Any]]:
    return [dict(row) for row in conn.execute(statement, params).mappings()]


# -- partner ------------------------------------------------------------------------------

def partner_name(conn: Connection, partner_id: str) -> tuple[str | None, str | None]:
    row = conn.execute(q.PARTNER_NAME, {"partner": partner_id}).first()
    return (row.name, row.role) if row else (None, None)


def latest_partner_day(conn: Connection, partner_id: str) -> date | None:
    return conn.execute(q.PARTNER_LATEST_DAY, {"partner": partner_id}).scalar_one()


def scorecards(conn: Connection, partner_id: str, first: date,
               last: date) -> list[m.ScorecardDay]:
    return [m.ScorecardDay(**row) for row in _rows(
        conn, q.PARTNER_SCORECARDS, {"partner": partner_id, "first": first, "last": last})]


def refusal_reasons(conn: Connection, partner_id: str, first: date,
                    last: date) -> list[m.ReasonCount]:
    return [m.ReasonCount(reason_code=r["reason_code"], reason=reason_text(r["reason_code"]),
                          fix_hint=fix_hint(r["reason_code"]), refused=r["refused"])
            for r in _rows(conn, q.REFUSAL_REASONS,
                           {"partner": partner_id, "first": first, "last": last})]


def _refusal(row: Mapping[str, Any]) -> m.Refusal:
    return m.Refusal(**row, reason=reason_text(row["reason_code"]),
                     fix_hint=fix_hint(row["reason_code"]))


def refusals(conn: Connection, partner_id: str, where: RefusalFilter, *, page: int,
             page_size: int) -> m.RefusalPage:
    params = where.params(partner_id)
    total = conn.execute(q.REFUSAL_COUNT, params).scalar_one()
    rows = _rows(conn, q.REFUSALS, {**params, "limit": page_size,
                                    "offset": (page - 1) * page_size})
    return m.RefusalPage(partner_id=partner_id, first=where.first, last=where.last, total=total,
                         page=page, page_size=page_size, rows=[_refusal(r) for r in rows])


def all_refusals(conn: Connection, partner_id: str, where: RefusalFilter,
                 limit: int) -> Iterator[m.Refusal]:
    """Every refusal the filter selects (up to limit), streamed from a server-side cursor."""
    result = conn.execution_options(stream_results=True, max_row_buffer=2000).execute(
        q.REFUSALS, {**where.params(partner_id), "limit": limit, "offset": 0})
    for row in result.mappings():
        yield _refusal(dict(row))


def control_totals(conn: Connection, partner_id: str, first: date,
                   last: date) -> list[m.ControlTotalDay]:
    days = []
    for row in _rows(conn, q.CONTROL_TOTALS, {"partner": partner_id, "first": first,
                                              "last": last}):
        gaps: dict[str, dict[str, Any]] = row["families"] or {}
        counts: dict[str, int] = row["counts"] or {}
        families = []
        for family in sorted(set(counts) | set(gaps)):
            gap = gaps.get(family)
            if gap is None:
                families.append(m.ControlFamily(family=family, counted=counts[family],
                                                landed=counts[family], missing=0, extra=0))
            else:
                families.append(m.ControlFamily(
                    family=family, counted=gap["counted"], landed=gap["landed"],
                    missing=gap["missing_count"] or 0, extra=gap["extra_count"] or 0))
        status = "not_sent" if row["event_id"] is None else ("gap" if gaps else "ok")
        days.append(m.ControlTotalDay(business_day=row["business_day"], status=status,
                                      loaded=row["loaded"], event_id=row["event_id"],
                                      reported_at=row["appended_at"], families=families))
    return days


def notices(conn: Connection, partner_id: str, first: date, last: date, *,
            kind: str | None = None, page: int = 1, page_size: int = 100) -> list[m.Notice]:
    rows = _rows(conn, q.NOTICES, {"partner": partner_id, "first": first, "last": last,
                                   "kind": kind or None, "limit": page_size,
                                   "offset": (page - 1) * page_size})
    return [m.Notice(**row, kind_text=label(DISCREPANCY_KINDS, row["kind"])) for row in rows]


def feed_state(conn: Connection, partner_id: str) -> m.FeedState:
    """How far the partner's sync feed is published: the relay's position against the version
    of the last change the nights wrote for it."""
    row = conn.execute(q.FEED_STATE, {"partner": partner_id}).mappings().one_or_none()
    if row is None:
        return m.FeedState(available=False, state=gettext("not available"))
    last, published = int(row["last_version"]), int(row["published_version"])
    if published >= last:
        state = gettext("up to date at version %(version)s") % {"version": number(last)}
    else:
        state = gettext("%(pending)s changes not yet published (version %(published)s of "
                        "%(last)s)") % {"pending": number(last - published),
                                        "published": number(published), "last": number(last)}
    return m.FeedState(available=True, state=state, last_version=last,
                       published_version=published)


# -- agency -------------------------------------------------------------------------------

def _occupation(row: Mapping[str, Any]) -> str:
    name = row["name_zh"] if current_locale().startswith("zh") else row["name_en"]
    return name or row.get("occupation_code") or ""


def latest_district_day(conn: Connection, district_code: str) -> date | None:
    return conn.execute(q.DISTRICT_LATEST_DAY,
                        {"agency": agency_role(district_code)}).scalar_one()


def district_summary(conn: Connection, district_code: str, first: date,
                     last: date) -> m.DistrictSummary:
    params = {"agency": agency_role(district_code), "first": first, "last": last}

    def named(statement: TextClause) -> list[dict[str, Any]]:
        return [{**r, "occupation": _occupation(r)} for r in _rows(conn, statement, params)]

    return m.DistrictSummary(
        district_code=district_code, first=first, last=last,
        certificates=[m.CertificateCount(**r) for r in named(q.CERTIFICATES_BY_OCCUPATION)],
        evaluations=[m.EvaluationCount(**r) for r in named(q.EVALUATIONS_BY_OCCUPATION)],
        subsidies=[m.SubsidyCount(**r) for r in named(q.SUBSIDIES_BY_OCCUPATION)],
        decisions=[m.SubsidyDecision(**r, reason_text=label(SUBSIDY_REASONS, r["reason"]))
                   for r in _rows(conn, q.SUBSIDY_DECISIONS, params)],
        days=[m.DistrictDay(**r) for r in _rows(conn, q.DISTRICT_DAYS, params)])


RECORDS: dict[str, tuple[TextClause, type[m.BaseModel]]] = {
    "certificates": (q.CERTIFICATE_RECORDS, m.CertificateRecord),
    "evaluations": (q.EVALUATION_RECORDS, m.EvaluationRecord),
    "subsidies": (q.SUBSIDY_RECORDS, m.SubsidyRecord),
}


def records(conn: Connection, what: str, district_code: str, where: FactFilter, *,
            limit: int, offset: int = 0, stream: bool = False) -> Iterator[m.BaseModel]:
    statement, model = RECORDS[what]
    if stream:
        conn = conn.execution_options(stream_results=True, max_row_buffer=2000)
    result = conn.execute(statement, {**where.params(district_code), "limit": limit,
                                      "offset": offset})
    for row in result.mappings():
        yield model(**row)
