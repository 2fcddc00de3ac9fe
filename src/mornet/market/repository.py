"""Every SQL query of the market context."""

from __future__ import annotations

import uuid
from collections.abc import Collection, Sequence
from datetime import datetime

from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from mornet.db import insert_for, lock_rows, locked_one
from mornet.market.models import MarketBook, MarketDeal, MarketOrder, MarketTrade
from mornet.pagination import PageRequest, fetch_page


async def lock_book(session: AsyncSession, region: str, resource: str) -> MarketBook:
    """The book's row, created if new, locked until the transaction ends: one writer per
    book on SQLite and PostgreSQL alike."""
    await session.execute(
        insert_for(session, MarketBook)
        .values(region=region, resource=resource, last_seq=0)
        .on_conflict_do_nothing(index_elements=["region", "resource"])
    )
    book = await locked_one(
        session, MarketBook, MarketBook.region == region, MarketBook.resource == resource
    )
    assert book is not None
    return book


async def book(session: AsyncSession, region: str, resource: str) -> MarketBook | None:
    return await session.get(MarketBook, (region, resource))


async def open_orders(session: AsyncSession, region: str, resource: str) -> Sequence[MarketOrder]:
    query = (
        select(MarketOrder)
        .where(
            MarketOrder.region == region,
            MarketOrder.resource == resource,
            MarketOrder.status == "open",
        )
        .order_by(MarketOrder.seq)
        .execution_options(populate_existing=True)
    )
    return (await session.scalars(query)).all()


async def journal(session: AsyncSession, region: str, resource: str) -> Sequence[MarketOrder]:
    """Every order the book ever had, in arrival order."""
    query = (
        select(MarketOrder)
        .where(MarketOrder.region == region, MarketOrder.resource == resource)
        .order_by(MarketOrder.seq)
    )
    return (await session.scalars(query)).all()


async def order(session: AsyncSession, order_id: uuid.UUID) -> MarketOrder | None:
    return await session.get(MarketOrder, order_id, populate_existing=True)


async def orders_by_keys(
    session: AsyncSession, keys: Collection[tuple[uuid.UUID, str]]
) -> dict[tuple[uuid.UUID, str], MarketOrder]:
    """The orders already placed under these (user, idempotency key) pairs."""
    if not keys:
        return {}
    query = select(MarketOrder).where(
        MarketOrder.idempotency_key.in_({key for _, key in keys}),
        MarketOrder.user_id.in_({user for user, _ in keys}),
    )
    found = (await session.scalars(query)).all()
    return {
        (o.user_id, o.idempotency_key): o for o in found if (o.user_id, o.idempotency_key) in keys
    }


async def orders_by_ids(
    session: AsyncSession, order_ids: Collection[uuid.UUID]
) -> dict[uuid.UUID, MarketOrder]:
    if not order_ids:
        return {}
    query = (
        select(MarketOrder)
        .where(MarketOrder.id.in_(list(order_ids)))
        .execution_options(populate_existing=True)
    )
    return {o.id: o for o in (await session.scalars(query)).all()}


async def set_remaining(session: AsyncSession, rows: Sequence[dict[str, object]]) -> None:
    """Each row: the order's `id`, its `remaining`, `status` and `updated_at` (one statement)."""
    if rows:
        await session.execute(update(MarketOrder), list(rows))


async def set_batches(session: AsyncSession, rows: Sequence[dict[str, object]]) -> None:
    """Each row: a trade's `id`, its `batch_id` and `operation_keys` (one statement)."""
    if rows:
        await session.execute(update(MarketTrade), list(rows))


async def orders_page(
    session: AsyncSession, user_id: uuid.UUID, page: PageRequest
) -> tuple[Sequence[MarketOrder], int]:
    query = (
        select(MarketOrder)
        .where(MarketOrder.user_id == user_id)
        .order_by(MarketOrder.created_at.desc(), MarketOrder.id)
    )
    return await fetch_page(session, query, page)


async def trades_of_orders(
    session: AsyncSession, order_ids: Sequence[uuid.UUID]
) -> Sequence[MarketTrade]:
    if not order_ids:
        return []
    query = (
        select(MarketTrade)
        .where(MarketTrade.buy_order_id.in_(order_ids) | MarketTrade.sell_order_id.in_(order_ids))
        .order_by(MarketTrade.seq, MarketTrade.id)
    )
    return (await session.scalars(query)).all()


async def trades_page(
    session: AsyncSession, region: str, resource: str, page: PageRequest
) -> tuple[Sequence[MarketTrade], int]:
    query = (
        select(MarketTrade)
        .where(MarketTrade.region == region, MarketTrade.resource == resource)
        .order_by(MarketTrade.seq.desc(), MarketTrade.id)
    )
    return await fetch_page(session, query, page)


async def depth(
    session: AsyncSession, region: str, resource: str
) -> list[tuple[str, int, int, int]]:
    """(side, price, open quantity, orders) per price level of the book."""
    query = (
        select(
            MarketOrder.side,
            MarketOrder.price,
            func.sum(MarketOrder.remaining),
            func.count(),
        )
        .where(
            MarketOrder.region == region,
            MarketOrder.resource == resource,
            MarketOrder.status == "open",
        )
        .group_by(MarketOrder.side, MarketOrder.price)
    )
    return [(side, price, int(q), n) for side, price, q, n in (await session.execute(query)).all()]


async def deal_by_key(session: AsyncSession, user_id: uuid.UUID, key: str) -> MarketDeal | None:
    return await session.scalar(
        select(MarketDeal).where(MarketDeal.user_id == user_id, MarketDeal.idempotency_key == key)
    )


async def deals_page(
    session: AsyncSession, user_id: uuid.UUID, page: PageRequest
) -> tuple[Sequence[MarketDeal], int]:
    query = (
        select(MarketDeal)
        .where(MarketDeal.user_id == user_id)
        .order_by(MarketDeal.created_at.desc(), MarketDeal.id)
    )
    return await fetch_page(session, query, page)


async def unbatched_trades(session: AsyncSession, limit: int) -> Sequence[MarketTrade]:
    """Trades whose tokens are not in a chain operation yet, oldest first, locked."""
    await lock_rows(session, MarketTrade, MarketTrade.batch_id.is_(None))
    query = (
        select(MarketTrade)
        .where(MarketTrade.batch_id.is_(None))
        .order_by(MarketTrade.created_at, MarketTrade.id)
        .limit(limit)
        .with_for_update(skip_locked=True)
    )
    return (await session.scalars(query)).all()


async def trade_totals(session: AsyncSession) -> tuple[int, int]:
    """(trades, the sum of price * quantity in kopeck-thousandths) over every book."""
    count, volume = (
        await session.execute(
            select(func.count(), func.sum(MarketTrade.price * MarketTrade.quantity))
        )
    ).one()
    return int(count or 0), int(volume or 0)


async def trades_between(
    session: AsyncSession, start: datetime, end: datetime
) -> list[tuple[datetime, int]]:
    """(made at, price * quantity in kopeck-thousandths) of the trades in [start, end)."""
    rows = await session.execute(
        select(MarketTrade.created_at, MarketTrade.price * MarketTrade.quantity).where(
            MarketTrade.created_at >= start, MarketTrade.created_at < end
        )
    )
    return [(at, int(volume)) for at, volume in rows.all()]
