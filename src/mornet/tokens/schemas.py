from __future__ import annotations

import uuid
from datetime import datetime
from decimal import Decimal

from pydantic import BaseModel, Field

from mornet.chain.models import ChainOperation
from mornet.chain.schemas import IdempotencyKey, TokenAmount, Tokens, TokenSymbol
from mornet.chain.service import from_base_units

__all__ = ["IdempotencyKey", "TokenSymbol"]


class TokenMoveRequest(BaseModel):
    token: TokenSymbol
    account: str = Field(max_length=320, description="A user id, a user's email, or an address")
    amount: TokenAmount
    idempotency_key: IdempotencyKey


class OperationItem(BaseModel):
    sender: str | None = Field(serialization_alias="from")
    receiver: str | None = Field(serialization_alias="to")
    amount: Tokens


class OperationOut(BaseModel):
    id: uuid.UUID
    idempotency_key: str
    kind: str
    token: str
    status: str
    items: list[OperationItem]
    tx_hash: str | None
    block_number: int | None
    error: str | None
    created_at: datetime

    @classmethod
    def of(cls, operation: ChainOperation) -> OperationOut:
        return cls(
            id=operation.id,
            idempotency_key=operation.idempotency_key,
            kind=str(operation.kind),
            token=operation.token,
            status=str(operation.status),
            items=[
                OperationItem(
                    sender=i["from"], receiver=i["to"], amount=from_base_units(int(i["amount"]))
                )
                for i in operation.items
            ],
            tx_hash=operation.tx_hash,
            block_number=operation.block_number,
            error=operation.error,
            created_at=operation.created_at,
        )


class ParameterOut(BaseModel):
    name: str
    value: Decimal
    updated_at: datetime


class ParameterUpdate(BaseModel):
    value: Decimal = Field(gt=0)


class ChainOut(BaseModel):
    chain_id: int
    rpc_url: str
    operator: str
    contracts: dict[str, str]
