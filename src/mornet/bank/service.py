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
from enum import StrEnum
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from mornet import outbox
from mornet.access import Actor
from mornet.bank import repository
from mornet.bank.adapter import TBankAdapter, kopecks
from mornet.bank.events import (
    AlertRaised,
    DepositConfirmed,
    DepositRefunded,
    WithdrawalPaid,
    WithdrawalRejected,
)
from mornet.bank.lifecycle import DepositState, Effect, apply
from mornet.bank.models import BankAlert, BankCard, Deposit, Withdrawal
from mornet.bank.protocol import LINKCARD, PaymentStatus, PayoutStatus, verify
from mornet.bank.schemas import CardStatus, ReservesOut, WithdrawalStatus
from mornet.chain import service as chain
from mornet.chain.contracts import MAX_BATCH
from mornet.chain.errors import ChainUnavailable
from mornet.chain.schemas import OperationKind, from_base_units, to_base_units
from mornet.changes import topics_of
from mornet.db import insert_objects, utcnow
from mornet.errors import Conflict, Forbidden, MornetError, NotFound, ValidationFailed
from mornet.pagination import PageRequest
from mornet.tokens import service as tokens
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
    withdrawal_min: Decimal
    withdrawal_max: Decimal

    @property
    def notification_url(self) -> str:
        return f"{self.public_url}/api/bank/notifications/tbank"


class DepositNotFound(NotFound):
    code = "deposit_not_found"

    def __init__(self) -> None:
        super().__init__("no such deposit")


async def raise_alert(
    session: AsyncSession,
    *,
    kind: str,
    detail: str,
    deposit_id: uuid.UUID | None = None,
    withdrawal_id: uuid.UUID | None = None,
) -> None:
    """Keep an alert for operators, and tell the event log."""
    raised = repository.alert(
        session, kind=kind, detail=detail, deposit_id=deposit_id, withdrawal_id=withdrawal_id
    )
    await outbox.record(
        session, AlertRaised(alert_id=raised.id, kind=kind, message=raised.detail[:500])
    )


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
    await wallets.address_of(session, user_id)  # GCC needs somewhere to go
    deposit_id = uuid.uuid4()
    order_id = str(deposit_id)
    # The bank first, then one insert: a bank that refuses or does not answer leaves nothing
    # behind, and a failed insert leaves only an unpaid payment at the bank (as a rollback
    # after the bank answered did before).
    created = await gateway.adapter.init(
        order_id=order_id,
        amount=amount,
        description=f"MorNet: {amount} GCC",
        customer_key=str(user_id),
        notification_url=gateway.notification_url,
        success_url=f"{gateway.public_url}/bank",
        fail_url=f"{gateway.public_url}/bank",
    )
    now = utcnow()
    deposit = Deposit(
        id=deposit_id,
        user_id=user_id,
        order_id=order_id,
        payment_id=created.payment_id,
        payment_url=created.payment_url,
        amount=amount,
        status=created.status.value,
        minted=False,
        refunded=False,
        mint_key=None,
        refund_debt=False,
        created_at=now,
        updated_at=now,
    )
    await insert_objects(session, [deposit])
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


@dataclass(frozen=True)
class _PaymentReport:
    """A notification about a payment (a deposit's or a withdrawal's payout), as parsed."""

    index: int
    payment_id: str
    reported: str
    order_id: str
    amount: int
    payload: dict[str, Any]


def _payment_report(index: int, payload: dict[str, Any]) -> _PaymentReport:
    try:
        return _PaymentReport(
            index=index,
            payment_id=str(payload["PaymentId"]),
            reported=str(payload["Status"]),
            order_id=str(payload["OrderId"]),
            amount=int(payload["Amount"]),
            payload=payload,
        )
    except (KeyError, ValueError, TypeError) as exc:
        raise ValidationFailed(f"not a payment notification: {exc!r}") from exc


