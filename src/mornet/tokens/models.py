from __future__ import annotations

import uuid
from datetime import datetime
from decimal import Decimal

from sqlalchemy import JSON, Index, String, Uuid
from sqlalchemy.orm import Mapped, mapped_column

from mornet.db import Base, ScaledDecimal, UTCDateTime, UUIDPrimaryKey, utcnow


class PlatformParameter(Base):
    """A governed number of the economic model (GCM_rate, …), kept as an exact decimal string.
    Set by admins now, by treasury proposals later."""

    __tablename__ = "platform_parameters"

    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    value: Mapped[str] = mapped_column(String(80))
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_by: Mapped[uuid.UUID | None] = mapped_column(Uuid, default=None)


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
    gcm: Mapped[str] = mapped_column(String(80), default="0")
    """GCM minted (exact decimal string, 18 places)."""
    operation_keys: Mapped[list[str]] = mapped_column(JSON, default=list)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
