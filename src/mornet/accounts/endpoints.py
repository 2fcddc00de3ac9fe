"""REST routes of accounts: registration, and an operator blocking or unblocking a user."""

from __future__ import annotations

import uuid

from fastapi import APIRouter, Request, status

from mornet.accounts import service
from mornet.dependencies import CipherDep, SessionDep
from mornet.errors import answers
from mornet.identity.auth import AdminUser, registration_attempt
from mornet.identity.schemas import RegisterRequest, UserOut

router = APIRouter(prefix="/api", tags=["identity"])


@router.post("/auth/register", status_code=status.HTTP_201_CREATED, responses=answers(409, 429))
async def register(
    body: RegisterRequest, request: Request, session: SessionDep, cipher: CipherDep
) -> UserOut:
    user = await service.register_account(
        session,
        cipher,
        email=body.email,
        password=body.password,
        full_name=body.full_name,
        attempt=registration_attempt(request),
    )
    return UserOut.model_validate(user)


@router.post("/admin/users/{user_id}/block", responses=answers(409))
async def block_user(user_id: uuid.UUID, admin: AdminUser, session: SessionDep) -> UserOut:
    user = await service.set_account_blocked(session, actor=admin, user_id=user_id, blocked=True)
    return UserOut.model_validate(user)


@router.post("/admin/users/{user_id}/unblock", responses=answers(409))
async def unblock_user(user_id: uuid.UUID, admin: AdminUser, session: SessionDep) -> UserOut:
    user = await service.set_account_blocked(session, actor=admin, user_id=user_id, blocked=False)
    return UserOut.model_validate(user)
