"""GraphQL types, queries and mutations of the identity context."""

from __future__ import annotations

import strawberry
from strawberry.federation.schema_directives import Key
from strawberry.federation.types import FieldSet

from mornet.errors import NotFound
from mornet.graphql import Info, reference_id
from mornet.identity import service
from mornet.identity.schemas import UserOut
from mornet.identity.service import User
from mornet.pagination import MAX_LIMIT, PageRequest


@strawberry.experimental.pydantic.type(
    model=UserOut, all_fields=True, name="User", directives=[Key(fields=FieldSet("id"))]
)
class UserType:
    """The REST schema, served as a GraphQL type (and a federation entity keyed by id)."""

    role: str
    status: str

    @classmethod
    async def resolve_reference(cls, info: Info, id: object) -> UserType:
        """A reference from another subgraph: the caller themself, or anyone for an admin."""
        async with info.context.reference_lock:
            caller = await info.context.user()
            user_id = reference_id(id)
            if user_id != caller.id and not caller.is_admin:
                raise NotFound("no such user")
            return user_type(await service.get_user(info.context.session, user_id))


def user_type(user: User) -> UserType:
    return UserType.from_pydantic(UserOut.model_validate(user))


@strawberry.type
class IdentityQuery:
    @strawberry.field(description="The authenticated user.")
    async def me(self, info: Info) -> UserType:
        return user_type(await info.context.user())

    @strawberry.field(description="Admin: every user, newest first.")
    async def users(
        self, info: Info, search: str | None = None, offset: int = 0, limit: int = 50
    ) -> list[UserType]:
        await info.context.admin()
        page = PageRequest(offset=max(offset, 0), limit=min(max(limit, 1), MAX_LIMIT))
        users, _ = await service.list_users(info.context.session, search=search, page=page)
        return [user_type(u) for u in users]
