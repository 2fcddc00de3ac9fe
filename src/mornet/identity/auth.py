"""Who is calling: the bearer-token and page-session dependencies every context's routes use,
and what identity needs from the composition root (token settings, attempt throttles)."""

from __future__ import annotations

from typing import Annotated, Protocol

from fastapi import Depends, Request
from fastapi.responses import Response
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from mornet.dependencies import platform_of
from mornet.errors import Forbidden, Unauthorized, may_answer
from mornet.identity import service
from mornet.identity.models import User
from mornet.identity.service import TokenSettings
from mornet.identity.throttle import Attempt, Throttle, client_of
from mornet.web import pages as web


class IdentityHost(Protocol):
    """What identity takes from the running platform."""

    @property
    def tokens(self) -> TokenSettings: ...

    login_throttle: Throttle
    registration_throttle: Throttle
    access: service.AccessCache
    sessions: async_sessionmaker[AsyncSession]


def identity_host(request: Request) -> IdentityHost:
    host: IdentityHost = platform_of(request)  # type: ignore[assignment]  # the runtime
    return host


async def identity_dependency(request: Request) -> IdentityHost:
    return identity_host(request)  # a coroutine: no thread-pool hop


IdentityDep = Annotated[IdentityHost, Depends(identity_dependency)]


def login_attempt(request: Request) -> Attempt:
    return Attempt(identity_host(request).login_throttle, client_of(request))


def registration_attempt(request: Request) -> Attempt:
    return Attempt(identity_host(request).registration_throttle, client_of(request))


_bearer = HTTPBearer(auto_error=False, description="An access token from POST /api/auth/login")


async def user_for_bearer(host: IdentityHost, token: str | None) -> User:
    """The caller of an API request (REST or GraphQL) with a bearer token; blocked → refused.
    Opens no request session: most calls are answered by the access cache."""
    if token is None:
        raise Unauthorized("send an access token: Authorization: Bearer <token>")
    return await service.user_for_token(host.sessions, token, host.tokens, host.access)


@may_answer(401, 403)
async def current_user(
    host: IdentityDep,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> User:
    token = (
        credentials.credentials
        if credentials is not None and credentials.scheme.lower() == "bearer"
        else None
    )
    return await user_for_bearer(host, token)


CurrentUser = Annotated[User, Depends(current_user)]


@may_answer(403)
async def current_admin(user: CurrentUser) -> User:
    if not user.is_admin:
        raise Forbidden("this needs the admin role", code="admin_only")
    return user


AdminUser = Annotated[User, Depends(current_admin)]


async def optional_page_user(request: Request, host: IdentityDep) -> User | None:
    token = request.cookies.get(web.SESSION_COOKIE)
    if not token:
        return None
    try:
        return await service.user_for_token(host.sessions, token, host.tokens, host.access)
    except service.UserBlocked:
        raise
    except Unauthorized:
        return None


OptionalPageUser = Annotated[User | None, Depends(optional_page_user)]


async def page_user(user: OptionalPageUser) -> User:
    if user is None:
        raise web.LoginRequired()
    return user


PageUser = Annotated[User, Depends(page_user)]


async def page_admin(user: PageUser) -> User:
    if not user.is_admin:
        raise web.PageForbidden("This page is for operators (admin role).")
    return user


PageAdmin = Annotated[User, Depends(page_admin)]


def start_page_session(response: Response, request: Request, user: User) -> None:
    """Sign `user` in on this browser: the session cookie holds a fresh access token."""
    tokens = identity_host(request).tokens
    web.start_session(
        response,
        request,
        service.issue_access_token(user, tokens),
        max_age=int(tokens.ttl.total_seconds()),
    )
