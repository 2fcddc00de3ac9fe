"""FastAPI dependencies shared by every context's endpoints: the unit of work and the caller."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy.ext.asyncio import AsyncSession

from mornet.db import unit_of_work
from mornet.errors import Forbidden, Unauthorized
from mornet.identity import service as identity
from mornet.identity.models import User
from mornet.runtime import Runtime


def get_runtime(request: Request) -> Runtime:
    runtime: Runtime = request.app.state.runtime
    return runtime


async def get_session(request: Request) -> AsyncIterator[AsyncSession]:
    """One transaction per request: committed when the endpoint returns, rolled back if it
    raises. Declared with scope="function" so the commit happens before the response is sent."""
    async with unit_of_work(get_runtime(request).sessions) as session:
        yield session


RuntimeDep = Annotated[Runtime, Depends(get_runtime)]
SessionDep = Annotated[AsyncSession, Depends(get_session, scope="function")]

_bearer = HTTPBearer(auto_error=False, description="An access token from POST /api/auth/login")


async def current_user(
    session: SessionDep,
    runtime: RuntimeDep,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> User:
    if credentials is None or credentials.scheme.lower() != "bearer":
        raise Unauthorized("send an access token: Authorization: Bearer <token>")
    return await identity.user_for_token(session, credentials.credentials, runtime.tokens)


CurrentUser = Annotated[User, Depends(current_user)]


async def current_admin(user: CurrentUser) -> User:
    if not user.is_admin:
        raise Forbidden("this needs the admin role", code="admin_only")
    return user


AdminUser = Annotated[User, Depends(current_admin)]
