"""The bank context's wire shapes."""

from __future__ import annotations

import uuid
from datetime import datetime
from decimal import Decimal
from enum import StrEnum
from typing import Annotated

from pydantic import BaseModel, ConfigDict

from mornet.chain.schemas import IdempotencyKey
from mornet.fields import DecimalText

Roubles = Annotated[Decimal, DecimalText(places=2, digits=9, positive=True)]


class DepositRequest(BaseModel):
    amount: Roubles
    """RUB to pay in; the platform's bounds (MORNET_BANK_DEPOSIT_MIN/MAX) apply."""


class DepositOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    order_id: str
    payment_id: str | None
    payment_url: str | None
    status: str
    amount: Decimal
    minted: bool
    created_at: datetime


class ReservesOut(BaseModel):
    """GCC is bank-backed: its supply on chain, with what is in flight, equals the roubles the
    bank holds for the platform (`ok`)."""

    confirmed_deposits: Decimal
    """RUB of confirmed deposits the bank still holds (refunds taken out)."""
    paid_withdrawals: Decimal
    escrow_rub: Decimal
    gcc_total_supply: Decimal
    gcc_mints_pending: Decimal
    """GCC due for confirmed deposits whose mint is not on chain yet."""
    gcc_burns_pending: Decimal
    """GCC due to be burned (paid withdrawals, refunds) and not burned on chain yet."""
    gcc_held_for_withdrawals: Decimal
    """GCC in the escrow address on chain (held for payouts in progress)."""
    gcc_refund_debt: Decimal
    """GCC minted for deposits the bank refunded, already spent so it could not be burned:
    unbacked until an operator settles it (while it is not zero, `ok` is false)."""
    escrow_address: str
    ok: bool


class CardStatus(StrEnum):
    PENDING = "pending"
    """The user was sent to the bank's card form; the bank has not reported yet."""
    ACTIVE = "active"
    REFUSED = "refused"


class CardOut(BaseModel):
    """A card bound at the bank: only its bank id and masked number are known here."""

    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    status: CardStatus
    pan: str | None
    exp_date: str | None
    form_url: str
    """Where the user binds the card (the bank's form)."""
    created_at: datetime


class WithdrawalStatus(StrEnum):
    HOLDING = "holding"
    """The GCC is on its way to the escrow address (a hold: supply unchanged)."""
    HELD = "held"
    """Held in escrow; the payout starts."""
    PAYING = "paying"
    """The bank is paying the card."""
    PAID = "paid"
    """Paid to the card; the escrowed GCC is burned."""
    RETURNED = "returned"
    """The bank rejected the payout; the GCC went back to the wallet."""
    FAILED = "failed"
    """The hold did not happen (nothing moved)."""


class WithdrawalRequest(BaseModel):
    amount: Roubles
    """RUB to receive; the same GCC leaves the wallet (MORNET_BANK_WITHDRAWAL_MIN/MAX)."""
    card_id: uuid.UUID
    """A bound card (from GET /api/bank/cards)."""
    idempotency_key: IdempotencyKey
    """One key per withdrawal: a retry with it returns the same withdrawal."""


class WithdrawalOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    order_id: str
    card_id: uuid.UUID
    amount: Decimal
    status: WithdrawalStatus
    payment_id: str | None
    bank_status: str | None
    created_at: datetime
    updated_at: datetime


class AlertOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    kind: str
    detail: str
    deposit_id: uuid.UUID | None
    withdrawal_id: uuid.UUID | None
    created_at: datetime


class BankCheckOut(BaseModel):
    """What asking the bank now found."""

    deposits_changed: int
    """Deposits whose status the bank's answer (GetState) changed."""
    payouts_asked: int
    """Payouts driven one step at the bank (held or in progress)."""
    reserves: ReservesOut
