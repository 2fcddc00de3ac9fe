from __future__ import annotations

import uuid
from datetime import datetime
from decimal import Decimal
from enum import StrEnum
from typing import Annotated

from pydantic import BaseModel

from mornet.chain.schemas import IdempotencyKey
from mornet.fields import DecimalText
from mornet.market.engine import Side
from mornet.resources import Resource
from mornet.tariffs.schemas import RegionCode

__all__ = ["RegionCode", "Side"]

Units = Annotated[Decimal, DecimalText(places=3, digits=9, positive=True)]
"""Units of a resource (kWh or m³), to a thousandth."""
Price = Annotated[Decimal, DecimalText(places=2, digits=7, positive=True)]
"""RUB (= GCC) per unit, to the kopeck."""


class DealKind(StrEnum):
    PURCHASE = "purchase"
    SELL_BACK = "sell_back"


class MoveStatus(StrEnum):
    """Whether a deal's or a trade's token moves are on chain."""

    PENDING = "pending"
    CONFIRMED = "confirmed"
    FAILED = "failed"


class OrderStatus(StrEnum):
    OPEN = "open"
    FILLED = "filled"
    CANCELLED = "cancelled"


class DealRequest(BaseModel):
    household_id: uuid.UUID
    resource: Resource
    quantity: Units
    idempotency_key: IdempotencyKey


class DealOut(BaseModel):
    """A purchase from the platform, or a sell-back to it."""

    id: uuid.UUID
    kind: DealKind
    household_id: uuid.UUID
    resource: Resource
    quantity: Decimal
    tariff: Decimal
    spread: Decimal
    amount_gcc: Decimal
    """Paid (purchase) or received (sell-back)."""
    status: MoveStatus
    created_at: datetime


class OrderRequest(BaseModel):
    region: RegionCode
    resource: Resource
    side: Side
    price: Price
    quantity: Units
    idempotency_key: IdempotencyKey


class FillOut(BaseModel):
    trade_id: uuid.UUID
    price: Decimal
    quantity: Decimal
    created_at: datetime


class OrderOut(BaseModel):
    id: uuid.UUID
    region: str
    resource: Resource
    side: Side
    price: Decimal
    quantity: Decimal
    remaining: Decimal
    status: OrderStatus
    fills: list[FillOut]
    created_at: datetime


class LevelOut(BaseModel):
    price: Decimal
    quantity: Decimal
    orders: int


class BookOut(BaseModel):
    region: str
    resource: Resource
    tariff: Decimal | None
    """The ceiling of every price: the platform sells at it."""
    bids: list[LevelOut]
    """Best (highest) first."""
    asks: list[LevelOut]
    """Best (lowest) first."""
    best_bid: Decimal | None
    best_ask: Decimal | None
    last_price: Decimal | None


class TradeOut(BaseModel):
    """A public trade: never who traded."""

    id: uuid.UUID
    region: str
    resource: Resource
    price: Decimal
    quantity: Decimal
    taker_side: Side
    created_at: datetime


class ReserveSweep(BaseModel):
    amount: Annotated[Decimal, DecimalText(places=2, digits=20, positive=True)]
    idempotency_key: IdempotencyKey


class ReserveSweepOut(BaseModel):
    operation_key: str
    status: str
