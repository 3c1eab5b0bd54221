"""JSON endpoints behind the same sign-in: every table the pages show, in the OpenAPI document."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from fastapi import APIRouter, Request
from pydantic import BaseModel

from portal import models as m
from portal import reads
from portal.operations import overview
from portal.pages import (
    DAY,
    DISTRICT,
    LEVEL,
    OCCUPATION,
    PAGE,
    PARTNER_ID,
    STAGE,
    TEXT,
    WHAT,
    _fact_filter,
    _filled,
    _refusal_filter,
)
from portal.web import agency_scope, day_range, operator_scope, partner_scope, portal_of, require

ERRORS: dict[int | str, dict[str, Any]] = {
    400: {"model": m.Problem, "description": "The request cannot be answered as asked"},
    401: {"model": m.Problem, "description": "Not signed in"},
    403: {"model": m.Problem, "description": "Another partner's, district's or role's data"},
}
router = APIRouter(prefix="/api", tags=["portal"], responses=ERRORS)


class Me(BaseModel):
    username: str
    kind: str
    partner_id: str | None
    district_code: str | None
    home: str


@router.get("/me", response_model=Me)
def me(request: Request) -> Me:
    account = require(request)
    return Me(username=account.username, kind=account.kind, partner_id=account.partner_id,
              district_code=account.district_code, home=account.home)


# -- partner ------------------------------------------------------------------------------

@router.get("/partners/{partner_id}/scorecards", response_model=list[m.ScorecardDay])
def scorecards(request: Request, partner_id: PARTNER_ID, first: DAY = None,
               last: DAY = None) -> list[m.ScorecardDay]:
    """The partner's scorecard of each day in the range (default: its last 30 days)."""
    portal = portal_of(request)
    with portal.db.scoped(partner_scope(require(request), partner_id)) as conn:
        start, end = day_range(first, last, reads.latest_partner_day(conn, partner_id), 30)
        return reads.scorecards(conn, partner_id, start, end)


@router.get("/partners/{partner_id}/refusal-reasons", response_model=list[m.ReasonCount])
def refusal_reasons(request: Request, partner_id: PARTNER_ID, first: DAY = None,
                    last: DAY = None) -> list[m.ReasonCount]:
    portal = portal_of(request)
    with portal.db.scoped(partner_scope(require(request), partner_id)) as conn:
        start, end = day_range(first, last, reads.latest_partner_day(conn, partner_id), 7)
        return reads.refusal_reasons(conn, partner_id, start, end)


@router.get("/partners/{partner_id}/refusals", response_model=m.RefusalPage)
def refusals(request: Request, partner_id: PARTNER_ID, first: DAY = None, last: DAY = None,
             reason: TEXT = None, stage: STAGE = None, event_id: TEXT = None,
             path: TEXT = None, page: PAGE = 1) -> m.RefusalPage:
    """Refused events with reason code, JSON path, message and fix hint, a page at a time."""
    portal = portal_of(request)
    with portal.db.scoped(partner_scope(require(request), partner_id)) as conn:
        where = _refusal_filter(conn, partner_id, first, last, reason, stage, event_id, path)
        return reads.refusals(conn, partner_id, where, page=page,
                              page_size=portal.settings.page_size)


@router.get("/partners/{partner_id}/control-totals", response_model=list[m.ControlTotalDay])
def control_totals(request: Request, partner_id: PARTNER_ID, first: DAY = None,
                   last: DAY = None) -> list[m.ControlTotalDay]:
    portal = portal_of(request)
    with portal.db.scoped(partner_scope(require(request), partner_id)) as conn:
        start, end = day_range(first, last, reads.latest_partner_day(conn, partner_id), 30)
        return reads.control_totals(conn, partner_id, start, end)


@router.get("/partners/{partner_id}/notices", response_model=list[m.Notice])
def notices(request: Request, partner_id: PARTNER_ID, first: DAY = None, last: DAY = None,
            kind: TEXT = None, page: PAGE = 1) -> list[m.Notice]:
    """The nights' findings about the partner's records (warehouse discrepancies)."""
    portal = portal_of(request)
    with portal.db.scoped(partner_scope(require(request), partner_id)) as conn:
        start, end = day_range(first, last, reads.latest_partner_day(conn, partner_id), 7)
        return reads.notices(conn, partner_id, start, end, kind=_filled(kind), page=page,
                             page_size=portal.settings.page_size)


