"""Sign-in and sign-out.

A token (the platform admin token, a tenant API key, or a tenant JWT) is posted once, checked with
the tenant API's ``/v1/auth/whoami``, and kept in the encrypted session cookie; it never appears in a
URL. Both forms only accept posts from the dashboard's own pages.
"""

from __future__ import annotations

from fastapi import APIRouter, Depends, Request
from fastapi.responses import RedirectResponse, Response

from . import client
from .session import COOKIE, Session
from .web import clear_session, render, require_same_origin

router = APIRouter()
#: Longer than any token modelyard issues (a JWT is ~250 characters); a longer post is not a token.
MAX_TOKEN_CHARS = 4096


@router.get("/signin")
async def signin_form(request: Request, expired: bool = False) -> Response:
    if request.app.state.sealer.open(request.cookies.get(COOKIE)) is not None:
        return RedirectResponse("/", status_code=303)
    notice = "Your session ended (signed out elsewhere, key revoked or token expired): sign in again." if expired else None
    return render(request, "signin.html", notice=notice, error=None)


@router.post("/signin", dependencies=[Depends(require_same_origin)])
async def signin(request: Request) -> Response:
    form = await request.form()
    token = str(form.get("token") or "").strip()
    if not token:
        return render(request, "signin.html", 422, notice=None, error="Enter a token.")
    if len(token) > MAX_TOKEN_CHARS:
        return render(request, "signin.html", 422, notice=None, error=f"That is longer than any token ({MAX_TOKEN_CHARS} characters at most).")
    try:
        who = await request.app.state.api.whoami(token)
    except client.SignedOut:
        return render(request, "signin.html", 401, notice=None, error="That token was not accepted: check it, or ask for a new API key.")
    session = Session(token=token, role=who["role"], tenant_id=who["tenant_id"], via=who["via"])
    settings = request.app.state.settings
    response = RedirectResponse("/", status_code=303)
    response.set_cookie(COOKIE, request.app.state.sealer.seal(session), max_age=settings.dashboard_session_ttl_s,
                        path="/", secure=settings.dashboard_cookie_secure, httponly=True, samesite="strict")
    return response


@router.post("/signout", dependencies=[Depends(require_same_origin)])
async def signout(request: Request) -> Response:
    return clear_session(RedirectResponse("/signin", status_code=303), request.app.state.settings.dashboard_cookie_secure)
