"""The application object: sessions, CSRF, language, access checks and error pages."""

from __future__ import annotations

import hmac
import logging
import secrets
from collections.abc import AsyncIterator, Callable, MutableMapping
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import date, timedelta
from functools import cache
from pathlib import Path
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from jinja2 import Environment
from starlette.middleware.sessions import SessionMiddleware
from starlette.types import ASGIApp, Receive, Scope, Send

from adapters.database import libpq_url
from adapters.settings import PortalSettings, Settings
from portal import accounts
from portal.accounts import Account
from portal.db import Database
from portal.db import Scope as DbScope
from portal.operations import LagSampler
from schemas import i18n
from schemas.reference import divisions
from warehouse.templating import environment

log = logging.getLogger("skillsync.portal")
TEMPLATES = Path(__file__).resolve().parent / "templates"
STATIC = Path(__file__).resolve().parent / "static"
SESSION_COOKIE = "skillsync_session"
# The longest range a page or an endpoint reads at once.
MAX_DAYS = 366


class NotSignedIn(Exception):
    """No valid session: pages send the reader to sign in, endpoints answer 401."""


class Refused(Exception):
    """Signed in, but this is not the reader's partner, district or role: 403, no rows."""


class FormRefused(Exception):
    """A form without this session's CSRF token: 403, nothing done."""


class BadRequest(Exception):
    """A request that cannot be answered as asked (e.g. a reversed day range): 400."""


@dataclass
class Portal:
    settings: PortalSettings
    db: Database
    templates: Environment
    sampler: LagSampler
    consumer_group: str  # the ingestion group whose lag the operator pages show

    def page(self, request: Request, template: str, status: int = 200,
             **context: Any) -> HTMLResponse:
        body = self.templates.get_template(template).render(
            request=request, account=request.state.account, csrf_token=csrf_token(request),
            locale=i18n.current_locale(), locales=[(code, i18n.locale_name(code))
                                                   for code in i18n.LOCALES],
            path=request.url.path, query=str(request.url.query), **context)
        return HTMLResponse(body, status_code=status)


def portal_of(request: Request) -> Portal:
    portal: Portal = request.app.state.portal
    return portal


# -- sessions and CSRF --------------------------------------------------------------------

def csrf_token(request: Request) -> str:
    token = request.session.get("csrf")
    if not token:
        token = request.session["csrf"] = secrets.token_urlsafe(32)
    return str(token)


def csrf_ok(request: Request, submitted: str | None) -> bool:
    expected = request.session.get("csrf")
    return bool(expected and submitted and hmac.compare_digest(str(expected), submitted))


def signed_in_account(request: Request) -> Account | None:
    """The session's account, if the session is valid and the account still active."""
    username, epoch = request.session.get("user"), request.session.get("epoch")
    if not isinstance(username, str) or not isinstance(epoch, int):
        return None
    with portal_of(request).db.portal() as conn:
        account = accounts.active(conn, username, epoch)
    if account is None:
        # Disabled, password changed, or a forged name: the session is over.
        request.session.pop("user", None)
        request.session.pop("epoch", None)
    return account


def start_session(request: Request, account: Account) -> None:
    """A fresh session (and CSRF token) at sign-in, keeping only the chosen language."""
    language = request.session.get("lang")
    request.session.clear()
    request.session.update(user=account.username, epoch=account.session_epoch,
                           csrf=secrets.token_urlsafe(32))
    if language:
        request.session["lang"] = language


def local_target(target: str | None, default: str) -> str:
    """Where to go after a form: a path on this site only, never another host."""
    if target and target.startswith("/") and not target.startswith(("//", "/\\")):
        return target
    return default


# -- who may read what --------------------------------------------------------------------

def require(request: Request) -> Account:
    account: Account | None = request.state.account
    if account is None:
        raise NotSignedIn
    return account


@cache
def agency_districts() -> frozenset[str]:
    """The current districts and counties, each with an agency (the city itself has none)."""
    return frozenset(d.code for d in divisions().values()
                     if not d.retired and d.code != "330100")


def partner_scope(account: Account, partner_id: str) -> DbScope:
    """A partner reads its own pages; an operator reads any partner's."""
    if account.kind == "operator":
        return DbScope(account.role)
    if account.kind == "partner" and account.partner_id == partner_id:
        return DbScope(account.role, partner_id)
    raise Refused


def agency_scope(account: Account, district_code: str) -> DbScope:
    """An agency reads its own district's pages; an operator reads any district's."""
    if account.kind == "operator":
        if district_code not in agency_districts():
            raise Refused
        return DbScope(account.role)
    if account.kind == "agency" and account.district_code == district_code:
        return DbScope(account.role)
    raise Refused


def operator_scope(account: Account) -> DbScope:
    if account.kind != "operator":
        raise Refused
    return DbScope(account.role)


