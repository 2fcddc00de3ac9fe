"""The cost context's tables: stored calculations."""

from __future__ import annotations

import uuid
from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import JSON, Index, String, Uuid
from sqlalchemy.orm import Mapped, mapped_column

from mornet.db import Base, ScaledDecimal, UTCDateTime, UUIDPrimaryKey, utcnow


class CostCalculation(UUIDPrimaryKey, Base):
    """A household's consumption over [period_start, period_end) priced by a cost plugin, kept
    as it was computed (its lines and segments name the tariffs used)."""

    __tablename__ = "cost_calculations"
    __table_args__ = (
        Index("ix_cost_calculations_household_period", "household_id", "period_start"),
    )

    household_id: Mapped[uuid.UUID] = mapped_column(Uuid)
    period_start: Mapped[datetime] = mapped_column(UTCDateTime)
    period_end: Mapped[datetime] = mapped_column(UTCDateTime)
    plugin: Mapped[str] = mapped_column(String(50))
    cost_e: Mapped[Decimal] = mapped_column(ScaledDecimal(2))
    cost_h: Mapped[Decimal] = mapped_column(ScaledDecimal(2))
    cost_w: Mapped[Decimal] = mapped_column(ScaledDecimal(2))
    cost_total: Mapped[Decimal] = mapped_column(ScaledDecimal(2))
    lines: Mapped[list[dict[str, Any]]] = mapped_column(JSON)
    """The priced lines with their segments, amounts as decimal strings."""
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    created_by: Mapped[uuid.UUID | None] = mapped_column(Uuid, default=None)