async def receive_notifications(
    session: AsyncSession, gateway: BankGateway, payloads: Sequence[dict[str, Any]]
) -> list[MornetError | None]:
    """Take notifications from the bank, in order, in the caller's transaction. Returns each
    one's outcome:

    - None: handled (answer `OK` once the transaction commits);
    - `Forbidden` (a forged one) or `ValidationFailed` (not a notification): nothing stored;
    - `NotificationRefused`: it does not match its deposit or withdrawal; an alert is
      recorded, so commit before answering the refusal.

    The deposits they name are locked with one statement, their notifications stored with
    another and their new states written with a third, however many there are."""
    outcomes: list[MornetError | None] = [None] * len(payloads)
    reports: list[_PaymentReport] = []
    for index, payload in enumerate(payloads):
        try:
            if payload.get("TerminalKey") != gateway.terminal_key or not verify(
                payload, gateway.password
            ):
                raise Forbidden("the notification's terminal or token is wrong", code="bad_token")
            if payload.get("NotificationType") == LINKCARD:
                await _card_bound(session, payload)
                continue
            reports.append(_payment_report(index, payload))
        except (Forbidden, ValidationFailed) as refused:
            outcomes[index] = refused
    deposits = await repository.by_orders_for_update(session, {r.order_id for r in reports})
    matched: list[tuple[_PaymentReport, Deposit, PaymentStatus]] = []
    for report in reports:
        try:
            deposit = deposits.get(report.order_id)
            if deposit is None:
                withdrawal = await repository.withdrawal_for_update(
                    session, Withdrawal.order_id == report.order_id
                )
                if withdrawal is not None:
                    await _payout_notified(
                        session,
                        withdrawal,
                        report.payment_id,
                        report.reported,
                        report.amount,
                        report.payload,
                    )
                    continue
            matched.append((report, *await _matching(session, deposit, report)))
        except ValidationFailed as refused:  # NotificationRefused among them
            outcomes[report.index] = refused
    # Only a notification that matches its deposit counts as handled: a refused one must
    # not shadow the genuine one that may follow.
    stored = await repository.record_notifications(
        session, [(r.payment_id, status.value, r.payload) for r, _, status in matched]
    )
    news: list[tuple[Deposit, PaymentStatus]] = []
    for report, deposit, status in matched:
        key = (report.payment_id, status.value)
        if key in stored:  # else the bank resent it: handled already
            stored.discard(key)  # the same notification twice here: once
            news.append((deposit, status))
    await _advance(session, news)
    return outcomes


async def _matching(
    session: AsyncSession, deposit: Deposit | None, report: _PaymentReport
) -> tuple[Deposit, PaymentStatus]:
    """The deposit and status a payment notification reports, if it matches our deposit;
    else an alert is recorded and `NotificationRefused` raised."""
    try:
        status = PaymentStatus(report.reported)
    except ValueError as exc:
        raise ValidationFailed(f"not a payment status: {report.reported!r}") from exc
    mismatch = None
    if deposit is None:
        mismatch = f"unknown order {report.order_id!r}"
    elif deposit.payment_id != report.payment_id:
        mismatch = f"payment {report.payment_id} is not the one opened for order {report.order_id}"
    elif report.amount != kopecks(deposit.amount):
        mismatch = f"amount {report.amount} kopecks, the deposit is {kopecks(deposit.amount)}"
    if mismatch is not None:
        await raise_alert(
            session,
            kind="notification_mismatch",
            detail=f"{status.value}: {mismatch}",
            deposit_id=deposit.id if deposit is not None else None,
        )
        raise NotificationRefused(f"refused: {mismatch}")
    assert deposit is not None
    return deposit, status


async def _advance(session: AsyncSession, reports: Sequence[tuple[Deposit, PaymentStatus]]) -> None:
    """Apply the bank's reports (notifications or GetState answers), in order, to their
    locked deposits: one write of every reported deposit's state, then the effects."""
    states: dict[uuid.UUID, tuple[Deposit, DepositState]] = {}
    effects: list[tuple[Deposit, Effect, PaymentStatus, PaymentStatus]] = []
    for deposit, status in reports:
        before = states.get(deposit.id, (deposit, _state_of(deposit)))[1]
        after, done = apply(before, status)
        states[deposit.id] = (deposit, after)
        effects.extend((deposit, effect, status, before.status) for effect in done)
    await repository.set_deposit_states(session, list(states.values()), updated_at=utcnow())
    for deposit, effect, status, before_status in effects:
        if effect == Effect.MINT:
            await outbox.record(
                session,
                DepositConfirmed(
                    deposit_id=deposit.id, user_id=deposit.user_id, amount=deposit.amount
                ),
            )
        elif effect == Effect.BURN_REFUND:
            await outbox.record(
                session,
                DepositRefunded(
                    deposit_id=deposit.id, user_id=deposit.user_id, amount=deposit.amount
                ),
            )
        else:
            # Contradictory reports, a partial refund: an operator settles it.
            await raise_alert(
                session,
                kind=str(effect),
                detail=f"{status.value} after {before_status.value} for {deposit.amount} RUB",
                deposit_id=deposit.id,
            )


