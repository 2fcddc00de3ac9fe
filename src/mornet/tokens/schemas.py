from __future__ import annotations

import uuid
from datetime import datetime
from decimal import Decimal
from typing import Literal

from pydantic import BaseModel, Field

from mornet.chain.schemas import IdempotencyKey, TokenAmount, TokenSymbol

__all__ = ["IdempotencyKey", "TokenSymbol"]


class TokenMoveRequest(BaseModel):
    token: TokenSymbol
    account: str = Field(
        min_length=1, max_length=320, description="A user id, a user's email, or an address"
    )
    amount: TokenAmount
    idempotency_key: IdempotencyKey


class AdjustmentOut(BaseModel):
    """Late readings of an earlier settled period (`adjusts_id`), settled in this one."""

    adjusts_id: uuid.UUID
    resource: str
    quantity: Decimal
    """Units the re-rated period adds (negative: gives back)."""
    cost: Decimal
    burned: Decimal
    calculation_id: uuid.UUID


class SettlementOut(BaseModel):
    """A household's settled period: what it used, what prepaid tokens covered, what GCC paid,
    what is owed (arrears), the GCM minted, and whether the moves are on chain yet."""

    id: uuid.UUID
    household_id: uuid.UUID
    period_start: datetime
    period_end: datetime
    calculation_id: uuid.UUID | None
    cost_total: Decimal
    consumed: dict[str, Decimal]
    burned: dict[str, Decimal]
    shortfall_gcc: Decimal
    """What this period's units not covered by prepaid tokens cost."""
    adjustments: list[AdjustmentOut]
    adjustment_gcc: Decimal
    """What adjustments of earlier periods added to the GCC due (negative: a credit)."""
    arrears_before_gcc: Decimal
    """Owed (negative: in credit) before this period; paid first."""
    paid_gcc: Decimal
    arrears_gcc: Decimal
    """Owed after this settlement (negative: in credit)."""
    gcm: Decimal
    status: Literal["pending", "confirmed", "failed"]
    created_at: datetime


class SettlementRunOut(BaseModel):
    settled: int
    """Household-periods settled by this run (0 when nothing was due)."""
    settlements: list[SettlementOut]


class SettlementRunSummary(BaseModel):
    """One settlement run, for operators: what it settled, paid and left owed, and whether its
    chain moves went through (`failed_operations` counts those that did not)."""

    id: uuid.UUID
    ran_at: datetime
    settled: int
    households: int
    adjustments: int
    arrears_payments: int
    paid_gcc: Decimal
    arrears_gcc: Decimal
    status: Literal["pending", "confirmed", "failed"]
    failed_operations: int
