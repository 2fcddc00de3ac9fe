"""REST routes of the identity context."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Request, status

from mornet.dependencies import SessionDep
from mornet.errors import answers
from mornet.identity import service
from mornet.identity.auth import AdminUser, CurrentUser, IdentityDep, login_attempt
from mornet.identity.models import User
from mornet.identity.schemas import (
    LoginRequest,
    ProfileUpdate,
    TokenResponse,
    UserOut,
)
from mornet.pagination import Page, PageParams, page_of

router = APIRouter(prefix="/api", tags=["identity"])


def _user_out(user: User) -> UserOut:
    return UserOut.model_validate(user)


@router.post("/auth/login", responses=answers(401, 429))
async def login(
    body: LoginRequest, request: Request, session: SessionDep, host: IdentityDep
) -> TokenResponse:
    user = await service.authenticate(
        session, email=body.email, password=body.password, attempt=login_attempt(request)
    )
    return TokenResponse(
        access_token=service.issue_access_token(user, host.tokens),
        expires_in=int(host.tokens.ttl.total_seconds()),
    )


@router.post("/auth/logout", status_code=status.HTTP_204_NO_CONTENT)
async def logout(user: CurrentUser, session: SessionDep) -> None:
    """End every session of the caller: all access tokens issued so far stop working."""
    await service.end_sessions(session, user)


@router.get("/me")
async def read_me(user: CurrentUser) -> UserOut:
    return _user_out(user)


@router.patch("/me")
async def update_me(body: ProfileUpdate, user: CurrentUser, session: SessionDep) -> UserOut:
    updated = await service.update_profile(
        session,
        user,
        full_name=body.full_name,
        current_password=body.current_password,
        new_password=body.new_password,
    )
    return _user_out(updated)


@router.get("/admin/users")
async def list_users(
    _: AdminUser,
    session: SessionDep,
    page: PageParams,
    search: Annotated[str | None, Query(max_length=100)] = None,
) -> Page[UserOut]:
    users, total = await service.list_users(session, search=search, page=page)
    return page_of([_user_out(u) for u in users], total, page)
