"""Every SQL query of the identity context."""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Sequence
from datetime import datetime

from sqlalchemy import func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from mornet.identity.models import User
from mornet.pagination import PageRequest, fetch_page


async def get(session: AsyncSession, user_id: uuid.UUID) -> User | None:
    return await session.get(User, user_id)


async def get_by_email(session: AsyncSession, email: str) -> User | None:
    return await session.scalar(select(User).where(User.email == email))


async def get_many(session: AsyncSession, user_ids: Iterable[uuid.UUID]) -> Sequence[User]:
    ids = list(set(user_ids))
    if not ids:
        return []
    return (await session.scalars(select(User).where(User.id.in_(ids)))).all()


async def list_page(
    session: AsyncSession, *, search: str | None, page: PageRequest
) -> tuple[Sequence[User], int]:
    query = select(User)
    if search:
        pattern = f"%{search.lower()}%"
        query = query.where(or_(User.email.like(pattern), func.lower(User.full_name).like(pattern)))
    return await fetch_page(session, query.order_by(User.created_at.desc(), User.id), page)


async def all_ids(session: AsyncSession) -> list[uuid.UUID]:
    return list((await session.scalars(select(User.id))).all())


async def count(session: AsyncSession) -> int:
    return int(await session.scalar(select(func.count()).select_from(User)) or 0)


async def created_between(session: AsyncSession, start: datetime, end: datetime) -> list[datetime]:
    rows = await session.scalars(
        select(User.created_at).where(User.created_at >= start, User.created_at < end)
    )
    return list(rows.all())


async def first_created(session: AsyncSession) -> datetime | None:
    first: datetime | None = await session.scalar(select(func.min(User.created_at)))
    return first