def _state_of(deposit: Deposit) -> DepositState:
    return DepositState(PaymentStatus(deposit.status), deposit.minted, deposit.refunded)


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
    await _advance(session, [(locked, status)])  # stamps it: asked again only after a while
    return locked.status != before


MINT_BATCH = "bank:deposit-mint:"
"""Idempotency-key prefix of the chain operations that mint deposits' GCC."""


async def mint_due(session: AsyncSession, handle: chain.ChainHandle | None) -> int:
    """Mint the GCC of every confirmed deposit still due, in batches of up to 256 per chain
    operation, keying each deposit to its batch in the same database transaction: a deposit
    is keyed once, and a batch is minted once. Returns how many deposits it covered.

    The minter (`runtime.mints_forever`) calls it a moment after deposits are confirmed, so
    that the deposits confirmed meanwhile share one chain transaction."""
    if handle is None:
        raise ChainUnavailable()
    covered = 0
    while due := await repository.due_mints(session, limit=MAX_BATCH):
        addresses = await wallets.addresses_of(session, {d.user_id for d in due})
        key = f"{MINT_BATCH}{uuid.uuid4()}"
        await chain.request(
            session,
            handle,
            token="GCC",
            kind=OperationKind.MINT,
            moves=[
                chain.Move(amount=to_base_units(d.amount), receiver=addresses[d.user_id])
                for d in due
            ],
            idempotency_key=key,
        )
        for deposit in due:
            deposit.mint_key = key
        await session.flush()
        covered += len(due)
    return covered


class Next(StrEnum):
    """What the bank's workers should do after a chain operation became final."""

    PAY_OUT = "pay_out"
    """A withdrawal is held: start its payout."""
    MINT = "mint"
    """A mint batch failed: its deposits are due again."""
    NOTHING = "nothing"


async def operation_finished(
    session: AsyncSession,
    *,
    operation_id: uuid.UUID,
    key: str,
    confirmed: bool,
    error: str | None,
) -> Next:
    """A chain operation became final. A withdrawal's hold: the withdrawal is held (its payout
    can start) or failed. A mint batch that failed gives its deposits to the next batch (and
    raises an alert)."""
    if key.startswith(MINT_BATCH):
        if confirmed:
            return Next.NOTHING
        count = await repository.unkey_mint(session, key)
        await raise_alert(
            session,
            kind="mint_failed",
            detail=f"the mint of {count} deposit(s) failed on chain ({error or 'unknown'}); "
            "they are minted again in the next batch",
        )
        return Next.MINT
    held = await _hold_finished(
        session, operation_id=operation_id, confirmed=confirmed, error=error
    )
    return Next.PAY_OUT if held else Next.NOTHING


async def burn_for_refund(
    session: AsyncSession, handle: chain.ChainHandle | None, event: DepositRefunded
) -> None:
    """The bank gave a deposit's roubles back: burn its GCC from the depositor's wallet if the
    wallet can still spend it; if not, that GCC stays unbacked — recorded as a debt and an
    alert for an operator (the reserves report shows it, and is not ok, until it is settled)."""
    handle = _connected(handle)
    units = to_base_units(event.amount)
    wallet = await wallets.lock_wallet(session, event.user_id)
    deposit = await repository.deposit_for_update(session, event.deposit_id)
    assert deposit is not None
    key = refund_burn_key(event.deposit_id)
    if deposit.mint_key is None:
        return  # refunded before its mint was batched: it never will be, nothing to burn
    if deposit.refund_debt or await chain.operation_for_key(session, key) is not None:
        return
    if await wallets.available(session, handle, wallet, "GCC") < units:
        deposit.refund_debt = True
        await raise_alert(
            session,
            kind="refund_debt",
            detail=f"{event.amount} RUB refunded by the bank, but the GCC was spent: "
            f"{event.amount} GCC are unbacked until an operator settles it",
            deposit_id=event.deposit_id,
        )
        return
    await chain.request(
        session,
        handle,
        token="GCC",
        kind=OperationKind.BURN,
        moves=[chain.Move(amount=units, sender=wallet.address)],
        idempotency_key=key,
    )


