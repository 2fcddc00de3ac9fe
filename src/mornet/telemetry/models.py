from __future__ import annotations

import uuid
from datetime import datetime
from decimal import Decimal

from sqlalchemy import BigInteger, Index, Integer, LargeBinary, String, Uuid
from sqlalchemy.orm import Mapped, mapped_column

from mornet.db import Base, ScaledDecimal, UTCDateTime, UUIDPrimaryKey, utcnow
from mornet.resources import Resource


class Reading(Base):
    """One measurement; `(household_id, device_id, seq)` identifies it, so storing it twice
    is a no-op."""

    __tablename__ = "telemetry_readings"
    __table_args__ = (Index("ix_telemetry_readings_household_ts", "household_id", "ts"),)

    household_id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True)
    device_id: Mapped[str] = mapped_column(String(100), primary_key=True)
    seq: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    agent_id: Mapped[uuid.UUID | None] = mapped_column(Uuid)
    resource: Mapped[Resource] = mapped_column(String(1))
    ts: Mapped[datetime] = mapped_column(UTCDateTime)
    counter: Mapped[Decimal] = mapped_column(ScaledDecimal(6))
    """The device's cumulative counter in kWh (E, H) or m³ (W), exact to 10^-6."""
    power_w: Mapped[Decimal | None] = mapped_column(ScaledDecimal(3))
    voltage_v: Mapped[Decimal | None] = mapped_column(ScaledDecimal(3))
    current_a: Mapped[Decimal | None] = mapped_column(ScaledDecimal(4))
    received_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class DeviceCursor(Base):
    """A device's highest stored reading: new readings chain onto it without reading
    history."""

    __tablename__ = "telemetry_device_cursors"

    household_id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True)
    device_id: Mapped[str] = mapped_column(String(100), primary_key=True)
    seq: Mapped[int] = mapped_column(BigInteger)
    counter: Mapped[Decimal] = mapped_column(ScaledDecimal(6))
    ts: Mapped[datetime] = mapped_column(UTCDateTime)
    resource: Mapped[Resource] = mapped_column(String(1))


METER_DEVICE_PREFIX = "meter-"
METER = "meter"
"""Use measured by the household's main meter (the indexes it enters: devices `meter-E/H/W`)."""
PLUG = "plug"
"""Use measured by the agents' devices (smart plugs, power meters)."""


def source_of(device_id: str) -> str:
    return METER if device_id.startswith(METER_DEVICE_PREFIX) else PLUG


class HourlyConsumption(Base):
    """Use per household, resource, source (meter or plugs) and UTC hour, from counter
    deltas. The two sources are kept apart: where a household has a main meter, it is what
    is billed, and its plugs only show where the energy went."""

    __tablename__ = "telemetry_consumption_hourly"
    __table_args__ = (Index("ix_consumption_household_updated", "household_id", "updated_at"),)

    household_id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True)
    resource: Mapped[Resource] = mapped_column(String(1), primary_key=True)
    source: Mapped[str] = mapped_column(String(5), primary_key=True, default=PLUG)
    hour_start: Mapped[datetime] = mapped_column(UTCDateTime, primary_key=True)
    quantity: Mapped[Decimal] = mapped_column(ScaledDecimal(6))
    """kWh (E, H) or m³ (W), exact to 10^-6."""
    updated_at: Mapped[datetime | None] = mapped_column(UTCDateTime, default=None)
    """When a reading last changed this hour: settlement finds late readings by it."""


class DeadLetter(UUIDPrimaryKey, Base):
    """A message the gateway refused, kept with the reason and the raw bytes."""

    __tablename__ = "telemetry_dead_letters"

    received_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, index=True)
    topic: Mapped[str] = mapped_column(String(300))
    reason: Mapped[str] = mapped_column(String(2000))
    payload: Mapped[bytes] = mapped_column(LargeBinary)
    """The raw payload, cut at 64 KiB (payload_size says how much arrived)."""
    payload_size: Mapped[int] = mapped_column(Integer)
    agent_id: Mapped[str | None] = mapped_column(String(64), default=None)

    @property
    def payload_preview(self) -> str:
        return self.payload[:2000].decode("utf-8", errors="replace")
