"""The chain's public shapes, for every context that moves tokens."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from decimal import Context, Decimal
from typing import Annotated, Literal

from pydantic import BaseModel, Field, PlainSerializer

from mornet.chain.contracts import DECIMALS as DECIMALS
from mornet.chain.contracts import TOKENS as TOKENS
from mornet.chain.models import ChainOperation
from mornet.chain.models import OperationKind as OperationKind
from mornet.chain.models import OperationStatus as OperationStatus
from mornet.errors import ValidationFailed
from mornet.fields import DecimalText, TrimmedText

MAX_TOKENS = Decimal("1e30")
"""The largest amount one move may carry (far above any supply, far below 2^256 base units)."""
UNIT = Decimal(10) ** DECIMALS

# Enough digits that no amount up to MAX_TOKENS with 18 places is ever rounded.
_EXACT = Context(prec=120)


def to_base_units(amount: Decimal) -> int:
    """A positive token amount (at most 18 decimals, at most 10^30 tokens) as an integer of
    base units. Never rounds: a 19th decimal is refused, not cut."""
    if not amount.is_finite() or amount <= 0:
        raise ValidationFailed("amount must be a positive number", code="invalid_amount")
    if amount > MAX_TOKENS:
        raise ValidationFailed("amount is above the limit of 10^30 tokens", code="invalid_amount")
    scaled = _EXACT.multiply(amount, UNIT)
    if scaled != scaled.to_integral_value():
        raise ValidationFailed(
            f"amount has more than {DECIMALS} decimal places", code="invalid_amount"
        )
    return int(scaled)


def from_base_units(value: int) -> Decimal:
    """Base units as tokens, in plain notation (`100`, never `1E+2`)."""
    tokens = _EXACT.divide(Decimal(value), UNIT)
    if tokens == tokens.to_integral_value():
        return tokens.quantize(Decimal(1), context=_EXACT)
    return tokens.normalize(_EXACT)


IdempotencyKey = Annotated[str, TrimmedText(150)]
TokenSymbol = Literal["GCC", "E", "H", "W", "GCM"]
"""The platform's tokens (chain.contracts.TOKENS, which a test keeps equal to this)."""
TokenAmount = Annotated[
    Decimal,
    DecimalText(places=DECIMALS, digits=30, positive=True, description="Tokens, never rounded."),
]


def plain(value: Decimal) -> str:
    """A decimal in plain notation: `100`, `0.000000000000000001` — never `1E+2`/`1E-18`."""
    text = format(value, "f")
    return text.rstrip("0").rstrip(".") if "." in text else text


Tokens = Annotated[Decimal, PlainSerializer(plain, return_type=str, when_used="json")]
"""A token amount in a response, written in plain notation."""


class OperationItem(BaseModel):
    sender: str | None = Field(serialization_alias="from")
    receiver: str | None = Field(serialization_alias="to")
    amount: Tokens


class OperationOut(BaseModel):
    """An operation as every other context and the API see it (never its stored JSON)."""

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


@dataclass(frozen=True)
class AddressEntry:
    """One move of an operation seen from one address (a line of a wallet's history)."""

    operation_id: uuid.UUID
    kind: str
    token: str
    direction: str
    """in or out, from the address's point of view."""
    amount: Decimal
    counterparty: str | None
    status: str
    tx_hash: str | None
    created_at: datetime
    idempotency_key: str
    """What requested the move (e.g. `settlement:<run>:…`), to tell its purpose."""


class ChainOut(BaseModel):
    chain_id: int
    rpc_url: str
    operator: str
    contracts: dict[str, str]


class SupplyCheck(BaseModel):
    """One token's supply on chain against the platform's record of its moves (the outbox):
    confirmed mints less confirmed burns, with what is still in flight either way."""

    token: str
    total_supply: Decimal
    recorded: Decimal
    mints_in_flight: Decimal
    burns_in_flight: Decimal
    by_purpose: dict[str, Decimal]
    """Recorded net supply per purpose: settlement, bank, token (operators), …"""
    ok: bool


class BalanceMismatch(BaseModel):
    """An address whose balance on chain is not what its recorded moves add up to."""

    address: str
    token: str
    on_chain: Decimal
    recorded: Decimal


class TokenReconciliation(BaseModel):
    supplies: list[SupplyCheck]
    mismatched_balances: list[BalanceMismatch]
    ok: bool
