from __future__ import annotations

from datetime import datetime
from decimal import Decimal

from pydantic import BaseModel, Field

from mornet.chain.schemas import IdempotencyKey, TokenAmount, TokenSymbol

__all__ = ["IdempotencyKey", "TokenSymbol"]


class TokenMoveRequest(BaseModel):
    token: TokenSymbol
    account: str = Field(max_length=320, description="A user id, a user's email, or an address")
    amount: TokenAmount
    idempotency_key: IdempotencyKey


class ParameterOut(BaseModel):
    name: str
    value: Decimal
    updated_at: datetime


class ParameterUpdate(BaseModel):
    value: Decimal = Field(gt=0)
