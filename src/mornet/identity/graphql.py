"""GraphQL types, queries and mutations of the identity context."""

from __future__ import annotations

import uuid
from datetime import datetime

import strawberry

from mornet.accounts import register_account, set_account_blocked
from mornet.graphql import Info, validated
from mornet.identity import service
from mornet.identity.models import User
from mornet.identity.schemas import RegisterRequest
from mornet.identity.throttle import Attempt, client_of


@strawberry.type(name="User")
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
        users, _ = await service.list_users(
            info.context.session,
            search=search,
            offset=max(offset, 0),
            limit=min(max(limit, 1), 200),
        )
        return [UserType.of(u) for u in users]


@strawberry.type
class IdentityMutation:
    @strawberry.mutation(description="Create an account (email, password of 8+ characters).")
    async def register(self, info: Info, email: str, password: str, full_name: str) -> UserType:
        body = validated(RegisterRequest, email=email, password=password, full_name=full_name)
        user = await register_account(
            info.context.session,
            info.context.runtime.cipher,
            email=body.email,
            password=body.password,
            full_name=body.full_name,
            attempt=Attempt(
                info.context.runtime.registration_throttle, client_of(info.context.request)
            ),
        )
        return UserType.of(user)

    @strawberry.mutation(description="Admin: block a user; their tokens stop working at once.")
    async def block_user(self, info: Info, user_id: uuid.UUID) -> UserType:
        admin = await info.context.admin()
        return UserType.of(
            await set_account_blocked(
                info.context.session, actor=admin, user_id=user_id, blocked=True
            )
        )

    @strawberry.mutation(description="Admin: unblock a user.")
    async def unblock_user(self, info: Info, user_id: uuid.UUID) -> UserType:
        admin = await info.context.admin()
        return UserType.of(
            await set_account_blocked(
                info.context.session, actor=admin, user_id=user_id, blocked=False
            )
        )