@router.get("/partners/{partner_id}/feed", response_model=m.FeedState)
def feed(request: Request, partner_id: PARTNER_ID) -> m.FeedState:
    """How far the partner's sync feed is published (the relay against the last change)."""
    portal = portal_of(request)
    with portal.db.scoped(partner_scope(require(request), partner_id)) as conn:
        return reads.feed_state(conn, partner_id)


# -- agency -------------------------------------------------------------------------------

@router.get("/agencies/{district}/summary", response_model=m.DistrictSummary)
def district_summary(request: Request, district: DISTRICT, first: DAY = None,
                     last: DAY = None) -> m.DistrictSummary:
    """Certificates, evaluations and subsidy decisions by occupation and level, and per day."""
    portal = portal_of(request)
    with portal.db.scoped(agency_scope(require(request), district)) as conn:
        start, end = day_range(first, last, reads.latest_district_day(conn, district), 14)
        return reads.district_summary(conn, district, start, end)


def _records(request: Request, what: WHAT, district: str, first: Any, last: Any,
             occupation: str | None, level: str | None, page: int) -> list[Any]:
    portal = portal_of(request)
    size = portal.settings.page_size
    with portal.db.scoped(agency_scope(require(request), district)) as conn:
        where = _fact_filter(conn, district, first, last, occupation, level)
        return list(reads.records(conn, what, district, where, limit=size,
                                  offset=(page - 1) * size))


@router.get("/agencies/{district}/certificates", response_model=list[m.CertificateRecord])
def certificates(request: Request, district: DISTRICT, first: DAY = None, last: DAY = None,
                 occupation: OCCUPATION = None, level: LEVEL = None,
                 page: PAGE = 1) -> list[Any]:
    """The district's certificates, learners shown only by masked ID number and name."""
    return _records(request, "certificates", district, first, last, occupation, level, page)


@router.get("/agencies/{district}/evaluations", response_model=list[m.EvaluationRecord])
def evaluations(request: Request, district: DISTRICT, first: DAY = None, last: DAY = None,
                occupation: OCCUPATION = None, level: LEVEL = None,
                page: PAGE = 1) -> list[Any]:
    return _records(request, "evaluations", district, first, last, occupation, level, page)


@router.get("/agencies/{district}/subsidies", response_model=list[m.SubsidyRecord])
def subsidies(request: Request, district: DISTRICT, first: DAY = None, last: DAY = None,
              occupation: OCCUPATION = None, level: LEVEL = None,
              page: PAGE = 1) -> list[Any]:
    return _records(request, "subsidies", district, first, last, occupation, level, page)


# -- operator -----------------------------------------------------------------------------

def _overview(request: Request) -> m.Overview:
    portal = portal_of(request)
    operator_scope(require(request))
    return overview(portal.db, portal.settings, portal.sampler, portal.consumer_group,
                    datetime.now(UTC))


@router.get("/operator/overview", response_model=m.Overview)
def operator_overview(request: Request) -> m.Overview:
    """Lag and freshness per partner, the last nights, validation failures and alerts."""
    return _overview(request)


@router.get("/operator/partners", response_model=list[m.PartnerIngest])
def operator_partners(request: Request) -> list[m.PartnerIngest]:
    return _overview(request).partners


@router.get("/operator/runs", response_model=list[m.NightlyRun])
def operator_runs(request: Request) -> list[m.NightlyRun]:
    return _overview(request).runs


@router.get("/operator/loads", response_model=list[m.LoadRun])
def operator_loads(request: Request) -> list[m.LoadRun]:
    return _overview(request).loads


@router.get("/operator/validation-failures", response_model=list[m.ValidationFailure])
def operator_validation(request: Request) -> list[m.ValidationFailure]:
    return _overview(request).validation_failures


@router.get("/operator/alerts", response_model=list[m.Alert])
def operator_alerts(request: Request) -> list[m.Alert]:
    return _overview(request).alerts
