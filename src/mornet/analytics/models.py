from __future__ import annotations

import uuid
from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import JSON, Index, String, Uuid
from sqlalchemy.orm import Mapped, mapped_column

from mornet.db import Base, ScaledDecimal, UTCDateTime, UUIDPrimaryKey, utcnow


class LoggedEvent(UUIDPrimaryKey, Base):
    """One entry of the platform's event log: an operator's action (with who did it) or a
    notable event, with the object it is about. Append-only: the database refuses to update
    or delete a row (triggers), so no one can take an operator's action out of it."""

    __tablename__ = "analytics_events"
    __table_args__ = (
        Index("ix_analytics_events_occurred", "occurred_at"),
        Index("ix_analytics_events_kind_occurred", "kind", "occurred_at"),
        Index("ix_analytics_events_actor_occurred", "actor_id", "occurred_at"),
    )

    kind: Mapped[str] = mapped_column(String(100))
    """The event's topic, e.g. `bank.deposit.confirmed`."""
    actor_id: Mapped[uuid.UUID | None] = mapped_column(Uuid, default=None)
    summary: Mapped[str] = mapped_column(String(1000))
    subject_type: Mapped[str | None] = mapped_column(String(40), default=None)
    subject_id: Mapped[str | None] = mapped_column(String(100), default=None)
    amount: Mapped[Decimal | None] = mapped_column(ScaledDecimal(2), default=None)
    data: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    occurred_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class SeriesPoint(Base):
    """A metric's value for one UTC hour (a flow: what happened in the hour; `gcc_net`: GCC
    minted less burned in it). Rebuilt from the sources by `mornet analytics rebuild`."""

    __tablename__ = "analytics_points"

    metric: Mapped[str] = mapped_column(String(40), primary_key=True)
    hour: Mapped[datetime] = mapped_column(UTCDateTime, primary_key=True)
    value: Mapped[Decimal] = mapped_column(ScaledDecimal(6))