def _connected(handle: chain.ChainHandle | None) -> chain.ChainHandle:
    """The chain, for an event consumer. Not yet connected is an outage, not the event's
    fault: a ConnectionError is retried until the chain is there, never dead-lettered."""
    if handle is None:
        raise ConnectionError("the chain is not connected yet")
    return handle


def refund_burn_key(deposit_id: uuid.UUID) -> str:
    return f"bank:deposit:{deposit_id}:refund"


# Cards and withdrawals.

ESCROW_ADDRESS = chain.keyless_address("mornet:bank:withdrawal-escrow")
"""Where GCC waits while its payout runs (keyless: only the minter moves it)."""


class CardNotFound(NotFound):
    code = "card_not_found"

    def __init__(self) -> None:
        super().__init__("no such card")


class CardNotBound(ValidationFailed):
    code = "card_not_bound"


class WithdrawalNotFound(NotFound):
    code = "withdrawal_not_found"

    def __init__(self) -> None:
        super().__init__("no such withdrawal")


class WithdrawalKeyReused(Conflict):
    code = "idempotency_key_reused"

    def __init__(self) -> None:
        super().__init__("this idempotency key was already used for a different withdrawal")


async def customer_key_of(session: AsyncSession, gateway: BankGateway, user_id: uuid.UUID) -> str:
    """The user's customer at the bank (AddCustomer), opened on first use."""
    customer = await repository.customer(session, user_id)
    if customer is not None:
        return customer.customer_key
    key = str(user_id)
    await gateway.adapter.add_customer(key)
    await repository.add_customer(session, user_id, key)
    return key


async def customer_key(session: AsyncSession, user_id: uuid.UUID) -> str | None:
    customer = await repository.customer(session, user_id)
    return customer.customer_key if customer is not None else None


async def bind_card(session: AsyncSession, gateway: BankGateway, *, user_id: uuid.UUID) -> BankCard:
    """Open the bank's card form for the user (AddCard); the card is pending until the bank
    reports the binding."""
    key = await customer_key_of(session, gateway, user_id)
    form = await gateway.adapter.add_card(key)
    card = BankCard(
        user_id=user_id,
        request_key=form.request_key,
        status=CardStatus.PENDING.value,
        form_url=form.url,
    )
    session.add(card)
    await session.flush()
    return card


async def cards_of(session: AsyncSession, user_id: uuid.UUID) -> Sequence[BankCard]:
    return await repository.cards_of(session, user_id)


def _masked(pan: str) -> str:
    """Never keep a full card number, even if one is sent: first six and last four digits."""
    digits = pan.replace(" ", "")
    if digits.isdigit() and len(digits) >= 12:
        return f"{digits[:6]}******{digits[-4:]}"
    return pan[:30]


async def _card_bound(session: AsyncSession, payload: dict[str, Any]) -> None:
    """The bank's report on a card form: the card is bound (CardId, masked Pan) or refused."""
    request_key = str(payload.get("RequestKey") or "")
    card = await repository.card_by_request_for_update(session, request_key)
    if card is None or str(payload.get("CustomerKey")) != str(card.user_id):
        await raise_alert(
            session,
            kind="notification_mismatch",
            detail=f"card binding for an unknown form {request_key!r}",
        )
        raise NotificationRefused(f"refused: no card form {request_key!r} for this customer")
    if card.status != CardStatus.PENDING:
        return  # the bank resent it
    if payload.get("Success") is True and payload.get("Status") == "COMPLETED":
        card.status = CardStatus.ACTIVE.value
        card.bank_card_id = str(payload.get("CardId"))
        card.pan = _masked(str(payload.get("Pan") or ""))
        card.exp_date = str(payload.get("ExpDate") or "")[:10] or None
    else:
        card.status = CardStatus.REFUSED.value


class ArrearsFirst(ValidationFailed):
    code = "arrears_first"


