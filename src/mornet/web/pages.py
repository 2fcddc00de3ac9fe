"""Page plumbing shared by every context's `pages.py`: templates, the cookie session, CSRF.

The pages authenticate with an HttpOnly, SameSite=Lax cookie that holds the same signed
access token the API takes as a bearer token, so blocking a user ends their page session at
once. Every state-changing form carries a CSRF token that must match the `mornet_csrf`
cookie (double submit); the API itself takes bearer tokens only and so needs none.
"""

from __future__ import annotations

import hmac
import secrets
from collections.abc import Awaitable, Callable
from datetime import datetime
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any
from urllib.parse import quote
from zoneinfo import ZoneInfo

from fastapi import Depends, FastAPI, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from fastapi.templating import Jinja2Templates
from pydantic import ValidationError
from sqlalchemy.ext.asyncio import AsyncSession

from mornet.dependencies import get_platform
from mornet.errors import MornetError, ValidationFailed, describe

WEB_DIR = Path(__file__).parent
SESSION_COOKIE = "mornet_session"
CSRF_COOKIE = "mornet_csrf"
CSRF_FIELD = "csrf_token"
CSRF_HEADER = "x-csrf-token"

templates = Jinja2Templates(directory=WEB_DIR / "templates")


def _local_time(value: datetime | None, zone: str = "UTC") -> str:
    if value is None:
        return "—"
    return value.astimezone(ZoneInfo(zone)).strftime("%Y-%m-%d %H:%M %Z")


templates.env.filters["local_time"] = _local_time


class LoginRequired(Exception):
    """No valid session: the page redirects to the login form."""


class PageForbidden(Exception):
    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


FormFailure = (ValidationError, MornetError)
"""What a form handler catches to re-render its page with the reason."""


def failure(exc: ValidationError | MornetError) -> tuple[str, int]:
    """The message and status to show for a rejected form."""
    if isinstance(exc, ValidationError):
        return describe(exc, readable=True), 422
    return exc.message, exc.status


async def submit_form(
    session: AsyncSession,
    action: Callable[[], Awaitable[Response]],
    on_refusal: Callable[[str, int], Awaitable[Response]],
    *,
    raise_through: tuple[type[Exception], ...] = (),
) -> Response:
    """Run a form's `action` (parse the fields, call the service, answer). Refused — invalid
    input or a broken rule — the request's transaction is rolled back, so nothing the action
    did stays, and `on_refusal(message, status)` renders the form again with the reason. An
    error of a `raise_through` type (someone else's household: 404) gets its error page."""
    try:
        return await action()
    except FormFailure as exc:
        if isinstance(exc, raise_through):
            raise
        # Not a savepoint: on SQLite, one would hold a read snapshot across the action and
        # its first write could then fail at once as stale. The rollback expired what the
        # session holds (the signed-in user, say); the page reads them again.
        await session.rollback()
        for instance in list(session.identity_map.values()):
            await session.refresh(instance)
        message, status = failure(exc)
        return await on_refusal(message, status)


def form_decimal(label: str, text: str) -> Decimal:
    """A number typed into a form; a decimal comma is accepted."""
    try:
        return Decimal(text.strip().replace(",", "."))
    except InvalidOperation as exc:
        raise ValidationFailed(f"{label}: {text!r} is not a number") from exc


def is_htmx(request: Request) -> bool:
    return request.headers.get("hx-request") == "true"


def csrf_token(request: Request) -> str:
    token = getattr(request.state, "csrf_token", None) or request.cookies.get(CSRF_COOKIE)
    if not token:
        token = secrets.token_urlsafe(32)
    request.state.csrf_token = token
    return token


async def verify_csrf(request: Request) -> None:
    form = await request.form()
    sent = form.get(CSRF_FIELD) or request.headers.get(CSRF_HEADER) or ""
    expected = request.cookies.get(CSRF_COOKIE) or ""
    if not expected or not isinstance(sent, str) or not hmac.compare_digest(sent, expected):
        raise PageForbidden(
            "The form expired or came from another site. Reload the page and try again."
        )


CsrfChecked = Depends(verify_csrf)


def _set_csrf_cookie(request: Request, response: Response) -> None:
    token = getattr(request.state, "csrf_token", None)
    if token and request.cookies.get(CSRF_COOKIE) != token:
        response.set_cookie(
            CSRF_COOKIE,
            token,
            httponly=True,
            samesite="lax",
            secure=get_platform(request).settings.cookie_secure,
            path="/",
        )


def render(
    request: Request,
    template: str,
    context: dict[str, Any] | None = None,
    *,
    user: object | None = None,
    status_code: int = 200,
) -> HTMLResponse:
    """`user` is the signed-in viewer the layout greets (identity's page dependencies give it)."""
    token = csrf_token(request)
    response = templates.TemplateResponse(
        request,
        template,
        {"user": user, "csrf_token": token, **(context or {})},
        status_code=status_code,
    )
    _set_csrf_cookie(request, response)
    return response


def redirect(url: str) -> RedirectResponse:
    return RedirectResponse(url, status_code=303)


def start_session(response: Response, request: Request, access_token: str, *, max_age: int) -> None:
    response.set_cookie(
        SESSION_COOKIE,
        access_token,
        max_age=max_age,
        httponly=True,
        samesite="lax",
        secure=get_platform(request).settings.cookie_secure,
        path="/",
    )


def end_session(response: Response) -> None:
    response.delete_cookie(SESSION_COOKIE, path="/")


def safe_next(target: str | None, default: str = "/dashboard") -> str:
    """Only same-site paths: `next` must never send a user to another host."""
    if target and target.startswith("/") and not target.startswith("//") and "\\" not in target:
        return target
    return default


def render_error_page(request: Request, error: MornetError) -> Response:
    """HTML rendering of a domain error raised on a page (the API renders JSON)."""
    response = render(
        request,
        "error.html",
        {"title": error.page_title, "message": error.message},
        status_code=error.status,
    )
    if error.ends_session:
        end_session(response)
    return response


def install_page_handlers(app: FastAPI) -> None:
    async def on_login_required(request: Request, _: Exception) -> Response:
        target = "/login?next=" + quote(request.url.path)
        if is_htmx(request):
            return Response(status_code=401, headers={"HX-Redirect": target})
        return redirect(target)

    async def on_forbidden(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, PageForbidden)
        return render(
            request, "error.html", {"title": "Not allowed", "message": exc.message}, status_code=403
        )

    app.add_exception_handler(LoginRequired, on_login_required)
    app.add_exception_handler(PageForbidden, on_forbidden)
    app.mount("/static", StaticFiles(directory=WEB_DIR / "static"), name="static")
