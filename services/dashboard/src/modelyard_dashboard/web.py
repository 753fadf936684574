"""What every page shares: templates, the signed-in session, the same-origin check of forms, security
headers, and how errors of the tenant API become pages.

A request without a valid session is sent to the sign-in page (a live fragment gets 401, and its
script reloads the page, which then redirects). A token the tenant API stops accepting (a revoked
key, an expired JWT) ends the session the same way.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import urlsplit

from fastapi import FastAPI, Request
from fastapi.responses import HTMLResponse, PlainTextResponse, RedirectResponse, Response
from fastapi.templating import Jinja2Templates
from jinja2 import Environment, FileSystemLoader, StrictUndefined

from . import client
from .charts import gauge_bar
from .analytics import RangeError
from .formatting import FILTERS
from .session import COOKIE, Session

HERE = Path(__file__).resolve().parent
TENANT_ID = re.compile(r"^[A-Za-z0-9_-]{1,128}$")

#: Everything the pages load comes from this origin; charts are inline SVG, styled by the stylesheet.
SECURITY_HEADERS = {
    "Content-Security-Policy": "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; "
                               "connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "X-Frame-Options": "DENY",
    "Cache-Control": "no-store",
}


class NeedsSignIn(Exception):
    """No session, or one the tenant API no longer accepts."""

    def __init__(self, expired: bool = False) -> None:
        super().__init__("sign-in needed")
        self.expired = expired


class CrossOrigin(Exception):
    """A form posted from another origin (or with no Origin or Referer to tell)."""


def make_templates() -> Jinja2Templates:
    env = Environment(loader=FileSystemLoader(HERE / "templates"), autoescape=True, undefined=StrictUndefined,
                      trim_blocks=True, lstrip_blocks=True)
    env.filters.update(FILTERS)
    env.globals.update(fmt=FILTERS, gauge_bar=gauge_bar)
    return Jinja2Templates(env=env)


def render(request: Request, template: str, status_code: int = 200, **context) -> HTMLResponse:
    state = request.app.state
    context.setdefault("session", getattr(request.state, "session", None))
    for name in ("selector", "span", "current_tenant", "active"):
        context.setdefault(name, None)
    context.setdefault("refresh_s", state.settings.dashboard_refresh_s)
    context.setdefault("updated", datetime.now(UTC).strftime("%H:%M:%S UTC"))
    return state.templates.TemplateResponse(request, template, context, status_code=status_code)


def current_session(request: Request) -> Session:
    """FastAPI dependency: the signed-in user, from the encrypted cookie."""
    session = request.app.state.sealer.open(request.cookies.get(COOKIE))
    if session is None:
        raise NeedsSignIn()
    request.state.session = session
    return session


def check_tenant_path(session: Session, tenant_id: str) -> None:
    """A tenant session sees its own organisation only: anything else is 'not found', as in the API."""
    if not TENANT_ID.match(tenant_id) or not session.can_see(tenant_id):
        raise client.NotFound("no such organisation")


def require_same_origin(request: Request) -> None:
    """POST forms must come from the dashboard's own pages (with the SameSite=Strict cookie, this stops
    cross-site form posts, sign-in ones included)."""
    settings = request.app.state.settings
    expected = (settings.dashboard_public_origin or f"{request.url.scheme}://{request.headers.get('host', '')}").rstrip("/")
    origin = request.headers.get("origin")
    if not origin or origin == "null":
        referer = urlsplit(request.headers.get("referer", ""))
        origin = f"{referer.scheme}://{referer.netloc}" if referer.scheme and referer.netloc else None
    if origin is None or origin.rstrip("/") != expected:
        raise CrossOrigin()


def clear_session(response: Response, secure: bool) -> Response:
    response.delete_cookie(COOKIE, path="/", secure=secure, httponly=True, samesite="strict")
    return response


def _is_fragment(request: Request) -> bool:
    return request.url.path.endswith("/live")


def install(app: FastAPI) -> None:
    """Security headers on every response, and the error pages."""

    @app.middleware("http")
    async def security_headers(request: Request, call_next):
        response = await call_next(request)
        for name, value in SECURITY_HEADERS.items():
            response.headers.setdefault(name, value)
        return response

    @app.exception_handler(NeedsSignIn)
    async def sign_in_first(request: Request, exc: NeedsSignIn) -> Response:
        secure = request.app.state.settings.dashboard_cookie_secure
        if _is_fragment(request):
            return clear_session(PlainTextResponse("sign-in needed", status_code=401), secure)
        target = "/signin?expired=1" if exc.expired else "/signin"
        return clear_session(RedirectResponse(target, status_code=303), secure)

    @app.exception_handler(CrossOrigin)
    async def cross_origin(request: Request, exc: CrossOrigin) -> Response:
        return render(request, "error.html", 403, title="Refused", message="This form was not sent from the dashboard's own page.")

    @app.exception_handler(RangeError)
    async def bad_range(request: Request, exc: RangeError) -> Response:
        return render(request, "error.html", 422, title="Invalid range", message=f"The date range is invalid: {exc.field} {exc.message}.")

    @app.exception_handler(client.ApiError)
    async def api_error(request: Request, exc: client.ApiError) -> Response:
        if isinstance(exc, client.SignedOut):
            return await sign_in_first(request, NeedsSignIn(expired=True))
        if _is_fragment(request):
            return PlainTextResponse(str(exc), status_code=exc.status)
        titles = {404: "Not found", 403: "Not allowed", 503: "Tenant API unavailable"}
        messages = {404: "There is no such organisation, or it is not yours to see.", 403: f"Not allowed: {exc}"}
        return render(request, "error.html", exc.status, title=titles.get(exc.status, "Error"),
                      message=messages.get(exc.status, str(exc)))
