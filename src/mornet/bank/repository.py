"""Every SQL query of the bank context."""

from __future__ import annotations

import uuid
from collections.abc import Collection, Sequence
from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import ColumnElement, Select, bindparam, select, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm.attributes import set_committed_value

from mornet.access import Actor, readable_by
from mornet.bank.lifecycle import DepositState
from mornet.bank.models import (
    BankAlert,
    BankCard,
    BankCustomer,
    BankNotification,
    Deposit,
    Withdrawal,
)
from mornet.db import insert_for, lock_rows, locked_one, table_of, utcnow
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


async def set_deposit_states(
    session: AsyncSession, states: Sequence[tuple[Deposit, DepositState]], *, updated_at: datetime
) -> None:
    """Write locked deposits' new states with one statement, and show each on its object as
    stored (not as a change still to flush: the notification path writes nothing else)."""
    if not states:
        return
    table = table_of(Deposit)
    await session.execute(
        update(table)
        .where(table.c.id == bindparam("deposit"))
        .values(
            status=bindparam("new_status"),
            minted=bindparam("new_minted"),
            refunded=bindparam("new_refunded"),
            updated_at=bindparam("new_updated_at"),
        ),
        [
            {
                "deposit": deposit.id,
                "new_status": state.status.value,
                "new_minted": state.minted,
                "new_refunded": state.refunded,
                "new_updated_at": updated_at,
            }
            for deposit, state in states
        ],
    )
    for deposit, state in states:
        set_committed_value(deposit, "status", state.status.value)
        set_committed_value(deposit, "minted", state.minted)
        set_committed_value(deposit, "refunded", state.refunded)
        set_committed_value(deposit, "updated_at", updated_at)


async def by_order_for_update(session: AsyncSession, order_id: str) -> Deposit | None:
    """The deposit, locked until the transaction ends (one notification at a time per deposit)."""
    return (await by_orders_for_update(session, [order_id])).get(order_id)


async def by_orders_for_update(
    session: AsyncSession, order_ids: Collection[str]
) -> dict[str, Deposit]:
    """The deposits of these orders (by order id), locked until the transaction ends and read
    fresh. Rows are locked in one order (by id), so two transactions locking overlapping sets
    wait for each other instead of deadlocking."""
    if not order_ids:
        return {}
    matching = Deposit.order_id.in_(sorted(order_ids))
    await lock_rows(session, Deposit, matching)
    rows = await session.scalars(
        select(Deposit)
        .where(matching)
        .order_by(Deposit.id)
        .with_for_update()
        .execution_options(populate_existing=True)
    )
    return {deposit.order_id: deposit for deposit in rows}


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


async def held_deposits(session: AsyncSession) -> Sequence[tuple[str | None, Decimal]]:
    """(mint key, amount) of every deposit whose roubles the bank holds for the platform."""
    rows = await session.execute(
        select(Deposit.mint_key, Deposit.amount).where(Deposit.minted, ~Deposit.refunded)
    )
    return [(key, amount) for key, amount in rows.all()]


async def due_mints(session: AsyncSession, *, limit: int) -> Sequence[Deposit]:
    """Confirmed deposits whose GCC no mint covers yet, locked; rows another transaction is
    batching right now are skipped (PostgreSQL), so two sweeps never mint one deposit."""
    due: tuple[ColumnElement[bool], ...] = (
        Deposit.minted.is_(True),
        Deposit.refunded.is_(False),
        Deposit.mint_key.is_(None),
    )
    await lock_rows(session, Deposit, *due)
    rows = await session.scalars(
        select(Deposit)
        .where(*due)
        .order_by(Deposit.updated_at, Deposit.id)
        .limit(limit)
        .with_for_update(skip_locked=True)
        .execution_options(populate_existing=True)
    )
    return rows.all()


async def unkey_mint(session: AsyncSession, mint_key: str) -> int:
    """Deposits of a failed mint batch become due again. Returns how many."""
    rows = await session.execute(
        update(Deposit)
        .where(Deposit.mint_key == mint_key)
        .values(mint_key=None)
        .returning(Deposit.id)
    )
    return len(rows.all())


async def record_notification(
    session: AsyncSession, payment_id: str, status: str, payload: dict[str, Any]
) -> bool:
    """Store a (payment, status) notification; False when it was stored before."""
    return (payment_id, status) in await record_notifications(
        session, [(payment_id, status, payload)]
    )


async def record_notifications(
    session: AsyncSession, notifications: Sequence[tuple[str, str, dict[str, Any]]]
) -> set[tuple[str, str]]:
    """Store (payment, status, payload) notifications with one statement, each (payment,
    status) once. Returns those stored now: the rest were stored before (or are repeated)."""
    rows = {
        (payment_id, status): payload for payment_id, status, payload in reversed(notifications)
    }  # the first of repeats wins
    if not rows:
        return set()
    received_at = utcnow()
    stored = await session.execute(
        insert_for(session, BankNotification)
        .values(
            [
                {
                    "id": uuid.uuid4(),
                    "payment_id": payment_id,
                    "status": status,
                    "payload": payload,
                    "received_at": received_at,
                }
                for (payment_id, status), payload in rows.items()
            ]
        )
        .on_conflict_do_nothing(index_elements=["payment_id", "status"])
        .returning(BankNotification.payment_id, BankNotification.status)
    )
    return {(payment_id, status) for payment_id, status in stored.all()}