async def open_withdrawal(
    session: AsyncSession,
    gateway: BankGateway,
    handle: chain.ChainHandle | None,
    *,
    user_id: uuid.UUID,
    amount: Decimal,
    card_id: uuid.UUID,
    idempotency_key: str,
) -> tuple[Withdrawal, bool]:
    """Hold `amount` GCC for a payout to a bound card: the GCC moves to the escrow address
    (supply unchanged); the payout starts once the hold is on chain. A short balance (after
    moves in flight) is refused with nothing held. Returns (withdrawal, created)."""
    if not gateway.withdrawal_min <= amount <= gateway.withdrawal_max:
        raise ValidationFailed(
            f"a withdrawal is {gateway.withdrawal_min} to {gateway.withdrawal_max} RUB",
            code="withdrawal_out_of_bounds",
        )
    # The wallet's lock orders this user's withdrawals: one key, one withdrawal.
    wallet = await wallets.lock_wallet(session, user_id)
    existing = await repository.withdrawal_by_key(session, user_id, idempotency_key)
    if existing is not None:
        if (existing.amount, existing.card_id) != (amount, card_id):
            raise WithdrawalKeyReused()
        return existing, False
    card = await repository.card_of(session, user_id, card_id)
    if card is None:
        raise CardNotFound()
    if card.status != CardStatus.ACTIVE:
        raise CardNotBound(f"the card is {card.status}: bind it at the bank first")
    owed = await tokens.arrears_of_owner(session, user_id)
    if owed > 0:
        # The arrears are held GCC already: what is available is what may leave.
        spendable = from_base_units(max(await wallets.available(session, handle, wallet, "GCC"), 0))
        if spendable < amount:
            raise ArrearsFirst(
                f"{owed} GCC is owed for consumption and is paid first: "
                f"{spendable} GCC can be withdrawn"
            )
    withdrawal = Withdrawal(
        user_id=user_id,
        card_id=card_id,
        amount=amount,
        idempotency_key=idempotency_key,
        status=WithdrawalStatus.HOLDING.value,
    )
    withdrawal.id = uuid.uuid4()
    withdrawal.order_id = str(withdrawal.id)
    session.add(withdrawal)
    await session.flush()
    hold = await wallets.transfer(
        session,
        handle,
        user_id=user_id,
        token="GCC",
        to=ESCROW_ADDRESS,
        amount=amount,
        idempotency_key=f"bank-withdrawal:{withdrawal.id}",
    )
    withdrawal.hold_operation_id = hold.id
    await session.flush()
    return withdrawal, True


async def withdrawals_of(
    session: AsyncSession, user_id: uuid.UUID | None, page: PageRequest
) -> tuple[Sequence[Withdrawal], int]:
    """A user's withdrawals, newest first (every user's for `None`: operators)."""
    return await repository.withdrawals_page(session, user_id, page)


async def get_withdrawal(
    session: AsyncSession, *, actor: Actor, withdrawal_id: uuid.UUID
) -> Withdrawal:
    withdrawal = await repository.withdrawal_readable(session, actor, withdrawal_id)
    if withdrawal is None:
        raise WithdrawalNotFound()
    return withdrawal


async def _hold_finished(
    session: AsyncSession, *, operation_id: uuid.UUID, confirmed: bool, error: str | None
) -> bool:
    """If the operation is a withdrawal's hold, the withdrawal is now held (its payout can
    start: returns True) or failed (nothing moved)."""
    withdrawal = await repository.withdrawal_for_update(
        session, Withdrawal.hold_operation_id == operation_id
    )
    if withdrawal is None or withdrawal.status != WithdrawalStatus.HOLDING:
        return False
    withdrawal.status = (WithdrawalStatus.HELD if confirmed else WithdrawalStatus.FAILED).value
    if not confirmed:
        await raise_alert(
            session,
            kind="hold_failed",
            detail=f"the hold of {withdrawal.amount} GCC failed on chain: {error or 'unknown'}",
            withdrawal_id=withdrawal.id,
        )
    withdrawal.updated_at = utcnow()
    return confirmed


@dataclass(frozen=True)
class PayoutOrder:
    """What the bank needs to pay a held withdrawal out."""

    withdrawal_id: uuid.UUID
    order_id: str
    amount: Decimal
    customer_key: str
    bank_card_id: str
    payment_id: str | None


async def payable(session: AsyncSession, *, limit: int = 100) -> list[uuid.UUID]:
    """Withdrawals whose payout is to start or still running."""
    return await repository.withdrawal_ids_in(
        session, [WithdrawalStatus.HELD.value, WithdrawalStatus.PAYING.value], limit=limit
    )


