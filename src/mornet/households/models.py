from __future__ import annotations

import uuid
from datetime import datetime
from enum import StrEnum

from sqlalchemy import ForeignKey, String
from sqlalchemy.orm import Mapped, mapped_column

from mornet.db import Base, UTCDateTime, UUIDPrimaryKey, utcnow


class HouseholdStatus(StrEnum):
    ACTIVE = "active"
    SUSPENDED = "suspended"


class Household(UUIDPrimaryKey, Base):
    __tablename__ = "households"

    owner_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("users.id"), index=True)
    name: Mapped[str] = mapped_column(String(200))
    address: Mapped[str] = mapped_column(String(500))
    region_code: Mapped[str] = mapped_column(ForeignKey("regions.code"))
    """Which region's tariffs price this household's consumption."""
    status: Mapped[HouseholdStatus] = mapped_column(String(16), default=HouseholdStatus.ACTIVE)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class EdgeAgent(UUIDPrimaryKey, Base):
    """A Raspberry Pi (or any host) that publishes telemetry for one household."""

    __tablename__ = "edge_agents"

    household_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("households.id"), index=True)
    name: Mapped[str] = mapped_column(String(200))
    public_key: Mapped[str] = mapped_column(String(64))
    """The agent's Ed25519 public key (hex): verifies its messages, cannot sign them."""
    password_hash: Mapped[str] = mapped_column(String(200))
    """argon2id of the SHA-256 of the agent's secret: checks its broker login, cannot log in."""
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime, default=None)

    @property
    def is_active(self) -> bool:
        return self.revoked_at is None
