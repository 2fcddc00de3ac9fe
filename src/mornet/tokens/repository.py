"""Every SQL query of the tokens context."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import func, select, text
from sqlalchemy.ext.asyncio import AsyncSession

from mornet.pagination import PageRequest, fetch_page
from mornet.tokens.models import Settlement


async def lock_settlement_runs(session: AsyncSession) -> None:
    """One settlement run at a time (PostgreSQL: an advisory lock until the transaction ends;
    SQLite has one writer anyway)."""
    if session.get_bind().dialect.name == "postgresql":
        await session.execute(text("SELECT pg_advisory_xact_lock(hashtext('mornet.settlement'))"))


async def last_settled_end(session: AsyncSession, household_id: uuid.UUID) -> datetime | None:
    end: datetime | None = await session.scalar(
        select(func.max(Settlement.period_end)).where(Settlement.household_id == household_id)
    )
    return end


async def settlements_page(
    session: AsyncSession, household_id: uuid.UUID, page: PageRequest
) -> tuple[Sequence[Settlement], int]:
    query = (
        select(Settlement)
        .where(Settlement.household_id == household_id)
        .order_by(Settlement.period_start.desc(), Settlement.id)
    )
    return await fetch_page(session, query, page)


async def settlement(session: AsyncSession, settlement_id: uuid.UUID) -> Settlement | None:
    return await session.get(Settlement, settlement_id)