async def claim_payout(session: AsyncSession, withdrawal_id: uuid.UUID) -> PayoutOrder | None:
    """Mark a held withdrawal as paying (committed before the bank is called, so that after a
    crash the next round knows the bank may already have the order). None: nothing to do."""
    withdrawal = await repository.withdrawal_for_update(session, Withdrawal.id == withdrawal_id)
    if withdrawal is None or withdrawal.status not in (
        WithdrawalStatus.HELD,
        WithdrawalStatus.PAYING,
    ):
        return None
    card = await repository.card(session, withdrawal.card_id)
    key = await customer_key(session, withdrawal.user_id)
    assert card is not None
    assert card.bank_card_id is not None
    assert key is not None
    withdrawal.status = WithdrawalStatus.PAYING.value
    withdrawal.updated_at = utcnow()
    return PayoutOrder(
        withdrawal_id=withdrawal.id,
        order_id=withdrawal.order_id,
        amount=withdrawal.amount,
        customer_key=key,
        bank_card_id=card.bank_card_id,
        payment_id=withdrawal.payment_id,
    )


async def ask_bank_to_pay(gateway: BankGateway, order: PayoutOrder) -> tuple[str, PayoutStatus]:
    """Drive the payout at the bank, safe to repeat after any crash: find the payout the bank
    already opened for the order (CheckOrder) before opening one (Init), and send it (Payment)
    only while the bank reports it CHECKED — the bank pays a payment once, and an order has
    one payment, so the card is never paid twice. Returns the payment and its status."""
    adapter = gateway.adapter
    if order.payment_id is not None:
        payment_id, status = order.payment_id, await adapter.payout_state(order.payment_id)
    else:
        opened = await adapter.payouts_of_order(order.order_id)
        payout = (
            opened[0]
            if opened
            else await adapter.init_payout(
                order_id=order.order_id,
                amount=order.amount,
                customer_key=order.customer_key,
                card_id=order.bank_card_id,
            )
        )
        payment_id, status = payout.payment_id, payout.status
    if status == PayoutStatus.CHECKED:
        status = await adapter.pay(payment_id)
    return payment_id, status


async def record_payout(
    session: AsyncSession, withdrawal_id: uuid.UUID, payment_id: str, status: PayoutStatus
) -> None:
    """Keep what the bank answered about a withdrawal's payout."""
    withdrawal = await repository.withdrawal_for_update(session, Withdrawal.id == withdrawal_id)
    assert withdrawal is not None
    await _advance_payout(session, withdrawal, payment_id, status)


async def _payout_notified(
    session: AsyncSession,
    withdrawal: Withdrawal,
    payment_id: str,
    reported: str,
    amount: int,
    payload: dict[str, Any],
) -> None:
    mismatch = None
    if withdrawal.payment_id not in (None, payment_id):
        mismatch = f"payment {payment_id} is not the one opened for order {withdrawal.order_id}"
    elif amount != kopecks(withdrawal.amount):
        mismatch = f"amount {amount} kopecks, the withdrawal is {kopecks(withdrawal.amount)}"
    try:
        status = PayoutStatus(reported)
    except ValueError:
        mismatch = mismatch or f"not a payout status: {reported!r}"
    if mismatch is not None:
        await raise_alert(
            session,
            kind="notification_mismatch",
            detail=f"{reported}: {mismatch}",
            withdrawal_id=withdrawal.id,
        )
        raise NotificationRefused(f"refused: {mismatch}")
    if not await repository.record_notification(session, payment_id, status.value, payload):
        return
    await _advance_payout(session, withdrawal, payment_id, status)


async def _advance_payout(
    session: AsyncSession, withdrawal: Withdrawal, payment_id: str, status: PayoutStatus
) -> None:
    """Apply the bank's word on a payout: COMPLETED burns the escrowed GCC, REJECTED gives it
    back — each once, since only a withdrawal still held or paying moves on."""
    if withdrawal.payment_id is None:
        withdrawal.payment_id = payment_id
    withdrawal.updated_at = utcnow()
    if withdrawal.status not in (WithdrawalStatus.HELD, WithdrawalStatus.PAYING):
        return  # decided already: late or repeated news
    withdrawal.bank_status = status.value
    if status == PayoutStatus.COMPLETED:
        withdrawal.status = WithdrawalStatus.PAID.value
        await outbox.record(
            session,
            WithdrawalPaid(
                withdrawal_id=withdrawal.id, user_id=withdrawal.user_id, amount=withdrawal.amount
            ),
        )
    elif status == PayoutStatus.REJECTED:
        withdrawal.status = WithdrawalStatus.RETURNED.value
        await outbox.record(
            session,
            WithdrawalRejected(
                withdrawal_id=withdrawal.id, user_id=withdrawal.user_id, amount=withdrawal.amount
            ),
        )


