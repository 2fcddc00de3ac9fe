"""Typed domain errors and the one place that turns them into HTTP answers.

Services raise `MornetError` subclasses; they never know about HTTP. The API renders every
error, including validation and routing errors, as `{"error": {"code", "message"}}`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any, ClassVar

from pydantic import ValidationError

if TYPE_CHECKING:
    from fastapi import FastAPI, Request, Response

    PageErrorRenderer = Callable[[Request, "MornetError"], Response]

API_PREFIXES = ("/api", "/graphql", "/healthz", "/docs", "/openapi.json")


class MornetError(Exception):
    status: ClassVar[int] = 400
    code: ClassVar[str] = "bad_request"
    headers: dict[str, str] | None = None
    """Extra HTTP headers of the answer (e.g. Retry-After)."""
    page_title: ClassVar[str] = "Something is wrong"
    """The heading of the error page when a page raised it."""
    ends_session: ClassVar[bool] = False
    """True when the caller's page session must end with this answer (a blocked account)."""

    def __init__(self, message: str, *, code: str | None = None, status: int | None = None) -> None:
        super().__init__(message)
        self.message = message
        # Per-instance refinements of the class defaults.
        if code is not None:
            self.code = code  # type: ignore[misc]
        if status is not None:
            self.status = status  # type: ignore[misc]


class ValidationFailed(MornetError):
    status = 422
    code = "validation_error"


class Unauthorized(MornetError):
    status = 401
    code = "unauthorized"


class Forbidden(MornetError):
    status = 403
    code = "forbidden"


class NotFound(MornetError):
    status = 404
    code = "not_found"


class Conflict(MornetError):
    status = 409
    code = "conflict"


def describe(exc: ValidationError, *, limit: int | None = None, readable: bool = False) -> str:
    """One line naming each invalid field and why (`readable`: field names for people)."""
    parts = []
    for err in exc.errors()[:limit]:
        field = ".".join(str(p) for p in err["loc"])
        parts.append(f"{field.replace('_', ' ') if readable else field}: {err['msg']}")
    return "; ".join(parts)


def error_body(code: str, message: str, **extra: Any) -> dict[str, Any]:
    return {"error": {"code": code, "message": message, **extra}}


def install_error_handlers(app: FastAPI, render_page: PageErrorRenderer | None = None) -> None:
    """JSON errors for the API; pages get `render_page`'s HTML for the same errors."""
    from fastapi.exceptions import RequestValidationError
    from fastapi.responses import JSONResponse
    from starlette.exceptions import HTTPException as StarletteHTTPException

    def is_page(request: Request) -> bool:
        return render_page is not None and not request.url.path.startswith(API_PREFIXES)

    async def on_mornet_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, MornetError)
        if render_page is not None and is_page(request):
            return render_page(request, exc)
        headers = {"WWW-Authenticate": "Bearer"} if exc.status == 401 else exc.headers
        return JSONResponse(error_body(exc.code, exc.message), exc.status, headers=headers)

    async def on_validation_error(_: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, RequestValidationError)
        details = [
            {
                "field": ".".join(str(part) for part in err["loc"] if part != "body"),
                "message": err["msg"],
            }
            for err in exc.errors()
        ]
        summary = "; ".join(f"{d['field']}: {d['message']}" for d in details)
        body = error_body("validation_error", summary or "invalid request", details=details)
        return JSONResponse(body, 422)

    async def on_http_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, StarletteHTTPException)
        code = {404: "not_found", 405: "method_not_allowed"}.get(exc.status_code, "http_error")
        if render_page is not None and is_page(request):
            return render_page(
                request, MornetError(str(exc.detail), code=code, status=exc.status_code)
            )
        return JSONResponse(error_body(code, str(exc.detail)), exc.status_code, headers=exc.headers)

    app.add_exception_handler(MornetError, on_mornet_error)
    app.add_exception_handler(RequestValidationError, on_validation_error)
    app.add_exception_handler(StarletteHTTPException, on_http_error)
