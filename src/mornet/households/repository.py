"""Every SQL query of the households context."""

from __future__ import annotations

import uuid
from collections.abc import Sequence

from sqlalchemy import Select, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from mornet.access import Actor, readable_by
from mornet.households.models import EdgeAgent, Household, HouseholdStatus
from mornet.pagination import PageRequest, fetch_page


async def get(session: AsyncSession, household_id: uuid.UUID) -> Household | None:
    return await session.get(Household, household_id)


def readable(actor: Actor) -> Select[Household]:
    """The households `actor` may see: their own; every one for an admin."""
    return select(Household).where(readable_by(actor, Household.owner_id))


async def get_readable(
    session: AsyncSession, actor: Actor, household_id: uuid.UUID
) -> Household | None:
    """The household if it exists and `actor` may see it (one query, filtered in SQL)."""
    household: Household | None = await session.scalar(
        readable(actor).where(Household.id == household_id)
    )
    return household


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
    session: AsyncSession, page: PageRequest
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
    )
    rows, total = await fetch_page(session, query, page)
    return [(household, int(count)) for household, count in rows], total


async def count(session: AsyncSession) -> int:
    return int(await session.scalar(select(func.count()).select_from(Household)) or 0)


async def count_active(session: AsyncSession) -> int:
    query = select(func.count()).where(Household.status == HouseholdStatus.ACTIVE)
    return int(await session.scalar(query) or 0)


async def active(session: AsyncSession) -> Sequence[Household]:
    """Every active household, oldest first."""
    rows = await session.scalars(
        select(Household)
        .where(Household.status == HouseholdStatus.ACTIVE)
        .order_by(Household.created_at, Household.id)
    )
    return rows.all()


async def with_active_agents(session: AsyncSession) -> int:
    """Households with at least one agent that is not revoked."""
    query = select(func.count(func.distinct(EdgeAgent.household_id))).where(
        EdgeAgent.revoked_at.is_(None)
    )
    return int(await session.scalar(query) or 0)
