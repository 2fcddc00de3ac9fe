"""Identity rules: registration, login, tokens, profile, blocking."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import inspect
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from sqlalchemy.orm import make_transient_to_detached

from mornet import outbox
from mornet.changes import MISS, Changes, topics_of
from mornet.db import utcnow
from mornet.errors import Conflict, Forbidden, NotFound, Unauthorized, ValidationFailed
from mornet.identity import repository
from mornet.identity.events import UserBlockChanged, UserRegistered
from mornet.identity.models import Role, UserStatus
from mornet.identity.models import User as User  # the caller type other contexts receive
from mornet.identity.security import (
    AccessClaims,
    decode_access_token,
    encode_access_token,
    hash_password,
    verify_password,
)
from mornet.identity.throttle import Attempt
from mornet.pagination import PageRequest


class UserBlocked(Forbidden):
    code = "user_blocked"
    page_title = "Account blocked"
    ends_session = True

    def __init__(self) -> None:
        super().__init__("this account is blocked; contact the operator")


class EmailTaken(Conflict):
    code = "email_taken"

    def __init__(self) -> None:
        super().__init__("an account with this email already exists")


@dataclass(frozen=True)
class TokenSettings:
    secret: str
    ttl: timedelta


def normalise_email(email: str) -> str:
    return email.strip().lower()


async def register(
    session: AsyncSession,
    *,
    email: str,
    password: str,
    full_name: str,
    role: Role = Role.USER,
    attempt: Attempt | None = None,
) -> User:
    """A new active account. With `attempt`, registrations from that client are limited."""
    if attempt is not None:
        key = f"register:{attempt.client}"
        attempt.throttle.check(key)
        attempt.throttle.record(key)
    email = normalise_email(email)
    if await repository.get_by_email(session, email) is not None:
        raise EmailTaken()
    user = User(
        email=email,
        password_hash=await hash_password(password),
        full_name=full_name.strip(),
        role=role,
        status=UserStatus.ACTIVE,
        token_version=0,
        created_at=utcnow(),
    )
    session.add(user)
    try:
        # Flushed inside a savepoint so a concurrent registration of the same email becomes
        # a clean 409 instead of poisoning the caller's transaction.
        async with session.begin_nested():
            await session.flush()
    except IntegrityError as exc:
        raise EmailTaken() from exc
    await outbox.record(session, UserRegistered(user_id=user.id, role=str(role)))
    return user


async def authenticate(
    session: AsyncSession, *, email: str, password: str, attempt: Attempt | None = None
) -> User:
    """The user whose credentials these are; a blocked user is refused after the check.
    With `attempt`, failures are limited per email and per client address."""
    email = normalise_email(email)
    keys: tuple[str, ...] = (
        (f"login-email:{email}", f"login-client:{attempt.client}") if attempt else ()
    )
    if attempt is not None:
        attempt.throttle.check(*keys)
    user = await repository.get_by_email(session, email)
    if not await verify_password(user.password_hash if user else None, password) or user is None:
        if attempt is not None:
            attempt.throttle.record(*keys)
        raise Unauthorized("wrong email or password", code="invalid_credentials")
    if attempt is not None:
        attempt.throttle.clear(keys[0])
    if user.is_blocked:
        raise UserBlocked()
    return user


def issue_access_token(user: User, tokens: TokenSettings) -> str:
    return encode_access_token(
        user_id=user.id, token_version=user.token_version, secret=tokens.secret, ttl=tokens.ttl
    )


USER_TOPICS = topics_of(User)
"""Every change of what decides a user's access (status, role, token version) writes the users
table, and every write to it moves these at commit."""


class AccessCache:
    """Per process: the tokens already verified and the users they speak for, so that an
    authenticated request costs no database round trip. A user is kept in the process's read
    cache under the version of the users table read before loading it, and used only while
    that version holds: a block, a logout or a password change writes the table, so it takes
    effect at once in every process sharing the database (`changes.Changes`)."""

    def __init__(self, changes: Changes | None, *, max_entries: int = 10_000) -> None:
        self.changes = changes
        self.max_entries = max_entries
        self._claims: dict[str, AccessClaims] = {}

    def claims(self, token: str, secret: str) -> AccessClaims | None:
        claims = self._claims.get(token)
        if claims is None:
            claims = decode_access_token(token, secret=secret)
            if claims is None:
                return None
            if len(self._claims) >= self.max_entries:
                self._claims.clear()
            self._claims[token] = claims
        if claims.expires_at <= time.time():
            self._claims.pop(token, None)
            return None
        return claims

    async def user(
        self, sessions: async_sessionmaker[AsyncSession], user_id: uuid.UUID
    ) -> User | None:
        """The user as stored now, detached from any session (a service that changes it
        attaches it first, `_attached`)."""
        # The read cache without `cached_read`: a hit must not even open a session.
        users = self.changes.cache("identity.users") if self.changes is not None else None
        signature = users.signature(USER_TOPICS) if users is not None else None
        if users is not None and signature is not None:
            kept = users.get(user_id, signature)
            if kept is not MISS:
                return _detached_user(kept)
        async with sessions() as session:
            user = await repository.get(session, user_id)
        if user is None:
            return None
        fields = _user_fields(user)
        if users is not None and signature is not None:
            users.put(user_id, signature, fields, max_age=None)
        return _detached_user(fields)


_USER_FIELDS = tuple(column.key for column in inspect(User).column_attrs)


def _user_fields(user: User) -> dict[str, Any]:
    return {name: getattr(user, name) for name in _USER_FIELDS}


def _detached_user(fields: dict[str, Any]) -> User:
    """A fresh copy per request (never one object shared by concurrent requests), detached:
    a service that changes the caller loads it into its session first (`_attached`)."""
    user = User(**fields)
    make_transient_to_detached(user)
    return user


async def _attached(session: AsyncSession, user: User) -> User:
    """`user` as a row of this session, whether it came from it or from the access cache."""
    if user in session:
        return user
    return await session.merge(user)


async def user_for_token(
    sessions: async_sessionmaker[AsyncSession],
    token: str,
    tokens: TokenSettings,
    cache: AccessCache,
) -> User:
    """The active user a token speaks for. Checked against the database (or the access
    cache, which is as current) on every call, so a block or a password change takes effect
    at once for tokens already issued. Reads in a session of its own, so that a request
    served from the cache opens none."""
    claims = cache.claims(token, tokens.secret)
    if claims is None:
        raise Unauthorized("the access token is invalid or expired", code="invalid_token")
    user = await cache.user(sessions, claims.user_id)
    if user is None or user.token_version != claims.token_version:
        raise Unauthorized("the access token is no longer valid", code="invalid_token")
    if user.is_blocked:
        raise UserBlocked()
    return user


async def hash_secret(value: str) -> str:
    """argon2id of a credential (users' passwords, devices' broker secrets)."""
    return await hash_password(value)


async def verify_secret(stored_hash: str, value: str) -> bool:
    return await verify_password(stored_hash, value)


async def end_sessions(session: AsyncSession, user: User) -> None:
    """Log out: every access token issued to the user so far stops working, server-side."""
    user = await _attached(session, user)
    user.token_version += 1
    await session.flush()


async def update_profile(
    session: AsyncSession,
    user: User,
    *,
    full_name: str | None = None,
    current_password: str | None = None,
    new_password: str | None = None,
) -> User:
    user = await _attached(session, user)
    if full_name is not None:
        user.full_name = full_name.strip()
    if new_password is not None:
        if not current_password or not await verify_password(user.password_hash, current_password):
            raise ValidationFailed("the current password is wrong", code="wrong_password")
        user.password_hash = await hash_password(new_password)
        user.token_version += 1
    await session.flush()
    return user


async def get_user(session: AsyncSession, user_id: uuid.UUID) -> User:
    user = await repository.get(session, user_id)
    if user is None:
        raise NotFound("no such user")
    return user


async def is_active(session: AsyncSession, user_id: uuid.UUID) -> bool:
    """Whether the user exists and is not blocked."""
    user = await repository.get(session, user_id)
    return user is not None and not user.is_blocked


async def user_by_email(session: AsyncSession, email: str) -> User | None:
    return await repository.get_by_email(session, normalise_email(email))


async def users_by_id(
    session: AsyncSession, user_ids: Iterable[uuid.UUID]
) -> dict[uuid.UUID, User]:
    return {user.id: user for user in await repository.get_many(session, user_ids)}


async def list_users(
    session: AsyncSession, *, search: str | None = None, page: PageRequest = PageRequest()
) -> tuple[Sequence[User], int]:
    """Newest first; `search` matches the email or the name."""
    return await repository.list_page(session, search=search, page=page)


async def all_user_ids(session: AsyncSession) -> list[uuid.UUID]:
    return await repository.all_ids(session)


async def count_users(session: AsyncSession) -> int:
    return await repository.count(session)


async def set_blocked(
    session: AsyncSession, *, actor: User, user_id: uuid.UUID, blocked: bool
) -> User:
    """Block or unblock a user. An admin cannot block themself (it would lock the console)."""
    user = await get_user(session, user_id)
    if blocked and user.id == actor.id:
        raise Conflict("you cannot block your own account", code="cannot_block_self")
    if blocked != user.is_blocked:
        user.status = UserStatus.BLOCKED if blocked else UserStatus.ACTIVE
        user.blocked_at = utcnow() if blocked else None
        await outbox.record(
            session, UserBlockChanged(user_id=user.id, blocked=blocked, by=actor.id)
        )
    await session.flush()
    return user


async def ensure_admin(session: AsyncSession, *, email: str, password: str, full_name: str) -> User:
    """Create an admin, or make an existing account with this email an active admin with
    this password (the operator's recovery path)."""
    existing = await repository.get_by_email(session, normalise_email(email))
    if existing is None:
        return await register(
            session, email=email, password=password, full_name=full_name, role=Role.ADMIN
        )
    existing.role = Role.ADMIN
    existing.status = UserStatus.ACTIVE
    existing.blocked_at = None
    existing.password_hash = await hash_password(password)
    existing.token_version += 1
    await session.flush()
    return existing


async def registrations_by_hour(
    session: AsyncSession, start: datetime, end: datetime
) -> dict[datetime, int]:
    """Accounts opened per UTC hour in [start, end) (analytics)."""
    counts: dict[datetime, int] = {}
    for at in await repository.created_between(session, start, end):
        hour = at.replace(minute=0, second=0, microsecond=0)
        counts[hour] = counts.get(hour, 0) + 1
    return counts


async def first_registration(session: AsyncSession) -> datetime | None:
    return await repository.first_created(session)
