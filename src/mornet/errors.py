"""Typed domain errors and the one place that turns them into HTTP answers.

Services raise `MornetError` subclasses; they never know about HTTP. The API renders every
error, including validation and routing errors, as `{"error": {"code", "message"}}`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any, ClassVar, TypeVar

from pydantic import BaseModel, ValidationError
from sqlalchemy import exc as sa_exc

from mornet.db import is_transient

if TYPE_CHECKING:
    from fastapi import FastAPI, Request, Response
    from fastapi.dependencies.models import Dependant
    from starlette.routing import BaseRoute

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


class ErrorField(BaseModel):
    field: str
    message: str


class ErrorInfo(BaseModel):
    code: str
    """Stable and machine-readable (`household_not_found`, `validation_error`, …)."""
    message: str
    details: list[ErrorField] | None = None
    """For `validation_error`: each invalid field and why."""


class ErrorResponse(BaseModel):
    """Every error answer of the API."""

    error: ErrorInfo


_REASONS = {
    400: "The body is not valid JSON.",
    401: "No valid bearer token.",
    403: "Not allowed: a blocked account, or an operation for admins.",
    404: "Not found — or not the caller's, which answers the same.",
    409: "Refused by the current state (a duplicate, a reused idempotency key, …).",
    422: "Invalid input; `details` names each field.",
    429: "Too many attempts; retry after `Retry-After` seconds.",
    502: "A service the platform depends on (the bank) refused the request.",
    503: "A service the platform depends on (the chain node) is unavailable.",
}
_ANSWERS = "__mornet_answers__"
F = TypeVar("F", bound=Callable[..., Any])


def answers(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI `responses` for error statuses, each with the error schema."""
    return {
        status: {"model": ErrorResponse, "description": _REASONS[status]} for status in statuses
    }


_ERROR_CONTENT: dict[str, Any] = {
    "content": {"application/json": {"schema": {"$ref": "#/components/schemas/ErrorResponse"}}}
}


def may_answer(*statuses: int) -> Callable[[F], F]:
    """Mark a dependency (or endpoint) with the error statuses it may answer; every route
    that uses it declares them (`declare_error_responses`)."""

    def mark(function: F) -> F:
        setattr(function, _ANSWERS, (*getattr(function, _ANSWERS, ()), *statuses))
        return function

    return mark


def _statuses(dependant: Dependant) -> set[int]:
    statuses = set(getattr(dependant.call, _ANSWERS, ()))
    if dependant.body_params:
        statuses |= {400, 422}
    if dependant.query_params or dependant.header_params or dependant.cookie_params:
        statuses.add(422)
    if dependant.path_params:
        # A path names a resource: it may not exist (or not be the caller's).
        statuses |= {404, 422}
    for dependency in dependant.dependencies:
        statuses |= _statuses(dependency)
    return statuses


def declare_error_responses(routes: Iterable[BaseRoute]) -> None:
    """Declare, on every API route, the errors it may answer with the error schema: from
    its parameters (invalid → 422, a malformed body → 400, a path → 404) and from what its
    dependencies are marked with (`may_answer`: authentication → 401/403, …)."""
    from fastapi.routing import APIRoute

    for route in routes:
        if isinstance(route, APIRoute):
            for status in sorted(_statuses(route.dependant)):
                # The schema by reference: the route's response models were built already.
                route.responses.setdefault(
                    status, {**_ERROR_CONTENT, "description": _REASONS[status]}
                )
        included = getattr(route, "original_router", None)  # an included router's routes
        if included is not None:
            declare_error_responses(included.routes)


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

    allowed_methods: list[tuple[Any, set[str]]] = []

    def allowed(path: str) -> str | None:
        """The methods the API documents for `path` (the router's own Allow header names
        only the first route it matched)."""
        from starlette.routing import compile_path

        if not allowed_methods:
            for template, operations in app.openapi().get("paths", {}).items():
                documented = {m.upper() for m in operations if m != "parameters"}
                allowed_methods.append((compile_path(template)[0], documented))
        methods: set[str] = set()
        for regex, documented in allowed_methods:
            if regex.match(path):
                methods |= documented
        return ", ".join(sorted(methods)) if methods else None

    async def on_http_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, StarletteHTTPException)
        headers = exc.headers
        if exc.status_code == 405 and (documented := allowed(request.url.path)):
            headers = {**(headers or {}), "Allow": documented}
        code = {404: "not_found", 405: "method_not_allowed"}.get(exc.status_code, "http_error")
        if render_page is not None and is_page(request):
            return render_page(
                request, MornetError(str(exc.detail), code=code, status=exc.status_code)
            )
        return JSONResponse(error_body(code, str(exc.detail)), exc.status_code, headers=headers)

    async def on_database_error(request: Request, exc: Exception) -> Response:
        if not is_transient(exc):
            raise exc  # bad data or a bug: the server error it is
        # An outage (a lock held too long, the server gone): the same request succeeds
        # later — say so, so that a client (the bank, too) sends it again.
        outage = MornetError(
            "the database is busy or unreachable; try again shortly",
            code="database_unavailable",
            status=503,
        )
        outage.headers = {"Retry-After": "1"}
        return await on_mornet_error(request, outage)

    app.add_exception_handler(MornetError, on_mornet_error)
    app.add_exception_handler(sa_exc.DBAPIError, on_database_error)
    app.add_exception_handler(RequestValidationError, on_validation_error)
    app.add_exception_handler(StarletteHTTPException, on_http_error)
