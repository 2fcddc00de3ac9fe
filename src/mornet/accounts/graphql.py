"""GraphQL mutations of accounts: register, block, unblock (answered with identity's `User`)."""

from __future__ import annotations

import uuid

import strawberry
from fastapi import Request

from mornet.accounts import service
from mornet.graphql import Info, validated
from mornet.identity.auth import registration_attempt
from mornet.identity.graphql import UserType, user_type
from mornet.identity.schemas import RegisterRequest


@strawberry.type
class AccountsMutation:
    @strawberry.mutation(description="Create an account (email, password of 8+ characters).")
    async def register(self, info: Info, email: str, password: str, full_name: str) -> UserType:
        body = validated(RegisterRequest, email=email, password=password, full_name=full_name)
        request = info.context.request
        assert isinstance(request, Request)  # mutations come over HTTP, never a websocket
        user = await service.register_account(
            info.context.session,
            info.context.platform.cipher,
            email=body.email,
            password=body.password,
            full_name=body.full_name,
            attempt=registration_attempt(request),
        )
        return user_type(user)

    @strawberry.mutation(description="Admin: block a user; their tokens stop working at once.")
    async def block_user(self, info: Info, user_id: uuid.UUID) -> UserType:
        admin = await info.context.admin()
        return user_type(
            await service.set_account_blocked(
                info.context.session, actor=admin, user_id=user_id, blocked=True
            )
        )

    @strawberry.mutation(description="Admin: unblock a user.")
    async def unblock_user(self, info: Info, user_id: uuid.UUID) -> UserType:
        admin = await info.context.admin()
        return user_type(
            await service.set_account_blocked(
                info.context.session, actor=admin, user_id=user_id, blocked=False
            )
        )
