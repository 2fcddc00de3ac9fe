"""Every SQL query of the bank context."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import Select, select
from sqlalchemy.ext.asyncio import AsyncSession

from mornet.access import Actor, readable_by
from mornet.bank.models import BankAlert, BankNotification, Deposit
from mornet.db import insert_for, lock_rows, utcnow
from mornet.pagination import PageRequest, fetch_page


def readable(actor: Actor) -> Select[Deposit]:
    """The deposits `actor` may see: their own; every one for an admin."""
    return select(Deposit).where(readable_by(actor, Deposit.user_id))


async def get_readable(
    session: AsyncSession, actor: Actor, deposit_id: uuid.UUID
) -> Deposit | None:
    deposit: Deposit | None = await session.scalar(readable(actor).where(Deposit.id == deposit_id))
    return deposit


async def page_of_user(
    session: AsyncSession, user_id: uuid.UUID, page: PageRequest
) -> tuple[Sequence[Deposit], int]:
    query = (
        select(Deposit)
        .where(Deposit.user_id == user_id)
        .order_by(Deposit.created_at.desc(), Deposit.id)
    )
    return await fetch_page(session, query, page)


async def by_order_for_update(session: AsyncSession, order_id: str) -> Deposit | None:
    """The deposit, locked until the transaction ends (one notification at a time per deposit)."""
    await lock_rows(session, Deposit, Deposit.order_id == order_id)
    deposit: Deposit | None = await session.scalar(
        select(Deposit)
        .where(Deposit.order_id == order_id)
        .with_for_update()
        .execution_options(populate_existing=True)  # what is locked, not a stale copy
    )
    return deposit


async def open_deposits(
    session: AsyncSession, *, statuses: list[str], before: datetime, limit: int
) -> Sequence[Deposit]:
    """Deposits in `statuses` untouched since `before`, oldest first."""
    rows = await session.scalars(
        select(Deposit)
        .where(Deposit.status.in_(statuses), Deposit.updated_at < before)
        .order_by(Deposit.updated_at)
        .limit(limit)
    )
    return rows.all()


async def held_deposits(session: AsyncSession) -> Sequence[tuple[uuid.UUID, Decimal]]:
    """(id, amount) of every deposit whose roubles the bank holds for the platform."""
    rows = await session.execute(
        select(Deposit.id, Deposit.amount).where(Deposit.minted, ~Deposit.refunded)
    )
    return [(deposit_id, amount) for deposit_id, amount in rows.all()]


async def record_notification(
    session: AsyncSession, payment_id: str, status: str, payload: dict[str, Any]
) -> bool:
    """Store a (payment, status) notification; False when it was stored before."""
    stored = await session.execute(
        insert_for(session, BankNotification)
        .values(
            id=uuid.uuid4(),
            payment_id=payment_id,
            status=status,
            payload=payload,
            received_at=utcnow(),
        )
        .on_conflict_do_nothing(index_elements=["payment_id", "status"])
        .returning(BankNotification.id)
    )
    return stored.first() is not None


def alert(session: AsyncSession, *, kind: str, detail: str, deposit_id: uuid.UUID | None) -> None:
    session.add(BankAlert(kind=kind, detail=detail[:2000], deposit_id=deposit_id))