def withdrawal_burn_key(withdrawal_id: uuid.UUID) -> str:
    return f"bank:withdrawal:{withdrawal_id}:burn"


async def burn_paid_withdrawal(
    session: AsyncSession, handle: chain.ChainHandle | None, event: WithdrawalPaid
) -> None:
    """The card was paid: the escrowed GCC leaves the supply (once per withdrawal)."""
    handle = _connected(handle)
    await chain.request(
        session,
        handle,
        token="GCC",
        kind=OperationKind.BURN,
        moves=[chain.Move(amount=to_base_units(event.amount), sender=ESCROW_ADDRESS)],
        idempotency_key=withdrawal_burn_key(event.withdrawal_id),
    )


async def return_rejected_withdrawal(
    session: AsyncSession, handle: chain.ChainHandle | None, event: WithdrawalRejected
) -> None:
    """The bank did not pay: the escrowed GCC goes back to the user's wallet (once)."""
    handle = _connected(handle)
    wallet = await wallets.wallet_of(session, event.user_id)
    await chain.request(
        session,
        handle,
        token="GCC",
        kind=OperationKind.TRANSFER,
        moves=[
            chain.Move(
                amount=to_base_units(event.amount),
                sender=ESCROW_ADDRESS,
                receiver=wallet.address,
            )
        ],
        idempotency_key=f"bank:withdrawal:{event.withdrawal_id}:return",
    )


# The operator's view.


async def all_deposits(session: AsyncSession, page: PageRequest) -> tuple[Sequence[Deposit], int]:
    return await repository.all_deposits(session, page)


async def alerts(session: AsyncSession, page: PageRequest) -> tuple[Sequence[BankAlert], int]:
    return await repository.alerts(session, page)


MONEY_TOPICS = topics_of(Deposit, Withdrawal)
"""What `money_totals` counts changes only when these move."""


async def money_totals(session: AsyncSession) -> tuple[int, Decimal, int, Decimal]:
    """(count, RUB) of deposits the bank holds for the platform, and of withdrawals paid."""
    held = await repository.held_deposits(session)
    paid = await repository.withdrawn(session, WithdrawalStatus.PAID.value)
    return (
        len(held),
        sum((amount for _, amount in held), Decimal(0)),
        len(paid),
        sum((amount for _, amount in paid), Decimal(0)),
    )


async def reserves(session: AsyncSession, handle: chain.ChainHandle | None) -> ReservesOut:
    """The reserves check: GCC on chain, plus mints in flight, less burns in flight, equals
    the roubles the bank holds for the platform (confirmed deposits less paid withdrawals)."""
    if handle is None:
        raise ChainUnavailable()
    held = await repository.held_deposits(session)
    paid = await repository.withdrawn(session, WithdrawalStatus.PAID.value)
    refunded = await repository.refunded_deposits(session)
    statuses = await chain.statuses_of(
        session,
        [key for key, _ in held if key is not None]
        + [withdrawal_burn_key(w) for w, _ in paid]
        + [refund_burn_key(d) for d, _, _ in refunded],
    )

    def unconfirmed(key: str | None) -> bool:
        return key is None or statuses.get(key) != "confirmed"

    confirmed = sum((amount for _, amount in held), Decimal(0))
    paid_out = sum((amount for _, amount in paid), Decimal(0))
    mints_pending = sum((amount for key, amount in held if unconfirmed(key)), Decimal(0))
    burns_pending = sum(
        (amount for w, amount in paid if unconfirmed(withdrawal_burn_key(w))), Decimal(0)
    ) + sum(
        (a for d, a, debt in refunded if not debt and unconfirmed(refund_burn_key(d))),
        Decimal(0),
    )
    debt = sum((amount for _, amount, debt in refunded if debt), Decimal(0))
    supply = from_base_units(await handle.total_supply("GCC"))
    escrow = confirmed - paid_out
    return ReservesOut(
        confirmed_deposits=confirmed,
        paid_withdrawals=paid_out,
        escrow_rub=escrow,
        gcc_total_supply=supply,
        gcc_mints_pending=mints_pending,
        gcc_burns_pending=burns_pending,
        gcc_held_for_withdrawals=from_base_units(await handle.balance_of("GCC", ESCROW_ADDRESS)),
        gcc_refund_debt=debt,
        escrow_address=ESCROW_ADDRESS,
        ok=supply + mints_pending - burns_pending == escrow,
    )