def alert(
    session: AsyncSession,
    *,
    kind: str,
    detail: str,
    deposit_id: uuid.UUID | None = None,
    withdrawal_id: uuid.UUID | None = None,
) -> BankAlert:
    raised = BankAlert(
        id=uuid.uuid4(),
        kind=kind,
        detail=detail[:2000],
        deposit_id=deposit_id,
        withdrawal_id=withdrawal_id,
    )
    session.add(raised)
    return raised


async def alerts(session: AsyncSession, page: PageRequest) -> tuple[Sequence[BankAlert], int]:
    query = select(BankAlert).order_by(BankAlert.created_at.desc(), BankAlert.id)
    return await fetch_page(session, query, page)


async def all_deposits(session: AsyncSession, page: PageRequest) -> tuple[Sequence[Deposit], int]:
    query = select(Deposit).order_by(Deposit.created_at.desc(), Deposit.id)
    return await fetch_page(session, query, page)


async def refunded_deposits(session: AsyncSession) -> Sequence[tuple[uuid.UUID, Decimal, bool]]:
    """(id, amount, refund_debt) of every deposit refunded after its GCC was minted."""
    rows = await session.execute(
        select(Deposit.id, Deposit.amount, Deposit.refund_debt).where(
            Deposit.minted, Deposit.refunded, Deposit.mint_key.is_not(None)
        )
    )
    return [(deposit_id, amount, debt) for deposit_id, amount, debt in rows.all()]


async def deposit_for_update(session: AsyncSession, deposit_id: uuid.UUID) -> Deposit | None:
    return await locked_one(session, Deposit, Deposit.id == deposit_id)


# Customers and cards.


async def customer(session: AsyncSession, user_id: uuid.UUID) -> BankCustomer | None:
    return await session.get(BankCustomer, user_id)


async def add_customer(session: AsyncSession, user_id: uuid.UUID, customer_key: str) -> None:
    """Record the user's customer at the bank (a concurrent first use records it once)."""
    await session.execute(
        insert_for(session, BankCustomer)
        .values(user_id=user_id, customer_key=customer_key, created_at=utcnow())
        .on_conflict_do_nothing(index_elements=["user_id"])
    )


async def cards_of(session: AsyncSession, user_id: uuid.UUID) -> Sequence[BankCard]:
    rows = await session.scalars(
        select(BankCard)
        .where(BankCard.user_id == user_id)
        .order_by(BankCard.created_at.desc(), BankCard.id)
    )
    return rows.all()


async def card_of(session: AsyncSession, user_id: uuid.UUID, card_id: uuid.UUID) -> BankCard | None:
    card: BankCard | None = await session.scalar(
        select(BankCard).where(BankCard.id == card_id, BankCard.user_id == user_id)
    )
    return card


async def card_by_request_for_update(session: AsyncSession, request_key: str) -> BankCard | None:
    return await locked_one(session, BankCard, BankCard.request_key == request_key)


async def card(session: AsyncSession, card_id: uuid.UUID) -> BankCard | None:
    return await session.get(BankCard, card_id)


# Withdrawals.


def readable_withdrawals(actor: Actor) -> Select[Withdrawal]:
    return select(Withdrawal).where(readable_by(actor, Withdrawal.user_id))


async def withdrawal_readable(
    session: AsyncSession, actor: Actor, withdrawal_id: uuid.UUID
) -> Withdrawal | None:
    found: Withdrawal | None = await session.scalar(
        readable_withdrawals(actor).where(Withdrawal.id == withdrawal_id)
    )
    return found


async def withdrawals_page(
    session: AsyncSession, user_id: uuid.UUID | None, page: PageRequest
) -> tuple[Sequence[Withdrawal], int]:
    """A user's withdrawals (every user's when `user_id` is None), newest first."""
    query = select(Withdrawal).order_by(Withdrawal.created_at.desc(), Withdrawal.id)
    if user_id is not None:
        query = query.where(Withdrawal.user_id == user_id)
    return await fetch_page(session, query, page)


async def withdrawal_by_key(
    session: AsyncSession, user_id: uuid.UUID, idempotency_key: str
) -> Withdrawal | None:
    found: Withdrawal | None = await session.scalar(
        select(Withdrawal).where(
            Withdrawal.user_id == user_id, Withdrawal.idempotency_key == idempotency_key
        )
    )
    return found


async def withdrawal_for_update(
    session: AsyncSession, *where: ColumnElement[bool]
) -> Withdrawal | None:
    """The withdrawal matching `where`, locked until the transaction ends."""
    return await locked_one(session, Withdrawal, *where)


async def withdrawal_ids_in(
    session: AsyncSession, statuses: list[str], *, limit: int
) -> list[uuid.UUID]:
    rows = await session.scalars(
        select(Withdrawal.id)
        .where(Withdrawal.status.in_(statuses))
        .order_by(Withdrawal.updated_at)
        .limit(limit)
    )
    return list(rows.all())


async def withdrawn(session: AsyncSession, status: str) -> Sequence[tuple[uuid.UUID, Decimal]]:
    """(id, amount) of every withdrawal in `status`."""
    rows = await session.execute(
        select(Withdrawal.id, Withdrawal.amount).where(Withdrawal.status == status)
    )
    return [(withdrawal_id, amount) for withdrawal_id, amount in rows.all()]
