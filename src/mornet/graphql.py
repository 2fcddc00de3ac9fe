"""GraphQL plumbing shared by the contexts: the request context, input validation through
the same Pydantic schemas as REST, and one error format."""

from __future__ import annotations

import asyncio
import inspect
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from functools import cached_property
from typing import Any, TypeVar

import strawberry
import strawberry.federation
import structlog
from graphql import (
    FieldNode,
    FragmentDefinitionNode,
    FragmentSpreadNode,
    GraphQLError,
    GraphQLResolveInfo,
    InlineFragmentNode,
    OperationDefinitionNode,
    OperationType,
    SelectionSetNode,
    ValidationContext,
    ValidationRule,
)
from pydantic import BaseModel, ValidationError
from sqlalchemy.ext.asyncio import AsyncSession
from strawberry.extensions import (
    AddValidationRules,
    MaxAliasesLimiter,
    MaxTokensLimiter,
    QueryDepthLimiter,
    SchemaExtension,
)
from strawberry.fastapi import BaseContext, GraphQLRouter
from strawberry.http.ides import get_graphql_ide_html
from strawberry.types import ExecutionContext
from strawberry.types import Info as StrawberryInfo

from mornet.dependencies import Platform
from mornet.errors import Forbidden, MornetError, ValidationFailed, describe

log = structlog.get_logger(__name__)

# Strawberry's GraphiQL page loads these from a CDN; the package ships the same files (same
# SRI hashes), so the IDE works on a machine without internet.
GRAPHIQL_ASSETS = {
    "https://unpkg.com/react@18.2.0/umd/react.production.min.js": "react.production.min.js",
    "https://unpkg.com/react-dom@18.2.0/umd/react-dom.production.min.js": (
        "react-dom.production.min.js"
    ),
    "https://unpkg.com/js-cookie@3.0.5/dist/js.cookie.min.js": "js.cookie.min.js",
    "https://unpkg.com/graphiql@3.8.3/graphiql.min.css": "graphiql.min.css",
    "https://unpkg.com/@graphiql/plugin-explorer@1.0.2/dist/style.css": "plugin-explorer.css",
    "https://unpkg.com/graphiql@3.8.3/graphiql.min.js": "graphiql.min.js",
    "https://unpkg.com/@graphiql/plugin-explorer@1.0.2/dist/index.umd.js": (
        "plugin-explorer.umd.js"
    ),
}


def offline_graphiql_html(static_prefix: str = "/static/graphiql/") -> str:
    html = get_graphql_ide_html("graphiql")
    for remote, local in GRAPHIQL_ASSETS.items():
        if remote not in html:
            raise RuntimeError(
                f"Strawberry's GraphiQL page no longer loads {remote}: vendor its new assets "
                "under web/static/graphiql/ and update GRAPHIQL_ASSETS"
            )
        html = html.replace(remote, static_prefix + local)
    if "https://" in html.split("<script>")[0]:
        raise RuntimeError("Strawberry's GraphiQL page loads an asset not vendored here")
    return html


class OfflineGraphQLRouter(GraphQLRouter[Any, None]):
    """The GraphQL endpoint, whose IDE page loads its assets from this server."""

    @cached_property
    def graphql_ide_html(self) -> str:
        return offline_graphiql_html()


SchemaT = TypeVar("SchemaT", bound=BaseModel)


Authenticate = Callable[[AsyncSession, str | None], Awaitable[Any]]
"""Finds the caller from a bearer token (or refuses); the app injects identity's."""


class GraphQLContext(BaseContext):
    def __init__(
        self, *, session: AsyncSession, platform: Platform, authenticate: Authenticate
    ) -> None:
        super().__init__()
        self.session = session
        self.platform = platform
        self._authenticate = authenticate
        self._user: Any = None
        # GraphQL resolves sibling query fields concurrently; one AsyncSession must not be.
        self.session_lock = asyncio.Lock()
        # `_entities` resolves its references concurrently, inside one root field.
        self.reference_lock = asyncio.Lock()

    @cached_property
    def _bearer_token(self) -> str | None:
        header = self.request.headers.get("authorization", "") if self.request else ""
        scheme, _, token = header.partition(" ")
        return token.strip() if scheme.lower() == "bearer" and token.strip() else None

    async def user(self) -> Any:
        """The authenticated caller, with the same checks as REST (blocked → refused); typed
        by identity, which the plumbing does not import."""
        if self._user is None:
            self._user = await self._authenticate(self.session, self._bearer_token)
        return self._user

    async def admin(self) -> Any:
        user = await self.user()
        if not user.is_admin:
            raise Forbidden("this needs the admin role", code="admin_only")
        return user


Info = StrawberryInfo[GraphQLContext, None]


def reference_id(value: object) -> uuid.UUID:
    """The UUID key of an entity reference (a federation router sends it as a string)."""
    try:
        return uuid.UUID(str(value))
    except ValueError as exc:
        raise ValidationFailed(f"{value!r} is not an id", code="invalid_reference") from exc


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


class Schema(strawberry.federation.Schema):
    """One schema for every context, built as an Apollo Federation 2 subgraph: its entities
    (User, Household, Wallet) carry keys, so a federation router can later compose it with
    other services. Logs only unexpected errors: a refused request is an answer, not a fault."""

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


def _root_fields(
    selection_set: SelectionSetNode,
    fragments: dict[str, FragmentDefinitionNode],
    seen: frozenset[str] = frozenset(),
) -> list[str]:
    names: list[str] = []
    for selection in selection_set.selections:
        if isinstance(selection, FieldNode):
            names.append(selection.name.value)
        elif isinstance(selection, InlineFragmentNode):
            names += _root_fields(selection.selection_set, fragments, seen)
        elif isinstance(selection, FragmentSpreadNode):
            name = selection.name.value
            if name in fragments and name not in seen:
                names += _root_fields(fragments[name].selection_set, fragments, seen | {name})
    return names


def once_per_request(fields: set[str]) -> AddValidationRules:
    """Refuse a request whose mutations call any of `fields` more than once in total (one
    account per registration request, however many aliases)."""

    class OncePerRequest(ValidationRule):
        def __init__(self, context: ValidationContext) -> None:
            super().__init__(context)
            document = context.document
            fragments = {
                d.name.value: d
                for d in document.definitions
                if isinstance(d, FragmentDefinitionNode)
            }
            called: list[str] = []
            for definition in document.definitions:
                if (
                    isinstance(definition, OperationDefinitionNode)
                    and definition.operation == OperationType.MUTATION
                ):
                    called += _root_fields(definition.selection_set, fragments)
            for name in sorted(fields):
                if called.count(name) > 1:
                    context.report_error(
                        GraphQLError(f"`{name}` may be called at most once per request")
                    )

    return AddValidationRules([OncePerRequest])


MAX_QUERY_DEPTH = 10
MAX_ALIASES = 15
MAX_TOKENS = 2000


def limits(*, once: set[str]) -> list[Callable[[], SchemaExtension]]:
    """What bounds one request's work: depth, aliases, tokens, and once-only mutations
    (factories: Strawberry builds each extension afresh per request)."""
    return [
        lambda: QueryDepthLimiter(max_depth=MAX_QUERY_DEPTH),
        lambda: MaxAliasesLimiter(max_alias_count=MAX_ALIASES),
        lambda: MaxTokensLimiter(max_token_count=MAX_TOKENS),
        lambda: once_per_request(once),
    ]
