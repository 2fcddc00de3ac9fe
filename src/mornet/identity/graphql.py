"""GraphQL types, queries and mutations of the identity context."""

from __future__ import annotations

import uuid
from datetime import datetime

import strawberry

from mornet.errors import NotFound
from mornet.graphql import Info, reference_id
from mornet.identity import service
from mornet.identity.service import User
from mornet.pagination import MAX_LIMIT, PageRequest


@strawberry.federation.type(name="User", keys=["id"])
class UserType:
    id: uuid.UUID
    email: str
    full_name: str
    role: str
    status: str
    created_at: datetime
    blocked_at: datetime | None

    @classmethod
    def of(cls, user: User) -> UserType:
        return cls(
            id=user.id,
            email=user.email,
            full_name=user.full_name,
            role=str(user.role),
            status=str(user.status),
            created_at=user.created_at,
            blocked_at=user.blocked_at,
        )

    @classmethod
    async def resolve_reference(cls, info: Info, id: object) -> UserType:
        """A reference from another subgraph: the caller themself, or anyone for an admin."""
        async with info.context.reference_lock:
            caller = await info.context.user()
            user_id = reference_id(id)
            if user_id != caller.id and not caller.is_admin:
                raise NotFound("no such user")
            return cls.of(await service.get_user(info.context.session, user_id))


@strawberry.type
class IdentityQuery:
    @strawberry.field(description="The authenticated user.")
    async def me(self, info: Info) -> UserType:
        return UserType.of(await info.context.user())

    @strawberry.field(description="Admin: every user, newest first.")
    async def users(
        self, info: Info, search: str | None = None, offset: int = 0, limit: int = 50
    ) -> list[UserType]:
        await info.context.admin()
        page = PageRequest(offset=max(offset, 0), limit=min(max(limit, 1), MAX_LIMIT))
        users, _ = await service.list_users(info.context.session, search=search, page=page)
        return [UserType.of(u) for u in users]
