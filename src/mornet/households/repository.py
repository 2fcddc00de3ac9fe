"""Every SQL query of the households context."""

from __future__ import annotations

import uuid
from collections.abc import Sequence

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from mornet.households.models import EdgeAgent, Household


async def get(session: AsyncSession, household_id: uuid.UUID) -> Household | None:
    return await session.get(Household, household_id)


async def list_for_owner(session: AsyncSession, owner_id: uuid.UUID) -> Sequence[Household]:
    query = (
        select(Household)
        .where(Household.owner_id == owner_id)
        .order_by(Household.created_at, Household.id)
    )
    return (await session.scalars(query)).all()


async def agents_of(
    session: AsyncSession, household_ids: Sequence[uuid.UUID]
) -> Sequence[EdgeAgent]:
    if not household_ids:
        return []
    query = (
        select(EdgeAgent)
        .where(EdgeAgent.household_id.in_(household_ids))
        .order_by(EdgeAgent.created_at, EdgeAgent.id)
    )
    return (await session.scalars(query)).all()


async def get_agent(session: AsyncSession, agent_id: uuid.UUID) -> EdgeAgent | None:
    return await session.get(EdgeAgent, agent_id)


async def list_page_with_agent_counts(
    session: AsyncSession, *, offset: int, limit: int
) -> tuple[Sequence[tuple[Household, int]], int]:
    active_agents = (
        select(EdgeAgent.household_id, func.count().label("agents"))
        .where(EdgeAgent.revoked_at.is_(None))
        .group_by(EdgeAgent.household_id)
        .subquery()
    )
    query = (
        select(Household, func.coalesce(active_agents.c.agents, 0))
        .outerjoin(active_agents, active_agents.c.household_id == Household.id)
        .order_by(Household.created_at.desc(), Household.id)
        .offset(offset)
        .limit(limit)
    )
    rows = [(household, int(count)) for household, count in (await session.execute(query)).all()]
    total = await session.scalar(select(func.count()).select_from(Household))
    return rows, int(total or 0)


async def count(session: AsyncSession) -> int:
    return int(await session.scalar(select(func.count()).select_from(Household)) or 0)
