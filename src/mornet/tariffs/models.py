from __future__ import annotations

import uuid
from datetime import datetime
from decimal import Decimal

from sqlalchemy import Boolean, ForeignKey, String, UniqueConstraint, Uuid
from sqlalchemy.orm import Mapped, mapped_column

from mornet.db import Base, ScaledDecimal, UTCDateTime, UUIDPrimaryKey, utcnow
from mornet.resources import Resource

PRICE_SCALE = 4
"""Tariffs are quoted to 0.0001 RUB; costs are rounded to the kopeck later."""


class Region(Base):
    __tablename__ = "regions"

    code: Mapped[str] = mapped_column(String(10), primary_key=True)
    """ISO 3166-2 subdivision code, e.g. RU-MOW."""
    name: Mapped[str] = mapped_column(String(200))
    timezone: Mapped[str] = mapped_column(String(64))
    """IANA zone; days of consumption are counted in it."""
    is_sample: Mapped[bool] = mapped_column(Boolean, default=False)
    """Seeded demonstration data, not an official tariff source."""
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class Tariff(UUIDPrimaryKey, Base):
    """A price that applies from `valid_from` until the next row of the same region and
    resource. Rows are only ever added: history is never edited."""

    __tablename__ = "tariffs"
    __table_args__ = (UniqueConstraint("region_code", "resource", "valid_from"),)

    region_code: Mapped[str] = mapped_column(ForeignKey("regions.code"), index=True)
    resource: Mapped[Resource] = mapped_column(String(1))
    price: Mapped[Decimal] = mapped_column(ScaledDecimal(PRICE_SCALE))
    """RUB per unit of the resource (kWh or m³), exact to 0.0001."""
    valid_from: Mapped[datetime] = mapped_column(UTCDateTime)
    note: Mapped[str] = mapped_column(String(500), default="")
    is_sample: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    created_by: Mapped[uuid.UUID | None] = mapped_column(Uuid, default=None)
    """The admin who added it; None for seeded rows."""
