from __future__ import annotations

import uuid
from datetime import datetime
from decimal import Decimal

from sqlalchemy import JSON, BigInteger, Index, String, Uuid
from sqlalchemy.orm import Mapped, mapped_column

from mornet.db import Base, ScaledDecimal, UTCDateTime, UUIDPrimaryKey, utcnow


class MarketBook(Base):
    """One order book (a region and a resource). Its row is the book's lock: whoever matches
    in it locks the row first, so one writer matches at a time on either backend; `last_seq`
    orders its events (time priority and the journal's replay)."""

    __tablename__ = "market_books"

    region: Mapped[str] = mapped_column(String(16), primary_key=True)
    resource: Mapped[str] = mapped_column(String(1), primary_key=True)
    last_seq: Mapped[int] = mapped_column(BigInteger, default=0)
    last_price: Mapped[int | None] = mapped_column(BigInteger, default=None)
    """Kopecks per unit of the latest trade."""


class MarketOrder(UUIDPrimaryKey, Base):
    """A limit order, journalled: placed at `seq`, cancelled at `cancelled_seq`. Prices are
    kopecks per unit, quantities thousandths of a unit."""

    __tablename__ = "market_orders"
    __table_args__ = (
        Index("ix_market_orders_book_open", "region", "resource", "status"),
        Index("uq_market_orders_user_key", "user_id", "idempotency_key", unique=True),
    )

    user_id: Mapped[uuid.UUID] = mapped_column(Uuid, index=True)
    region: Mapped[str] = mapped_column(String(16))
    resource: Mapped[str] = mapped_column(String(1))
    side: Mapped[str] = mapped_column(String(4))
    price: Mapped[int] = mapped_column(BigInteger)
    quantity: Mapped[int] = mapped_column(BigInteger)
    remaining: Mapped[int] = mapped_column(BigInteger)
    status: Mapped[str] = mapped_column(String(16))
    """open, filled, cancelled"""
    seq: Mapped[int] = mapped_column(BigInteger)
    cancelled_seq: Mapped[int | None] = mapped_column(BigInteger, default=None)
    idempotency_key: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class MarketTrade(UUIDPrimaryKey, Base):
    """A fill: `quantity` at the resting order's `price`, moved wallet to wallet on chain."""

    __tablename__ = "market_trades"
    __table_args__ = (Index("ix_market_trades_book", "region", "resource", "seq"),)

    region: Mapped[str] = mapped_column(String(16))
    resource: Mapped[str] = mapped_column(String(1))
    seq: Mapped[int] = mapped_column(BigInteger)
    """The taker's event in the book."""
    price: Mapped[int] = mapped_column(BigInteger)
    quantity: Mapped[int] = mapped_column(BigInteger)
    buy_order_id: Mapped[uuid.UUID] = mapped_column(Uuid, index=True)
    sell_order_id: Mapped[uuid.UUID] = mapped_column(Uuid, index=True)
    buyer_id: Mapped[uuid.UUID] = mapped_column(Uuid)
    seller_id: Mapped[uuid.UUID] = mapped_column(Uuid)
    taker_side: Mapped[str] = mapped_column(String(4))
    batch_id: Mapped[uuid.UUID | None] = mapped_column(Uuid, default=None, index=True)
    """The batch whose transfers move this trade's tokens (None: not batched yet; until then
    both sides' amounts stay held)."""
    operation_keys: Mapped[list[str]] = mapped_column(JSON, default=list)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class MarketDeal(UUIDPrimaryKey, Base):
    """A purchase from the platform at the tariff, or a sell-back to it at the tariff less
    the spread: units minted or burned, GCC to or from the market reserve."""

    __tablename__ = "market_deals"
    __table_args__ = (Index("uq_market_deals_user_key", "user_id", "idempotency_key", unique=True),)

    user_id: Mapped[uuid.UUID] = mapped_column(Uuid, index=True)
    household_id: Mapped[uuid.UUID] = mapped_column(Uuid)
    kind: Mapped[str] = mapped_column(String(16))
    """purchase or sell_back"""
    resource: Mapped[str] = mapped_column(String(1))
    quantity: Mapped[Decimal] = mapped_column(ScaledDecimal(3))
    tariff: Mapped[Decimal] = mapped_column(ScaledDecimal(4))
    """RUB per unit in force when it was made."""
    spread: Mapped[Decimal] = mapped_column(ScaledDecimal(6), default=Decimal(0))
    amount_gcc: Mapped[Decimal] = mapped_column(ScaledDecimal(2))
    tariff_id: Mapped[uuid.UUID] = mapped_column(Uuid)
    idempotency_key: Mapped[str] = mapped_column(String(200))
    operation_keys: Mapped[list[str]] = mapped_column(JSON, default=list)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
