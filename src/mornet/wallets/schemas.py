from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime

from pydantic import BaseModel, Field

from mornet.chain.schemas import IdempotencyKey, TokenAmount, Tokens, TokenSymbol


@dataclass(frozen=True, slots=True)
class NewHold:
    """A hold to open: `units` (base units) of `token` of the user's wallet, for `reference`."""

    user_id: uuid.UUID
    token: str
    units: int
    reference: str


class WalletOut(BaseModel):
    address: str
    balances: dict[str, Tokens]
    """Token → balance read from the chain."""
    held: dict[str, Tokens] = {}
    """Token → what open market orders hold of the balance (not spendable until released)."""


class HistoryEntryOut(BaseModel):
    operation_id: uuid.UUID
    kind: str
    token: str
    direction: str
    amount: Tokens
    counterparty: str | None
    status: str
    tx_hash: str | None
    created_at: datetime
    settles: list[datetime] = []
    """For a settlement's burn, GCC payment or GCM: the starts of the periods it settles."""


class TransferRequest(BaseModel):
    token: TokenSymbol
    to: str = Field(min_length=1, max_length=320, description="The receiver's email or address")
    amount: TokenAmount
    idempotency_key: IdempotencyKey
