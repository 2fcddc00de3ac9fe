"""Every SQL query of the cost context."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from mornet.cost.models import CostCalculation
from mornet.pagination import PageRequest, fetch_page


async def get(session: AsyncSession, calculation_id: uuid.UUID) -> CostCalculation | None:
    return await session.get(CostCalculation, calculation_id)


async def page_of_household(
    session: AsyncSession,
    household_id: uuid.UUID,
    *,
    start: datetime | None,
    end: datetime | None,
    page: PageRequest,
) -> tuple[Sequence[CostCalculation], int]:
    """A household's calculations whose period lies in [start, end), newest period first."""
    query = select(CostCalculation).where(CostCalculation.household_id == household_id)
    if start is not None:
        query = query.where(CostCalculation.period_start >= start)
    if end is not None:
        query = query.where(CostCalculation.period_end <= end)
    query = query.order_by(
        CostCalculation.period_start.desc(), CostCalculation.created_at.desc(), CostCalculation.id
    )
    return await fetch_page(session, query, page)
