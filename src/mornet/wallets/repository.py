"""Every SQL query of the wallets context."""

from __future__ import annotations

import uuid
from collections.abc import Collection, Sequence
from typing import cast

from sqlalchemy import Table, bindparam, insert, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from mornet.db import lock_rows
from mornet.wallets.models import Hold, Wallet


async def of_user(
    session: AsyncSession, user_id: uuid.UUID, *, lock: bool = False
) -> Wallet | None:
    """The user's wallet; with `lock`, held until the transaction ends so that balance
    checks of one wallet run one at a time on either backend."""
    query = select(Wallet).where(Wallet.user_id == user_id)
    if lock:
        await lock_rows(session, Wallet, Wallet.user_id == user_id)
        query = query.with_for_update()
    return await session.scalar(query)


async def lock_of_users(session: AsyncSession, user_ids: Collection[uuid.UUID]) -> Sequence[Wallet]:
    """The users' wallets, locked until the transaction ends, in one order (by user) so that
    two transactions locking overlapping sets never wait on each other in a cycle."""
    if not user_ids:
        return []
    ids = list(user_ids)
    await lock_rows(session, Wallet, Wallet.user_id.in_(ids))
    query = select(Wallet).where(Wallet.user_id.in_(ids)).order_by(Wallet.user_id).with_for_update()
    return (await session.scalars(query)).all()


async def by_address(session: AsyncSession, address: str) -> Wallet | None:
    return await session.scalar(select(Wallet).where(Wallet.address == address))


async def by_addresses(session: AsyncSession, addresses: Sequence[str]) -> Sequence[Wallet]:
    if not addresses:
        return []
    return (await session.scalars(select(Wallet).where(Wallet.address.in_(addresses)))).all()


async def owners(session: AsyncSession) -> set[uuid.UUID]:
    return set((await session.scalars(select(Wallet.user_id))).all())


async def addresses_of(
    session: AsyncSession, user_ids: Collection[uuid.UUID]
) -> dict[uuid.UUID, str]:
    rows = await session.execute(
        select(Wallet.user_id, Wallet.address).where(Wallet.user_id.in_(list(user_ids)))
    )
    return {user_id: address for user_id, address in rows.all()}


async def open_holds(
    session: AsyncSession, user_ids: Collection[uuid.UUID], tokens: Collection[str] | None = None
) -> Sequence[Hold]:
    if not user_ids:
        return []
    query = select(Hold).where(Hold.user_id.in_(list(user_ids)), Hold.is_open.is_(True))
    if tokens is not None:
        query = query.where(Hold.token.in_(list(tokens)))
    return (await session.scalars(query)).all()


async def hold_by_reference(session: AsyncSession, reference: str) -> Hold | None:
    return await session.scalar(select(Hold).where(Hold.reference == reference))


async def insert_holds(session: AsyncSession, rows: Sequence[dict[str, object]]) -> None:
    if rows:
        await session.execute(insert(Hold), list(rows))


async def set_holds(session: AsyncSession, rows: Sequence[dict[str, object]]) -> None:
    """Each row: `ref` (the hold's reference), `units` (a decimal string), `is_open`, `at`."""
    if not rows:
        return
    table = cast(Table, Hold.__table__)
    await session.execute(
        update(table)
        .where(table.c.reference == bindparam("ref"))
        .values(units=bindparam("units"), is_open=bindparam("is_open"), updated_at=bindparam("at")),
        list(rows),
    )
