from __future__ import annotations

import uuid
from datetime import datetime
from decimal import Decimal

from sqlalchemy import JSON, Index, String, Uuid
from sqlalchemy.orm import Mapped, mapped_column

from mornet.db import Base, ScaledDecimal, UTCDateTime, UUIDPrimaryKey, utcnow


class Settlement(UUIDPrimaryKey, Base):
    """One household's closed period, settled once: its consumption burned the owner's prepaid
    E/H/W, the rest was paid in GCC to the treasury (or recorded as arrears), and GCM was
    minted. The chain moves are batched across households; `operation_keys` names them."""

    __tablename__ = "settlements"
    __table_args__ = (
        Index("uq_settlements_household_period", "household_id", "period_start", unique=True),
    )

    household_id: Mapped[uuid.UUID] = mapped_column(Uuid)
    owner_id: Mapped[uuid.UUID] = mapped_column(Uuid)
    period_start: Mapped[datetime] = mapped_column(UTCDateTime)
    period_end: Mapped[datetime] = mapped_column(UTCDateTime)
    calculation_id: Mapped[uuid.UUID | None] = mapped_column(Uuid, default=None)
    cost_total: Mapped[Decimal] = mapped_column(ScaledDecimal(2), default=Decimal(0))
    consumed: Mapped[dict[str, str]] = mapped_column(JSON, default=dict)
    """Units used per resource (decimal strings)."""
    burned: Mapped[dict[str, str]] = mapped_column(JSON, default=dict)
    """Prepaid units burned per resource."""
    shortfall_gcc: Mapped[Decimal] = mapped_column(ScaledDecimal(2), default=Decimal(0))
    """What the units not covered by prepaid tokens cost, at their tariffs."""
    paid_gcc: Mapped[Decimal] = mapped_column(ScaledDecimal(2), default=Decimal(0))
    arrears_gcc: Mapped[Decimal] = mapped_column(ScaledDecimal(2), default=Decimal(0))
    """Owed after this settlement (earlier arrears included); negative is a credit."""
    gcm: Mapped[str] = mapped_column(String(80), default="0")
    """GCM minted (exact decimal string, 18 places)."""
    adjustment_gcc: Mapped[Decimal] = mapped_column(ScaledDecimal(2), default=Decimal(0))
    """The part of `shortfall_gcc` that late readings of earlier settled periods added (or, if
    negative, gave back); the adjustments themselves are `SettlementAdjustment` rows."""
    arrears_before_gcc: Mapped[Decimal] = mapped_column(ScaledDecimal(2), default=Decimal(0))
    """What the household owed (positive) or had in credit (negative) before this period."""
    run_id: Mapped[uuid.UUID | None] = mapped_column(Uuid, default=None, index=True)
    operation_keys: Mapped[list[str]] = mapped_column(JSON, default=list)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class SettlementRun(UUIDPrimaryKey, Base):
    """One pass of the settler: how many periods it settled and what it left owed. Its chain
    moves (one operation per token and kind) are named by `operation_keys`."""

    __tablename__ = "settlement_runs"

    ran_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, index=True)
    settled: Mapped[int] = mapped_column(default=0)
    households: Mapped[int] = mapped_column(default=0)
    adjustments: Mapped[int] = mapped_column(default=0)
    arrears_payments: Mapped[int] = mapped_column(default=0)
    paid_gcc: Mapped[Decimal] = mapped_column(ScaledDecimal(2), default=Decimal(0))
    arrears_gcc: Mapped[Decimal] = mapped_column(ScaledDecimal(2), default=Decimal(0))
    """Owed by the households this run touched, after it."""
    operation_keys: Mapped[list[str]] = mapped_column(JSON, default=list)


class SettlementAdjustment(UUIDPrimaryKey, Base):
    """Late readings of a settled period, settled in a later one: the settled period's record
    is never edited. `quantity` and `cost` are what the re-rated period adds (or removes) to
    what was settled for it so far."""

    __tablename__ = "settlement_adjustments"

    settlement_id: Mapped[uuid.UUID] = mapped_column(Uuid, index=True)
    """The settlement that carries (and pays) the adjustment."""
    adjusts_id: Mapped[uuid.UUID] = mapped_column(Uuid, index=True)
    """The earlier settlement whose period the late readings belong to."""
    resource: Mapped[str] = mapped_column(String(1))
    quantity: Mapped[str] = mapped_column(String(80))
    cost: Mapped[Decimal] = mapped_column(ScaledDecimal(2))
    burned: Mapped[str] = mapped_column(String(80), default="0")
    calculation_id: Mapped[uuid.UUID] = mapped_column(Uuid)
    """The re-rating of the earlier period that found the difference."""


class ArrearsPayment(UUIDPrimaryKey, Base):
    """GCC that paid a household's arrears as soon as its owner had it, between settlements."""

    __tablename__ = "arrears_payments"

    household_id: Mapped[uuid.UUID] = mapped_column(Uuid, index=True)
    settlement_id: Mapped[uuid.UUID] = mapped_column(Uuid, index=True)
    """The latest settlement, whose arrears this pays down."""
    amount: Mapped[Decimal] = mapped_column(ScaledDecimal(2))
    run_id: Mapped[uuid.UUID] = mapped_column(Uuid)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
