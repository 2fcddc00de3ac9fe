"""Bank rules: deposits in roubles, the bank's notifications, GCC minted exactly once.

A deposit is opened with the bank (Init) and paid on the bank's page. The bank then notifies
us, repeatedly and in any order. Each (payment, status) notification is stored once; it must
carry the terminal's key and a valid Token, and name our order with our amount — otherwise it
is refused, and a mismatch is kept as an alert. The deposit's lifecycle (`lifecycle.apply`)
decides what a report changes; reaching CONFIRMED records `bank.deposit.confirmed` in the same
transaction, and the mint follows from the outbox, with the deposit as idempotency key.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import timedelta
from decimal import Decimal
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from mornet import outbox
from mornet.access import Actor
from mornet.bank import repository
from mornet.bank.adapter import TBankAdapter, kopecks
from mornet.bank.events import DepositConfirmed
from mornet.bank.lifecycle import DepositState, Effect, apply
from mornet.bank.models import Deposit
from mornet.bank.protocol import PaymentStatus, verify
from mornet.bank.schemas import ReservesOut
from mornet.chain import service as chain
from mornet.chain.errors import ChainUnavailable
from mornet.chain.schemas import OperationKind, from_base_units, to_base_units
from mornet.db import utcnow
from mornet.errors import Forbidden, NotFound, ValidationFailed
from mornet.pagination import PageRequest
from mornet.wallets import service as wallets


@dataclass
class BankGateway:
    """The bank as the running platform holds it: the adapter, the terminal's credentials
    (they check the bank's notifications too) and the deposit rules."""

    adapter: TBankAdapter
    terminal_key: str
    password: str
    public_url: str
    deposit_min: Decimal
    deposit_max: Decimal

    @property
    def notification_url(self) -> str:
        return f"{self.public_url}/api/bank/notifications/tbank"


class DepositNotFound(NotFound):
    code = "deposit_not_found"

    def __init__(self) -> None:
        super().__init__("no such deposit")


async def open_deposit(
    session: AsyncSession, gateway: BankGateway, *, user_id: uuid.UUID, amount: Decimal
) -> Deposit:
    """Record the deposit, then open its payment with the bank (Init). A bank that refuses or
    does not answer leaves nothing behind (the caller's transaction rolls back)."""
    if not gateway.deposit_min <= amount <= gateway.deposit_max:
        raise ValidationFailed(
            f"a deposit is {gateway.deposit_min} to {gateway.deposit_max} RUB",
            code="deposit_out_of_bounds",
        )
    await wallets.wallet_of(session, user_id)  # GCC needs somewhere to go
    deposit = Deposit(user_id=user_id, amount=amount, status=PaymentStatus.NEW.value)
    deposit.id = uuid.uuid4()
    deposit.order_id = str(deposit.id)
    session.add(deposit)
    await session.flush()
    created = await gateway.adapter.init(
        order_id=deposit.order_id,
        amount=amount,
        description=f"MorNet: {amount} GCC",
        customer_key=str(user_id),
        notification_url=gateway.notification_url,
        success_url=f"{gateway.public_url}/bank",
        fail_url=f"{gateway.public_url}/bank",
    )
    deposit.payment_id = created.payment_id
    deposit.payment_url = created.payment_url
    deposit.status = created.status.value
    await session.flush()
    return deposit


async def deposits_of(
    session: AsyncSession, user_id: uuid.UUID, page: PageRequest
) -> tuple[Sequence[Deposit], int]:
    return await repository.page_of_user(session, user_id, page)


async def get_deposit(session: AsyncSession, *, actor: Actor, deposit_id: uuid.UUID) -> Deposit:
    deposit = await repository.get_readable(session, actor, deposit_id)
    if deposit is None:
        raise DepositNotFound()
    return deposit


class NotificationRefused(ValidationFailed):
    code = "notification_refused"


async def receive_notification(
    session: AsyncSession, gateway: BankGateway, payload: dict[str, Any]
) -> None:
    """Take one notification from the bank. Returns when it is handled (answer `OK` once the
    transaction commits); raises `Forbidden` for a forged one (nothing stored) and
    `NotificationRefused` for one that does not match its deposit (an alert is recorded:
    the caller commits before answering)."""
    if payload.get("TerminalKey") != gateway.terminal_key or not verify(payload, gateway.password):
        raise Forbidden("the notification's terminal or token is wrong", code="bad_token")
    try:
        payment_id = str(payload["PaymentId"])
        status = PaymentStatus(str(payload["Status"]))
        order_id = str(payload["OrderId"])
        amount = int(payload["Amount"])
    except (KeyError, ValueError, TypeError) as exc:
        raise ValidationFailed(f"not a payment notification: {exc!r}") from exc
    deposit = await repository.by_order_for_update(session, order_id)
    mismatch = None
    if deposit is None:
        mismatch = f"unknown order {order_id!r}"
    elif deposit.payment_id != payment_id:
        mismatch = f"payment {payment_id} is not the one opened for order {order_id}"
    elif amount != kopecks(deposit.amount):
        mismatch = f"amount {amount} kopecks, the deposit is {kopecks(deposit.amount)}"
    if mismatch is not None:
        repository.alert(
            session,
            kind="notification_mismatch",
            detail=f"{status.value}: {mismatch}",
            deposit_id=deposit.id if deposit is not None else None,
        )
        raise NotificationRefused(f"refused: {mismatch}")
    assert deposit is not None
    # Only a notification that matches its deposit counts as handled: a refused one must
    # not shadow the genuine one that may follow.
    if not await repository.record_notification(session, payment_id, status.value, payload):
        return  # the bank resent it: handled already
    await _advance(session, deposit, status)


async def _advance(session: AsyncSession, deposit: Deposit, status: PaymentStatus) -> None:
    """Apply one report of the bank (a notification or a GetState answer) to the deposit."""
    before = DepositState(PaymentStatus(deposit.status), deposit.minted, deposit.refunded)
    after, effects = apply(before, status)
    deposit.status, deposit.minted, deposit.refunded = (
        after.status.value,
        after.minted,
        after.refunded,
    )
    deposit.updated_at = utcnow()
    for effect in effects:
        if effect == Effect.MINT:
            await outbox.record(
                session,
                DepositConfirmed(
                    deposit_id=deposit.id, user_id=deposit.user_id, amount=deposit.amount
                ),
            )
        else:
            # A refund after the mint, or contradictory reports: an operator settles it.
            repository.alert(
                session,
                kind=str(effect),
                detail=f"{status.value} after {before.status.value} for {deposit.amount} RUB",
                deposit_id=deposit.id,
            )


OPEN = frozenset(
    {
        PaymentStatus.NEW,
        PaymentStatus.FORM_SHOWED,
        PaymentStatus.AUTHORIZING,
        PaymentStatus.AUTHORIZED,
        PaymentStatus.CONFIRMING,
        PaymentStatus.CONFIRM_CHECKING,
    }
)
"""Statuses from which the bank still owes us an outcome."""


async def stale_deposits(
    session: AsyncSession, *, quiet_for: timedelta, limit: int = 100
) -> list[uuid.UUID]:
    """Deposits that have waited `quiet_for` without an outcome from the bank."""
    stale = await repository.open_deposits(
        session, statuses=[s.value for s in OPEN], before=utcnow() - quiet_for, limit=limit
    )
    return [deposit.id for deposit in stale if deposit.payment_id is not None]


async def reconcile_deposit(
    session: AsyncSession, gateway: BankGateway, deposit_id: uuid.UUID
) -> bool:
    """Ask the bank (GetState) where a deposit stands and apply the answer: CONFIRM_CHECKING
    resolves this way, and so does a notification that never came. The bank is asked before
    the deposit is locked, so no lock waits on the network. Returns whether it changed."""
    deposit = await session.get(Deposit, deposit_id)
    if deposit is None or deposit.payment_id is None:
        return False
    status = await gateway.adapter.get_state(deposit.payment_id)
    locked = await repository.by_order_for_update(session, deposit.order_id)
    assert locked is not None
    before = locked.status
    await _advance(session, locked, status)
    if locked.status == before:
        locked.updated_at = utcnow()  # asked: again only after another quiet period
    return locked.status != before


def deposit_mint_key(deposit_id: uuid.UUID) -> str:
    return f"bank:deposit:{deposit_id}"


async def mint_for_deposit(
    session: AsyncSession, handle: chain.ChainHandle | None, event: DepositConfirmed
) -> None:
    """The GCC of a confirmed deposit, to the depositor's wallet — once, whatever redelivers
    the event (the deposit is the chain operation's idempotency key)."""
    if handle is None:
        # Not the event's fault: retried until the chain is there, never dead-lettered.
        raise ConnectionError("the chain is not connected yet")
    wallet = await wallets.wallet_of(session, event.user_id)
    await chain.request(
        session,
        handle,
        token="GCC",
        kind=OperationKind.MINT,
        moves=[chain.Move(amount=to_base_units(event.amount), receiver=wallet.address)],
        idempotency_key=deposit_mint_key(event.deposit_id),
    )


async def reserves(session: AsyncSession, handle: chain.ChainHandle | None) -> ReservesOut:
    """The reserves check: GCC on chain plus mints in flight equals the roubles held."""
    if handle is None:
        raise ChainUnavailable()
    held = await repository.held_deposits(session)
    statuses = await chain.statuses_of(session, [deposit_mint_key(d) for d, _ in held])
    confirmed = sum((amount for _, amount in held), Decimal(0))
    pending = sum(
        (amount for d, amount in held if statuses.get(deposit_mint_key(d)) != "confirmed"),
        Decimal(0),
    )
    supply = from_base_units(await handle.total_supply("GCC"))
    paid = burns = held_back = Decimal(0)  # withdrawals are not built yet
    escrow = confirmed - paid
    return ReservesOut(
        confirmed_deposits=confirmed,
        paid_withdrawals=paid,
        escrow_rub=escrow,
        gcc_total_supply=supply,
        gcc_mints_pending=pending,
        gcc_burns_pending=burns,
        gcc_held_for_withdrawals=held_back,
        ok=supply + pending - burns == escrow,
    )
