"""GraphQL plumbing shared by the contexts: the request context, input validation through
the same Pydantic schemas as REST, and one error format."""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import AsyncIterator, Callable
from functools import cached_property
from typing import Any, TypeVar

import strawberry
import structlog
from graphql import GraphQLError, GraphQLResolveInfo
from pydantic import BaseModel, ValidationError
from sqlalchemy.ext.asyncio import AsyncSession
from strawberry.extensions import SchemaExtension
from strawberry.fastapi import BaseContext
from strawberry.types import ExecutionContext
from strawberry.types import Info as StrawberryInfo

from mornet.errors import Forbidden, MornetError, Unauthorized, ValidationFailed, describe
from mornet.identity import service as identity
from mornet.identity.models import User
from mornet.runtime import Runtime

log = structlog.get_logger(__name__)
SchemaT = TypeVar("SchemaT", bound=BaseModel)


class GraphQLContext(BaseContext):
    def __init__(self, *, session: AsyncSession, runtime: Runtime) -> None:
        super().__init__()
        self.session = session
        self.runtime = runtime
        self._user: User | None = None
        # GraphQL resolves sibling query fields concurrently; one AsyncSession must not be.
        self.session_lock = asyncio.Lock()

    @cached_property
    def _bearer_token(self) -> str | None:
        header = self.request.headers.get("authorization", "") if self.request else ""
        scheme, _, token = header.partition(" ")
        return token.strip() if scheme.lower() == "bearer" and token.strip() else None

    async def user(self) -> User:
        """The authenticated caller, with the same checks as REST (blocked → refused)."""
        if self._user is None:
            token = self._bearer_token
            if token is None:
                raise Unauthorized("send an access token: Authorization: Bearer <token>")
            self._user = await identity.user_for_token(self.session, token, self.runtime.tokens)
        return self._user

    async def admin(self) -> User:
        user = await self.user()
        if not user.is_admin:
            raise Forbidden("this needs the admin role", code="admin_only")
        return user


Info = StrawberryInfo[GraphQLContext, None]


def validated(schema: type[SchemaT], **data: Any) -> SchemaT:
    """Validate GraphQL input with the REST schema so both APIs accept exactly the same."""
    try:
        return schema.model_validate(data)
    except ValidationError as exc:
        raise ValidationFailed(describe(exc)) from exc


def _formatted(error: GraphQLError) -> GraphQLError:
    original = error.original_error
    if isinstance(original, MornetError):
        code, message = original.code, original.message
    elif original is None:
        code, message = "graphql_error", error.message
    else:
        log.error("graphql.unexpected_error", error=repr(original), path=error.path)
        code, message = "internal_error", "internal error"
    return GraphQLError(
        message,
        nodes=error.nodes,
        source=error.source,
        positions=error.positions,
        path=error.path,
        extensions={"code": code},
    )


class Schema(strawberry.Schema):
    """Logs only unexpected errors: a refused or invalid request is an answer, not a fault."""

    def process_errors(
        self, errors: list[GraphQLError], execution_context: ExecutionContext | None = None
    ) -> None:
        unexpected = [e for e in errors if not isinstance(e.original_error, MornetError)]
        if unexpected:
            super().process_errors(unexpected, execution_context)


class UnitOfWork(SchemaExtension):
    """One transaction per operation: root fields take turns on the request's session, the
    transaction rolls back when any part failed (a failed mutation leaves nothing behind),
    and every error gets a `code`."""

    async def resolve(
        self,
        _next: Callable[..., Any],
        root: Any,
        info: GraphQLResolveInfo[Any],
        *args: Any,
        **kwargs: Any,
    ) -> Any:
        context = info.context
        if info.path.prev is not None or not isinstance(context, GraphQLContext):
            result = _next(root, info, *args, **kwargs)
            return await result if inspect.isawaitable(result) else result
        async with context.session_lock:
            result = _next(root, info, *args, **kwargs)
            return await result if inspect.isawaitable(result) else result

    async def on_operation(self) -> AsyncIterator[None]:
        yield
        result = self.execution_context.result
        errors = getattr(result, "errors", None)
        if result is not None and errors:
            context = self.execution_context.context
            if isinstance(context, GraphQLContext):
                await context.session.rollback()
            result.errors = [_formatted(e) for e in errors]