def day_range(first: date | None, last: date | None, latest: date | None,
              default_days: int) -> tuple[date, date]:
    """The range asked for, or the default_days ending on the latest day with data."""
    end = last or latest or first or date.today()
    start = first or end - timedelta(days=default_days - 1)
    if start > end:
        raise BadRequest(i18n.gettext("The first day comes after the last."))
    if (end - start).days >= MAX_DAYS:
        raise BadRequest(i18n.gettext("A range covers at most %(days)s days.")
                         % {"days": MAX_DAYS})
    return start, end


# -- middleware ---------------------------------------------------------------------------

class RequestContext:
    """Per request: the reader's language and account, and the security headers."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        session = scope.get("session", {})
        docs = scope["path"].startswith("/operator/data-docs/")

        async def with_headers(message: MutableMapping[str, Any]) -> None:
            if message["type"] == "http.response.start":
                headers = message.setdefault("headers", [])
                headers += [(b"x-content-type-options", b"nosniff"),
                            (b"referrer-policy", b"same-origin"),
                            (b"x-frame-options", b"DENY")]
                if not docs:  # Data Docs pages carry their own scripts and styles
                    headers.append((b"content-security-policy",
                                    b"default-src 'self'; img-src 'self' data:;"
                                    b" style-src 'self'; script-src 'none';"
                                    b" frame-ancestors 'none'; form-action 'self'"))
                if not any(k == b"cache-control" for k, _ in headers):
                    headers.append((b"cache-control", b"no-store"))
            await send(message)

        with i18n.use_locale(i18n.negotiate(session.get("lang"))):
            await self.app(scope, receive, with_headers)


def _account_dependency(request: Request) -> None:
    request.state.account = signed_in_account(request)


# -- the application ----------------------------------------------------------------------

def create_app(sections: Settings | None = None) -> FastAPI:
    """The portal as an ASGI application; nothing is connected until the first request."""
    from fastapi import Depends

    from portal import api, pages

    sections = sections or Settings.load()
    settings = sections.portal
    airflow = settings.airflow_database_url
    db = Database(sections.database.libpq,
                  libpq_url(airflow.get_secret_value()) if airflow else None)
    ingest = sections.ingest
    portal = Portal(settings, db, environment(TEMPLATES),
                    LagSampler(sections.kafka_if_set, ingest.topic_pattern,
                               settings.lag_refresh_s), ingest.group_id)

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        portal.sampler.start()
        yield
        portal.sampler.stop()
        db.dispose()

    app = FastAPI(title="skillsync portal", version="1", lifespan=lifespan,
                  docs_url=None, redoc_url=None, openapi_url="/api/openapi.json",
                  description="The JSON form of every table the portal's pages show. Sign in"
                  " at /login; requests carry the session cookie.",
                  dependencies=[Depends(_account_dependency)])
    app.state.portal = portal
    secret = settings.session_secret.get_secret_value() if settings.session_secret \
        else secrets.token_urlsafe(48)
    # Added last, runs first: the session is read before the request context needs it.
    app.add_middleware(RequestContext)
    app.add_middleware(SessionMiddleware, secret_key=secret, session_cookie=SESSION_COOKIE,
                       max_age=settings.session_max_age_s, same_site="strict",
                       https_only=settings.secure_cookies)
    _error_handlers(app)
    app.include_router(pages.router)
    app.include_router(api.router)
    return app


def _is_api(request: Request) -> bool:
    return request.url.path.startswith("/api/")


def _error_handlers(app: FastAPI) -> None:
    def handler(status: int, message: Callable[[], str]) -> Callable[..., Response]:
        def handle(request: Request, exc: Exception) -> Response:
            text = str(exc) if isinstance(exc, BadRequest) else message()
            if _is_api(request):
                return JSONResponse({"detail": text}, status_code=status)
            if status == 401:
                target = request.url.path + (f"?{request.url.query}" if request.url.query
                                             else "")
                return RedirectResponse(f"/login?next={_quote(target)}", status_code=303)
            if not hasattr(request.state, "account"):
                request.state.account = None
            return portal_of(request).page(request, "error.html", status=status,
                                           status_code=status, message=text)
        return handle

    app.add_exception_handler(NotSignedIn, handler(401, lambda: i18n.gettext(
        "Please sign in.")))
    app.add_exception_handler(Refused, handler(403, lambda: i18n.gettext(
        "This page belongs to another partner, district or role: nothing is shown.")))
    app.add_exception_handler(FormRefused, handler(403, lambda: i18n.gettext(
        "This form did not come from this portal's page, or it expired: nothing was done."
        " Reload the page and try again.")))
    app.add_exception_handler(BadRequest, handler(400, lambda: ""))


def _quote(value: str) -> str:
    from urllib.parse import quote

    return quote(value, safe="/")
