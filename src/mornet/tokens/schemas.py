from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Annotated

from pydantic import BaseModel, Field

from mornet.chain.schemas import IdempotencyKey, TokenAmount, TokenSymbol
from mornet.fields import DecimalText

__all__ = ["IdempotencyKey", "TokenSymbol"]


class TokenMoveRequest(BaseModel):
    token: TokenSymbol
    account: str = Field(
        min_length=1, max_length=320, description="A user id, a user's email, or an address"
    )
    amount: TokenAmount
    idempotency_key: IdempotencyKey


class ParameterOut(BaseModel):
    name: str
    value: Decimal
    updated_at: datetime


ParameterValue = Annotated[Decimal, DecimalText(places=18, digits=30, positive=True)]


class ParameterUpdate(BaseModel):
    value: ParameterValue
