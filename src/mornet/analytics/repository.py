from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime
from decimal import Decimal

from sqlalchemy import Select, delete, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from mornet.analytics.models import LoggedEvent, SeriesPoint


def events_query(
    *,
    kind: str | None,
    actor_id: uuid.UUID | None,
    start: datetime | None,
    end: datetime | None,
) -> Select[LoggedEvent]:
    query = select(LoggedEvent)
    if kind is not None:
        # A prefix names a family: `bank` or `bank.deposit` as well as a whole topic.
        query = query.where(
            (LoggedEvent.kind == kind) | LoggedEvent.kind.startswith(f"{kind}.", autoescape=True)
        )
    if actor_id is not None:
        query = query.where(LoggedEvent.actor_id == actor_id)
    if start is not None:
        query = query.where(LoggedEvent.occurred_at >= start)
    if end is not None:
        query = query.where(LoggedEvent.occurred_at < end)
    return query.order_by(LoggedEvent.occurred_at.desc(), LoggedEvent.id)


async def amounts_by_kind(
    session: AsyncSession, kind: str, start: datetime, end: datetime
) -> list[tuple[datetime, Decimal]]:
    rows = await session.execute(
        select(LoggedEvent.occurred_at, LoggedEvent.amount).where(
            LoggedEvent.kind == kind,
            LoggedEvent.occurred_at >= start,
            LoggedEvent.occurred_at < end,
            LoggedEvent.amount.is_not(None),
        )
    )
    return [(at, amount) for at, amount in rows.all() if amount is not None]


async def first_logged(session: AsyncSession) -> datetime | None:
    first: datetime | None = await session.scalar(select(func.min(LoggedEvent.occurred_at)))
    return first


async def replace_points(
    session: AsyncSession, start: datetime, end: datetime, points: Sequence[SeriesPoint]
) -> None:
    await session.execute(
        delete(SeriesPoint).where(SeriesPoint.hour >= start, SeriesPoint.hour < end)
    )
    session.add_all(points)
    await session.flush()


async def clear_points(session: AsyncSession) -> None:
    await session.execute(delete(SeriesPoint))


async def points(
    session: AsyncSession, metric: str, start: datetime, end: datetime
) -> list[tuple[datetime, Decimal]]:
    rows = await session.execute(
        select(SeriesPoint.hour, SeriesPoint.value)
        .where(SeriesPoint.metric == metric, SeriesPoint.hour >= start, SeriesPoint.hour < end)
        .order_by(SeriesPoint.hour)
    )
    return [(hour, value) for hour, value in rows.all()]


async def total_before(session: AsyncSession, metric: str, before: datetime) -> Decimal:
    total = await session.scalar(
        select(func.sum(SeriesPoint.value)).where(
            SeriesPoint.metric == metric, SeriesPoint.hour < before
        )
    )
    return Decimal(total or 0)


async def total_between(
    session: AsyncSession, metric: str, since: datetime, before: datetime | None = None
) -> Decimal:
    query = select(func.sum(SeriesPoint.value)).where(
        SeriesPoint.metric == metric, SeriesPoint.hour >= since
    )
    if before is not None:
        query = query.where(SeriesPoint.hour < before)
    return Decimal(await session.scalar(query) or 0)


async def all_points(session: AsyncSession) -> list[tuple[str, datetime, Decimal]]:
    rows = await session.execute(
        select(SeriesPoint.metric, SeriesPoint.hour, SeriesPoint.value).order_by(
            SeriesPoint.metric, SeriesPoint.hour
        )
    )
    return [(m, h, v) for m, h, v in rows.all()]
