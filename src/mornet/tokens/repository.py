"""Every SQL query of the tokens context."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime
from decimal import Decimal

from sqlalchemy import func, select, text
from sqlalchemy.ext.asyncio import AsyncSession

from mornet.pagination import PageRequest, fetch_page
from mornet.tokens.models import ArrearsPayment, Settlement, SettlementAdjustment, SettlementRun


async def lock_settlement_runs(session: AsyncSession) -> None:
    """One settlement run at a time (PostgreSQL: an advisory lock until the transaction ends;
    SQLite has one writer anyway)."""
    if session.get_bind().dialect.name == "postgresql":
        await session.execute(text("SELECT pg_advisory_xact_lock(hashtext('mornet.settlement'))"))


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


async def latest_settlements(session: AsyncSession) -> dict[uuid.UUID, Settlement]:
    """Each household's latest settlement (one query)."""
    latest = (
        select(Settlement.household_id, func.max(Settlement.period_end).label("end"))
        .group_by(Settlement.household_id)
        .subquery()
    )
    query = select(Settlement).join(
        latest,
        (latest.c.household_id == Settlement.household_id)
        & (latest.c.end == Settlement.period_end),
    )
    return {s.household_id: s for s in (await session.scalars(query)).all()}


async def outstanding_arrears(
    session: AsyncSession, household_ids: Sequence[uuid.UUID] | None = None
) -> dict[uuid.UUID, Decimal]:
    """Each household's balance after its latest settlement and the arrears payments since:
    positive is owed, negative a credit (households with neither are left out)."""
    latest = (
        select(Settlement.household_id, func.max(Settlement.period_end).label("end"))
        .group_by(Settlement.household_id)
        .subquery()
    )
    paid = (
        select(ArrearsPayment.settlement_id, func.sum(ArrearsPayment.amount).label("amount"))
        .group_by(ArrearsPayment.settlement_id)
        .subquery()
    )
    query = (
        select(Settlement.household_id, Settlement.arrears_gcc, paid.c.amount)
        .join(
            latest,
            (latest.c.household_id == Settlement.household_id)
            & (latest.c.end == Settlement.period_end),
        )
        .outerjoin(paid, paid.c.settlement_id == Settlement.id)
        .where(Settlement.arrears_gcc != 0)
    )
    if household_ids is not None:
        query = query.where(Settlement.household_id.in_(household_ids))
    owed: dict[uuid.UUID, Decimal] = {}
    for household_id, arrears, payments in (await session.execute(query)).all():
        balance = Decimal(arrears) - Decimal(payments or 0)
        if balance:
            owed[household_id] = balance
    return owed


async def settlements_covering(
    session: AsyncSession, household_id: uuid.UUID, hours: Sequence[datetime]
) -> list[Settlement]:
    """The household's settlements whose periods contain any of `hours`, oldest first."""
    found: dict[uuid.UUID, Settlement] = {}
    for hour in hours:
        query = select(Settlement).where(
            Settlement.household_id == household_id,
            Settlement.period_start <= hour,
            Settlement.period_end > hour,
        )
        for settlement in (await session.scalars(query)).all():
            found[settlement.id] = settlement
    return sorted(found.values(), key=lambda s: s.period_start)


async def adjustments_of(
    session: AsyncSession, settlement_id: uuid.UUID
) -> Sequence[SettlementAdjustment]:
    """Adjustments settled later for this settlement's period."""
    query = select(SettlementAdjustment).where(SettlementAdjustment.adjusts_id == settlement_id)
    return (await session.scalars(query)).all()


async def adjustments_carried_by(
    session: AsyncSession, settlement_ids: Sequence[uuid.UUID]
) -> Sequence[SettlementAdjustment]:
    query = (
        select(SettlementAdjustment)
        .where(SettlementAdjustment.settlement_id.in_(settlement_ids))
        .order_by(SettlementAdjustment.resource)
    )
    return (await session.scalars(query)).all()


async def runs_page(
    session: AsyncSession, page: PageRequest
) -> tuple[Sequence[SettlementRun], int]:
    query = select(SettlementRun).order_by(SettlementRun.ran_at.desc(), SettlementRun.id)
    return await fetch_page(session, query, page)


async def settled_totals(session: AsyncSession) -> dict[str, dict[str, Decimal]]:
    """Per token, what settlement burned (periods and adjustments) and minted (GCM)."""
    burned: dict[str, Decimal] = {}
    gcm = Decimal(0)
    for consumed_burned, minted in (
        await session.execute(select(Settlement.burned, Settlement.gcm))
    ).all():
        for token, amount in consumed_burned.items():
            burned[token] = burned.get(token, Decimal(0)) + Decimal(amount)
        gcm += Decimal(minted)
    for token, amount in (
        await session.execute(select(SettlementAdjustment.resource, SettlementAdjustment.burned))
    ).all():
        burned[token] = burned.get(token, Decimal(0)) + Decimal(amount)
    return {"burned": burned, "minted": {"GCM": gcm}}


async def periods_of_runs(
    session: AsyncSession, owner_id: uuid.UUID, run_ids: Sequence[uuid.UUID]
) -> list[tuple[uuid.UUID, datetime]]:
    """(run, period start) of the owner's settlements in those runs, oldest period first."""
    if not run_ids:
        return []
    query = (
        select(Settlement.run_id, Settlement.period_start)
        .where(Settlement.owner_id == owner_id, Settlement.run_id.in_(run_ids))
        .order_by(Settlement.period_start)
    )
    return [(run_id, start) for run_id, start in (await session.execute(query)).all() if run_id]
