"""The bank context's tables: deposits, every notification the bank sent, operator alerts."""

from __future__ import annotations

import uuid
from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import JSON, Boolean, Index, String, Uuid
from sqlalchemy.orm import Mapped, mapped_column

from mornet.db import Base, ScaledDecimal, UTCDateTime, UUIDPrimaryKey, utcnow


class Deposit(UUIDPrimaryKey, Base):
    """Roubles paid in through the bank, and whether GCC was minted (or burned back) for them.
    The bank knows it by `order_id` (ours, unique per payment) and `payment_id` (its own)."""

    __tablename__ = "bank_deposits"
    __table_args__ = (Index("ix_bank_deposits_user_created", "user_id", "created_at"),)

    user_id: Mapped[uuid.UUID] = mapped_column(Uuid)
    order_id: Mapped[str] = mapped_column(String(50), unique=True)
    payment_id: Mapped[str | None] = mapped_column(String(50), unique=True, default=None)
    amount: Mapped[Decimal] = mapped_column(ScaledDecimal(2))
    """RUB, stored as kopecks."""
    status: Mapped[str] = mapped_column(String(30))
    payment_url: Mapped[str | None] = mapped_column(String(500), default=None)
    minted: Mapped[bool] = mapped_column(Boolean, default=False)
    refunded: Mapped[bool] = mapped_column(Boolean, default=False)
    mint_key: Mapped[str | None] = mapped_column(String(100), default=None, index=True)
    """The chain operation (idempotency key) that mints this deposit's GCC, with others
    confirmed about the same time (one transaction for up to 256 deposits)."""
    refund_debt: Mapped[bool] = mapped_column(Boolean, default=False)
    """Refunded by the bank after its GCC was spent: that GCC stays unbacked (an alert)."""
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class BankNotification(UUIDPrimaryKey, Base):
    """One notification per (payment, status), as the bank sent it: a resend is a no-op."""

    __tablename__ = "bank_notifications"
    __table_args__ = (
        Index("uq_bank_notifications_payment_status", "payment_id", "status", unique=True),
    )

    payment_id: Mapped[str] = mapped_column(String(50))
    status: Mapped[str] = mapped_column(String(30))
    payload: Mapped[dict[str, Any]] = mapped_column(JSON)
    received_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class BankAlert(UUIDPrimaryKey, Base):
    """Something an operator must look at: a notification that does not match its deposit,
    contradictory reports, money that went back after GCC was minted."""

    __tablename__ = "bank_alerts"

    deposit_id: Mapped[uuid.UUID | None] = mapped_column(Uuid, default=None, index=True)
    withdrawal_id: Mapped[uuid.UUID | None] = mapped_column(Uuid, default=None, index=True)
    kind: Mapped[str] = mapped_column(String(50))
    detail: Mapped[str] = mapped_column(String(2000))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class BankCustomer(Base):
    """The user's account at the bank (T-Bank's CustomerKey), opened on first use."""

    __tablename__ = "bank_customers"

    user_id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True)
    customer_key: Mapped[str] = mapped_column(String(50), unique=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class BankCard(UUIDPrimaryKey, Base):
    """A card bound at the bank for payouts. The platform never sees the card number: only
    the bank's CardId and the masked Pan. `pending` until the bank reports the binding."""

    __tablename__ = "bank_cards"

    user_id: Mapped[uuid.UUID] = mapped_column(Uuid, index=True)
    request_key: Mapped[str] = mapped_column(String(50), unique=True)
    status: Mapped[str] = mapped_column(String(20))
    bank_card_id: Mapped[str | None] = mapped_column(String(50), unique=True, default=None)
    """The bank's CardId."""
    pan: Mapped[str | None] = mapped_column(String(30), default=None)
    exp_date: Mapped[str | None] = mapped_column(String(10), default=None)
    form_url: Mapped[str] = mapped_column(String(500))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class Withdrawal(UUIDPrimaryKey, Base):
    """GCC out as roubles to a bound card: held in escrow on chain, paid out by the bank
    (e2c), then burned — or given back if the bank rejects the payout. The bank knows it by
    `order_id` (ours) and `payment_id` (its own)."""

    __tablename__ = "bank_withdrawals"
    __table_args__ = (
        Index("ix_bank_withdrawals_user_created", "user_id", "created_at"),
        Index("uq_bank_withdrawals_user_key", "user_id", "idempotency_key", unique=True),
    )

    user_id: Mapped[uuid.UUID] = mapped_column(Uuid)
    card_id: Mapped[uuid.UUID] = mapped_column(Uuid)
    """The bound card (BankCard.id, ours; the bank's CardId is on the card)."""
    amount: Mapped[Decimal] = mapped_column(ScaledDecimal(2))
    """RUB, stored as kopecks; the same amount of GCC."""
    idempotency_key: Mapped[str] = mapped_column(String(100))
    order_id: Mapped[str] = mapped_column(String(50), unique=True)
    status: Mapped[str] = mapped_column(String(20), index=True)
    hold_operation_id: Mapped[uuid.UUID | None] = mapped_column(Uuid, unique=True, default=None)
    payment_id: Mapped[str | None] = mapped_column(String(50), unique=True, default=None)
    bank_status: Mapped[str | None] = mapped_column(String(30), default=None)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
