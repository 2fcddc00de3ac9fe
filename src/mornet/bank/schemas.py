"""The bank context's wire shapes."""

from __future__ import annotations

import uuid
from datetime import datetime
from decimal import Decimal
from typing import Annotated

from pydantic import BaseModel, ConfigDict

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
    gcc_held_for_withdrawals: Decimal
    ok: bool
